"""The pure-torch pieces of a training step: the per-step loss weights, the forward of a batch,
sums over the workers and DDP's timed all-reduce hook.

No Ray here (``loop.py`` adds Ray Train around them), so a training step can be built and checked
with plain ``torch.distributed`` where Ray is not installed: in tests, or on a GPU machine
(``scripts/gpu_check.py``).
"""

from __future__ import annotations

import inspect
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from gnndist.sampling.batch import MiniBatch


def step_batch_sizes(counts: list[int], batch_size: int, drop_last: bool) -> list[list[int]]:
    """The seeds in each part's batch at each step of an epoch, for parts with ``counts``
    training seeds: as many steps as the part with the most batches has, the others starting
    another pass over their seeds when theirs run out (see ``loop._plan``)."""
    b = batch_size
    passes = [[b] * (n // b) + ([n % b] if n % b and not drop_last else []) for n in counts]
    steps = max((len(p) for p in passes), default=0)
    return [[p[s % len(p)] if p else 0 for s in range(steps)] for p in passes]


def loss_weights(counts: list[int], batch_size: int, drop_last: bool, rank: int) -> list[float]:
    """For each step of an epoch, the weight of worker ``rank``'s mean batch loss: ``world size *
    its seeds / all workers' seeds`` in that step (``counts``: each rank's training seeds). DDP
    averages the workers' gradients, so each seed then counts the same whichever batch it is in,
    as in one process: a part's short last batch (or a part with fewer seeds) would otherwise
    weigh its seeds up to ``batch_size`` times more."""
    sizes = step_batch_sizes(counts, batch_size, drop_last)
    totals = [sum(col) for col in zip(*sizes, strict=True)]
    return [len(counts) * m / t for m, t in zip(sizes[rank], totals, strict=True)]


def trims_layers(model: torch.nn.Module) -> bool:
    """Whether ``model``'s forward takes PyG's per-hop counts (then it computes each layer only
    for the hops later layers need, as PyG's ``BasicGNN`` does)."""
    module = model.module if isinstance(model, DistributedDataParallel) else model
    return "num_sampled_nodes_per_hop" in inspect.signature(module.forward).parameters


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


def timed_allreduce(seconds, bucket):  # unannotated: DDP refuses string annotations on hooks
    """DDP communication hook (``dist.GradBucket`` -> ``Future[Tensor]``): DDP's own averaging
    all-reduce, waited for here so that its time is measured apart from the backward pass it
    would otherwise overlap. ``seconds``: the worker's phase timers (adds to ``"allreduce"``)."""
    start = time.perf_counter()
    buffer = bucket.buffer().div_(dist.get_world_size())
    dist.all_reduce(buffer)
    if buffer.is_cuda:
        torch.cuda.synchronize(buffer.device)
    seconds["allreduce"] += time.perf_counter() - start
    done = torch.futures.Future()
    done.set_result(buffer)
    return done
