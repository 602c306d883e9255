"""A DDP worker for ``test_parity.py``, run in processes of its own by ``torch.multiprocessing``.

It imports no Ray (only torch and gnndist's Ray-free training pieces), so that the processes
start in a few seconds.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from gnndist.config import TrainConfig
from gnndist.train.models import build_model
from gnndist.train.step import forward, timed_allreduce


def fresh_model(config: TrainConfig, shape: tuple[int, int, int]) -> torch.nn.Module:
    """The built-in model with the initial parameters every worker starts from; ``shape``:
    (feature width, classes, layers)."""
    torch.manual_seed(config.seed)
    return build_model(config, *shape)


def weighted_loss(model: torch.nn.Module, batch, weight: float) -> torch.Tensor:
    """A worker's loss at one step: its batch's mean cross-entropy times its loss weight."""
    return F.cross_entropy(forward(model, batch, True), batch.y[:batch.batch_size]) * weight


def ddp_gradients(rank: int, world: int, store: str, config: TrainConfig, shape: tuple[int, int, int],
                  batches: list[list], weights: list[list[float]], out: str) -> None:
    """Worker ``rank`` of ``world``: for each of its ``batches[rank]``, the all-reduced gradient of
    the batch's mean loss times its loss weight, and of the unweighted mean loss, at the initial
    parameters. Rank 0 saves both (``{"weighted"|"unweighted": [step][parameter] float32}``) to ``out``."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    model = DistributedDataParallel(fresh_model(config, shape))
    model.register_comm_hook({"allreduce": 0.0}, timed_allreduce)  # what train_worker's DDP averages with
    grads = {"weighted": [], "unweighted": []}
    for step, batch in enumerate(batches[rank]):
        for kind, weight in (("weighted", weights[rank][step]), ("unweighted", 1.0)):
            model.zero_grad()
            weighted_loss(model, batch, weight).backward()
            grads[kind].append([p.grad.clone() for p in model.parameters()])
    if rank == 0:
        torch.save(grads, out)
    dist.barrier()
    # Leave without tearing the process group down: freeing DDP's reducer joins gloo's worker
    # thread while this thread holds the GIL, and the work object that thread is freeing needs the
    # GIL (a deadlock seen once in ten runs). The results are saved; nothing else needs cleaning.
    os._exit(0)
