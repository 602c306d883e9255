"""Bounded-memory streaming partitioning: Linear Deterministic Greedy (Stanton & Kliot, KDD 2012).

Nodes arrive in id order, each with its in-neighbours (CSC chunks, as
:meth:`Graph.iter_in_edge_chunks` yields them or as a caller reads them from disk). Each node
goes, once and for good, to the part maximising

    score_k = (in-neighbours already in part k) * (1 - size_k / capacity_k)

among parts with room left; equal scores go to the part least loaded relative to its capacity,
then to the lower part id. ``capacity_k = target_k * (1 + config.imbalance)`` where the targets
follow ``config.weights``, so the node balance is guaranteed within the slack. When
``config.balance`` holds ``"train"`` and there are training nodes, training nodes also respect
a training-node capacity per part (a second, equally weighted constraint). ``"edges"`` is not
balanced by this method. The result depends only on the stream, so ``config.seed`` is unused.

The partitioner's own state is O(num_nodes + num_parts): the part of each node (int32) and the
training mask; the edges of one chunk at a time are all that is read. That bound holds for a
caller that streams chunks from disk (``scripts/bench_partition.py``, ``streaming-from-disk``);
``gnndist partition`` loads the whole graph before any method runs, and writing the parts needs it
too, so its peak memory is the graph's.
"""

from __future__ import annotations

from collections.abc import Iterable

import numba
import numpy as np

from gnndist.graph import Graph
from gnndist.progress import QuietReporter, Reporter

from .base import Partitioner, PartitionError, part_targets

#: One chunk of a CSC edge stream: (first node id, int64 [n+1] offsets from 0, int64 [nnz] sources).
Chunk = tuple[int, np.ndarray, np.ndarray]


class StreamingPartitioner(Partitioner):
    """LDG over the graph's in-edges, read ``config.chunk_edges`` edges at a time."""

    def _assign(self, graph: Graph, reporter: Reporter) -> np.ndarray:
        chunks = graph.iter_in_edge_chunks(self.config.chunk_edges)
        return self._stream(graph.num_nodes, chunks, graph.train_mask.numpy(), graph.name, reporter)

    def assign_stream(self, num_nodes: int, chunks: Iterable[Chunk], train_mask: np.ndarray | None = None,
                      *, reporter: Reporter | None = None) -> np.ndarray:
        """Partition a graph read as a stream of CSC chunks; int32 [num_nodes] part per global id.

        ``chunks`` yield ``(first_node, indptr, indices)``: ``indptr`` int64 [n+1] from 0,
        ``indices`` int64 global ids of the in-neighbours of nodes ``first_node ..
        first_node + n - 1``; chunks must follow each other and cover ``0..num_nodes-1``.
        ``train_mask``: bool [num_nodes] by global id, or ``None`` (training nodes not balanced).
        """
        self._check_request(num_nodes, "<stream>")
        parts = self._stream(num_nodes, chunks, train_mask, "<stream>", reporter or QuietReporter())
        return self._finish(parts, num_nodes)

    def _stream(self, num_nodes: int, chunks: Iterable[Chunk], train_mask: np.ndarray | None, name: str,
                reporter: Reporter) -> np.ndarray:
        state = self._initial_state(num_nodes, train_mask, name)
        counts = np.zeros(self.config.num_parts, dtype=np.int64)
        done = 0
        with reporter.step("partition: streaming", total=num_nodes) as step:
            for first, indptr, indices in chunks:
                n = indptr.size - 1
                if first != done or done + n > num_nodes:
                    raise PartitionError(f"{name}: chunks must cover nodes 0..{num_nodes - 1} in order; "
                                         f"expected a chunk starting at node {done}, got nodes {first}.."
                                         f"{first + n - 1}")
                bad = _ldg_chunk(first, np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64),
                                 *state, counts)
                if bad >= 0:
                    raise PartitionError(f"{name}: chunk at node {first} names node {int(indices[bad])}, "
                                         f"outside 0..{num_nodes - 1}")
                done += n
                step.advance(n)
        if done != num_nodes:
            raise PartitionError(f"{name}: the chunks covered {done} of {num_nodes} nodes")
        return state[0]

    def _initial_state(self, num_nodes: int, train_mask: np.ndarray | None, name: str) -> tuple:
        """(parts int32 [N] = -1, sizes, caps, train bool [N] or [0], train sizes, train caps)."""
        caps = self._capacities(num_nodes)
        train = np.zeros(0, dtype=np.bool_)
        if "train" in self._balance_targets(train_mask, name):
            train = np.ascontiguousarray(train_mask, dtype=np.bool_)
            if train.shape != (num_nodes,):
                raise PartitionError(f"{name}: train_mask has shape {train.shape}, expected ({num_nodes},)")
        tcaps = self._capacities(int(train.sum()))
        p = self.config.num_parts
        return (np.full(num_nodes, -1, dtype=np.int32), np.zeros(p), caps, train, np.zeros(p), tcaps)

    def _capacities(self, total: int) -> np.ndarray:
        """float64 [num_parts]: each part's share of ``total`` plus the allowed imbalance (at least 1)."""
        return np.maximum(part_targets(self.config, total) * (1.0 + self.config.imbalance), 1.0)


@numba.njit(cache=True, nogil=True)
def _ldg_chunk(first, indptr, indices, parts, sizes, caps, train, tsizes, tcaps, counts):
    """Assign nodes ``first .. first + len(indptr) - 2`` in order, updating the state in place.

    Returns -1, or the chunk-local index of the first edge naming a node out of range.
    """
    num_parts = sizes.size
    balance_train = train.size > 0
    for i in range(indptr.size - 1):
        v = first + i
        counts[:] = 0
        for e in range(indptr[i], indptr[i + 1]):
            u = indices[e]
            if u < 0 or u >= parts.size:
                return e
            if parts[u] >= 0:
                counts[parts[u]] += 1
        is_train = balance_train and train[v]
        best, best_score, best_load = -1, -1.0, np.inf
        least, least_load = 0, np.inf  # fallback if no part has room for this node
        for k in range(num_parts):
            load = sizes[k] / caps[k]
            if is_train:
                load = max(load, tsizes[k] / tcaps[k])
            if load < least_load:
                least, least_load = k, load
            if load >= 1.0:
                continue
            score = counts[k] * (1.0 - load)
            if score > best_score or (score == best_score and load < best_load):
                best, best_score, best_load = k, score, load
        if best < 0:
            best = least
        parts[v] = best
        sizes[best] += 1
        if is_train:
            tsizes[best] += 1
    return -1
