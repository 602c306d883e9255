"""Hash partitioner: a node's part is a pure function of (node id, seed).

Each node id is hashed with splitmix64 (vectorised in numpy uint64 arithmetic, which wraps
modulo 2^64) into a uniform value in [0, 1), which lands in part ``k`` with probability
``config.part_shares()[k]``. Parts are therefore balanced, in nodes, edges and training nodes
alike, within sampling noise, and weighted capacities are honoured the same way; nothing about
the graph's structure is used, so about ``1 - sum(share^2)`` of the edges are cut.
"""

from __future__ import annotations

import numpy as np

from gnndist.graph import Graph
from gnndist.progress import Reporter

from .base import Partitioner

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15  # splitmix64's increment (2^64 / golden ratio)
_MUL1 = 0xBF58476D1CE4E5B9
_MUL2 = 0x94D049BB133111EB


def _mix_int(z: int) -> int:
    """splitmix64's finaliser on a Python int (used for the seed)."""
    z = ((z ^ (z >> 30)) * _MUL1) & _MASK
    z = ((z ^ (z >> 27)) * _MUL2) & _MASK
    return z ^ (z >> 31)


def hash_uniform(ids: np.ndarray, seed: int) -> np.ndarray:
    """float64 [n] in [0, 1): splitmix64 of each id (int, any id space) under ``seed``."""
    z = ids.astype(np.uint64)
    z += np.uint64(1)  # id 0 would otherwise start the stream at the bare seed
    z *= np.uint64(_GAMMA)
    z += np.uint64(_mix_int((seed * _GAMMA) & _MASK))
    z ^= z >> np.uint64(30)
    z *= np.uint64(_MUL1)
    z ^= z >> np.uint64(27)
    z *= np.uint64(_MUL2)
    z ^= z >> np.uint64(31)
    # The top 53 bits fill a double's mantissa exactly, so the result is uniform and < 1.
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


class RandomPartitioner(Partitioner):
    """Hash partitioning: deterministic for a seed, independent of node order and structure."""

    def _assign(self, graph: Graph, reporter: Reporter) -> np.ndarray:
        with reporter.step("partition: hash", total=None):
            return self.parts_of(np.arange(graph.num_nodes, dtype=np.int64))

    def parts_of(self, ids: np.ndarray) -> np.ndarray:
        """Part of each node: int32 [n] for ``ids`` (int [n], global source ids)."""
        bounds = np.cumsum(self.config.part_shares())[:-1]
        parts = np.searchsorted(bounds, hash_uniform(ids, self.config.seed), side="right")
        return parts.astype(np.int32)
