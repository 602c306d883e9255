"""ReLU followed by dropout in one pass over the hidden rows, forward and backward.

A layer's hidden output in a sampled batch is large (46,928 x 128 floats for a 3-layer model
with fanouts [15, 10, 5] and 1024 seeds) and on CPU every element-wise pass over it is bound by
memory bandwidth. PyG's ``act`` then ``F.dropout`` make about seven such passes forward and back
(ReLU, drawing uniforms, comparing, scaling, masking, and their backward), and torch's CPU
uniforms cost several ns each: together about a third of a training step here. This kernel draws
its keep decisions from :mod:`gnndist.rng`'s splitmix64 stream (two 32-bit decisions per draw),
seeded from torch's generator, so ``torch.manual_seed`` and a checkpoint's saved torch random
state still make a run reproducible. Its backward needs only the output: an element passed
through exactly when its output is positive (kept and positive input).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numba import njit
from torch import Tensor

from gnndist.rng import kernel_seed, u64_at

_LOW32, _S32 = np.uint64(0xFFFFFFFF), np.uint64(32)


@njit(cache=True, nogil=True)
def _forward(x, out, threshold, scale, seed):
    # x, out: 1-d, contiguous. Element i is kept when its 32-bit draw is >= threshold.
    zero = scale - scale  # in x's dtype, so that the loop vectorises
    n = x.size
    for k in range(n // 2):
        z = u64_at(seed, k)
        a, b = x[2 * k], x[2 * k + 1]
        out[2 * k] = a * scale if (a > 0) & ((z & _LOW32) >= threshold) else zero
        out[2 * k + 1] = b * scale if (b > 0) & ((z >> _S32) >= threshold) else zero
    if n % 2:
        a = x[n - 1]
        out[n - 1] = a * scale if (a > 0) & ((u64_at(seed, n // 2) & _LOW32) >= threshold) else zero


@njit(cache=True, nogil=True)
def _backward(grad, out, grad_in, scale):
    zero = scale - scale
    for k in range(grad.size):
        grad_in[k] = grad[k] * scale if out[k] > 0 else zero


class _ReluDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, p: float, seed: np.uint64) -> Tensor:
        x = x.contiguous()
        out = torch.empty_like(x)
        scale = x.new_tensor(1 / (1 - p)).numpy()[()]  # in x's dtype, as F.dropout scales
        threshold = np.uint64(min(round(p * 2**32), 2**32 - 1))
        _forward(x.detach().numpy().reshape(-1), out.numpy().reshape(-1), threshold, scale, seed)
        ctx.save_for_backward(out)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, None]:
        (out,) = ctx.saved_tensors
        grad = grad.contiguous()
        grad_in = torch.empty_like(grad)
        _backward(grad.numpy().reshape(-1), out.detach().numpy().reshape(-1), grad_in.numpy().reshape(-1), ctx.scale)
        return grad_in, None, None


def relu_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``F.dropout(F.relu(x), p, training)``: each element is zeroed with probability ``p`` (to
    2**-32) and the rest scaled by ``1 / (1 - p)``. On CPU (float32 or float64) one fused pass,
    its keep decisions drawn from a seed that torch's default generator supplies; elsewhere
    (e.g. CUDA, where torch's own kernels are fast) torch's ReLU and dropout."""
    if not training or p == 0:
        return F.relu(x)
    if not 0 < p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return F.dropout(F.relu(x), p, training=True)
    seed = kernel_seed(int(torch.randint(0, 2**62, (1,))))
    return _ReluDropout.apply(x, p, seed)
