"""Monitored training metrics: the gradient noise scale and the parts' gradient variance (no Ray,
no torch).

:class:`NoiseScale` estimates the simple noise scale ``B_simple = tr(Sigma) / |G|^2`` of
McCandlish et al. 2018, "An Empirical Model of Large-Batch Training", Appendix A: ``G`` is the true
(full-data) gradient, ``Sigma`` the per-sample gradient covariance. A batch of ``b`` samples has
``E|G_b|^2 = |G|^2 + tr(Sigma) / b``; the ``B_simple`` of a run is about the batch size beyond
which a larger batch stops buying proportionally fewer steps.

gnndist's batches are *stratified*: a step's gradient is the seed-weighted mean over the K parts'
batches, ``G_B = sum_k (n_k / B) G_k`` with ``B = sum_k n_k``, and a METIS part is a region of the
graph whose mean gradient differs from the others'. McCandlish's two-batch estimator, with the
parts' batches as the small ones, counts that spread between parts as noise although no step ever
samples it (every step draws from every part), and on METIS parts it drove the estimate of
``|G|^2`` below zero for whole runs. So the noise is measured *within* each part instead: its
batch is split into two halves of ``a_k`` and ``c_k`` seeds whose mean gradients ``g_a, g_c`` are
independent draws around the part's mean, and ``E|g_a - g_c|^2 = tr(Sigma_k) (1/a_k + 1/c_k)``,
which is never negative. The noise a step of this stratified batch really carries is the
seed-weighted mean of the parts' ``tr(Sigma_k)``, and ``|G|^2`` follows from the step's gradient:
``E|G_B|^2 = |G|^2 + tr(Sigma) / B``.

The class is generic: it takes squared norms and sizes, never gradients; in gnndist every figure is
a part's, so the estimate, and every decision taken from it, depends on the partition and the seed
only, never on how many workers hold the parts. Seeds of one batch share sampled neighbours, so
the halves are slightly correlated and ``tr(Sigma)`` is, if anything, underestimated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def stratified_estimates(
    half_gaps: Sequence[float], first_sizes: Sequence[float], second_sizes: Sequence[float], big_sq_norm: float
) -> tuple[float, float]:
    """One step's unbiased estimates ``(|G|^2, tr(Sigma))`` from the halves of its strata.

    Stratum k's batch is split into halves of ``first_sizes[k]`` and ``second_sizes[k]`` samples,
    and ``half_gaps[k]`` is ``|g_a - g_c|^2``, the squared distance of the halves' mean gradients;
    ``big_sq_norm`` is ``|G_B|^2`` of the step's gradient, the size-weighted mean over every
    stratum's whole batch. The estimate of ``|G|^2`` can be negative: it is one noisy sample of a
    non-negative quantity.
    """
    gaps, first, second, big = _validated(half_gaps, first_sizes, second_sizes, big_sq_norm)
    sizes = [a + c for a, c in zip(first, second, strict=True)]
    total = sum(sizes)  # B
    # tr(Sigma_k) = gap_k / (1/a_k + 1/c_k); the step's per-sample noise weights them by n_k / B.
    traces = [g / (1.0 / a + 1.0 / c) for g, a, c in zip(gaps, first, second, strict=True)]
    trace_sigma = sum(n * t for n, t in zip(sizes, traces, strict=True)) / total
    return big - trace_sigma / total, trace_sigma


class Smoothed:
    """Figures of one monitored step each, smoothed together: an exponential moving average of
    ``decay`` per figure, bias-corrected as Adam does (divided by ``1 - decay**steps``, so that the
    first update gives that step's figures rather than values shrunk towards zero). ``FIGURES``
    names them; a subclass says how a step's figures are estimated."""

    FIGURES: tuple[str, ...] = ()

    def __init__(self, decay: float = 0.95) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        self.decay = float(decay)
        self._steps = 0
        self._emas = dict.fromkeys(self.FIGURES, 0.0)  # biased EMAs, started at 0; read through the correction

    def _add(self, **figures: float) -> None:
        self._steps += 1
        for name, value in figures.items():
            self._emas[name] = self.decay * self._emas[name] + (1.0 - self.decay) * value

    def _smoothed(self, name: str) -> float | None:
        """The smoothed figure ``name``; None before the first update."""
        if self._steps == 0:
            return None
        return self._emas[name] / (1.0 - self.decay**self._steps)

    @property
    def steps(self) -> int:
        """How many steps have been added."""
        return self._steps

    def state_dict(self) -> dict[str, float | int]:
        """The monitor's state as plain floats and ints (JSON-safe)."""
        return {"decay": self.decay, "steps": self._steps, **{f"{name}_ema": v for name, v in self._emas.items()}}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        """Continue from a :meth:`state_dict`, which must come from a monitor of the same kind and decay."""
        kind = type(self).__name__
        expected = {"decay", "steps", *(f"{name}_ema" for name in self.FIGURES)}
        if set(state) != expected:
            raise ValueError(f"{kind} state needs exactly the keys {sorted(expected)}, got {sorted(state)}")
        # The bias correction 1 - decay**steps holds only for EMAs built with one constant decay.
        if float(state["decay"]) != self.decay:
            raise ValueError(f"{kind} state was saved with decay {state['decay']}, this monitor has {self.decay}")
        steps = state["steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"{kind} state 'steps' must be a non-negative int, got {steps!r}")
        self._steps = steps
        self._emas = {name: float(state[f"{name}_ema"]) for name in self.FIGURES}


class NoiseScale(Smoothed):
    """The simple noise scale ``tr(Sigma) / |G|^2``, smoothed over monitored steps.

    Single-step estimates are noisy (that of ``|G|^2`` can be negative), and their ratio is noisier
    still, so ``|G|^2`` and ``tr(Sigma)`` are smoothed separately (:class:`Smoothed`) and the ratio
    is taken of the smoothed values.

    ``value`` is None until an update has made the smoothed ``|G|^2`` positive: the gradient is
    not yet resolved from the noise, and the noise scale is unbounded.
    """

    FIGURES = ("gradient_sq", "trace_sigma")

    def update(self, half_gaps: Sequence[float], first_sizes: Sequence[float], second_sizes: Sequence[float],
               big_sq_norm: float) -> float | None:
        """Add one monitored step (arguments as for :func:`stratified_estimates`); return ``value``.

        Invalid input raises ValueError and leaves the monitor as it was.
        """
        gradient_sq, trace_sigma = stratified_estimates(half_gaps, first_sizes, second_sizes, big_sq_norm)
        self._add(gradient_sq=gradient_sq, trace_sigma=trace_sigma)
        return self.value

    @property
    def gradient_sq(self) -> float | None:
        """The smoothed estimate of ``|G|^2``; None before the first update."""
        return self._smoothed("gradient_sq")

    @property
    def trace_sigma(self) -> float | None:
        """The smoothed estimate of ``tr(Sigma)``; None before the first update."""
        return self._smoothed("trace_sigma")

    @property
    def value(self) -> float | None:
        """``B_simple = trace_sigma / gradient_sq`` (in samples); None while ``gradient_sq <= 0``."""
        gradient_sq = self.gradient_sq
        if gradient_sq is None or gradient_sq <= 0.0:
            return None
        return self.trace_sigma / gradient_sq


class PartVariance(Smoothed):
    """How far the parts' gradients spread around the step's gradient, smoothed over monitored steps.

    A step's gradient is the seed-weighted mean ``G_B = sum_k w_k g_k`` of its parts' batch
    gradients (``w_k = n_k / B``). Their weighted variance is
    ``V = sum_k w_k |g_k - G_B|^2 = sum_k w_k |g_k|^2 - |G_B|^2``: the within-part sampling noise
    of each batch plus the difference between the parts' regions of the graph, which METIS makes
    large. ``relative = V / |G_B|^2`` is scale-free: near 0 while the parts agree on where to go,
    above 1 once they pull in different directions, where local SGD drifts and synchronous steps
    pay. Only squared norms are needed, ``|g_k|^2`` per part: a few numbers that ride along with
    the gradients' all-reduce, where a per-coordinate variance would need a second all-reduce the
    size of the model. Like the noise scale it is a function of the parts and the seeds.
    """

    FIGURES = ("variance", "gradient_sq")

    def update(self, part_sq_norms: Sequence[float], weights: Sequence[float], big_sq_norm: float) -> float:
        """Add one monitored step: ``part_sq_norms[k] = |g_k|^2`` and ``weights[k] = w_k`` (summing
        to 1) of each part with seeds in it, ``big_sq_norm = |G_B|^2``; return ``relative``.
        Invalid input raises ValueError and leaves the monitor as it was."""
        norms, shares, big = [float(x) for x in part_sq_norms], [float(w) for w in weights], float(big_sq_norm)
        if len(norms) != len(shares) or not norms:
            raise ValueError(f"got {len(norms)} squared norms for {len(shares)} weights (and need at least one)")
        if not all(math.isfinite(x) and x >= 0.0 for x in [*norms, *shares, big]):
            raise ValueError(f"squared norms and weights must be finite and non-negative, got {norms}, {shares}, {big}")
        if not math.isclose(sum(shares), 1.0, rel_tol=1e-9):
            raise ValueError(f"the parts' weights must sum to 1 (the step's seeds), got {sum(shares)}")
        # max: the two sums differ by float rounding when every part's gradient is the same.
        variance = max(sum(w * x for w, x in zip(shares, norms, strict=True)) - big, 0.0)
        self._add(variance=variance, gradient_sq=big)
        return self.relative

    @property
    def variance(self) -> float | None:
        """The smoothed ``V``; None before the first update."""
        return self._smoothed("variance")

    @property
    def relative(self) -> float | None:
        """``V / |G_B|^2`` of the smoothed values; None before the first update or for a zero gradient."""
        big = self._smoothed("gradient_sq")
        return None if not big else self.variance / big


def _validated(
    half_gaps: Sequence[float], first_sizes: Sequence[float], second_sizes: Sequence[float], big_sq_norm: float
) -> tuple[list[float], list[float], list[float], float]:
    gaps = [float(x) for x in half_gaps]
    first = [float(b) for b in first_sizes]
    second = [float(b) for b in second_sizes]
    if not len(gaps) == len(first) == len(second):
        raise ValueError(f"got {len(gaps)} half gaps but {len(first)} first and {len(second)} second half sizes")
    if not gaps:
        raise ValueError("a step needs at least one stratum (a part's batch of two or more seeds)")
    # A half of no samples has no mean gradient: a batch of one seed cannot be split.
    if not all(math.isfinite(b) and b > 0.0 for b in [*first, *second]):
        raise ValueError(f"half sizes must be positive (leave out batches of fewer than two), got {first} and {second}")
    # A NaN or infinity would poison the moving averages for good; squared norms are never negative.
    if not all(math.isfinite(x) and x >= 0.0 for x in [*gaps, float(big_sq_norm)]):
        raise ValueError(
            f"squared norms must be finite and non-negative, got half gaps {gaps} and big {float(big_sq_norm)}"
        )
    return gaps, first, second, float(big_sq_norm)
