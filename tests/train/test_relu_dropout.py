"""The fused ReLU + dropout: the values and gradients of ``F.dropout(F.relu(x))``, its masks drawn
from torch's generator (reproducible from torch's seed), 16 bits per element."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gnndist.train.relu_dropout import drop_threshold, mask_bits, relu_dropout


def _inputs(n: int = 200_001, dtype=torch.float32, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _scale(p: float) -> float:
    """One over the kept probability, p rounded to 65536ths."""
    return 65536 / (65536 - round(p * 65536))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_each_output_is_zero_or_the_scaled_relu_and_a_share_p_is_dropped(p, dtype):
    x = _inputs(dtype=dtype)
    out = relu_dropout(x, p, training=True)
    assert out.dtype == dtype
    scaled = F.relu(x) * torch.tensor(_scale(p), dtype=dtype)
    kept = out != 0
    assert torch.equal(out[kept], scaled[kept])
    assert not bool(kept[x <= 0].any())
    positive = int((x > 0).sum())
    dropped = 1 - float(kept.sum()) / positive
    assert abs(dropped - p) < 6 * (p * (1 - p) / positive) ** 0.5  # six standard deviations


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_the_masks_are_the_16_bit_lanes_of_torch_int64_draws_from_the_same_seed(p):
    x = _inputs(50_001)
    torch.manual_seed(5)
    words = torch.empty(12_501, dtype=torch.int64).random_(-2**63, None)  # 4 lanes of 16 bits, the last partly unused
    lanes = torch.from_numpy(words.numpy().view(np.uint16)[:50_001].astype(np.int32))
    threshold = round(p * 65536)
    reference = F.relu(x) * lanes.ge(threshold).float().mul_(_scale(p))
    torch.manual_seed(5)
    assert torch.equal(relu_dropout(x, p, training=True), reference)


def test_p_is_rounded_to_65536ths_and_the_scale_follows_it():
    assert drop_threshold(0.5) == 32768 and drop_threshold(1e-6) == 0 and drop_threshold(1 - 1e-9) == 65535
    x = torch.ones(4001)
    out = relu_dropout(x, 0.3, training=True)
    assert torch.equal(out.unique(), torch.tensor([0.0, _scale(0.3)]))


def test_every_bit_lane_is_uniform():
    # A lane stuck or biased would drop too many or too few of its elements: a chi-square test of
    # 8 value ranges in each of the 4 lanes of the int64 words.
    torch.manual_seed(11)
    lanes = mask_bits(4 * 200_000).reshape(-1, 4).astype(np.int64) >> 13
    for lane in range(4):
        counts = np.bincount(lanes[:, lane], minlength=8)
        chi2 = float((((counts - 25_000) ** 2) / 25_000).sum())
        assert chi2 < 24.3  # 7 degrees of freedom: p = 0.001


def test_the_gradient_passes_exactly_where_the_output_is_kept():
    x = _inputs(100_003).requires_grad_()
    grad = _inputs(100_003, seed=1)
    out = relu_dropout(x, 0.3, training=True)
    out.backward(grad)
    keep = (out.detach() != 0).float()
    reference = x.detach().clone().requires_grad_()
    (F.relu(reference) * (keep * torch.tensor(_scale(0.3)))).backward(grad)
    assert torch.equal(x.grad, reference.grad)


def test_the_same_torch_seed_gives_the_same_mask_and_calls_draw_afresh():
    x = _inputs(10_001)
    torch.manual_seed(7)
    first, second = relu_dropout(x, 0.5, True), relu_dropout(x, 0.5, True)
    torch.manual_seed(7)
    assert torch.equal(relu_dropout(x, 0.5, True), first)
    assert not torch.equal(first, second)


def test_non_contiguous_input_gives_the_shape_and_values_of_its_contiguous_copy():
    x = _inputs(300 * 7).view(300, 7).t()
    torch.manual_seed(3)
    out = relu_dropout(x, 0.4, True)
    torch.manual_seed(3)
    assert out.shape == x.shape
    assert torch.equal(out, relu_dropout(x.contiguous(), 0.4, True))


def test_evaluation_and_p_zero_are_plain_relu_and_p_one_is_refused():
    x = _inputs(1001)
    assert torch.equal(relu_dropout(x, 0.5, training=False), F.relu(x))
    assert torch.equal(relu_dropout(x, 0.0, training=True), F.relu(x))
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        relu_dropout(x, 1.0, training=True)
