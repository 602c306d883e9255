"""Checkpoints: the run's state once, independent of worker ranks and counts.

Every worker holds the same parameters and optimizer state, and every random stream of the run
(a part's shuffles, kernel seeds, dropout masks) is a function of the run's seeds, the part, the
epoch and the step (:mod:`gnndist.streams`). So a checkpoint is the model, the optimizer and the
epoch, written once by rank 0; a run resumed from it with any number of workers, holding the
parts in any way, takes the steps an uninterrupted run takes.

Layout under the run directory::

    checkpoints/epoch-00004/state.pt   model, optimizer, epoch, partition sha, the shards that trained
    checkpoints/latest.json            {"epoch": 4}: written once state.pt is in place
    checkpoints/best/state.pt          model, epoch, partition sha of the best validation epoch
    checkpoints/best.json              {"epoch": 2, "metric": "val_acc", "val_acc": ..., "test_acc": ...}

Loaded with ``torch.load(weights_only=True)``: a checkpoint can hold tensors and plain values
only, never code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, or belongs to another partition or model."""


def state_file(out_dir: Path, epoch: int) -> Path:
    return out_dir / "checkpoints" / f"epoch-{epoch:05d}" / "state.pt"


def save(out_dir: Path, epoch: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer, partition_sha: str,
         shards: list[list[int]], adapt: dict | None = None) -> None:
    """Write the run's state after ``epoch`` (atomically: temporary file, then rename), and mark it
    the latest complete checkpoint. ``shards``: the parts each worker held, for the record;
    ``adapt``: what adapting changed and keeps (the batch size, the seeds trained, the
    policies' states; plain values)."""
    path = state_file(out_dir, epoch)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                "partition_sha": partition_sha, "shards": shards, "adapt": adapt}, tmp)
    os.replace(tmp, path)
    mark_complete(out_dir, epoch)


def best_state_file(out_dir: Path) -> Path:
    return out_dir / "checkpoints" / "best" / "state.pt"


def save_best(out_dir: Path, epoch: int, model: torch.nn.Module, partition_sha: str, selected: dict) -> None:
    """Keep the model of ``epoch``, the best validation epoch so far (``selected``: its summary,
    :meth:`gnndist.train.selection.Selection.summary`), in place of the previous best. The model
    alone: a run goes on from its latest checkpoint, never from its best."""
    path = best_state_file(out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "epoch": epoch, "partition_sha": partition_sha}, tmp)
    os.replace(tmp, path)
    _write_json(out_dir / "checkpoints" / "best.json", selected)


def best(out_dir: Path) -> dict | None:
    """The best validation epoch's summary (``{"epoch", "metric", <scores>}``), or ``None`` when
    the run has none yet."""
    path = out_dir / "checkpoints" / "best.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _write_json(path: Path, value: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def mark_complete(out_dir: Path, epoch: int) -> None:
    """Record ``epoch`` as the latest complete checkpoint."""
    _write_json(out_dir / "checkpoints" / "latest.json", {"epoch": epoch})


def latest_epoch(out_dir: Path) -> int | None:
    """The epoch of the latest complete checkpoint, or ``None`` when there is none."""
    path = out_dir / "checkpoints" / "latest.json"
    return json.loads(path.read_text())["epoch"] if path.is_file() else None


def load(out_dir: Path, epoch: int, partition_sha: str | None) -> dict:
    """The state saved after ``epoch``; refuses a checkpoint of another partition
    (``partition_sha=None``: any partition)."""
    path = state_file(out_dir, epoch)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; the checkpoint of epoch {epoch} is incomplete")
    return load_file(path, partition_sha)


def load_file(path: Path, partition_sha: str | None) -> dict:
    """The state in the checkpoint file ``path`` (``state_file`` or ``best_state_file``), refused
    if it was saved for another partition (``partition_sha=None``: any partition)."""
    # On CPU whatever device saved it: evaluation runs on CPU, and a resumed worker's
    # load_state_dict copies the tensors to its own device.
    state = torch.load(path, weights_only=True, map_location="cpu")
    if partition_sha is not None and state["partition_sha"] != partition_sha:
        raise CheckpointError(f"{path}: saved for another partition directory; resume with the partitions "
                              "the run started with, or start a new run directory")
    return state


def state_differences(saved: dict[str, torch.Tensor], model: dict[str, torch.Tensor], most: int = 4) -> list[str]:
    """How the ``state_dict`` ``saved`` in a checkpoint differs from a model's, by parameter name
    and shape (at most ``most`` lines, then a count)."""
    lines = []
    for name, tensor in model.items():  # in the model's own order
        if name not in saved:
            lines.append(f"parameter {name} of this model is not in the checkpoint")
        elif saved[name].shape != tensor.shape:
            lines.append(f"parameter {name}: checkpoint has shape {list(saved[name].shape)}, "
                         f"this model {list(tensor.shape)}")
    lines += [f"parameter {name} is in the checkpoint, not in this model" for name in saved if name not in model]
    return lines if len(lines) <= most else lines[:most] + [f"{len(lines) - most} more parameters differ"]
