"""Monitored training metrics: the gradient noise scale (no Ray, no torch).

:class:`NoiseScale` estimates the simple noise scale ``B_simple = tr(Sigma) / |G|^2`` of
McCandlish et al. 2018, "An Empirical Model of Large-Batch Training", Appendix A: ``G`` is the true
(full-data) gradient, ``Sigma`` the per-sample gradient covariance. A batch of ``b`` samples has
``E|G_b|^2 = |G|^2 + tr(Sigma) / b``, so the squared norms of the mean gradients of two batch sizes
give both terms; the ``B_simple`` of a run is about the batch size beyond which a larger batch
stops buying proportionally fewer steps.

The class is generic: it takes squared norms and sizes, never gradients. In gnndist a step's
gradient is the seed-weighted mean over the K parts' batches, ``G_big = sum_k (n_k / B) G_k`` with
``B = sum_k n_k``, and the small batches are the *parts'* batches, not the workers': the estimate,
and every decision taken from it, then depends on the partition and the seed only, never on how
many workers hold the parts. The caller rescales part k's contribution ``(n_k / B) G_k`` to the mean
gradient back into the part's own mean gradient ``G_k`` before taking its squared norm, and leaves
out parts with no seeds in the step.

One caveat of part batches: the estimator assumes every small batch samples the same distribution.
Parts that differ (a METIS part is a region of the graph) have different mean gradients, and that
spread between parts is counted as noise, inflating ``tr(Sigma)`` by roughly the part batch size
times the between-part variance of the part mean gradients. Random parts keep it negligible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def two_batch_estimates(
    small_sq_norms: Sequence[float], small_sizes: Sequence[float], big_sq_norm: float
) -> tuple[float, float]:
    """One step's unbiased estimates ``(|G|^2, tr(Sigma))`` from small batches and their union.

    ``small_sq_norms[i]`` is ``|G_small,i|^2``, the squared norm of small batch i's mean gradient,
    of ``small_sizes[i]`` samples; ``big_sq_norm`` is ``|G_big|^2`` of the union of all small
    batches, of ``B = sum(small_sizes)`` samples. Either estimate can be negative: it is one noisy
    sample of a non-negative quantity.
    """
    norms, sizes, big = _validated(small_sq_norms, small_sizes, big_sq_norm)
    return _estimates(norms, sizes, big)


class NoiseScale:
    """The simple noise scale ``tr(Sigma) / |G|^2``, smoothed over monitored steps.

    Single-step estimates are noisy and can be negative, and their ratio is noisier still, so
    ``|G|^2`` and ``tr(Sigma)`` are smoothed separately with an exponential moving average of
    ``decay``, bias-corrected as Adam does (divided by ``1 - decay**steps``, so the first update
    gives that step's estimates rather than a value shrunk towards zero), and the ratio is taken
    of the smoothed values.

    ``value`` is None until an update has made the smoothed ``|G|^2`` positive: the gradient is
    not yet resolved from the noise, and the noise scale is unbounded. It can be negative while
    the smoothed ``tr(Sigma)`` is, early on or where the noise is small: read that as "no noise
    measured yet", not as a batch size.
    """

    def __init__(self, decay: float = 0.95) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        self.decay = float(decay)
        self._steps = 0
        self._gradient_sq_ema = 0.0  # biased EMAs, started at 0; read through the bias correction
        self._trace_sigma_ema = 0.0

    def update(self, small_sq_norms: Sequence[float], small_sizes: Sequence[float], big_sq_norm: float) -> float | None:
        """Add one monitored step (arguments as for :func:`two_batch_estimates`); return ``value``.

        Invalid input raises ValueError and leaves the monitor as it was.
        """
        gradient_sq, trace_sigma = two_batch_estimates(small_sq_norms, small_sizes, big_sq_norm)
        self._steps += 1
        self._gradient_sq_ema = self.decay * self._gradient_sq_ema + (1.0 - self.decay) * gradient_sq
        self._trace_sigma_ema = self.decay * self._trace_sigma_ema + (1.0 - self.decay) * trace_sigma
        return self.value

    @property
    def steps(self) -> int:
        """How many steps have been added."""
        return self._steps

    @property
    def gradient_sq(self) -> float | None:
        """The smoothed estimate of ``|G|^2``; None before the first update."""
        return self._corrected(self._gradient_sq_ema)

    @property
    def trace_sigma(self) -> float | None:
        """The smoothed estimate of ``tr(Sigma)``; None before the first update."""
        return self._corrected(self._trace_sigma_ema)

    @property
    def value(self) -> float | None:
        """``B_simple = trace_sigma / gradient_sq`` (in samples); None while ``gradient_sq <= 0``."""
        gradient_sq = self.gradient_sq
        if gradient_sq is None or gradient_sq <= 0.0:
            return None
        return self.trace_sigma / gradient_sq

    def state_dict(self) -> dict[str, float | int]:
        """The monitor's state as plain floats and ints (JSON-safe)."""
        return {
            "decay": self.decay,
            "steps": self._steps,
            "gradient_sq_ema": self._gradient_sq_ema,
            "trace_sigma_ema": self._trace_sigma_ema,
        }

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        """Continue from a :meth:`state_dict`, which must come from a monitor of the same decay."""
        expected = {"decay", "steps", "gradient_sq_ema", "trace_sigma_ema"}
        if set(state) != expected:
            raise ValueError(f"NoiseScale state needs exactly the keys {sorted(expected)}, got {sorted(state)}")
        # The bias correction 1 - decay**steps holds only for EMAs built with one constant decay.
        if float(state["decay"]) != self.decay:
            raise ValueError(f"NoiseScale state was saved with decay {state['decay']}, this monitor has {self.decay}")
        steps = state["steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"NoiseScale state 'steps' must be a non-negative int, got {steps!r}")
        self._steps = steps
        self._gradient_sq_ema = float(state["gradient_sq_ema"])
        self._trace_sigma_ema = float(state["trace_sigma_ema"])

    def _corrected(self, ema: float) -> float | None:
        if self._steps == 0:
            return None
        return ema / (1.0 - self.decay**self._steps)


def _validated(
    small_sq_norms: Sequence[float], small_sizes: Sequence[float], big_sq_norm: float
) -> tuple[list[float], list[float], float]:
    norms = [float(x) for x in small_sq_norms]
    sizes = [float(b) for b in small_sizes]
    if len(norms) != len(sizes):
        raise ValueError(f"got {len(norms)} small-batch squared norms but {len(sizes)} sizes")
    # With one small batch the big batch is that batch (B = b): both estimates divide by zero.
    if len(sizes) < 2:
        raise ValueError(
            f"the two-batch noise-scale estimator needs at least two small batches, got {len(sizes)}: "
            "with one, the big batch equals it and the estimator is undefined"
        )
    if not all(math.isfinite(b) and b > 0.0 for b in sizes):
        raise ValueError(f"small batch sizes must be positive (leave out empty batches), got {sizes}")
    # A NaN or infinity would poison the moving averages for good; squared norms are never negative.
    if not all(math.isfinite(x) and x >= 0.0 for x in [*norms, float(big_sq_norm)]):
        raise ValueError(
            f"squared norms must be finite and non-negative, got small {norms} and big {float(big_sq_norm)}"
        )
    return norms, sizes, float(big_sq_norm)


def _estimates(norms: list[float], sizes: list[float], big: float) -> tuple[float, float]:
    total = sum(sizes)  # B: the big batch is the union of the small ones
    gradient_sq = 0.0
    trace_sigma = 0.0
    for small, b in zip(norms, sizes, strict=True):
        gradient_sq += b * (total * big - b * small) / (total - b)
        trace_sigma += b * (small - big) / (1.0 / b - 1.0 / total)
    # Each small batch's pair of estimates is unbiased on its own, so any mean with fixed weights
    # is unbiased too; weighting by size matches the seed-weighted mean that makes the big batch.
    return gradient_sq / total, trace_sigma / total
