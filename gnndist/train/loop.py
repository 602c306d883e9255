"""What each Ray Train worker runs: one worker per part, DDP over gloo (CPU) or NCCL (GPU).

Every worker takes the same number of steps per epoch, agreed up front with an all-reduce of
the parts' batch counts: a part that runs out of batches starts a fresh pass over its seeds, and
a part with no training seeds still joins every all-reduce with a zero-gradient step, so no
worker ever waits alone in a collective.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
import torch.nn.functional as F

from gnndist.config import SamplerConfig, TrainConfig
from gnndist.runtime.loader import DistributedNeighborLoader, PartView
from gnndist.sampling.batch import MiniBatch
from gnndist.train import checkpoint


def _agreed_steps(local: int) -> int:
    steps = torch.tensor([local], dtype=torch.int64)
    dist.all_reduce(steps, op=dist.ReduceOp.MAX)
    return int(steps)


def _batches(loader: DistributedNeighborLoader, epoch: int, steps: int) -> Iterator[MiniBatch | None]:
    """``steps`` batches; passes over the seeds repeat (new epoch seeds) if the part runs out."""
    done, rerun = 0, 0
    while done < steps:
        if len(loader) == 0:
            yield None
            done += 1
            continue
        loader.set_epoch(epoch * 1000 + rerun)
        for batch in loader:
            yield batch
            done += 1
            if done == steps:
                return
        rerun += 1


def _evaluate(model: torch.nn.Module, view: PartView, sampler: SamplerConfig, split: str) -> float:
    """Accuracy over ``split`` of all parts: each part counts its own nodes, counts are summed."""
    loader = DistributedNeighborLoader(view, view.seeds(split), SamplerConfig(
        fanouts=sampler.fanouts, batch_size=sampler.batch_size, shuffle=False, prefetch=sampler.prefetch,
        timeout_s=sampler.timeout_s))
    counts = torch.zeros(2, dtype=torch.float64)
    model.eval()
    with torch.no_grad():
        for batch in loader:
            pred = model(batch.x, batch.edge_index)[:batch.batch_size].argmax(-1)
            counts += torch.tensor([(pred == batch.y[:batch.batch_size]).sum().item(), batch.batch_size])
    model.train()
    dist.all_reduce(counts)
    return float(counts[0] / counts[1]) if counts[1] else float("nan")


def train_worker(cfg: dict) -> None:
    """Ray Train entry point. ``cfg``: root, servers, sampler, train, model_factory, out_dir,
    partition_sha, resume_epoch (the checkpoint to continue from, or None)."""
    torch.set_num_threads(1)
    sampler: SamplerConfig = cfg["sampler"]
    config: TrainConfig = cfg["train"]
    rank = ray.train.get_context().get_world_rank()
    view = PartView.open(cfg["root"], rank, cfg["servers"], sampler)
    loader = DistributedNeighborLoader(view, view.seeds("train"), sampler)
    torch.manual_seed(config.seed)  # the same initial parameters everywhere (DDP also broadcasts rank 0's)
    model = ray.train.torch.prepare_model(cfg["model_factory"]())
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = _agreed_steps(len(loader))
    out_dir = Path(cfg["out_dir"])
    module = model.module if hasattr(model, "module") else model
    start = 0
    if cfg["resume_epoch"] is not None:
        state = checkpoint.load_rank(out_dir, cfg["resume_epoch"], rank, cfg["partition_sha"])
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        start = state["epoch"] + 1
    log = out_dir / "metrics.jsonl"
    for epoch in range(start, config.epochs):
        total = torch.zeros(2, dtype=torch.float64)
        for batch in _batches(loader, epoch, steps):
            optimizer.zero_grad()
            if batch is None:  # no seeds here: a zero loss still joins the gradient all-reduce
                loss = sum(p.sum() for p in model.parameters()) * 0.0
            else:
                out = model(batch.x, batch.edge_index)[:batch.batch_size]
                loss = F.cross_entropy(out, batch.y[:batch.batch_size])
                total += torch.tensor([loss.item() * batch.batch_size, batch.batch_size])
            loss.backward()
            optimizer.step()
        dist.all_reduce(total)
        metrics = {"epoch": epoch, "loss": float(total[0] / max(total[1], 1)), "steps": steps}
        if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
            metrics["val_acc"] = _evaluate(model, view, sampler, "val")
        if epoch + 1 == config.epochs:
            metrics["test_acc"] = _evaluate(model, view, sampler, "test")
        if (epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.epochs:
            checkpoint.save_rank(out_dir, epoch, rank, module, optimizer, cfg["partition_sha"])
            dist.barrier()  # every rank has saved: only now is the checkpoint complete
            if rank == 0:
                checkpoint.mark_complete(out_dir, epoch)
        if rank == 0:
            with open(log, "a") as f:
                f.write(json.dumps(metrics) + "\n")
        ray.train.report(metrics)
    _save_parameters(model, Path(cfg["out_dir"]) / f"params-rank{rank:05d}.pt")


def _save_parameters(model: torch.nn.Module, path: Path) -> None:
    module = model.module if hasattr(model, "module") else model
    torch.save({k: v.detach().clone() for k, v in module.state_dict().items()}, path)


def model_factory(config: TrainConfig, in_channels: int, out_channels: int, num_layers: int) -> Callable:
    """A picklable factory for a built-in model, built on each worker."""
    from gnndist.train.models import build_model

    def factory() -> torch.nn.Module:
        return build_model(config, in_channels, out_channels, num_layers)

    return factory

