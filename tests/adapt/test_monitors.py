"""The gradient noise scale monitor (``adapt/monitors.py``) against synthetic gradients of known noise."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gnndist.adapt.monitors import NoiseScale, PartVariance, stratified_estimates

DIM = 2000
PARTS = 4
SIZES = (16, 64)  # the parts' batch size of a step, drawn uniformly in [16, 64]


def _simulate(
    monitor: NoiseScale, gradient_sq: float, trace_sigma: float, steps: int, seed: int = 0, spread: float = 0.0
) -> list[tuple[float, float]]:
    """Feed ``steps`` steps of PARTS strata to ``monitor``; return each step's raw estimates.

    The true gradient G has ``|G|^2 = gradient_sq``; part k's mean gradient is ``G + d_k``, with
    offsets of squared norm ``spread * gradient_sq`` each that cancel over the parts (as METIS
    regions' gradients do around the graph's), and per-sample noise is Gaussian with a diagonal
    covariance of uneven variances summing to ``trace_sigma``. Every part has the step's batch
    size, so the step's expected gradient is G. A half of h samples is drawn as the sum of its
    noise, N(0, h Sigma), which is exactly the sum of h per-sample draws, at a fraction of the cost.
    """
    rng = np.random.default_rng(seed)
    true_gradient = rng.standard_normal(DIM)
    true_gradient *= math.sqrt(gradient_sq) / np.linalg.norm(true_gradient)
    offsets = rng.standard_normal((PARTS, DIM))
    offsets -= offsets.mean(axis=0)
    offsets *= math.sqrt(spread * gradient_sq) / np.linalg.norm(offsets, axis=1, keepdims=True)
    variances = rng.uniform(0.2, 1.8, DIM)
    variances *= trace_sigma / variances.sum()
    raw = []
    for _ in range(steps):
        size = int(rng.integers(SIZES[0], SIZES[1] + 1))
        halves = np.array([size // 2, size - size // 2])
        noise_sums = rng.standard_normal((PARTS, 2, DIM)) * np.sqrt(variances) * np.sqrt(halves)[None, :, None]
        half_means = true_gradient + offsets[:, None, :] + noise_sums / halves[None, :, None]
        big = (half_means * halves[None, :, None]).sum(axis=(0, 1)) / (PARTS * size)
        gaps = ((half_means[:, 0] - half_means[:, 1]) ** 2).sum(axis=1).tolist()
        args = (gaps, [halves[0]] * PARTS, [halves[1]] * PARTS, float(big @ big))
        raw.append(stratified_estimates(*args))
        monitor.update(*args)
    return raw


# (|G|^2, tr(Sigma)): B_simple = 2000 is about twelve times the mean big batch (4 * 40 = 160) and
# eight times the largest (4 * 64); B_simple = 2 is an eighth of the smallest part batch.
REGIMES = {"noise-dominated": (1.0, 2000.0), "gradient-dominated": (2.0, 4.0)}


@pytest.mark.parametrize("spread", [0.0, 4.0])
@pytest.mark.parametrize("regime", REGIMES)
def test_the_smoothed_noise_scale_finds_the_true_one(regime, spread):
    gradient_sq, trace_sigma = REGIMES[regime]
    # A window of about 360 effective steps (decay 0.995 over 600 steps): the default 0.95 follows
    # a changing noise scale faster, with about 40 steps behind each estimate.
    monitor = NoiseScale(decay=0.995)
    # spread 4: each part's mean gradient is farther from G than G is from 0. No step samples that
    # spread (every step draws from every part), so it is not noise and must not be counted as such.
    _simulate(monitor, gradient_sq, trace_sigma, steps=600, spread=spread)
    assert monitor.steps == 600
    assert monitor.gradient_sq == pytest.approx(gradient_sq, rel=0.1)
    assert monitor.trace_sigma == pytest.approx(trace_sigma, rel=0.1)
    assert monitor.value == pytest.approx(trace_sigma / gradient_sq, rel=0.1)


def test_single_steps_go_negative_where_the_smoothed_estimate_stays_right():
    gradient_sq, trace_sigma = REGIMES["noise-dominated"]
    monitor = NoiseScale(decay=0.995)
    raw = _simulate(monitor, gradient_sq, trace_sigma, steps=600)
    single_gradient_sq = np.array([g for g, _ in raw])
    assert (single_gradient_sq < 0).sum() >= 10  # a ratio of single steps would be negative there
    assert single_gradient_sq.std() > 0.4 * gradient_sq  # they spread by about half the truth
    assert min(t for _, t in raw) > 0  # the noise, from squared distances, never goes negative
    assert monitor.value == pytest.approx(trace_sigma / gradient_sq, rel=0.1)


def test_the_estimates_follow_the_stratified_formulas():
    # Stratum 1: halves 1 and 1 (n = 2), gap 4: tr = 4 / (1 + 1) = 2. Stratum 2: halves 2 and 4
    # (n = 6), gap 3: tr = 3 / (1/2 + 1/4) = 4. B = 8: tr(Sigma) = (2 * 2 + 6 * 4) / 8 = 3.5, and
    # |G|^2 = 2.5 - 3.5 / 8 = 2.0625.
    gradient_sq, trace_sigma = stratified_estimates([4.0, 3.0], [1, 2], [1, 4], 2.5)
    assert trace_sigma == pytest.approx(3.5)
    assert gradient_sq == pytest.approx(2.0625)


def test_after_one_update_the_bias_correction_gives_that_steps_estimates():
    monitor = NoiseScale()
    assert (monitor.steps, monitor.gradient_sq, monitor.trace_sigma, monitor.value) == (0, None, None, None)
    args = ([3.0, 2.5, 4.0], [10, 15, 25], [10, 15, 25], 1.5)
    gradient_sq, trace_sigma = stratified_estimates(*args)
    assert monitor.update(*args) == pytest.approx(trace_sigma / gradient_sq)
    assert monitor.gradient_sq == pytest.approx(gradient_sq)  # not shrunk by 1 - decay towards 0
    assert monitor.trace_sigma == pytest.approx(trace_sigma)
    assert monitor.steps == 1


def test_one_stratum_is_enough():
    # One part, whose batch is split: a run of one part is monitored too. tr = 8 / (1/4 + 1/4) = 16.
    assert stratified_estimates([8.0], [4], [4], 3.0) == pytest.approx((3.0 - 16 / 8, 16.0))


def test_there_is_no_value_while_the_smoothed_gradient_is_not_positive():
    monitor = NoiseScale()
    # tr(Sigma) = 4 / (1 + 1) = 2 from each stratum; |G|^2 = 0 - 2 / 4 = -0.5.
    assert monitor.update([4.0, 4.0], [1, 1], [1, 1], 0.0) is None
    assert monitor.gradient_sq == pytest.approx(-0.5)
    assert monitor.trace_sigma == pytest.approx(2.0)
    assert monitor.value is None


@pytest.mark.parametrize(
    ("gaps", "first", "second", "big_sq_norm", "match"),
    [
        ([], [], [], 1.0, "at least one stratum"),
        ([1.0, 2.0], [8], [8, 8], 1.0, "2 half gaps but 1 first and 2 second"),
        ([1.0, 2.0], [8, 0], [8, 8], 1.0, "half sizes must be positive"),
        ([1.0, 2.0], [8, 8], [8, -4], 1.0, "half sizes must be positive"),
        ([1.0, -2.0], [8, 8], [8, 8], 1.0, "finite and non-negative"),
        ([1.0, math.nan], [8, 8], [8, 8], 1.0, "finite and non-negative"),
        ([1.0, 2.0], [8, 8], [8, 8], math.inf, "finite and non-negative"),
    ],
)
def test_invalid_steps_are_refused_and_change_nothing(gaps, first, second, big_sq_norm, match):
    monitor = NoiseScale()
    monitor.update([3.0, 2.0], [10, 30], [10, 30], 1.0)
    before = monitor.state_dict()
    with pytest.raises(ValueError, match=match):
        monitor.update(gaps, first, second, big_sq_norm)
    assert monitor.state_dict() == before


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5])
def test_decay_must_be_in_zero_one(decay):
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
        NoiseScale(decay)


def test_a_state_dict_round_trip_through_json_continues_identically():
    original = NoiseScale(decay=0.9)
    _simulate(original, 1.0, 500.0, steps=30, seed=1)
    restored = NoiseScale(decay=0.9)
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    assert restored.state_dict() == original.state_dict()
    rng = np.random.default_rng(2)
    for _ in range(20):
        halves = rng.integers(8, 33, 3).tolist()
        gaps, big = rng.uniform(1.0, 3.0, 3).tolist(), float(rng.uniform(0.5, 1.5))
        assert restored.update(gaps, halves, halves, big) == original.update(gaps, halves, halves, big)
    assert restored.state_dict() == original.state_dict()
    assert restored.steps == 50


def test_a_state_dict_from_another_decay_or_shape_is_refused():
    state = NoiseScale(decay=0.9).state_dict()
    with pytest.raises(ValueError, match="saved with decay 0.9"):
        NoiseScale(decay=0.95).load_state_dict(state)
    with pytest.raises(ValueError, match="needs exactly the keys"):
        NoiseScale(decay=0.9).load_state_dict({k: v for k, v in state.items() if k != "steps"})
    with pytest.raises(ValueError, match="non-negative int"):
        NoiseScale(decay=0.9).load_state_dict({**state, "steps": 2.5})


def test_part_variance_is_the_weighted_spread_of_the_part_gradients():
    rng = np.random.default_rng(3)
    monitor = PartVariance(decay=0.0)  # no smoothing: each update's own figures
    for _ in range(20):
        k = int(rng.integers(1, 6))
        grads = rng.normal(size=(k, 50)) + rng.normal(size=50)  # the parts' batch gradients g_k
        seeds = rng.integers(1, 40, k)
        w = seeds / seeds.sum()
        big = w @ grads  # the step's gradient, the seed-weighted mean
        want = float(w @ ((grads - big) ** 2).sum(axis=1))
        relative = monitor.update((grads**2).sum(axis=1).tolist(), w.tolist(), float(big @ big))
        assert monitor.variance == pytest.approx(want, rel=1e-9, abs=1e-9)
        assert relative == pytest.approx(want / float(big @ big), rel=1e-9, abs=1e-9)
    agree = PartVariance()
    assert agree.update([4.0, 4.0], [0.25, 0.75], 4.0 * (1 + 1e-16)) == 0.0  # equal gradients: no spread


@pytest.mark.parametrize(("norms", "weights", "big", "match"), [
    ([1.0], [0.5, 0.5], 1.0, "squared norms for 2 weights"),
    ([], [], 1.0, "at least one"),
    ([1.0, -1.0], [0.5, 0.5], 1.0, "finite and non-negative"),
    ([1.0, 1.0], [0.5, 0.6], 1.0, "sum to 1"),
    ([1.0, math.inf], [0.5, 0.5], 1.0, "finite"),
])
def test_part_variance_refuses_invalid_steps_and_changes_nothing(norms, weights, big, match):
    monitor = PartVariance()
    monitor.update([2.0, 3.0], [0.5, 0.5], 1.0)
    before = monitor.state_dict()
    with pytest.raises(ValueError, match=match):
        monitor.update(norms, weights, big)
    assert monitor.state_dict() == before
    restored = PartVariance()
    restored.load_state_dict(json.loads(json.dumps(before)))
    assert restored.state_dict() == before and restored.relative == monitor.relative
    with pytest.raises(ValueError, match="PartVariance state needs exactly the keys"):
        PartVariance().load_state_dict(NoiseScale().state_dict())
