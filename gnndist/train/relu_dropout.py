"""ReLU followed by dropout in one pass over the hidden rows, forward and backward.

A layer's hidden output in a sampled batch is large (46,928 x 128 floats for a 3-layer model
with fanouts [15, 10, 5] and 1024 seeds) and on CPU every element-wise pass over it is bound by
memory bandwidth. ReLU then dropout by torch ops make about eight such passes forward and back
(ReLU, drawing uniforms, comparing, scaling, masking, and their backward). Here one pass makes
the output and the backward is one pass too, needing only the output: an element passed through
exactly when its output is positive (kept and positive input).

The masks take 16 random bits per element from torch's generator, drawn as 64-bit integers
(``random_`` over int64's full range, four elements per draw) instead of a float32 uniform per element:
torch's CPU ``uniform_`` made a third of the step's element-wise time, the integer draw a
quarter of that. Element i is kept when its 16-bit word is at least ``round(p * 65536)``,
so the drop probability is ``p`` rounded to a multiple of 1/65536 (exact for 0.5, 0.25, ...)
and kept elements are scaled by one over the kept probability. The bits still come from
torch's generator: ``torch.manual_seed`` and a checkpoint's saved torch random state make a run
reproducible.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numba import njit
from torch import Tensor

_LEVELS = 1 << 16  # a mask word's values


@njit(cache=True, nogil=True)
def _forward(x, bits, out, threshold, scale):
    # x, out: 1-d, contiguous; bits: uint16, at least x.size. Element k is kept when bits[k] >= threshold.
    zero = scale - scale  # in x's dtype, so that the loop vectorises
    for k in range(x.size):
        a = x[k]
        out[k] = a * scale if (a > 0) & (bits[k] >= threshold) else zero


@njit(cache=True, nogil=True)
def _backward(grad, out, grad_in, scale):
    zero = scale - scale
    for k in range(grad.size):
        grad_in[k] = grad[k] * scale if out[k] > 0 else zero


def mask_bits(n: int) -> np.ndarray:
    """uint16 [>= n]: 16 random bits per element from torch's default generator."""
    # From the lowest int64 with no upper bound: the full 64-bit range (plain random_() leaves the sign bit 0).
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(torch.iinfo(torch.int64).min, None)
    return words.numpy().view(np.uint16)


def drop_threshold(p: float) -> int:
    """The mask word below which an element is dropped: ``p`` in 1/65536ths, leaving at least one
    word that keeps."""
    return min(round(p * _LEVELS), _LEVELS - 1)


class _ReluDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, p: float) -> Tensor:
        x = x.contiguous()
        bits = mask_bits(x.numel())
        out = torch.empty_like(x)
        threshold = drop_threshold(p)
        scale = x.new_tensor(_LEVELS / (_LEVELS - threshold)).numpy()[()]  # in x's dtype, as F.dropout scales
        _forward(x.detach().numpy().reshape(-1), bits, out.numpy().reshape(-1), np.uint16(threshold), scale)
        ctx.save_for_backward(out)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None]:
        (out,) = ctx.saved_tensors
        grad = grad.contiguous()
        grad_in = torch.empty_like(grad)
        _backward(grad.numpy().reshape(-1), out.detach().numpy().reshape(-1), grad_in.numpy().reshape(-1), ctx.scale)
        return grad_in, None


def relu_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``F.dropout(F.relu(x), p, training)``: each element is zeroed with probability ``p`` and
    the rest scaled by ``1 / (1 - p)``. On CPU (float32 or float64) one fused pass over ``x`` and
    16 random bits per element from torch's default generator (``p`` rounded to 1/65536ths, see
    the module's note); elsewhere (e.g. CUDA, where torch's own kernels are fast) torch's ReLU
    and dropout."""
    if not training or p == 0:
        return F.relu(x)
    if not 0 < p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return F.dropout(F.relu(x), p, training=True)
    return _ReluDropout.apply(x, p)
