"""A static per-trainer cache of remote (halo) node features."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gnndist.partition.format import PartArrays


def hottest_halo_nodes(part: PartArrays, lo: int, hi: int) -> np.ndarray:
    """Remote in-neighbours of the part's inner nodes (global ids, int64), hottest first.

    "Hot" is the number of in-edges from the node into the part: the expected number of times a
    uniform neighbour sampler reaches it from a seed of this part. Ties break by id.
    """
    outside = part.indices[(part.indices < lo) | (part.indices >= hi)]
    ids, counts = np.unique(outside, return_counts=True)
    return ids[np.argsort(-counts, kind="stable")]


def cache_capacity(num_candidates: int, row_bytes: int, *, cache_mb: float | None,
                   cache_fraction: float | None) -> int:
    """Rows a cache of ``cache_mb`` megabytes, or of ``cache_fraction`` of the candidates, holds."""
    if cache_mb is not None:
        return min(num_candidates, int(cache_mb * 2**20 // max(row_bytes, 1)))
    if cache_fraction is not None:
        return int(round(cache_fraction * num_candidates))
    return 0


class FeatureCache:
    """Features and labels of a fixed set of remote nodes, with hit and byte counters.

    ``ids``: int64 [m] global ids, sorted; ``x``: float32 [m, F] and ``y``: int64 [m] theirs.
    """

    def __init__(self, ids: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        self.ids = ids
        self.x = x
        self.y = y
        self.hits = 0
        self.misses = 0

    @classmethod
    def empty(cls, feature_dim: int) -> FeatureCache:
        return cls(np.empty(0, dtype=np.int64), np.empty((0, feature_dim), dtype=np.float32),
                   np.empty(0, dtype=np.int64))

    @classmethod
    def build(cls, ids: np.ndarray, fetch: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> FeatureCache:
        """Cache ``ids`` (global), read once through ``fetch(ids) -> (x float32 [m, F], y int64 [m])``."""
        ids = np.sort(ids)
        return cls(ids, *fetch(ids))

    def lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(hit bool [n], rows int64 [hits])``: which of ``ids`` are cached and their rows in ``x``."""
        if self.ids.size == 0:
            self.misses += ids.size
            return np.zeros(ids.size, dtype=bool), np.empty(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.ids, ids), self.ids.size - 1)
        hit = self.ids[pos] == ids
        self.hits += int(hit.sum())
        self.misses += int(ids.size - hit.sum())
        return hit, pos[hit]

    def stats(self) -> dict:
        row_bytes = self.x.shape[1] * self.x.itemsize + self.y.itemsize
        lookups = self.hits + self.misses
        return {"cached_nodes": int(self.ids.size), "cache_bytes": int(self.x.nbytes + self.y.nbytes),
                "hits": self.hits, "misses": self.misses, "hit_rate": self.hits / lookups if lookups else 0.0,
                "bytes_saved": self.hits * row_bytes}
