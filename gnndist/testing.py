"""Tiny seeded graphs and a parameter-saving hook, for gnndist's tests and users' own tests of their pipelines."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from gnndist.graph import Graph
from gnndist.train.hooks import Hooks


def random_graph(num_nodes: int, num_edges: int, *, seed: int = 0, feature_dim: int = 3, num_classes: int = 3,
                 name: str = "random") -> Graph:
    """A seeded directed random graph (uniform endpoints) with gaussian float32 features, uniform
    labels and a random 50/25/25 train/val/test split. Duplicates merge and self-loops drop, so
    ``num_edges`` is an upper bound."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, num_nodes, num_edges)
    dst = rng.integers(0, num_nodes, num_edges)
    order = rng.permutation(num_nodes)
    masks = [np.zeros(num_nodes, dtype=bool) for _ in range(3)]
    for mask, (lo, hi) in zip(masks, ((0, num_nodes // 2), (num_nodes // 2, 3 * num_nodes // 4),
                                      (3 * num_nodes // 4, num_nodes)), strict=True):
        mask[order[lo:hi]] = True
    return Graph.from_edges(src, dst, num_nodes=num_nodes, x=rng.normal(size=(num_nodes, feature_dim)),
                            y=rng.integers(0, num_classes, num_nodes), num_classes=num_classes,
                            train_mask=masks[0], val_mask=masks[1], test_mask=masks[2], name=name,
                            origin=f"<{name}>")


class SaveParameters(Hooks):
    """A hook for tests of training runs: after the last epoch each worker saves its parameters to
    ``{folder}/params-rank{rank:05d}.pt`` (CPU tensors, ``torch.load(weights_only=True)``), so a
    test can check that every worker ends with the same ones, or compare runs."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = str(folder)

    def after_training(self, worker) -> None:
        import torch

        path = Path(self.folder) / f"params-rank{worker.rank:05d}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu().clone() for k, v in worker.model.state_dict().items()}, path)


class FirstSteps(Hooks):
    """A hook for benchmarks of recovery and resizing: each worker process writes the wall time of
    its first training step, its epoch and the number of workers to ``{folder}/step-<pid>``
    (read back with :func:`first_steps`)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = str(folder)
        self.seen = False

    def before_step(self, worker) -> None:
        if not self.seen:
            self.seen = True
            (Path(self.folder) / f"step-{os.getpid()}").write_text(f"{time.time()!r} {worker.epoch} {worker.world}")


def first_steps(folder: str | Path) -> list[tuple[float, int, int]]:
    """``(wall time, epoch, workers)`` of each first step :class:`FirstSteps` wrote to ``folder``."""
    return [(float(t), int(e), int(w)) for t, e, w in (f.read_text().split() for f in Path(folder).glob("step-*"))]


def saved_parameters(folder: str | Path, rank: int = 0) -> dict:
    """What :class:`SaveParameters` saved for ``rank``."""
    import torch

    return torch.load(Path(folder) / f"params-rank{rank:05d}.pt", weights_only=True)
