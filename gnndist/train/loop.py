"""What each Ray Train worker runs: one worker per part, torch DDP over gloo (CPU workers).

Every worker takes the same number of steps per epoch, agreed up front from an all-gather of
the parts' training seed counts: a part that runs out of batches starts a fresh pass over its
seeds, and a part with no training seeds still joins every all-reduce with a zero-gradient step,
so no worker ever waits alone in a collective. Each worker's batch loss is weighted by its share
of the step's seeds, so within a step every seed counts the same, as in one process's batch. Over
an epoch that holds only while no part runs out of seeds: a short part re-runs some of its seeds
within the epoch, and those count more.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from gnndist.config import SamplerConfig, TrainConfig
from gnndist.runtime.loader import DistributedNeighborLoader, PartView
from gnndist.train import checkpoint
from gnndist.train.metrics import Metric
from gnndist.train.step import all_reduce_sum, forward, loss_weights, timed_allreduce, trims_layers

PHASES = ("sample", "fetch", "wait", "forward_backward", "allreduce")


def assign_parts(worker_nodes: list[str], server_nodes: list[str]) -> list[int]:
    """The part each worker (by rank) trains: where it can, the part whose server shares its node.

    Parts go in order to the lowest-ranked free worker on their server's node, the rest to the
    lowest-ranked free workers anywhere; on one node this is part = rank.
    """
    free = list(range(len(worker_nodes)))
    part_of = [-1] * len(worker_nodes)
    unplaced = []
    for part, node in enumerate(server_nodes):
        local = [r for r in free if worker_nodes[r] == node]
        if local:
            part_of[local[0]] = part
            free.remove(local[0])
        else:
            unplaced.append(part)
    for part, rank in zip(unplaced, free, strict=True):
        part_of[rank] = part
    return part_of


def _plan(batches_per_pass: int, epochs: range, steps: int) -> Iterator[tuple[int, int]]:
    """``(pass, batches)`` for the loader: ``steps`` batches per epoch, from as many passes over
    the part's seeds as that takes (a short part starts its next pass, with new seeds)."""
    for epoch in epochs:
        left, rerun = steps, 0
        while left:
            take = min(left, batches_per_pass)
            yield epoch * 1000 + rerun, take
            left -= take
            rerun += 1


def metric_sums(model: torch.nn.Module, view: PartView, sampler: SamplerConfig, split: str,
                metrics: dict[str, Metric], device: torch.device) -> dict[str, torch.Tensor]:
    """Each metric's sums over the nodes of ``split`` that this part owns (model in eval mode, on
    ``device``)."""
    # On a sibling view: the training loader may be prefetching on ``view`` meanwhile.
    loader = DistributedNeighborLoader.for_evaluation(view, split, sampler)
    trim = trims_layers(model)
    sums: dict[str, torch.Tensor] = {}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in loader:
            batch = batch.to(device)
            logits = forward(model, batch, trim)
            for name, metric in metrics.items():
                s = metric.sums(logits, batch.y[:batch.batch_size])
                sums[name] = sums[name] + s if name in sums else s
    model.train(was_training)
    if not sums:  # no nodes of this split here: zero sums of the right shapes
        empty = (torch.empty(0, 1, device=device), torch.empty(0, dtype=torch.int64, device=device))
        sums = {name: metric.sums(*empty) for name, metric in metrics.items()}
    return sums


def _evaluate(model: torch.nn.Module, view: PartView, sampler: SamplerConfig, split: str,
              metrics: dict[str, Metric], device: torch.device) -> dict[str, float]:
    """``{split}_{name}`` of every metric over all parts: sums all-reduced, then the value."""
    sums = metric_sums(model, view, sampler, split, metrics, device)
    flat = all_reduce_sum(torch.cat([sums[name].flatten().to(device) for name in metrics]), device)
    values, offset = {}, 0
    for name, metric in metrics.items():
        n = sums[name].numel()
        values[f"{split}_{name}"] = metric.value(flat[offset:offset + n].view_as(sums[name]))
        offset += n
    return values


def _bytes_moved(view: PartView) -> torch.Tensor:
    """This worker's bytes so far from other parts: through their servers, and read from their
    files on this node (``SamplerConfig.same_node_reads``)."""
    return torch.tensor([view.traffic.bytes, view.traffic.same_node_bytes], dtype=torch.int64)


def _phase_means(seconds: dict[str, float], device: torch.device) -> dict[str, float]:
    """Each phase's seconds averaged over the workers."""
    t = all_reduce_sum(torch.tensor([seconds[p] for p in PHASES], dtype=torch.float64), device)
    return {p: round(float(v) / dist.get_world_size(), 4) for p, v in zip(PHASES, t, strict=True)}


def train_worker(cfg: dict) -> None:
    """Ray Train entry point. ``cfg``: root, servers, server_nodes, sampler, train, model_factory,
    loss_fn, metrics, out_dir, partition_sha, resume_epoch (the checkpoint to go on from, or None)."""
    sampler: SamplerConfig = cfg["sampler"]
    config: TrainConfig = cfg["train"]
    # As many torch threads as whole CPUs reserved: the prefetch thread's sampling and fetching
    # run beside them, and more threads than reserved cores would take them from other workers.
    torch.set_num_threads(max(1, int(config.cpus_per_worker)))
    loss_fn: Callable = cfg["loss_fn"] or F.cross_entropy
    metrics: dict[str, Metric] = cfg["metrics"]
    rank = ray.train.get_context().get_world_rank()
    nodes = [None] * dist.get_world_size()
    dist.all_gather_object(nodes, ray.get_runtime_context().get_node_id())
    part_of = assign_parts(nodes, cfg["server_nodes"])
    part = part_of[rank]
    out_dir = Path(cfg["out_dir"])
    if rank == 0:
        (out_dir / "placement.json").write_text(json.dumps(
            [{"rank": r, "part": p, "worker_node": nodes[r], "server_node": cfg["server_nodes"][p]}
             for r, p in enumerate(part_of)], indent=1))
    view = PartView.open(cfg["root"], part, cfg["servers"], sampler)
    loader = DistributedNeighborLoader(view, view.seeds("train"), sampler)
    torch.manual_seed(config.seed)  # the same initial parameters everywhere (DDP also broadcasts rank 0's)
    model = ray.train.torch.prepare_model(cfg["model_factory"]())  # on the worker's GPU, if it has one
    # Then a stream of its own for each part's dropout: with the one seed everywhere, every worker
    # drew the same masks, the seeds of all the step's batches dropped alike, and the step's
    # gradient averaged less noise away than one process's batch of the same seeds does.
    torch.manual_seed(int(np.random.SeedSequence([config.seed, part]).generate_state(1, np.uint64)[0] >> 1))
    device = ray.train.torch.get_device()
    seconds = dict.fromkeys(PHASES, 0.0)
    if isinstance(model, DistributedDataParallel):
        model.register_comm_hook(seconds, timed_allreduce)
    trim = trims_layers(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    counts = [0] * dist.get_world_size()
    dist.all_gather_object(counts, int(loader.seeds.size))
    weights = loss_weights(counts, sampler.batch_size, sampler.drop_last, rank)
    steps = len(weights)
    module = model.module if isinstance(model, DistributedDataParallel) else model
    start = 0
    if cfg["resume_epoch"] is not None:
        state = checkpoint.load_part(out_dir, cfg["resume_epoch"], part, cfg["partition_sha"])
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        start = state["epoch"] + 1
    log = out_dir / "metrics.jsonl"
    # One stream of batches for the whole run, so that prefetching crosses epoch boundaries; a
    # part with no training seeds gets none and steps with a zero loss instead.
    batches = loader.passes(_plan(len(loader), range(start, config.epochs), steps)) if len(loader) else None
    for epoch in range(start, config.epochs):
        total = torch.zeros(2, dtype=torch.float64)
        seconds.update(dict.fromkeys(PHASES, 0.0))
        built, moved = dict(loader.seconds), _bytes_moved(view)
        epoch_start = time.perf_counter()
        for step in range(steps):
            waited = time.perf_counter()
            batch = next(batches).to(device) if batches is not None else None
            stepped = time.perf_counter()
            seconds["wait"] += stepped - waited
            optimizer.zero_grad()
            if batch is None:  # no seeds here: a zero loss still joins the gradient all-reduce
                loss = sum(p.sum() for p in model.parameters()) * 0.0
            else:
                loss = loss_fn(forward(model, batch, trim), batch.y[:batch.batch_size])
                total += torch.tensor([loss.item() * batch.batch_size, batch.batch_size])
                loss = loss * weights[step]
            reduced = seconds["allreduce"]
            loss.backward()
            optimizer.step()
            seconds["forward_backward"] += time.perf_counter() - stepped - (seconds["allreduce"] - reduced)
        epoch_s = time.perf_counter() - epoch_start
        for phase in ("sample", "fetch"):
            seconds[phase] = loader.seconds[phase] - built[phase]
        total = all_reduce_sum(total, device)
        moved = all_reduce_sum(_bytes_moved(view) - moved, device)
        record = {"epoch": epoch, "loss": float(total[0] / max(total[1], 1)), "steps": steps,
                  "epoch_s": round(epoch_s, 4), "phases": _phase_means(seconds, device),
                  "remote_bytes": int(moved[0]), "same_node_bytes": int(moved[1])}
        eval_start = time.perf_counter()
        if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
            record.update(_evaluate(model, view, sampler, "val", metrics, device))
        if epoch + 1 == config.epochs:
            record.update(_evaluate(model, view, sampler, "test", metrics, device))
        record["eval_s"] = round(time.perf_counter() - eval_start, 4)
        if (epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.epochs:
            checkpoint.save_part(out_dir, epoch, part, module, optimizer, cfg["partition_sha"], device)
            dist.barrier()  # every worker has saved: only now is the checkpoint complete
            if rank == 0:
                checkpoint.mark_complete(out_dir, epoch)
        if rank == 0:
            with open(log, "a") as f:
                f.write(json.dumps(record) + "\n")
    _save_parameters(module, out_dir / f"params-rank{rank:05d}.pt")


def _save_parameters(module: torch.nn.Module, path: Path) -> None:
    torch.save({k: v.detach().cpu().clone() for k, v in module.state_dict().items()}, path)


def model_factory(config: TrainConfig, in_channels: int, out_channels: int, num_layers: int) -> Callable:
    """A picklable factory for a built-in model, built on each worker."""
    from gnndist.train.models import build_model

    def factory() -> torch.nn.Module:
        return build_model(config, in_channels, out_channels, num_layers)

    return factory
