"""Checkpoints: every worker saves its own state (its RNG differs), rank 0 marks the set complete.

Files are named by part, not by worker rank: on a cluster the rank that trains a part depends on
where Ray placed the workers, and a resumed run must give each part back its own state.

Layout under the run directory::

    checkpoints/epoch-00004/part-00000.pt   model, optimizer, epoch, torch RNG, partition sha
    checkpoints/latest.json                 {"epoch": 4}: written only once every rank has saved

Loaded with ``torch.load(weights_only=True)``: a checkpoint can hold tensors and plain values
only, never code.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from gnndist.partition.format import MANIFEST


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, or belongs to another partition or model."""


def partition_sha(root: str | Path) -> str:
    """The identity a checkpoint records of the partition it was trained on: its manifest's sha256."""
    return hashlib.sha256((Path(root) / MANIFEST).read_bytes()).hexdigest()


def part_file(out_dir: Path, epoch: int, part: int) -> Path:
    return out_dir / "checkpoints" / f"epoch-{epoch:05d}" / f"part-{part:05d}.pt"


def save_part(out_dir: Path, epoch: int, part: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
              partition_sha: str, device: torch.device) -> None:
    """Write the state of the worker of ``part`` after ``epoch`` (atomically: temporary file, then
    rename). A worker on a GPU also saves that GPU's RNG state, which its dropout draws from."""
    path = part_file(out_dir, epoch, part)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
             "torch_rng": torch.get_rng_state(), "partition_sha": partition_sha}
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    torch.save(state, tmp)
    os.replace(tmp, path)


def mark_complete(out_dir: Path, epoch: int) -> None:
    """Record ``epoch`` as the latest complete checkpoint (call after every rank has saved)."""
    tmp = out_dir / "checkpoints" / "latest.json.tmp"
    tmp.write_text(json.dumps({"epoch": epoch}))
    os.replace(tmp, out_dir / "checkpoints" / "latest.json")


def latest_epoch(out_dir: Path) -> int | None:
    """The epoch of the latest complete checkpoint, or ``None`` when there is none."""
    path = out_dir / "checkpoints" / "latest.json"
    return json.loads(path.read_text())["epoch"] if path.is_file() else None


def load_part(out_dir: Path, epoch: int, part: int, partition_sha: str | None) -> dict:
    """The state of the worker of ``part`` saved after ``epoch``; refuses a checkpoint of another
    partition (``partition_sha=None``: any partition)."""
    path = part_file(out_dir, epoch, part)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; the checkpoint of epoch {epoch} is incomplete "
                              "(was the number of parts changed?)")
    # On CPU whatever device saved it: evaluation runs on CPU, and a resumed worker's
    # load_state_dict copies the tensors to its own device.
    state = torch.load(path, weights_only=True, map_location="cpu")
    if partition_sha is not None and state["partition_sha"] != partition_sha:
        raise CheckpointError(f"{path}: saved for another partition directory; resume with the partitions "
                              "the run started with, or start a new run directory")
    return state


def missing_parts(out_dir: Path, epoch: int, num_parts: int) -> list[str]:
    """What is missing of the checkpoint of ``epoch`` for ``num_parts`` parts (empty: nothing)."""
    missing = [part_file(out_dir, epoch, p) for p in range(num_parts) if not part_file(out_dir, epoch, p).is_file()]
    return [f"{missing[0]} is missing ({len(missing)} of {num_parts} parts' files are): the checkpoint of epoch "
            f"{epoch} is incomplete"] if missing else []


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
