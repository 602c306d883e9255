"""ReLU followed by dropout in one pass over the hidden rows, forward and backward.

A layer's hidden output in a sampled batch is large (46,928 x 128 floats for a 3-layer model
with fanouts [15, 10, 5] and 1024 seeds) and on CPU every element-wise pass over it is bound by
memory bandwidth. ReLU then dropout by torch ops make about eight such passes forward and back
(ReLU, drawing uniforms, comparing, scaling, masking, and their backward). Here the uniforms
come from torch's generator (so ``torch.manual_seed`` and a checkpoint's saved torch random
state make a run reproducible, with exactly the masks of ``relu(x) * (torch.rand_like(x) >= p)
/ (1 - p)``) and one pass makes the output from them; the backward is
one pass too and needs only the output: an element passed through exactly when its output is
positive (kept and positive input).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from numba import njit
from torch import Tensor


@njit(cache=True, nogil=True)
def _forward(x, u, out, p, scale):
    # x, u, out: 1-d, contiguous. Element i is kept when its uniform u[i] is >= p.
    zero = scale - scale  # in x's dtype, so that the loop vectorises
    for k in range(x.size):
        a = x[k]
        out[k] = a * scale if (a > 0) & (u[k] >= p) else zero


@njit(cache=True, nogil=True)
def _backward(grad, out, grad_in, scale):
    zero = scale - scale
    for k in range(grad.size):
        grad_in[k] = grad[k] * scale if out[k] > 0 else zero


class _ReluDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, p: float) -> Tensor:
        x = x.contiguous()
        u = torch.rand_like(x)
        out = torch.empty_like(x)
        # p and the scale in x's dtype, as F.dropout compares and scales
        p_, scale = x.new_tensor(p).numpy()[()], x.new_tensor(1 / (1 - p)).numpy()[()]
        _forward(x.detach().numpy().reshape(-1), u.numpy().reshape(-1), out.numpy().reshape(-1), p_, scale)
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
    uniforms from torch's default generator (element i kept when its uniform is >= p); elsewhere
    (e.g. CUDA, where torch's own kernels are fast) torch's ReLU and dropout."""
    if not training or p == 0:
        return F.relu(x)
    if not 0 < p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return F.dropout(F.relu(x), p, training=True)
    return _ReluDropout.apply(x, p)
