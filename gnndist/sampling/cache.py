"""A static per-trainer cache of remote (halo) node features: which nodes to cache, and the cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gnndist.partition.format import PartArrays
from gnndist.sampling.neighbor import NeighborProvider, SampledSubgraph


def hottest_halo_nodes(part: PartArrays, lo: int, hi: int) -> np.ndarray:
    """Remote in-neighbours of the part's inner nodes (global ids, int64), hottest first.

    "Hot" is the number of in-edges from the node into the part: the expected number of times a
    uniform neighbour sampler reaches it from a seed of this part. Ties break by id.
    """
    outside = part.indices[(part.indices < lo) | (part.indices >= hi)]
    ids, counts = np.unique(outside, return_counts=True)
    return ids[np.argsort(-counts, kind="stable")]


def sampling_halo(seeds: np.ndarray, fanouts: tuple[int, ...], provider: NeighborProvider, num_nodes: int,
                  lo: int, hi: int, *, chunk: int = 1 << 18) -> np.ndarray:
    """Every node outside ``lo..hi-1`` that sampling with ``fanouts`` can put in a batch of ``seeds``.

    That is the L-hop halo of ``seeds`` (global ids): the nodes within L in-hops of a seed, L the
    number of hops before the first fanout of 0. A breadth-first search asks ``provider`` for all
    in-neighbours of each new frontier, ``chunk`` nodes per call to bound memory. Returns global
    ids, int64, ascending.
    """
    hops = next((h for h, f in enumerate(fanouts) if f == 0), len(fanouts))
    seen = np.zeros(num_nodes, dtype=bool)
    seen[seeds] = True
    frontier = np.asarray(seeds, dtype=np.int64)
    for _ in range(hops):
        # Boolean masks over all ids rather than sorting: the last frontiers hold most of the graph.
        reached = np.zeros(num_nodes, dtype=bool)
        for start in range(0, frontier.size, chunk):
            reached[provider.sample(frontier[start:start + chunk], -1, 0)[1]] = True
        reached &= ~seen
        seen |= reached
        frontier = np.flatnonzero(reached)
    seen[lo:hi] = False
    return np.flatnonzero(seen)


class AccessCounter:
    """How many times sampled batches drew each node outside ``lo..hi-1`` as a neighbour.

    A node's count over many batches estimates its expected draws per batch, which orders nodes
    as their chance of being in a batch does; draws count more often than "in the batch or not"
    and so separate nodes of similar heat with fewer batches.
    """

    def __init__(self, lo: int, hi: int) -> None:
        self.lo = lo
        self.hi = hi
        self._ids: list[np.ndarray] = []
        self._draws: list[np.ndarray] = []

    def add(self, sub: SampledSubgraph) -> None:
        """Count the draws of one sampled batch (``sub.n_id`` global ids)."""
        draws = np.bincount(sub.edge_index[0], minlength=sub.n_id.size)
        remote = (sub.n_id < self.lo) | (sub.n_id >= self.hi)
        self._ids.append(sub.n_id[remote])
        self._draws.append(draws[remote])

    def ranked(self) -> np.ndarray:
        """The nodes drawn so far (global ids, int64), most drawn first; ties break by id."""
        if not self._ids:
            return np.empty(0, dtype=np.int64)
        ids, where = np.unique(np.concatenate(self._ids), return_inverse=True)
        draws = np.bincount(where, weights=np.concatenate(self._draws))
        return ids[np.argsort(-draws, kind="stable")]


def cache_capacity(num_candidates: int, row_bytes: int, *, cache_mb: float | None,
                   cache_fraction: float | None) -> int:
    """Rows a cache of ``cache_mb`` megabytes, or of ``cache_fraction`` of the candidates, holds."""
    if cache_mb is not None:
        return min(num_candidates, int(cache_mb * 2**20 // max(row_bytes, 1)))
    if cache_fraction is not None:
        return int(round(cache_fraction * num_candidates))
    return 0


@dataclass(frozen=True)
class CachedRows:
    """One state of a cache, never changed: ``ids`` int64 [m] global ids, sorted; ``x`` float32
    [m, F] and ``y`` int64 [m] their features and labels (arrays made read-only).

    A cache that changes replaces its whole state with one reference assignment, and a reader
    takes the state once: so ids of one state are never paired with rows of another, whatever
    another thread does meanwhile (the row-copy kernel trusts its row numbers).
    """

    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        for array in (self.ids, self.x, self.y):
            array.setflags(write=False)


class FeatureCache:
    """Features and labels of a fixed set of remote nodes (:attr:`rows`), with hit and byte counters.

    The counters belong to the one loader reading through this cache; a loader on another thread
    takes a :meth:`snapshot` of its own. Every cache has this interface: the loader calls
    :meth:`retain` after each fetch, and samples :attr:`looks_ahead` batches ahead of fetching
    only for a cache that uses them.
    """

    #: Whether :meth:`retain` chooses by the batches sampled ahead (then the loader samples ahead).
    looks_ahead = False

    def __init__(self, ids: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        self.rows = CachedRows(ids, x, y)
        self.hits = 0
        self.misses = 0

    @classmethod
    def empty(cls, feature_dim: int, dtype=np.float32) -> FeatureCache:
        """A cache of no rows; ``dtype``: the stored features' (rows are cached as fetched)."""
        return cls(np.empty(0, dtype=np.int64), np.empty((0, feature_dim), dtype=dtype),
                   np.empty(0, dtype=np.int64))

    @classmethod
    def build(cls, ids: np.ndarray, fetch: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> FeatureCache:
        """Cache ``ids`` (global), read once through ``fetch(ids) -> (x [m, F], y int64 [m])``
        (``x`` dense, in the stored features' dtype)."""
        ids = np.sort(ids)
        return cls(ids, *fetch(ids))

    @property
    def ids(self) -> np.ndarray:
        """Global ids held now (int64, sorted); read rows through :meth:`lookup`'s state, not beside this."""
        return self.rows.ids

    def snapshot(self) -> FeatureCache:
        """A cache of the rows held now that never changes, with counters of its own (zero)."""
        rows = self.rows
        return FeatureCache(rows.ids, rows.x, rows.y)

    def lookup(self, ids: np.ndarray) -> tuple[CachedRows, np.ndarray, np.ndarray]:
        """``(state, hit bool [n], rows int64 [hits])``: which of global ``ids`` are cached, and
        their rows in ``state.x`` / ``state.y`` (the state they were looked up in)."""
        state = self.rows
        if state.ids.size == 0:
            self.misses += ids.size
            return state, np.zeros(ids.size, dtype=bool), np.empty(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(state.ids, ids), state.ids.size - 1)
        hit = state.ids[pos] == ids
        self.hits += int(hit.sum())
        self.misses += int(ids.size - hit.sum())
        return state, hit, pos[hit]

    def retain(self, ids: np.ndarray, x: np.ndarray, y: np.ndarray, upcoming: Sequence[np.ndarray]) -> None:
        """After a fetch of ``ids`` (rows ``x``, ``y``) that missed the cache: a fixed set keeps what it holds."""

    def stats(self) -> dict:
        state = self.rows
        row_bytes = state.x.shape[1] * state.x.itemsize + state.y.itemsize
        lookups = self.hits + self.misses
        return {"cached_nodes": int(state.ids.size), "cache_bytes": int(state.x.nbytes + state.y.nbytes),
                "hits": self.hits, "misses": self.misses, "hit_rate": self.hits / lookups if lookups else 0.0,
                "bytes_saved": self.hits * row_bytes}


class LookaheadCache(FeatureCache):
    """A :class:`FeatureCache` of ``capacity`` rows whose contents follow the batches.

    A static cache saves at most the rows that are hot in every batch. This one, after each batch,
    keeps, of the rows it holds and the remote rows the batch has just fetched, first those that
    the batches already sampled ahead (the loader's prefetch window) use soonest, then the hottest
    by ``ranked`` (global ids, hottest first; others come last, by id). It never fetches a row of
    its own: its contents change at no traffic. Only the loader that owns it retains; each retain
    swaps in a new :class:`CachedRows`, so a lookup made before it still reads its own state.
    """

    looks_ahead = True

    def __init__(self, ids: np.ndarray, x: np.ndarray, y: np.ndarray, capacity: int, ranked: np.ndarray) -> None:
        super().__init__(ids, x, y)
        self.capacity = capacity
        order = np.argsort(ranked, kind="stable")
        self._ranked_ids = ranked[order]  # sorted, for lookups by searchsorted
        self._heat = (order + 1) / (ranked.size + 1)  # in (0, 1): hotter is smaller

    def _cold(self, ids: np.ndarray) -> np.ndarray:
        """Key in (0, 1] of each of ``ids`` by heat: its place in the ranking, 1 when unranked."""
        if self._ranked_ids.size == 0:
            return np.ones(ids.size)
        pos = np.minimum(np.searchsorted(self._ranked_ids, ids), self._ranked_ids.size - 1)
        return np.where(self._ranked_ids[pos] == ids, self._heat[pos], 1.0)

    def retain(self, ids: np.ndarray, x: np.ndarray, y: np.ndarray, upcoming: Sequence[np.ndarray]) -> None:
        """Choose the rows to keep from those held and the just-fetched ``ids`` (none of them held;
        their rows ``x``, ``y``), given the global ids of the next batches in order (``upcoming``)."""
        state = self.rows  # once: the new state is built from this one alone
        held = np.concatenate([state.ids, ids])
        key = len(upcoming) + self._cold(held)
        for j in reversed(range(len(upcoming))):  # the soonest use wins
            key[np.isin(held, upcoming[j])] = j
        keep = np.argsort(key, kind="stable")[:self.capacity]
        keep = keep[np.argsort(held[keep])]  # ids sorted for lookup (unique, so no ties)
        from_cache = keep < state.ids.size
        rows = np.empty((keep.size, state.x.shape[1]), dtype=state.x.dtype)
        labels = np.empty(keep.size, dtype=state.y.dtype)
        rows[from_cache], labels[from_cache] = state.x[keep[from_cache]], state.y[keep[from_cache]]
        fresh = keep[~from_cache] - state.ids.size
        rows[~from_cache], labels[~from_cache] = x[fresh], y[fresh]
        # One assignment: a reader holding the old state keeps reading it, consistent, to the end.
        self.rows = CachedRows(held[keep], rows, labels)
