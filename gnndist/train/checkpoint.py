"""Checkpoints: every worker saves its own state (its RNG differs), rank 0 marks the set complete.

Layout under the run directory::

    checkpoints/epoch-00004/rank-00000.pt   model, optimizer, epoch, torch RNG, partition sha
    checkpoints/latest.json                 {"epoch": 4}: written only once every rank has saved

Loaded with ``torch.load(weights_only=True)``: a checkpoint can hold tensors and plain values
only, never code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, or belongs to another partition."""


def _rank_file(out_dir: Path, epoch: int, rank: int) -> Path:
    return out_dir / "checkpoints" / f"epoch-{epoch:05d}" / f"rank-{rank:05d}.pt"


def save_rank(out_dir: Path, epoch: int, rank: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
              partition_sha: str) -> None:
    """Write this worker's state after ``epoch`` (atomically: temporary file, then rename)."""
    path = _rank_file(out_dir, epoch, rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                "torch_rng": torch.get_rng_state(), "partition_sha": partition_sha}, tmp)
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


def load_rank(out_dir: Path, epoch: int, rank: int, partition_sha: str) -> dict:
    """This worker's state saved after ``epoch``; refuses a checkpoint of another partition."""
    path = _rank_file(out_dir, epoch, rank)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; the checkpoint of epoch {epoch} is incomplete "
                              "(was the number of parts changed?)")
    state = torch.load(path, weights_only=True)
    if state["partition_sha"] != partition_sha:
        raise CheckpointError(f"{path}: saved for another partition directory; resume with the partitions "
                              "the run started with, or start a new run directory")
    return state
