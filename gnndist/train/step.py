"""The pure-torch pieces of a training step: the forward of a batch, sums over the workers and
the gradients' all-reduce.

No Ray here (``loop.py`` adds Ray Train around them), so a training step can be built and checked
with plain ``torch.distributed`` where Ray is not installed: in tests, or on a GPU machine
(``scripts/gpu_check.py``).
"""

from __future__ import annotations

import enum
import inspect

import torch
import torch.distributed as dist

from gnndist.sampling.batch import MiniBatch
from gnndist.sources.dgl import NEEDS_DGL_ENV


class ModelInputError(ValueError):
    """A model whose input kind cannot be used: an unknown ``gnndist_input``, or a DGL model where
    DGL cannot be imported."""


class ModelInput(enum.Enum):
    """How a model takes a batch: which of the three contracts its ``forward`` follows.

    - ``PYG``: ``forward(x, edge_index)``, as a PyG model on a ``NeighborLoader`` batch; it returns
      rows for every node of the batch (or at least the seeds first), of which the seeds' are taken.
    - ``PYG_HOPS``: the same, with PyG's per-hop counts as the keyword arguments
      ``num_sampled_nodes_per_hop`` and ``num_sampled_edges_per_hop`` (then a model can compute
      each layer only for the hops later layers need, as PyG's ``BasicGNN`` and the built-ins do).
    - ``DGL_BLOCKS``: ``forward(blocks, x)``, DGL's mini-batch API: ``blocks`` holds one
      ``DGLBlock`` per hop of the sampler, the first layer's first (:meth:`MiniBatch.to_dgl_blocks`),
      ``x`` the first block's source features; it returns the last block's destinations' rows (the seeds).

    :meth:`of` picks one once per model; the loop stores it beside the model.
    """

    PYG = "pyg"
    PYG_HOPS = "pyg_hops"
    DGL_BLOCKS = "dgl_blocks"

    @classmethod
    def of(cls, model: torch.nn.Module) -> ModelInput:
        """The model's contract: its attribute ``gnndist_input`` (one of the values above) where it
        sets one, else a ``forward`` whose first parameter is named ``blocks`` is ``DGL_BLOCKS``,
        one that takes ``num_sampled_nodes_per_hop`` is ``PYG_HOPS``, and any other ``PYG``.

        Raises:
            ModelInputError: ``gnndist_input`` is not one of the values, or the model takes DGL
                blocks and DGL cannot be imported here.
        """
        declared = getattr(model, "gnndist_input", None)
        if declared is not None:
            try:
                kind = cls(declared)
            except ValueError:
                raise ModelInputError(f"{type(model).__name__}.gnndist_input is {declared!r}; expected one of "
                                      f"{[k.value for k in cls]}") from None
        else:
            params = list(inspect.signature(model.forward).parameters)
            if params[:1] == ["blocks"]:
                kind = cls.DGL_BLOCKS
            else:
                kind = cls.PYG_HOPS if "num_sampled_nodes_per_hop" in params else cls.PYG
        if kind is cls.DGL_BLOCKS:
            _check_dgl(type(model).__name__)
        return kind


def _check_dgl(name: str) -> None:
    """ModelInputError saying how to get DGL where it cannot be imported (checked when the model's
    contract is picked, so that the run stops before its first batch rather than in it)."""
    try:
        import dgl  # noqa: F401
    except (ImportError, OSError) as e:  # OSError: DGL installed but without the C++ library for this torch
        raise ModelInputError(f"{name} takes DGL blocks, but DGL cannot be imported here ({e}): "
                              f"{NEEDS_DGL_ENV}") from None


def forward(model: torch.nn.Module, batch: MiniBatch, model_input: ModelInput) -> torch.Tensor:
    """The logits of the batch's seeds, float32 [batch_size, C], from ``model`` called as its
    contract ``model_input`` (:meth:`ModelInput.of`) says."""
    if model_input is ModelInput.DGL_BLOCKS:
        out = model(batch.to_dgl_blocks(), batch.x)
    elif model_input is ModelInput.PYG_HOPS:
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
