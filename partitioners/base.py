"""The partitioner interface: which part owns each node of a graph.

A partitioner maps every node of a :class:`~gnndist.graph.Graph` (global source ids ``0..N-1``)
to a part id in ``[0, num_parts)``. Relabelling, halos and writing happen downstream
(``partitioners.writer``); a partitioner only decides ownership.

Decisions every method shares (and tests pin down):

- ``config.weights`` are relative part capacities: part ``k`` gets about ``weights[k] / sum``
  of the nodes, whatever the method.
- Every part is non-empty when ``N >= num_parts``. A method that leaves a part empty (METIS can,
  on tiny or disconnected graphs) is repaired deterministically: each empty part, in increasing
  order, takes the highest-id node of the currently largest part.
- ``"train"`` in ``config.balance`` on a graph without training nodes has nothing to balance: it
  is dropped with a :class:`UserWarning` (and ``"nodes"`` used if nothing is left), rather than
  refusing a graph that is fine to partition.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod

import numpy as np

from gnndist.config import PartitionConfig
from gnndist.graph import Graph
from gnndist.progress import QuietReporter, Reporter


class PartitionError(ValueError):
    """A graph cannot be partitioned as configured; the message says why and what to do."""


class Partitioner(ABC):
    """Base class: public :meth:`assign` validates, subclasses implement :meth:`_assign`."""

    def __init__(self, config: PartitionConfig):
        self.config = config

    def assign(self, graph: Graph, reporter: Reporter | None = None) -> np.ndarray:
        """Part of every node: int32 [N], indexed by global source id, values in ``[0, num_parts)``.

        Raises :class:`PartitionError` when the graph has fewer nodes than parts or the config
        is inconsistent.
        """
        self._check_request(graph.num_nodes, graph.name)
        parts = self._assign(graph, reporter or QuietReporter())
        return self._finish(parts, graph.num_nodes)

    @abstractmethod
    def _assign(self, graph: Graph, reporter: Reporter) -> np.ndarray:
        """Part of every node, integer [N], global source ids (checked by :meth:`_finish`)."""

    # ------------------------------------------------------------------ shared checks

    def _check_request(self, num_nodes: int, name: str) -> None:
        """Refuse a config or graph size no method can honour (config checks these too, but a
        partitioner may be built from a config that bypassed validation)."""
        p = self.config.num_parts
        if p < 1:
            raise PartitionError(f"cannot make {p} parts: partition.num_parts must be at least 1")
        weights = self.config.weights
        if weights is not None:
            if len(weights) != p:
                raise PartitionError(f"partition.weights has {len(weights)} entries for {p} parts: "
                                     "give one weight per part")
            if not all(w > 0 and np.isfinite(w) for w in weights):
                raise PartitionError(f"partition.weights must all be positive and finite, got {tuple(weights)}")
        if num_nodes < p:
            raise PartitionError(f"graph {name} has {num_nodes} nodes, cannot make {p} parts: "
                                 f"use at most {num_nodes}")

    def _finish(self, parts: np.ndarray, num_nodes: int) -> np.ndarray:
        """Check a method's output and make every part non-empty; returns int32 [N]."""
        p = self.config.num_parts
        parts = np.asarray(parts)
        if parts.shape != (num_nodes,):
            raise PartitionError(f"{type(self).__name__} returned shape {parts.shape} for {num_nodes} nodes")
        if num_nodes and (int(parts.min()) < 0 or int(parts.max()) >= p):
            raise PartitionError(f"{type(self).__name__} returned part ids outside 0..{p - 1}")
        parts = parts.astype(np.int32, copy=False)
        if num_nodes >= p:
            fill_empty_parts(parts, p)
        return parts

    def _balance_targets(self, train_mask: np.ndarray | None, name: str) -> tuple[str, ...]:
        """``config.balance`` minus ``"train"`` when there are no training nodes: silently when no
        mask was given (bool [N] by global id), with a warning when the mask is all false."""
        targets = self.config.balance
        if "train" in targets and (train_mask is None or not train_mask.any()):
            targets = tuple(t for t in targets if t != "train") or ("nodes",)
            if train_mask is not None:
                warnings.warn(f"graph {name} has no training nodes: not balancing 'train' across parts "
                              f"(balancing {', '.join(targets)})", UserWarning, stacklevel=4)
        return targets


def part_targets(config: PartitionConfig, total: int) -> np.ndarray:
    """How much of ``total`` each part should get: int64 [num_parts], summing to ``total``,
    proportional to ``config.part_shares()`` (largest remainders round up, lower part first)."""
    shares = np.asarray(config.part_shares(), dtype=np.float64)
    exact = shares * total
    targets = np.floor(exact).astype(np.int64)
    short = int(total - targets.sum())
    if short > 0:
        # A stable sort on the negated remainder gives ties to the lower part id.
        targets[np.argsort(-(exact - targets), kind="stable")[:short]] += 1
    return targets


def fill_empty_parts(parts: np.ndarray, num_parts: int) -> int:
    """Give each empty part one node, in place; returns how many nodes moved.

    ``parts``: int32 [N] part per global id, N >= ``num_parts``. Each empty part, in increasing
    order, takes the highest-id node of the largest part (lowest id among equals): with N >=
    parts that part holds at least two nodes, so the move never empties it.
    """
    counts = np.bincount(parts, minlength=num_parts)
    moved = 0
    for k in np.flatnonzero(counts == 0):
        donor = int(np.argmax(counts))
        node = np.flatnonzero(parts == donor)[-1]
        parts[node] = k
        counts[donor] -= 1
        counts[k] += 1
        moved += 1
    return moved
