"""The gradient noise scale monitor (``adapt/monitors.py``) against synthetic gradients of known noise."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gnndist.adapt.monitors import NoiseScale, two_batch_estimates

DIM = 2000
PARTS = 4
SIZES = (16, 64)  # each part's batch size per step, drawn uniformly in [16, 64]


def _simulate(
    monitor: NoiseScale, gradient_sq: float, trace_sigma: float, steps: int, seed: int = 0
) -> list[tuple[float, float]]:
    """Feed ``steps`` steps of PARTS small batches to ``monitor``; return each step's raw estimates.

    The true gradient G has ``|G|^2 = gradient_sq``; per-sample noise is Gaussian with a diagonal
    covariance of uneven variances summing to ``trace_sigma``. A batch of b samples is drawn as the
    sum of its noise, N(0, b Sigma), which is exactly the sum of b per-sample draws, at a fraction
    of the cost; the big batch is the union of the step's small batches.
    """
    rng = np.random.default_rng(seed)
    true_gradient = rng.standard_normal(DIM)
    true_gradient *= math.sqrt(gradient_sq) / np.linalg.norm(true_gradient)
    variances = rng.uniform(0.2, 1.8, DIM)
    variances *= trace_sigma / variances.sum()
    raw = []
    for _ in range(steps):
        sizes = rng.integers(SIZES[0], SIZES[1] + 1, PARTS)
        noise_sums = rng.standard_normal((PARTS, DIM)) * np.sqrt(variances) * np.sqrt(sizes)[:, None]
        small = true_gradient + noise_sums / sizes[:, None]
        big = true_gradient + noise_sums.sum(axis=0) / sizes.sum()
        small_sq, big_sq = (small**2).sum(axis=1).tolist(), float(big @ big)
        raw.append(two_batch_estimates(small_sq, sizes.tolist(), big_sq))
        monitor.update(small_sq, sizes.tolist(), big_sq)
    return raw


# (|G|^2, tr(Sigma)): B_simple = 2000 is about twelve times the mean big batch (4 * 40 = 160) and
# eight times the largest (4 * 64); B_simple = 2 is an eighth of the smallest small batch.
REGIMES = {"noise-dominated": (1.0, 2000.0), "gradient-dominated": (2.0, 4.0)}


@pytest.mark.parametrize("regime", REGIMES)
def test_the_smoothed_noise_scale_finds_the_true_one(regime):
    gradient_sq, trace_sigma = REGIMES[regime]
    # A window of about 360 effective steps (decay 0.995 over 600 steps): the default 0.95 follows
    # a changing noise scale faster, with about 40 steps behind each estimate.
    monitor = NoiseScale(decay=0.995)
    _simulate(monitor, gradient_sq, trace_sigma, steps=600)
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
    assert monitor.value == pytest.approx(trace_sigma / gradient_sq, rel=0.1)


def test_the_estimates_follow_the_two_batch_formulas():
    # Sizes 1 and 3, so B = 4. Batch 1: |G|^2 = (4 * 2.5 - 1 * 5) / 3 = 5/3, tr = (5 - 2.5) / (1 - 1/4)
    # = 10/3. Batch 2: |G|^2 = (4 * 2.5 - 3 * 2) / 1 = 4, tr = (2 - 2.5) / (1/3 - 1/4) = -6.
    # Size-weighted: |G|^2 = (5/3 + 3 * 4) / 4 = 41/12 and tr = (10/3 - 3 * 6) / 4 = -11/3.
    gradient_sq, trace_sigma = two_batch_estimates([5.0, 2.0], [1, 3], 2.5)
    assert gradient_sq == pytest.approx(41 / 12)
    assert trace_sigma == pytest.approx(-11 / 3)


def test_after_one_update_the_bias_correction_gives_that_steps_estimates():
    monitor = NoiseScale()
    assert (monitor.steps, monitor.gradient_sq, monitor.trace_sigma, monitor.value) == (0, None, None, None)
    args = ([3.0, 2.5, 4.0], [20, 30, 50], 1.5)
    gradient_sq, trace_sigma = two_batch_estimates(*args)
    assert monitor.update(*args) == pytest.approx(trace_sigma / gradient_sq)
    assert monitor.gradient_sq == pytest.approx(gradient_sq)  # not shrunk by 1 - decay towards 0
    assert monitor.trace_sigma == pytest.approx(trace_sigma)
    assert monitor.steps == 1


def test_there_is_no_value_while_the_smoothed_gradient_is_not_positive():
    monitor = NoiseScale()
    # |G|^2 = (2 * 0 - 1 * 4) / (2 - 1) = -4 from each batch; tr(Sigma) = 4 / (1 - 1/2) = 8.
    assert monitor.update([4.0, 4.0], [1, 1], 0.0) is None
    assert monitor.gradient_sq == pytest.approx(-4.0)
    assert monitor.trace_sigma == pytest.approx(8.0)
    assert monitor.value is None


@pytest.mark.parametrize(
    ("small_sq_norms", "small_sizes", "big_sq_norm", "match"),
    [
        ([1.0], [8], 1.0, "at least two small batches"),
        ([1.0, 2.0], [8], 1.0, "2 small-batch squared norms but 1 sizes"),
        ([1.0, 2.0], [8, 0], 1.0, "sizes must be positive"),
        ([1.0, 2.0], [8, -4], 1.0, "sizes must be positive"),
        ([1.0, -2.0], [8, 8], 1.0, "finite and non-negative"),
        ([1.0, math.nan], [8, 8], 1.0, "finite and non-negative"),
        ([1.0, 2.0], [8, 8], math.inf, "finite and non-negative"),
    ],
)
def test_invalid_steps_are_refused_and_change_nothing(small_sq_norms, small_sizes, big_sq_norm, match):
    monitor = NoiseScale()
    monitor.update([3.0, 2.0], [10, 30], 1.0)
    before = monitor.state_dict()
    with pytest.raises(ValueError, match=match):
        monitor.update(small_sq_norms, small_sizes, big_sq_norm)
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
        sizes = rng.integers(16, 65, 3).tolist()
        small, big = rng.uniform(1.0, 3.0, 3).tolist(), float(rng.uniform(0.5, 1.5))
        assert restored.update(small, sizes, big) == original.update(small, sizes, big)
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
