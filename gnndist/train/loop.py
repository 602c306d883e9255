"""What each Ray Train worker runs: a shard of the partition's parts, data parallel with the others.

A partition has K parts and the run W <= K workers; each worker holds a shard of parts
(:func:`gnndist.train.schedule.assign_shards`) and, at every step, trains on one batch of each of
them: a forward and backward pass per part, its mean loss weighted by its share of the step's
seeds (:class:`~gnndist.train.schedule.Schedule`), the gradients accumulating in place. Then one
all-reduce sums the workers' gradients, and every worker takes the same optimizer step. So the
step's gradient is the mean loss's over all K parts' batches whatever W is, each part's batches
and dropout masks are streams of (seed, part, epoch, step), and the trajectory depends on the
partition and the seeds only: W changes where the sums are taken (their float rounding), nothing
else. Every worker takes the same steps (the schedule is known to all), so none waits alone in a
collective, and a worker whose parts have no seeds in a step still joins its all-reduce.

A policy may give the workers per-worker shares finer than whole parts: a part at a shards'
boundary is then split, each step's batch of it cut into two pieces trained by the neighbouring
workers (:class:`~gnndist.train.schedule.Piece`), each weighted by its own seeds: the step's
gradient is still the mean over all its seeds, but the trajectory then depends on the shares.

The gradients are all-reduced here rather than by DDP's reducer: a worker makes several backward
passes per step, and may make none (no seeds of its parts in a step), while DDP reduces only after
a backward through a forward of its own, so the others would wait for it forever.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
import torch.nn.functional as F

from gnndist import streams
from gnndist.adapt.monitors import NoiseScale, PartVariance
from gnndist.adapt.policy import Decision, Settings
from gnndist.adapt.runner import Adapter
from gnndist.config import NOISE_EVERY, ConfigError, SamplerConfig, TrainConfig
from gnndist.partition.format import read_manifest
from gnndist.runtime.cluster import worker_room
from gnndist.runtime.loader import DistributedNeighborLoader, PartView, prefetched
from gnndist.runtime.partition_server import ServerGroup
from gnndist.runtime.store import LocalPart
from gnndist.sampling.batch import MiniBatch
from gnndist.train import checkpoint
from gnndist.train.device import pinned, staged
from gnndist.train.hooks import Hooks
from gnndist.train.metrics import Metric
from gnndist.train.rundir import METRICS_FILE, keep_metrics_up_to
from gnndist.train.schedule import Piece, Schedule, assign_shards, shard_seeds, split_shards, whole_shards
from gnndist.train.selection import Selection
from gnndist.train.step import (
    ModelInput,
    all_reduce_gradients,
    all_reduce_sum,
    average_model,
    flat_gradient,
    forward,
    warmup_factor,
    warmup_length,
)

PHASES = ("sample", "fetch", "wait", "forward_backward", "allreduce")


def place_shards(worker_nodes: list[str], shard_nodes: list[str]) -> list[int]:
    """The shard each worker (by rank) trains: where it can, a shard whose servers share its node.

    Shards go in order to the lowest-ranked free worker on their servers' node, the rest to the
    lowest-ranked free workers anywhere; on one node this is shard = rank.
    """
    free = list(range(len(worker_nodes)))
    shard_of = [-1] * len(worker_nodes)
    unplaced = []
    for shard, node in enumerate(shard_nodes):
        local = [r for r in free if worker_nodes[r] == node]
        if local:
            shard_of[local[0]] = shard
            free.remove(local[0])
        else:
            unplaced.append(shard)
    for shard, rank in zip(unplaced, free, strict=True):
        shard_of[rank] = shard
    return shard_of


@dataclass
class Worker:
    """One worker's state for a run: its shard, its loaders and the model."""

    rank: int
    world: int
    pieces: list[Piece]  # what it trains of each part of its shard (whole parts unless shares split them)
    placement: Placement
    views: list[PartView]
    loaders: list[DistributedNeighborLoader]
    schedule: Schedule
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    config: TrainConfig
    sampler: SamplerConfig
    loss_fn: Callable
    metrics: dict[str, Metric]
    hooks: list[Hooks]
    model_input: ModelInput  # how the model takes a batch, picked once when it is built
    adapter: Adapter
    noise: NoiseScale | None  # the gradient noise scale, where it is measured
    variance: PartVariance | None  # the parts' gradient variance, measured on the same steps
    monitor_every: int  # steps between its measurements (0: never)
    selection: Selection  # the best validation epoch so far
    workers_changed: dict | None = None  # how the worker count changed since the checkpoint started from
    epoch: int = 0
    step: int = 0
    seeds_trained: int = 0
    decisions: list[dict] = field(default_factory=list)  # the policies' decisions since the last record
    batch_size: int = 0  # the global batch the next epoch starts with (a policy may change it)
    weights: list[float] | None = None  # the shards' weights the next epoch starts with, if they change
    split: bool = False  # whether those weights split parts between shards (per-worker shares)
    sync_every: int = 1  # steps between model averagings (1: synchronous SGD)
    steps_done: int = 0  # optimizer steps since the run began (local SGD averages every sync_every)
    lr: float = 0.0  # the learning rate (a policy may change it), which the warm-up ramps up to
    warmup: int = 0  # the learning-rate warm-up's optimizer steps
    stopping: bool = False  # a policy made the epoch under way the last
    resize: dict | None = None  # a policy's resize: this worker group ends after the epoch under way
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    @property
    def parts(self) -> list[int]:
        return [piece.part for piece in self.pieces]

    def call(self, hook: str, *args) -> None:
        for h in self.hooks:
            getattr(h, hook)(self, *args)

    def settings(self) -> Settings:
        return Settings(batch_size=self.schedule.batch_size, lr=self.lr,
                        workers=self.world, sync_every=self.sync_every, shards=tuple(map(tuple, self.placement.shards)),
                        part_seeds=tuple(self.schedule.counts),
                        shard_seeds=tuple(shard_seeds(self.schedule.counts, shard) for shard in self.placement.pieces))

    def adapt(self, hook: str) -> None:
        """Run the policies' ``hook`` and apply their decisions here, as every worker does at the
        same boundary (see :mod:`gnndist.adapt.policy`): a learning rate or a way of synchronising
        from the next step, a batch size or a rebalance from the next epoch that starts, a resize
        or a stop at the end of the epoch under way."""
        step = self.step if hook in ("before_step", "after_step") else None
        noise_scale = self.noise.value if self.noise is not None else None
        for decision in self.adapter.run(hook, epoch=self.epoch, step=step, seeds_trained=self.seeds_trained,
                                         settings=self.settings(), noise_scale=noise_scale):
            self.decisions.append(decision.record())
            if decision.refused is not None:
                continue
            if decision.action == "set_lr":
                self.lr = decision.value  # the optimizer's from the next step (_step)
            elif decision.action == "set_batch_size":
                self.batch_size = decision.value
            elif decision.action == "rebalance":
                self.weights, self.split = decision.value["weights"], decision.value["split"]
            elif decision.action == "set_sync":
                if decision.value == 1 and self.sync_every > 1 and self.world > 1:
                    average_model(self.model, self.optimizer)  # synchronous SGD starts from one model
                self.sync_every = decision.value
            elif decision.action == "resize":
                self.resize = {"to": decision.value, "policy": decision.policy, "reason": decision.reason}
            elif decision.action == "stop":
                self.stopping = True

    def refusal(self, decision: Decision) -> str | None:
        """Why this run cannot honour ``decision`` (``None``: it can)."""
        if decision.action == "set_batch_size":
            try:
                Schedule(self.schedule.counts, decision.value, self.schedule.drop_last)
            except ConfigError as e:
                return str(e)
        if decision.action == "resize":
            return self._resize_refusal(decision.value)
        if decision.action == "rebalance" and decision.value["split"]:
            try:
                split_shards(self.schedule.counts, self.world, decision.value["weights"])
            except ConfigError as e:
                return str(e)
        return None

    def _resize_refusal(self, workers: int) -> str | None:
        if self.config.min_workers is not None:
            return "an elastic run's worker count follows the cluster (--workers MIN-MAX); resize needs --workers N"
        if workers == self.world:
            return f"the run has {workers} workers already"
        if workers > len(self.schedule.counts):
            return f"{workers} workers for {len(self.schedule.counts)} parts: a worker trains one part at least"
        room, _ = worker_room(self.config.cpus_per_worker, self.config.gpus_per_worker)
        if workers > room:
            return f"the Ray cluster has room for {room} workers of this run's size"
        return None


def _open_shard(root: str, parts: list[int], servers: ServerGroup, sampler: SamplerConfig,
                run_dir: str | None = None) -> list[PartView]:
    """Views of ``parts``, each reading the others straight from this process's arrays (the
    caches' candidates kept in ``run_dir``, when given)."""
    manifest = read_manifest(root)
    held = {p: LocalPart.load(root, p, manifest) for p in parts}
    return [PartView.open(root, p, servers, sampler, held=held, run_dir=run_dir) for p in parts]


def _setup(cfg: dict) -> tuple[Worker, int]:
    """The worker of this rank, and the epoch to start at."""
    sampler: SamplerConfig = cfg["sampler"]
    config: TrainConfig = cfg["train"]
    # As many torch threads as whole CPUs reserved: the prefetch thread's sampling and fetching
    # run beside them, and more threads than reserved cores would take them from other workers.
    torch.set_num_threads(max(1, int(config.cpus_per_worker)))
    rank, world = dist.get_rank(), dist.get_world_size()
    placement = _place(cfg, rank, world)
    pieces = placement.pieces[placement.shard_of[rank]]
    views = _open_shard(cfg["root"], [piece.part for piece in pieces], placement.servers, sampler, cfg["out_dir"])
    loaders = [DistributedNeighborLoader(view, view.seeds("train"), sampler) for view in views]
    torch.manual_seed(config.seed)  # the same initial parameters everywhere
    model = ray.train.torch.prepare_model(cfg["model_factory"](), parallel_strategy=None)  # on its device
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    device = ray.train.torch.get_device()
    adapter = Adapter(cfg["policies"], rank, world, device, check=lambda d: worker.refusal(d))
    start, changed, state = _restore(cfg, model, optimizer, adapter, rank, world)
    batch_size = state["batch_size"] if state else sampler.batch_size
    counts = tuple(cfg["train_counts"])
    # Fixed at the run's start, of the run as configured: a resumed run keeps it, whatever its
    # epochs or a policy's batch size are now.
    warmup = state["warmup"] if state and "warmup" in state else warmup_length(
        config.warmup_steps, Schedule(counts, sampler.batch_size, sampler.drop_last).steps * config.epochs)
    every = config.monitor_every or (NOISE_EVERY if any(p.reads_monitors for p in cfg["policies"]) else 0)
    noise, variance = (NoiseScale(), PartVariance()) if every else (None, None)
    if noise is not None and state and state.get("noise_scale"):
        noise.load_state_dict(state["noise_scale"])
    if variance is not None and state and state.get("part_variance"):  # absent before it was measured
        variance.load_state_dict(state["part_variance"])
    selection = Selection(config.select, config.select_mode, config.patience)
    if state and state.get("selection"):  # absent from checkpoints written before the best was kept
        selection.load_state_dict(state["selection"])
    # A run that rebalanced goes on balanced so (its weights come back at the first epoch's start).
    weights = state.get("weights") if state else None
    worker = Worker(rank=rank, world=world, pieces=pieces, placement=placement, views=views, loaders=loaders,
                    schedule=Schedule(counts, batch_size, sampler.drop_last),
                    model=model, optimizer=optimizer, device=device, config=config,
                    sampler=sampler, loss_fn=cfg["loss_fn"] or F.cross_entropy, metrics=cfg["metrics"],
                    hooks=list(cfg["hooks"]), model_input=ModelInput.of(model), adapter=adapter, noise=noise,
                    variance=variance, monitor_every=every, selection=selection, workers_changed=changed,
                    seeds_trained=state["seeds_trained"] if state else 0, batch_size=batch_size,
                    sync_every=state.get("sync_every", 1) if state else 1,
                    steps_done=state.get("steps_done", 0) if state else 0,
                    # A checkpoint's optimizer holds the warmed-up rate: the policies' is in its state.
                    lr=state.get("lr", optimizer.param_groups[0]["lr"]) if state else config.lr, warmup=warmup,
                    weights=weights if weights and len(weights) == world else None,
                    split=bool(state.get("split")) if state else False)
    return worker, start


@dataclass
class Placement:
    """Which worker trains which parts: the shards (contiguous pieces of parts, in partition order,
    balanced by ``weights``: whole parts, unless ``split`` gave per-worker shares that split the
    parts at shards' boundaries), the shard of each rank (fixed for the run's start), the ranks'
    nodes and the partition servers."""

    pieces: list[list[Piece]]
    shard_of: list[int]
    nodes: list[str]
    servers: ServerGroup
    weights: tuple[float, ...] | None
    split: bool = False

    @property
    def shards(self) -> list[list[int]]:
        """The parts of each shard (a split part is in two)."""
        return [[piece.part for piece in shard] for shard in self.pieces]

    def piece_ids(self, rank: int) -> list[int]:
        """The places of ``rank``'s pieces among all the shards' pieces, in shard order."""
        shard = self.shard_of[rank]
        start = sum(len(s) for s in self.pieces[:shard])
        return list(range(start, start + len(self.pieces[shard])))

    def write(self, out_dir: Path) -> None:
        rows = []
        for r, s in enumerate(self.shard_of):
            row = {"rank": r, "parts": self.shards[s], "worker_node": self.nodes[r],
                   "server_nodes": [self.servers.nodes[p] for p in self.shards[s]]}
            if not all(piece.whole for piece in self.pieces[s]):
                row["shares"] = [[piece.lo, piece.hi] for piece in self.pieces[s]]
            rows.append(row)
        (out_dir / "placement.json").write_text(json.dumps(rows, indent=1))



def _place(cfg: dict, rank: int, world: int) -> Placement:
    """The placement of ``world`` workers: each rank on a shard whose servers share its node where
    one does; rank 0 writes ``placement.json``."""
    config: TrainConfig = cfg["train"]
    nodes = [None] * world
    dist.all_gather_object(nodes, ray.get_runtime_context().get_node_id())
    # As many shards as there are workers now: with an elastic worker count, Ray Train may have
    # started fewer (or more) than the driver planned for.
    weights = config.worker_weights if config.worker_weights and len(config.worker_weights) == world else None
    shards = assign_shards(cfg["train_counts"], world, weights)
    # Found by name: a server may have been started again elsewhere since the driver launched it.
    servers = cfg["servers"].reattached(cfg["sampler"].timeout_s)
    placement = Placement(whole_shards(shards), place_shards(nodes, [servers.nodes[shard[0]] for shard in shards]),
                          nodes, servers, weights)
    if rank == 0:
        placement.write(Path(cfg["out_dir"]))
    return placement


def _restore(cfg: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer, adapter: Adapter, rank: int,
             world: int) -> tuple[int, dict | None, dict | None]:
    """Load the checkpoint this start goes on from, if any: the one Ray Train restarts the workers
    from after a failure, else the one ``--resume`` asked for. The epoch to start at, how the
    number of workers changed since that checkpoint (``None``: it did not), and the adaptation
    state it saved (the batch size, the seeds trained; ``None`` on a fresh start)."""
    out_dir = Path(cfg["out_dir"])
    restarted = _restart_epoch()
    epoch = cfg["resume_epoch"] if restarted is None else restarted
    if rank == 0:  # the epochs after the checkpoint are trained (and recorded) again
        adapter.history = keep_metrics_up_to(out_dir / METRICS_FILE, epoch)
    if epoch is None:
        return 0, None, None
    state = checkpoint.load(out_dir, epoch, cfg["partition_sha"])
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    adapt = state.get("adapt")  # absent from checkpoints written before policies were
    if adapt is not None:
        adapter.load_state_dict(adapt["policies"])
    before = len(state["shards"])
    why = "restarted by Ray Train" if restarted is not None else cfg.get("resized") or "resumed"
    changed = None if before == world else {"from": before, "to": world, "reason": why}
    return state["epoch"] + 1, changed, adapt


#: The file of the checkpoints reported to Ray Train: a pointer to gnndist's own (``checkpoint.py``).
POINTER = "gnndist-checkpoint.json"


def _restart_epoch() -> int | None:
    """The epoch of the checkpoint Ray Train restarts this worker group from after a worker
    failed (``FailureConfig``), or ``None`` on the run's first start."""
    restored = ray.train.get_checkpoint()
    if restored is None:
        return None
    with restored.as_directory() as folder:
        return json.loads((Path(folder) / POINTER).read_text())["epoch"]


def _report(worker: Worker, record: dict, saved: bool) -> None:
    """Hand the epoch's record (rank 0's) to Ray Train, which the driver shows, and the checkpoint
    just saved, if any, to Ray Train's registry: a pointer to it, so that nothing large is copied.
    Every rank reports (Ray Train's reports are collective)."""
    if not (saved and worker.rank == 0):
        ray.train.report(record if worker.rank == 0 else {})
        return
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / POINTER).write_text(json.dumps({"epoch": worker.epoch}))
        ray.train.report(record, checkpoint=ray.train.Checkpoint.from_directory(folder))


def _rebalance(worker: Worker, root: str, run_dir: str) -> bool:
    """Move parts, or shares of parts, between the workers as ``worker.weights`` say (each rank
    keeps its shard index); whether this worker's pieces changed (its stream then starts again on
    them, and where its parts changed its views open on the new ones)."""
    placement = worker.placement
    placement.weights, placement.split, worker.weights = tuple(worker.weights), worker.split, None
    counts = worker.schedule.counts
    placement.pieces = (split_shards(counts, worker.world, placement.weights) if placement.split
                        else whole_shards(assign_shards(counts, worker.world, placement.weights)))
    if worker.rank == 0:
        placement.write(Path(run_dir))
    pieces = placement.pieces[placement.shard_of[worker.rank]]
    if pieces == worker.pieces:
        return False
    parts, worker.pieces = worker.parts, pieces
    if worker.parts != parts:
        worker.views = _open_shard(root, worker.parts, placement.servers, worker.sampler, run_dir)
        worker.loaders = [DistributedNeighborLoader(view, view.seeds("train"), worker.sampler)
                          for view in worker.views]
    return True


def _batches(worker: Worker, epochs: range) -> Iterator[list[MiniBatch | None]]:
    """Each step's batch of each part of the shard (``None``: no seeds of that part in the step),
    on the worker's device, for every epoch of ``epochs``: one stream, prefetched across epoch
    boundaries (built, and on a GPU pinned, in the prefetch thread) and copied to the device one
    step ahead (:mod:`gnndist.train.device`)."""
    per_part = [loader.stream([(epoch, worker.schedule.spans(piece)) for epoch in epochs], piece.key)
                for loader, piece in zip(worker.loaders, worker.pieces, strict=True)]
    steps = pinned(zip(*per_part, strict=True), worker.device)
    return staged(prefetched(steps, worker.sampler.prefetch), worker.device)


def _step(worker: Worker, batches: list[MiniBatch | None]) -> torch.Tensor:
    """One optimizer step on the shard's ``batches`` (on the worker's device); the sum of the seeds'
    losses and their number (float64 [2], on the device: read once an epoch, so that steps do not
    wait for the device)."""
    model, config = worker.model, worker.config
    worker.optimizer.zero_grad(set_to_none=False)
    for group in worker.optimizer.param_groups:
        group["lr"] = worker.lr * warmup_factor(worker.steps_done, worker.warmup)
    total = torch.zeros(2, dtype=torch.float64, device=worker.device)
    local = worker.sync_every > 1 and worker.world > 1  # local SGD: no gradient all-reduce this step
    monitored = worker.noise is not None and worker.step % worker.monitor_every == 0
    ids = worker.placement.piece_ids(worker.rank)
    # Per piece of the step: its half gap, then its gradient's squared norm (see _monitored_backward).
    figures = torch.zeros(2, sum(map(len, worker.placement.pieces)), dtype=torch.float64, device=worker.device)
    started = time.perf_counter()
    for piece, i, batch in zip(worker.pieces, ids, batches, strict=True):
        if batch is None:
            continue
        # Each part's dropout masks are its own stream, wherever it is trained.
        torch.manual_seed(streams.torch_seed(config.seed, streams.DROPOUT, piece.part, worker.epoch, worker.step,
                                             *piece.key))
        logits, y = forward(model, batch, worker.model_input), batch.y[:batch.batch_size]
        loss = worker.loss_fn(logits, y)
        # The count is added as a number: a tensor made from it on the host would be copied to the
        # GPU, and a blocking copy waits for everything queued before it.
        total[0] += loss.detach().double() * batch.batch_size
        total[1] += batch.batch_size
        weight = float(worker.schedule.weights(piece)[worker.step])
        if monitored:
            figures[:, i] = _monitored_backward(worker, logits, y, loss, weight)
        else:
            (loss * weight).backward()
    worker.seconds["forward_backward"] += time.perf_counter() - started
    worker.call("after_local_gradient")
    if local:
        if monitored:
            # The estimates need the step's gradient, which local SGD does not take: a copy is
            # all-reduced for them (every monitor_every steps), and each worker steps on its own.
            started = time.perf_counter()
            size = sum(p.numel() for p in model.parameters())
            reduced = all_reduce_sum(torch.cat([flat_gradient(model).double(), figures.flatten()]), worker.device)
            worker.seconds["allreduce"] += time.perf_counter() - started
            _measure(worker, *reduced[size:].view_as(figures), float(reduced[:size].square().sum()))
        _local_step(worker)
    else:
        if worker.world > 1:
            started = time.perf_counter()
            # The pieces' figures ride along with the gradients: each piece is trained by one
            # worker, the others add zeros.
            reduced = all_reduce_gradients(model, figures.flatten() if monitored else None)
            figures = figures if reduced is None else reduced.view_as(figures)
            worker.seconds["allreduce"] += time.perf_counter() - started
        if monitored:
            _measure(worker, *figures, float(flat_gradient(model).double().square().sum()))
        worker.optimizer.step()
    worker.steps_done += 1
    if local and worker.steps_done % worker.sync_every == 0:
        started = time.perf_counter()
        average_model(model, worker.optimizer)
        worker.seconds["allreduce"] += time.perf_counter() - started
    return total


def _local_step(worker: Worker) -> None:
    """Local SGD: a step on this worker's own parts' mean gradient (their weighted sum, over their
    share of the step). Where its parts have no seeds in the step, a step on a zero gradient: the
    optimizer's state then stays the same shape as the others', which model averaging needs."""
    share = float(sum(worker.schedule.weights(piece)[worker.step] for piece in worker.pieces))
    if share > 0:
        for p in worker.model.parameters():
            if p.grad is not None:
                p.grad /= share
    worker.optimizer.step()


def _monitored_backward(worker: Worker, logits: torch.Tensor, y: torch.Tensor, loss: torch.Tensor,
                        weight: float) -> torch.Tensor:
    """Backpropagate a part's ``loss`` times ``weight`` (its share of the step) as an unmonitored
    step does, the step's gradients bit for bit, and return the part's two figures (float64 [2]):
    ``|g_a - g_c|^2`` of the mean gradients of its batch's two halves (the first ``b // 2`` seeds,
    in the batch's shuffled order, and the rest), the noise within the part
    (:mod:`gnndist.adapt.monitors`; 0 for a batch of one seed, which has no halves), and
    ``|g_k|^2`` of its whole batch's mean gradient. It costs one more backward pass, of the
    first half's loss."""
    model, size = worker.model, y.numel()
    first = size // 2
    if first:
        trainable = [p for p in model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(worker.loss_fn(logits[:first], y[:first]), trainable, retain_graph=True,
                                    allow_unused=True)
        by_param = {id(p): g for p, g in zip(trainable, grads, strict=True) if g is not None}
        g_first = torch.cat([by_param.get(id(p), torch.zeros_like(p)).reshape(-1)
                             for p in model.parameters()]).double()
    before = flat_gradient(model).double()
    (loss * weight).backward()
    g_part = (flat_gradient(model).double() - before) / weight  # its weighted contribution over its weight
    if not first:
        return torch.stack([torch.zeros((), dtype=torch.float64, device=g_part.device), g_part.square().sum()])
    # The mean loss of the batch is (first * L_a + rest * L_c) / size, and so is its gradient.
    g_rest = (size * g_part - first * g_first) / (size - first)
    return torch.stack([(g_first - g_rest).square().sum(), g_part.square().sum()])


def _measure(worker: Worker, gaps: torch.Tensor, norms: torch.Tensor, big: float) -> None:
    """Add the step to the noise-scale and part-variance estimates from every piece's half gap and
    squared gradient norm (in shard order, summed over the workers, as the step's gradient is) and
    the step's ``big = |G_B|^2``: with whole parts both depend on the parts and not on the workers
    (:mod:`gnndist.adapt.monitors`)."""
    sizes = np.array([worker.schedule.piece_sizes(piece)[worker.step]
                      for shard in worker.placement.pieces for piece in shard])
    trained = np.flatnonzero(sizes > 0)
    if trained.size == 0:
        return
    worker.variance.update(norms.cpu().numpy()[trained].tolist(), (sizes[trained] / sizes.sum()).tolist(), big)
    split = np.flatnonzero(sizes >= 2)  # a batch of one seed has no halves
    if split.size == 0:
        return
    first = sizes[split] // 2
    worker.noise.update(gaps.cpu().numpy()[split].tolist(), first.tolist(), (sizes[split] - first).tolist(), big)


def metric_sums(model: torch.nn.Module, model_input: ModelInput, view: PartView, sampler: SamplerConfig,
                split: str, metrics: dict[str, Metric], device: torch.device) -> dict[str, torch.Tensor]:
    """Each metric's sums over the nodes of ``split`` that this part owns (model in eval mode, on
    ``device``; ``model_input``: its contract, :meth:`ModelInput.of`)."""
    # On a sibling view: the training loader may be prefetching on ``view`` meanwhile.
    loader = DistributedNeighborLoader.for_evaluation(view, split, sampler)
    sums: dict[str, torch.Tensor] = {}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in loader:
            batch = batch.to(device)
            logits = forward(model, batch, model_input)
            for name, metric in metrics.items():
                s = metric.sums(logits, batch.y[:batch.batch_size])
                sums[name] = sums[name] + s if name in sums else s
    model.train(was_training)
    if not sums:  # no nodes of this split here: zero sums of the right shapes
        empty = (torch.empty(0, 1, device=device), torch.empty(0, dtype=torch.int64, device=device))
        sums = {name: metric.sums(*empty) for name, metric in metrics.items()}
    return sums


def _evaluate(worker: Worker, split: str) -> dict[str, float]:
    """``{split}_{name}`` of every metric over all parts: the shard's sums, all-reduced, then the value."""
    metrics = worker.metrics
    # A split part is evaluated once, by the worker of its first piece.
    shard = [metric_sums(worker.model, worker.model_input, view, worker.sampler, split, metrics, worker.device)
             for view, piece in zip(worker.views, worker.pieces, strict=True) if piece.evaluates]
    sums = {name: sum(s[name] for s in shard) for name in metrics}
    flat = all_reduce_sum(torch.cat([sums[name].flatten().to(worker.device) for name in metrics]), worker.device)
    values, offset = {}, 0
    for name, metric in metrics.items():
        n = sums[name].numel()
        values[f"{split}_{name}"] = metric.value(flat[offset:offset + n].view_as(sums[name]))
        offset += n
    return values


def _validate(worker: Worker, record: dict, out_dir: Path, partition_sha: str) -> bool:
    """Validate after the epoch of ``record`` and add the scores to it; where they are the best so
    far, evaluate the test split too and keep the model as the best (rank 0 writes it), and say
    so."""
    scores = _evaluate(worker, "val")
    record.update(scores)
    selection = worker.selection
    best = selection.update(worker.epoch, scores)
    if best:
        test = _evaluate(worker, "test")
        record.update(test)
        selection.add_test(test)
        if worker.rank == 0:
            checkpoint.save_best(out_dir, worker.epoch, worker.model, partition_sha, selection.summary())
    record["best"] = selection.summary()
    return best


def _traffic(worker: Worker) -> np.ndarray:
    """This worker's seconds building batches (sample, fetch), bytes from other parts (through
    their servers, and read from their arrays here) and remote-feature cache hits and misses so
    far, over its shard."""
    return np.array([[loader.seconds["sample"], loader.seconds["fetch"], view.traffic.bytes,
                      view.traffic.same_node_bytes, view.cache.hits, view.cache.misses]
                     for loader, view in zip(worker.loaders, worker.views, strict=True)]).sum(axis=0)


def _train_epoch(worker: Worker, batches: Iterator[list[MiniBatch | None]]) -> dict:
    """The epoch's steps, and its record: the loss, the run's totals and every worker's own figures."""
    worker.seconds.update(dict.fromkeys(PHASES, 0.0))
    before = _traffic(worker)
    total = torch.zeros(2, dtype=torch.float64, device=worker.device)
    started = time.perf_counter()
    step_seeds = worker.schedule.step_seeds()
    for step in range(worker.schedule.steps):
        worker.step = step
        worker.call("before_step")
        worker.adapt("before_step")
        waited = time.perf_counter()
        shard_batches = next(batches)
        worker.seconds["wait"] += time.perf_counter() - waited
        total += _step(worker, shard_batches)
        worker.seeds_trained += int(step_seeds[step])
        worker.call("after_step")
        worker.adapt("after_step")
    epoch_s = time.perf_counter() - started
    sample_s, fetch_s, remote, same_node, hits, misses = _traffic(worker) - before
    seeds = int(sum(worker.schedule.piece_sizes(piece).sum() for piece in worker.pieces))
    mine = {"rank": worker.rank, "shard": worker.placement.shard_of[worker.rank], "parts": worker.parts,
            "seeds": seeds, "seeds_per_s": round(seeds / epoch_s, 1),
            "step_s": round(epoch_s / worker.schedule.steps, 5),
            **{f"{p}_s": round(worker.seconds[p], 4) for p in ("wait", "forward_backward", "allreduce")},
            "sample_s": round(float(sample_s), 4), "fetch_s": round(float(fetch_s), 4),
            "remote_bytes": int(remote), "same_node_bytes": int(same_node),
            "cache_hit_rate": round(float(hits / (hits + misses)), 4) if hits + misses else None}
    if not all(piece.whole for piece in worker.pieces):
        mine["shares"] = [[piece.lo, piece.hi] for piece in worker.pieces]
    workers = [None] * worker.world
    dist.all_gather_object(workers, mine)
    total = all_reduce_sum(total, worker.device)
    return {"epoch": worker.epoch, "loss": float(total[0] / max(total[1], 1)), "steps": worker.schedule.steps,
            "epoch_s": round(max(w["step_s"] for w in workers) * worker.schedule.steps, 4),
            "phases": {p: round(sum(w[f"{p}_s"] for w in workers) / worker.world, 4) for p in PHASES},
            "remote_bytes": sum(w["remote_bytes"] for w in workers),
            "same_node_bytes": sum(w["same_node_bytes"] for w in workers), "workers": workers}


def train_worker(cfg: dict) -> None:
    """Ray Train entry point. ``cfg``: root, servers, train_counts, sampler,
    train, model_factory, loss_fn, metrics, hooks, policies, out_dir, partition_sha, resume_epoch
    (the checkpoint to go on from, or None), resized (why the worker group was resized, if it was)."""
    worker, start = _setup(cfg)
    config, out_dir = worker.config, Path(cfg["out_dir"])
    worker.epoch = start
    worker.adapt("before_train")
    batches = None
    for epoch in range(start, config.epochs):
        worker.epoch = epoch
        worker.call("before_epoch")
        worker.adapt("before_epoch")
        if worker.weights is not None and _rebalance(worker, cfg["root"], cfg["out_dir"]) and batches is not None:
            batches.close()  # this worker's parts changed: its stream starts again on the new ones
            batches = None
        if batches is None or worker.batch_size != worker.schedule.batch_size:
            # A new batch size cuts this epoch's steps anew: the batches built ahead with the old
            # one are dropped, and the stream starts again here (batches are functions of the
            # seed, the part, the epoch and the step, so nothing else changes).
            if batches is not None:
                batches.close()
            worker.schedule = Schedule(worker.schedule.counts, worker.batch_size, worker.schedule.drop_last)
            batches = _batches(worker, range(epoch, config.epochs))
        settings = worker.settings()
        record = _train_epoch(worker, batches)
        if worker.sync_every > 1 and worker.world > 1:  # one model for the evaluation and the checkpoint
            average_model(worker.model, worker.optimizer)
        if worker.workers_changed is not None:  # the first epoch after a change records it
            record["workers_changed"], worker.workers_changed = worker.workers_changed, None
        eval_start = time.perf_counter()
        validated = (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs
        tested = validated and _validate(worker, record, out_dir, cfg["partition_sha"])
        if validated and worker.selection.exhausted:
            worker.stopping = True
            record["stopped"] = worker.selection.stop_reason()
        record["settings"] = asdict(settings)
        if worker.noise is not None and worker.noise.steps:  # smoothed so far (the scale: None while |G|^2 <= 0)
            record["noise"] = {"scale": worker.noise.value, "gradient_sq": worker.noise.gradient_sq,
                               "trace_sigma": worker.noise.trace_sigma}
        if worker.variance is not None and worker.variance.steps:
            record["part_variance"] = {"relative": worker.variance.relative, "variance": worker.variance.variance}
        worker.adapter.history.append(record)  # what the policies' after_epoch sees (rank 0's)
        worker.adapt("after_epoch")
        last = epoch + 1 == config.epochs or worker.stopping
        if worker.resize is not None and not last:  # a new worker group goes on from this epoch's checkpoint
            record["resize"] = worker.resize
        if last:
            if not validated:  # a policy stopped the run
                tested = _validate(worker, record, out_dir, cfg["partition_sha"])
            if not tested:  # the last epoch's test scores, where it is not the best
                record.update(_evaluate(worker, "test"))
        record["eval_s"] = round(time.perf_counter() - eval_start, 4)
        if worker.decisions:
            record["decisions"], worker.decisions = worker.decisions, []
        saved = (epoch + 1) % config.checkpoint_every == 0 or last or "resize" in record
        if worker.rank == 0:
            started = time.perf_counter()
            if saved:
                checkpoint.save(out_dir, epoch, worker.model, worker.optimizer, cfg["partition_sha"],
                                worker.placement.shards,
                                adapt={"batch_size": worker.batch_size, "seeds_trained": worker.seeds_trained,
                                       "sync_every": worker.sync_every, "steps_done": worker.steps_done,
                                       "lr": worker.lr, "warmup": worker.warmup,
                                       "weights": list(worker.placement.weights) if worker.placement.weights else None,
                                       "split": worker.placement.split,
                                       "policies": worker.adapter.state_dict(),
                                       "noise_scale": worker.noise.state_dict() if worker.noise else None,
                                       "part_variance": worker.variance.state_dict() if worker.variance else None,
                                       "selection": worker.selection.state_dict()})
            record["checkpoint_s"] = round(time.perf_counter() - started, 4)
            with open(out_dir / METRICS_FILE, "a") as f:
                f.write(json.dumps(record) + "\n")
        _report(worker, record, saved)
        worker.call("after_epoch", record)
        if last or "resize" in record:
            break
    batches.close()
    if "resize" not in record:
        worker.adapt("after_train")
        worker.call("after_training")


def model_factory(config: TrainConfig, in_channels: int, out_channels: int, num_layers: int) -> Callable:
    """A picklable factory for the model the config names, built on each worker: the built-in
    ``config.model``, or ``config.model_module``'s (ConfigError where that cannot be loaded)."""
    if config.model_module is not None:
        from gnndist.train.model_module import module_factory

        return module_factory(config, in_channels, out_channels, num_layers)
    from gnndist.train.models import build_model

    def factory() -> torch.nn.Module:
        return build_model(config, in_channels, out_channels, num_layers)

    return factory
