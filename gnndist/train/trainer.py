"""``gnndist.train``: partition servers and a Ray Train ``TorchTrainer`` whose workers each train a shard of parts."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ray
import torch
from ray.train import FailureConfig, RunConfig, ScalingConfig, UserCallback, WorkerGroupError
from ray.train.torch import TorchTrainer
from ray.util.queue import Queue
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from gnndist.adapt.policy import Policy
from gnndist.config import ConfigError, SamplerConfig, TrainConfig, setting, to_dict
from gnndist.graph import GraphError
from gnndist.partition.format import PartitionFormatError, partition_sha, read_manifest
from gnndist.runtime.cluster import init_ray, shutdown_ray, worker_room
from gnndist.runtime.memory import WORKER_ENV
from gnndist.runtime.partition_server import RemoteError, ServerGroup, launch_servers
from gnndist.train import rundir
from gnndist.train.checkpoint import CheckpointError
from gnndist.train.hooks import Hooks
from gnndist.train.loop import model_factory, train_worker
from gnndist.train.metrics import Metric, with_accuracy
from gnndist.train.process_group import LoopbackTorchConfig
from gnndist.train.report import decision_line
from gnndist.train.schedule import assign_shards
from gnndist.train.step import ModelInputError
from gnndist.train.stopping import RunError, interruptible, resume_hint

# Errors a worker raises for the user to act on (a lost partition server, a part that fails its
# checks, a DGL model without DGL): shown as one line, not as a worker's traceback.
USER_ERRORS = (RemoteError, PartitionFormatError, CheckpointError, GraphError, ConfigError, ModelInputError)


@dataclass(frozen=True)
class TrainResult:
    """Per-epoch metrics (as written to ``metrics.jsonl``) and where the run wrote its files."""

    history: list[dict]
    out_dir: Path

    @property
    def best(self) -> dict:
        """The best validation epoch (``TrainConfig.select``): ``{"epoch", "metric"}`` and its
        validation and test scores (``val_acc``, ``test_acc``, ...)."""
        return self.history[-1]["best"]

    @property
    def test_acc(self) -> float:
        """The test accuracy at the best validation epoch, as the field reports a run (the last
        epoch's where validation gave no score: a split without validation nodes)."""
        return self.best.get("test_acc", self.last_test_acc)

    @property
    def last_test_acc(self) -> float:
        """The test accuracy of the last epoch's model."""
        return self.history[-1]["test_acc"]


def train(model: Callable[[], torch.nn.Module] | None, partitions: str | Path, *,
          config: TrainConfig | None = None, sampler: SamplerConfig | None = None,
          out_dir: str | Path | rundir.RunDir | None = None, address: str | None = None,
          on_epoch: Callable[[dict], None] | None = None, resume: bool = False, overwrite: bool = False,
          loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
          metrics: dict[str, Metric] | None = None, hooks: list[Hooks] = (),
          policies: list[Policy] = ()) -> TrainResult:
    """Train ``model`` (a factory returning a fresh ``torch.nn.Module`` whose forward takes
    ``(x, edge_index)``, with PyG's per-hop counts or not, or DGL's ``(blocks, x)``: see
    :class:`~gnndist.train.step.ModelInput`; ``None`` for the built-in ``config.model``) on every
    part of the partition directory ``partitions``: ``config.workers`` workers (default: one per
    part, as many as the cluster has room for), each training a shard of contiguous parts balanced
    by training seeds (``config.worker_weights``: by capacity). The trajectory depends on the partition and the
    seeds, not on the number of workers (see :mod:`gnndist.train.loop`).

    ``loss_fn(logits, y)``: the training loss of a batch's seeds (default: cross-entropy).
    ``metrics``: extra :class:`~gnndist.train.metrics.Metric` s by name, evaluated with accuracy
    (``acc``) on the validation and test nodes and logged as ``val_<name>`` and ``test_<name>``.
    ``on_epoch(record)`` is called in this process as each epoch's record arrives. ``resume``:
    continue from the latest complete checkpoint in ``out_dir`` (the same seed then ends where an
    uninterrupted run would), after checking that it matches the partition and the model; with no
    checkpoint, a notice and a fresh start. ``overwrite``: replace an earlier run in ``out_dir``.

    ``out_dir`` (default: a new temporary directory) is locked for the whole run, and holds this
    run alone: see :mod:`gnndist.train.rundir`, whose ``RunDirError`` (or a ``CheckpointError``)
    refuses a directory in use, an earlier run without ``resume``/``overwrite``, a mismatched
    checkpoint or files gnndist did not write, before anything is written. ``hooks``: objects of
    :class:`~gnndist.train.hooks.Hooks` that every worker calls at step and epoch boundaries.
    ``policies``: :class:`~gnndist.adapt.policy.Policy` objects that change the run's settings as
    it trains (see :mod:`gnndist.adapt.policy`); their decisions are in each epoch's record. A
    caller that holds the directory already (``rundir.hold``) passes its ``RunDir``. On a cluster, ``partitions`` and
    ``out_dir`` must be paths that every node sees (shared storage), as for Ray Train's own storage.

    Ctrl-C (or SIGTERM, in the main thread) stops the run: the servers are killed and this
    process's Ray connection ends, which is what stops Ray Train's workers (a local instance stops
    with it); then :class:`~gnndist.train.stopping.Interrupted`, a ``KeyboardInterrupt``, is
    raised, and the last complete checkpoint is there to resume from. A worker's error meant for
    the user (a lost partition server, a bad part) is raised as one line, a
    :class:`~gnndist.train.stopping.RunError`."""
    with rundir.hold(out_dir) as run:
        return _train(run, model, partitions, config=config or TrainConfig(), sampler=sampler or SamplerConfig(),
                      address=address, on_epoch=on_epoch, resume=resume, overwrite=overwrite, loss_fn=loss_fn,
                      metrics=metrics, hooks=hooks, policies=policies)


def _train(run: rundir.RunDir, model: Callable[[], torch.nn.Module] | None, partitions: str | Path, *,
           config: TrainConfig, sampler: SamplerConfig, address: str | None, on_epoch: Callable[[dict], None] | None,
           resume: bool, overwrite: bool, loss_fn: Callable | None, metrics: dict[str, Metric] | None,
           hooks: list[Hooks], policies: list[Policy]) -> TrainResult:
    """:func:`train` in the run directory ``run``, held."""
    root = str(Path(partitions).resolve())
    manifest = read_manifest(root)
    graph = manifest["graph"]
    metrics = with_accuracy(metrics)
    if config.select.removeprefix("val_") not in metrics:
        raise ConfigError(f"train.select is {config.select!r}, but validation scores are "
                          f"{[f'val_{name}' for name in metrics]}: choose one of these, or pass the metric "
                          "to train(..., metrics=...)")
    # "builtin_model": the config names the model (a built-in or train.model_module), so that
    # `gnndist evaluate` can build it again; else it is a factory given from Python.
    builtin = model is None
    if builtin:
        model = model_factory(config, graph["feature_dim"], graph["num_classes"], len(sampler.fanouts))
    elif config.model_module is not None:
        raise ConfigError(f"train.model_module is {config.model_module!r}, and train() was given a model factory "
                          "too: give one of them")
    resume_epoch = run.start(resume=resume, overwrite=overwrite, root=root, factory=model,
                             model=rundir.model_description(builtin, config, sampler, graph),
                             record={"partitions": root, "builtin_model": builtin, "train": to_dict(config),
                                     "sampler": to_dict(sampler)})
    out = run.path
    init_ray(address=address)
    counts = [entry["num_train"] for entry in manifest["parts"]]
    shards = assign_shards(counts, _workers(len(counts), config), config.worker_weights)
    failures = config.max_failures if config.max_failures is not None else (3 if address else 0)
    with interruptible():
        try:
            _launch_and_fit(root, shards, counts, out, on_epoch, run.notify, failures, config=config, sampler=sampler,
                            train_loop_config={"model_factory": model, "loss_fn": loss_fn, "hooks": list(hooks),
                                               "policies": list(policies),
                                               "metrics": metrics, "resume_epoch": resume_epoch})
        except KeyboardInterrupt:
            # Ray Train's workers belong to its controller, an actor of this driver's Ray job that
            # fit() keeps to itself: ending the job (disconnecting) is how its workers are stopped.
            # A local instance is stopped with it; a cluster only loses this run's actors.
            shutdown_ray()
            raise
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return TrainResult(history, out)


def _launch_and_fit(root: str, shards: list[list[int]], counts: list[int], out: Path,
                    on_epoch: Callable[[dict], None] | None, notify: Callable[[str], None], max_failures: int, *,
                    config: TrainConfig, sampler: SamplerConfig, train_loop_config: dict) -> None:
    """Start the partition servers of ``root`` (each shard's on one node) and one Ray Train worker
    per shard, report each epoch's record, and stop the servers however the run ends.
    ``counts``: each part's training seeds; ``notify``: told of each failure the run recovers
    from (Ray Train restarts the workers, Ray the servers, up to ``max_failures`` times);
    ``train_loop_config``: the model's part of :func:`loop.train_worker`'s config (factory, loss,
    metrics, hooks, resume epoch)."""
    shard_of = [s for s, shard in enumerate(shards) for _ in shard]
    servers = launch_servers(root, verify=config.verify_partitions, timeout_s=sampler.timeout_s, groups=shard_of,
                             max_restarts=max_failures)
    # On this (the driver's) node: it must outlive any node that leaves the cluster mid-run.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    reports = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
    try:
        with TensorBoardLog(out / "tensorboard") as tensorboard:
            last: list[dict] = []

            def report(record: dict) -> None:
                last[:] = [record]
                tensorboard.write(record)
                if on_epoch is not None:
                    on_epoch(record)

            resized = None
            while True:
                trainer = _trainer(root, servers, counts, out, len(shards), max_failures, reports, config=config,
                                   sampler=sampler, train_loop_config={**train_loop_config, "resized": resized})
                try:
                    _fit_reporting(trainer, reports, report, notify, servers if max_failures else None)
                except WorkerGroupError as e:
                    raise _worker_error(e, out) from e
                if not last or "resize" not in last[0]:
                    return
                # A policy resized the run: a worker group of the new size goes on from the
                # checkpoint the last one saved as it ended (the servers stay up).
                resize = last[0]["resize"]
                shards = assign_shards(counts, resize["to"])
                train_loop_config = {**train_loop_config, "resume_epoch": last[0]["epoch"]}
                resized = f"resized by policy {resize['policy']}: {resize['reason']}"
    finally:
        servers.kill()
        ray.kill(reports.actor)


def _trainer(root: str, servers: ServerGroup, counts: list[int], out: Path, workers: int, max_failures: int,
             reports: Queue, *, config: TrainConfig, sampler: SamplerConfig, train_loop_config: dict) -> TorchTrainer:
    """The Ray Train trainer of ``workers`` workers (for an elastic run, between ``min_workers``
    and that), each running :func:`loop.train_worker`."""
    return TorchTrainer(
        train_worker,
        # The rendezvous on loopback when the run is on this machine alone (process_group.py).
        torch_config=LoopbackTorchConfig(),
        train_loop_config={"root": root, "servers": servers, "train_counts": counts, "sampler": sampler,
                           "train": config, "out_dir": str(out),
                           "partition_sha": partition_sha(root), **train_loop_config},
        # SPREAD: on a cluster, one worker per node where it can, beside its shard's servers.
        # use_gpu makes Ray Train pick NCCL (gloo otherwise) and give each worker its GPU.
        scaling_config=ScalingConfig(num_workers=(config.min_workers, workers) if config.min_workers
                                     else workers, elastic_resize_monitor_interval_s=config.rescale_check_s,
                                     placement_strategy="SPREAD", use_gpu=config.gpus_per_worker > 0,
                                     resources_per_worker=_resources(config)),
        # WORKER_ENV: each step allocates its batch and activations afresh, in threads of their own.
        # A name of its own per worker group: Ray Train's registry then hands a group the checkpoints
        # of its own restarts only (get_checkpoint), never those of the run's earlier groups (a
        # resumed or resized run starts from gnndist's own checkpoint, by its epoch).
        run_config=RunConfig(storage_path=str(out / "ray"), name=f"train-{uuid.uuid4().hex[:8]}",
                             worker_runtime_env={"env_vars": WORKER_ENV},
                             failure_config=FailureConfig(max_failures=max_failures),
                             callbacks=[_Relay(reports)]),
    )


def _resources(config: TrainConfig) -> dict[str, float]:
    """What each worker reserves from Ray."""
    if config.gpus_per_worker > 0:
        return {"CPU": config.cpus_per_worker, "GPU": config.gpus_per_worker}
    return {"CPU": config.cpus_per_worker}


def _workers(num_parts: int, config: TrainConfig) -> int:
    """``config.workers``, or by default one per part, as many as the cluster's CPUs and GPUs hold;
    refused, rather than waited for forever, where the cluster has no room for them."""
    room, needs = worker_room(config.cpus_per_worker, config.gpus_per_worker)
    # An elastic run needs room for its fewest; it grows to the most as the cluster has room.
    workers = config.min_workers or config.workers or min(num_parts, max(room, 1))
    for kind, each, have in needs:
        if workers * each > have:
            share = setting(f"train.{kind.lower()}s_per_worker", f"{have / workers:g}")
            fix = f"give each worker fewer {kind}s ({share})" if have else \
                f"train on CPU ({setting('train.gpus_per_worker', 0)})"
            counted = f"{workers} worker{'s' * (workers != 1)} x {each:g} {kind}s"
            raise ConfigError(f"{counted} need {workers * each:g} {kind}s but the Ray cluster has {have:g}: {fix}, "
                              "use fewer workers (train.workers), or add nodes")
    return config.workers or workers


class TensorBoardLog:
    """Each epoch's numbers as TensorBoard scalars, when ``tensorboardX`` is installed (else nothing)."""

    def __init__(self, log_dir: Path) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            self.writer = None
        else:
            self.writer = SummaryWriter(str(log_dir))

    def write(self, record: dict) -> None:
        if self.writer is None:
            return
        for key, value in record.items():
            if key == "phases":
                for phase, seconds in value.items():
                    self.writer.add_scalar(f"phase_s/{phase}", seconds, record["epoch"])
            elif key == "workers":
                self.writer.add_scalar("workers", len(value), record["epoch"])
                for worker in value:
                    self.writer.add_scalar(f"seeds_per_s/rank_{worker['rank']}", worker["seeds_per_s"],
                                           record["epoch"])
            elif key == "settings":  # what the policies may change: the batch size and learning rate
                for name in ("batch_size", "lr"):
                    self.writer.add_scalar(f"settings/{name}", value[name], record["epoch"])
            elif key == "noise":  # the gradient noise scale and its two smoothed estimates
                for name, v in value.items():
                    if v is not None:
                        self.writer.add_scalar(f"noise/{name}", v, record["epoch"])
            elif key == "decisions":
                for decision in value:
                    self.writer.add_text("decisions", decision_line(decision), record["epoch"])
            elif key != "epoch" and isinstance(value, int | float):  # a change of workers, a resize: on screen
                self.writer.add_scalar(key, value, record["epoch"])
        self.writer.flush()

    def __enter__(self) -> TensorBoardLog:
        return self

    def __exit__(self, *exc) -> None:
        if self.writer is not None:
            self.writer.close()


class _Relay(UserCallback):
    """Runs in Ray Train's controller: hands each report (rank 0's epoch record) and each worker
    failure to the driver, through a queue (``("epoch", record)`` or ``("failure", text)``)."""

    def __init__(self, reports: Queue) -> None:
        self.reports = reports

    def after_report(self, run_context, metrics: list[dict], checkpoint) -> None:
        if metrics and metrics[0]:
            self.reports.put(("epoch", metrics[0]))

    def after_exception(self, run_context, worker_exceptions: dict) -> None:
        failed = "; ".join(f"rank {rank}: {_first_line(e)}" for rank, e in sorted(worker_exceptions.items()))
        self.reports.put(("failure", failed))


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _fit_reporting(trainer: TorchTrainer, reports: Queue, on_epoch: Callable[[dict], None],
                   notify: Callable[[str], None], servers: ServerGroup | None) -> None:
    """Run ``trainer.fit()`` while handing each epoch Ray Train reports to ``on_epoch`` and each
    worker failure to ``notify``, and starting again every one of ``servers`` (``None``: none)
    lost for good.

    ``fit`` runs in a daemon thread, so that an interrupt, which Python raises in this (the
    main) thread, reaches the caller at once: a thread pool's would make the process wait for
    ``fit`` on its way out, every remaining epoch of it."""
    fit: Future = Future()

    def run() -> None:
        try:
            fit.set_result(trainer.fit())
        except BaseException as e:  # handed to the main thread, which re-raises it
            fit.set_exception(e)

    with _controller_polls_every(REPORT_POLL_S):
        threading.Thread(target=run, name="gnndist-fit", daemon=True).start()
        _relay_reports(fit, reports, on_epoch, notify, servers)


#: Seconds between the driver's checks for partition servers lost with their node.
SERVER_CHECK_S = 1.0

#: Seconds between the polls of Ray Train's controller, which takes one report from each worker a
#: poll: at its default of 2 s, every epoch shorter than that waited out the rest in its report.
REPORT_POLL_S = 0.25


@contextmanager
def _controller_polls_every(seconds: float) -> Iterator[None]:
    """Ray Train's controller started meanwhile polls its workers every ``seconds`` (unless the
    user set ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S``): ``fit`` hands that variable to the controller."""
    variable = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
    if variable in os.environ:
        yield
        return
    os.environ[variable] = str(seconds)
    try:
        yield
    finally:
        del os.environ[variable]


def _relay_reports(fit: Future, reports: Queue, on_epoch: Callable[[dict], None], notify: Callable[[str], None],
                   servers: ServerGroup | None) -> None:
    """Hand what arrives in ``reports`` on, and look after ``servers``, until ``fit`` is done,
    then raise its error, if any."""
    checked = time.monotonic()
    while True:
        finished = fit.done()  # every report of a finished fit is in the queue already
        for kind, payload in reports.get_nowait_batch(reports.qsize()):
            if kind == "epoch":
                on_epoch(payload)
            else:
                notify(f"a worker failed ({payload}); Ray Train restarts the workers from the last checkpoint")
        if finished:
            fit.result()  # re-raises a failed run's error
            return
        if servers is not None and time.monotonic() - checked > SERVER_CHECK_S:
            checked = time.monotonic()
            for part in servers.relaunch_lost(timeout_s=0.2):
                notify(f"the partition server of part {part} was lost with its node; started again on "
                       f"node {servers.nodes[part]}")
        wait([fit], timeout=0.2)


def _worker_error(error: WorkerGroupError, out: Path) -> Exception:
    """What to show for a run that a worker stopped: the lowest rank's error meant for the user
    (a partition server lost, a part that fails its checks), as one line that says how to go
    on; any other error (a bug, in a model for one) as Ray Train reports it, traceback and all."""
    for rank, failure in sorted(error.worker_failures.items()):
        if isinstance(failure, USER_ERRORS):
            return RunError(f"the worker of rank {rank} stopped the run: {_first_line(failure)} {resume_hint(out)}")
    return error
