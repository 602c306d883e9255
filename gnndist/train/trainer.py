"""``gnndist.train``: launch partition servers and a Ray Train ``TorchTrainer``, one worker per part."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from gnndist.config import ConfigError, SamplerConfig, TrainConfig, to_dict
from gnndist.partition.format import MANIFEST, read_manifest
from gnndist.runtime.cluster import init_ray
from gnndist.runtime.memory import WORKER_ENV
from gnndist.runtime.partition_server import launch_servers
from gnndist.train import checkpoint
from gnndist.train.loop import model_factory, train_worker
from gnndist.train.metrics import Metric, with_accuracy

RUN_FILE = "run.json"


@dataclass(frozen=True)
class TrainResult:
    """Per-epoch metrics (as written to ``metrics.jsonl``) and where the run wrote its files."""

    history: list[dict]
    out_dir: Path

    @property
    def test_acc(self) -> float:
        return self.history[-1]["test_acc"]


def train(model: Callable[[], torch.nn.Module] | None, partitions: str | Path, *,
          config: TrainConfig | None = None, sampler: SamplerConfig | None = None,
          out_dir: str | Path | None = None, address: str | None = None,
          on_epoch: Callable[[dict], None] | None = None, resume: bool = False,
          loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
          metrics: dict[str, Metric] | None = None) -> TrainResult:
    """Train ``model`` (a factory returning a fresh ``torch.nn.Module`` whose forward takes
    ``(x, edge_index)``; ``None`` for the built-in ``config.model``) on every part of the
    partition directory ``partitions``, one worker per part.

    ``loss_fn(logits, y)``: the training loss of a batch's seeds (default: cross-entropy).
    ``metrics``: extra :class:`~gnndist.train.metrics.Metric` s by name, evaluated with accuracy
    (``acc``) on the validation and test nodes and logged as ``val_<name>`` and ``test_<name>``.
    ``on_epoch(record)`` is called in this process as each epoch's record arrives. ``resume``:
    continue from the latest complete checkpoint in ``out_dir`` (the same seed then ends where an
    uninterrupted run would). On a cluster, ``partitions`` and ``out_dir`` must be paths that
    every node sees (shared storage), as for Ray Train's own storage."""
    config = config or TrainConfig()
    sampler = sampler or SamplerConfig()
    root = str(Path(partitions).resolve())
    manifest = read_manifest(root)
    graph = manifest["graph"]
    builtin = model is None
    if builtin:
        model = model_factory(config, graph["feature_dim"], graph["num_classes"], len(sampler.fanouts))
    out = (Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="gnndist-train-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    resume_epoch = checkpoint.latest_epoch(out) if resume else None
    _keep_metrics_up_to(out / "metrics.jsonl", resume_epoch)
    (out / RUN_FILE).write_text(json.dumps({"partitions": root, "builtin_model": builtin,
                                            "train": to_dict(config), "sampler": to_dict(sampler)}, indent=1))
    init_ray(address=address)
    _check_room(manifest["num_parts"], config.cpus_per_worker, config.gpus_per_worker)
    servers = launch_servers(root, verify=config.verify_partitions, timeout_s=sampler.timeout_s)
    try:
        trainer = TorchTrainer(
            train_worker,
            train_loop_config={"root": root, "servers": servers, "server_nodes": servers.nodes, "sampler": sampler,
                               "train": config, "model_factory": model, "loss_fn": loss_fn,
                               "metrics": with_accuracy(metrics), "out_dir": str(out), "resume_epoch": resume_epoch,
                               "partition_sha": partition_sha(root)},
            # SPREAD: on a cluster, one worker per node where it can, beside the part's server.
            # use_gpu makes Ray Train pick NCCL (gloo otherwise) and give each worker its GPU.
            scaling_config=ScalingConfig(num_workers=manifest["num_parts"], placement_strategy="SPREAD",
                                         use_gpu=config.gpus_per_worker > 0, resources_per_worker=_resources(config)),
            # WORKER_ENV: each step allocates its batch and activations afresh, in threads of their own.
            run_config=RunConfig(storage_path=str(out / "ray"), name="train",
                                 worker_runtime_env={"env_vars": WORKER_ENV}),
        )
        with TensorBoardLog(out / "tensorboard") as tensorboard:
            def report(record: dict) -> None:
                tensorboard.write(record)
                if on_epoch is not None:
                    on_epoch(record)

            _fit_reporting(trainer, out / "metrics.jsonl", report)
    finally:
        servers.kill()
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return TrainResult(history, out)


def _resources(config: TrainConfig) -> dict[str, float]:
    """What each worker reserves from Ray."""
    if config.gpus_per_worker > 0:
        return {"CPU": config.cpus_per_worker, "GPU": config.gpus_per_worker}
    return {"CPU": config.cpus_per_worker}


def _check_room(workers: int, cpus_per_worker: float, gpus_per_worker: float) -> None:
    """Refuse, rather than wait forever for, workers the cluster has no CPUs or GPUs for."""
    import ray

    resources = ray.cluster_resources()
    for kind, each in (("CPU", cpus_per_worker), ("GPU", gpus_per_worker)):
        have = resources.get(kind, 0.0)
        if workers * each > have:
            fix = (f"lower train.{kind.lower()}s_per_worker (e.g. {have / workers:g})" if have
                   else "set train.gpus_per_worker to 0 to train on CPU")
            raise ConfigError(f"{workers} workers x {each:g} {kind}s need {workers * each:g} {kind}s but the Ray "
                              f"cluster has {have:g}: {fix}, use fewer parts, or add nodes")


def partition_sha(root: str | Path) -> str:
    """The identity a checkpoint records of the partition it was trained on: its manifest's sha256."""
    return hashlib.sha256((Path(root) / MANIFEST).read_bytes()).hexdigest()


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
            elif key != "epoch":
                self.writer.add_scalar(key, value, record["epoch"])
        self.writer.flush()

    def __enter__(self) -> TensorBoardLog:
        return self

    def __exit__(self, *exc) -> None:
        if self.writer is not None:
            self.writer.close()


def _keep_metrics_up_to(log: Path, epoch: int | None) -> None:
    """Drop metrics of epochs after ``epoch`` (all of them when ``None``: a fresh run)."""
    lines = log.read_text().splitlines() if log.exists() and epoch is not None else []
    log.write_text("".join(line + "\n" for line in lines if json.loads(line)["epoch"] <= epoch))


def _fit_reporting(trainer: TorchTrainer, log: Path, on_epoch: Callable[[dict], None]) -> None:
    """Run ``trainer.fit()`` while handing each new line of the workers' metrics log to ``on_epoch``."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        fit = pool.submit(trainer.fit)
        seen = 0
        while True:
            finished = fit.done()
            lines = log.read_text().splitlines() if log.exists() else []
            for line in lines[seen:]:
                on_epoch(json.loads(line))
            seen = len(lines)
            if finished:
                fit.result()  # re-raises a failed run's error
                return
            time.sleep(0.2)
