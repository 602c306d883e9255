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

from gnndist.config import SamplerConfig, TrainConfig
from gnndist.partition.format import MANIFEST, read_manifest
from gnndist.runtime.cluster import init_ray
from gnndist.runtime.partition_server import launch_servers
from gnndist.train import checkpoint
from gnndist.train.loop import model_factory, train_worker


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
          on_epoch: Callable[[dict], None] | None = None, resume: bool = False) -> TrainResult:
    """Train ``model`` (a factory returning a fresh ``torch.nn.Module`` whose forward takes
    ``(x, edge_index)``; ``None`` for the built-in ``config.model``) on every part of the
    partition directory ``partitions``, one worker per part. ``on_epoch(metrics)`` is called in
    this process as each epoch's metrics arrive. ``resume``: continue from the latest complete
    checkpoint in ``out_dir`` (the same seed then ends where an uninterrupted run would)."""
    config = config or TrainConfig()
    sampler = sampler or SamplerConfig()
    root = str(Path(partitions).resolve())
    manifest = read_manifest(root)
    graph = manifest["graph"]
    if model is None:
        model = model_factory(config, graph["feature_dim"], graph["num_classes"], len(sampler.fanouts))
    out = (Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="gnndist-train-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    resume_epoch = checkpoint.latest_epoch(out) if resume else None
    _keep_metrics_up_to(out / "metrics.jsonl", resume_epoch)
    init_ray(address=address)
    servers = launch_servers(root, timeout_s=sampler.timeout_s)
    try:
        trainer = TorchTrainer(
            train_worker,
            train_loop_config={"root": root, "servers": servers, "sampler": sampler, "train": config,
                               "model_factory": model, "out_dir": str(out), "resume_epoch": resume_epoch,
                               "partition_sha": hashlib.sha256((Path(root) / MANIFEST).read_bytes()).hexdigest()},
            scaling_config=ScalingConfig(num_workers=manifest["num_parts"],
                                         resources_per_worker={"CPU": config.cpus_per_worker}),
            run_config=RunConfig(storage_path=str(out / "ray"), name="train"),
        )
        _fit_reporting(trainer, out / "metrics.jsonl", on_epoch or (lambda metrics: None))
    finally:
        servers.kill()
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return TrainResult(history, out)


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
