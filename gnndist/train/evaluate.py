"""``gnndist.evaluate``: the metrics of a saved checkpoint over every part of its partition.

Each part is evaluated by a Ray task beside the partition servers (sampling and halo exchange as
in training); the parts' metric sums are added up, so the result is exact over all nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import ray
import torch

from gnndist.config import ConfigError, SamplerConfig, TrainConfig, from_dict
from gnndist.partition.format import partition_sha, read_manifest
from gnndist.runtime.cluster import init_ray
from gnndist.runtime.loader import PartView
from gnndist.runtime.partition_server import ServerGroup, launch_servers
from gnndist.train import checkpoint
from gnndist.train.checkpoint import CheckpointError
from gnndist.train.loop import metric_sums, model_factory
from gnndist.train.metrics import Metric, with_accuracy
from gnndist.train.rundir import RUN_FILE, read_run_info
from gnndist.train.step import ModelInput


def _run_and_state(path: Path, latest: bool) -> tuple[Path, Path]:
    """The run directory and checkpoint file ``path`` names: a run directory (its best validation
    epoch's model, or with ``latest`` its latest complete checkpoint; the latest too for a run
    that kept no best, as runs before gnndist kept one), its ``checkpoints/best``, or one of its
    ``checkpoints/epoch-NNNNN`` directories."""
    if path.name == "best" and path.parent.name == "checkpoints":
        run = path.parents[1]
        if checkpoint.best(run) is None or not checkpoint.best_state_file(run).is_file():
            raise CheckpointError(f"{path}: the run has no best checkpoint yet (it keeps one from its first "
                                  "validation on)")
        return run, checkpoint.best_state_file(run)
    if (path / RUN_FILE).is_file() and not latest and checkpoint.best_state_file(path).is_file():
        return path, checkpoint.best_state_file(path)
    run, epoch = _run_and_epoch(path)
    return run, checkpoint.state_file(run, epoch)


def _run_and_epoch(path: Path) -> tuple[Path, int]:
    """The run directory and checkpoint epoch ``path`` names: a run directory (its latest complete
    checkpoint) or one of its ``checkpoints/epoch-NNNNN`` directories."""
    if path.name.startswith("epoch-") and path.parent.name == "checkpoints":
        run = path.parents[1]
        try:
            epoch = int(path.name.removeprefix("epoch-"))
        except ValueError:
            raise CheckpointError(f"{path}: not a checkpoint directory (expected checkpoints/epoch-NNNNN)") from None
        latest = checkpoint.latest_epoch(run)
        # Complete once marked: the marker only moves forward once a checkpoint is in place.
        if latest is None or epoch > latest or not checkpoint.state_file(run, epoch).is_file():
            raise CheckpointError(f"{path}: no complete checkpoint here")
        return run, epoch
    if not (path / RUN_FILE).is_file():
        raise CheckpointError(f"{path}: neither a training run directory (no {RUN_FILE}) nor a "
                              "checkpoints/epoch-NNNNN directory of one")
    epoch = checkpoint.latest_epoch(path)
    if epoch is None:
        raise CheckpointError(f"{path}: the run has no complete checkpoint yet")
    return path, epoch


def _part_sums(root: str, part: int, servers: ServerGroup, sampler: SamplerConfig, factory: Callable,
               state: dict, splits: tuple[str, ...], metrics: dict[str, Metric]) -> dict:
    torch.set_num_threads(1)
    # No remote-feature cache: in one pass over the nodes, filling it would fetch the rows that it
    # then serves once at most.
    view = PartView.open(root, part, servers, replace(sampler, cache_mb=None, cache_fraction=None))
    model = factory()
    model.load_state_dict(state)
    model_input = ModelInput.of(model)
    return {split: metric_sums(model, model_input, view, sampler, split, metrics, torch.device("cpu"))
            for split in splits}


def evaluate(model: Callable[[], torch.nn.Module] | None, checkpoint_path: str | Path, *,
             partitions: str | Path | None = None, splits: tuple[str, ...] = ("val", "test"),
             metrics: dict[str, Metric] | None = None, address: str | None = None,
             verify_partitions: bool = True, latest: bool = False) -> dict[str, float]:
    """``{"epoch": N, "<split>_<metric>": value}`` of the model saved at ``checkpoint_path``: a run
    directory (the model of its best validation epoch; with ``latest``, its latest complete
    checkpoint), ``<run>/checkpoints/best`` or ``<run>/checkpoints/epoch-NNNNN``.

    ``model``: the factory the run trained (``None`` for a run of a built-in model). ``partitions``:
    where the run's partition directory is now (default: where it was); it must be the same
    partition. ``metrics``: extra metrics besides accuracy (``acc``). ``verify_partitions``: as
    ``TrainConfig.verify_partitions``, the servers check the files' sha256 before evaluating.
    """
    unknown = sorted(set(splits) - {"train", "val", "test"})
    if unknown:
        raise ConfigError(f"unknown split(s) {unknown}: choose from train, val, test")
    run, state_path = _run_and_state(Path(checkpoint_path).resolve(), latest)
    info = read_run_info(run)  # refuses a run.json gnndist did not write
    root = str(Path(partitions).resolve()) if partitions is not None else info["partitions"]
    manifest = read_manifest(root)
    sampler = from_dict(SamplerConfig, info["sampler"])
    if model is None:
        if not info["builtin_model"]:
            raise CheckpointError(f"{run}: this run trained a custom model; evaluate it from Python with "
                                  "gnndist.evaluate(model_factory, checkpoint)")
        graph = manifest["graph"]
        model = model_factory(from_dict(TrainConfig, info["train"]), graph["feature_dim"], graph["num_classes"],
                              len(sampler.fanouts))
    saved = checkpoint.load_file(state_path, partition_sha(root))
    state = saved["model"]
    metrics = with_accuracy(metrics)
    init_ray(address=address)
    servers = launch_servers(root, verify=verify_partitions, timeout_s=sampler.timeout_s)
    try:
        task = ray.remote(num_cpus=1)(_part_sums)
        state_ref = ray.put(state)
        parts = ray.get([task.remote(root, p, servers, sampler, model, state_ref, splits, metrics)
                         for p in range(manifest["num_parts"])])
    finally:
        servers.kill()
    values = {"epoch": saved["epoch"]}
    for split in splits:
        for name, metric in metrics.items():
            values[f"{split}_{name}"] = metric.value(sum(p[split][name] for p in parts))
    return values
