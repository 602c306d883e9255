"""The pure-torch pieces of a training step: the forward of a batch, sums over the workers and
the gradients' all-reduce.

No Ray here (``loop.py`` adds Ray Train around them), so a training step can be built and checked
with plain ``torch.distributed`` where Ray is not installed: in tests, or on a GPU machine
(``scripts/gpu_check.py``).
"""

from __future__ import annotations

import inspect

import torch
import torch.distributed as dist

from gnndist.sampling.batch import MiniBatch


def trims_layers(model: torch.nn.Module) -> bool:
    """Whether ``model``'s forward takes PyG's per-hop counts (then it computes each layer only
    for the hops later layers need, as PyG's ``BasicGNN`` does)."""
    return "num_sampled_nodes_per_hop" in inspect.signature(model.forward).parameters


def forward(model: torch.nn.Module, batch: MiniBatch, trim: bool) -> torch.Tensor:
    """The logits of the batch's seeds."""
    if trim:
        out = model(batch.x, batch.edge_index, num_sampled_nodes_per_hop=batch.num_sampled_nodes,
                    num_sampled_edges_per_hop=batch.num_sampled_edges)
    else:
        out = model(batch.x, batch.edge_index)
    return out[:batch.batch_size]


def all_reduce_sum(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The sum of ``t`` over the workers, on CPU; the collective runs on ``device`` (NCCL takes
    only GPU tensors)."""
    t = t.to(device)
    dist.all_reduce(t)
    return t.cpu()


def flat_gradient(model: torch.nn.Module) -> torch.Tensor:
    """Every parameter's gradient in one new flat tensor (a parameter without one counts as zeros)."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in model.parameters()])


def all_reduce_gradients(model: torch.nn.Module, extra: torch.Tensor | None = None) -> torch.Tensor | None:
    """Sum every parameter's gradient over the workers in one flat all-reduce, waited for (a
    parameter without a gradient counts as zeros). Each worker's gradient is already weighted by
    its seeds' share of the step, so the sum is the step's gradient. ``extra``: numbers to sum
    over the workers in the same all-reduce (in the gradients' precision), returned summed: a
    monitor's figures then cost no collective of their own."""
    flat = flat_gradient(model)
    size = flat.numel()
    if extra is not None:
        flat = torch.cat([flat, extra.to(flat.dtype)])
    dist.all_reduce(flat)
    offset = 0
    for p in model.parameters():
        p.grad = flat[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
    return None if extra is None else flat[size:].to(extra.dtype)


def average_model(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Replace every parameter and every tensor of the optimizer's state by its mean over the
    workers, in one flat all-reduce (model averaging, for local SGD): afterwards every worker
    holds the same parameters and takes the same steps from the same gradients. Every worker's
    optimizer must hold the same state tensors (it has stepped on every parameter)."""
    tensors = [p.data for p in model.parameters()]
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            tensors += [state[key] for key in sorted(state) if torch.is_tensor(state[key])]
    flat = torch.cat([t.detach().double().reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    with torch.no_grad():
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


#: The learning-rate warm-up's steps when the run chooses (``TrainConfig.warmup_steps`` not given) ...
WARMUP_STEPS = 100
#: ... at most this share of the run's steps, so that a short run is not mostly warm-up.
WARMUP_SHARE = 0.1


def warmup_length(configured: int | None, total_steps: int) -> int:
    """Optimizer steps of the linear learning-rate warm-up: ``configured`` (0: none), or by
    default :data:`WARMUP_STEPS`, at most :data:`WARMUP_SHARE` of the run's ``total_steps``.

    Why warm up: Adam's first updates move every weight by about the learning rate whatever its
    gradient (its second-moment estimate has seen a step or two), so a layer's pre-activations
    jump by about ``lr * |x|_1`` a step. With dense non-negative features (Amazon's bag-of-words:
    259 ones a row) that is 2.6 at lr 0.01: logits blow up in the first steps (loss 4-6 against
    ln C), ReLUs die, and some seeds never recover. Ramping the rate up while the estimate
    settles keeps the first steps small; clipping the gradient's norm would not, since Adam's
    update does not scale with it."""
    if configured is not None:
        return configured
    return min(WARMUP_STEPS, int(total_steps * WARMUP_SHARE))


def warmup_factor(step: int, length: int) -> float:
    """The learning rate's multiplier at optimizer step ``step`` (0-based, counted over the run)
    of a linear warm-up of ``length`` steps: ``(step + 1) / length``, then 1."""
    return 1.0 if step >= length else (step + 1) / length
