"""Uniform neighbour sampling without replacement, one hop (:func:`sample_neighbors`) and k hops
(:func:`sample_khop`), with ``torch_geometric.loader.NeighborLoader`` semantics.

Pure numpy + numba: no Ray, no torch. The kernels release the GIL (``nogil=True``) so a loader
can sample in a background thread while the main thread trains. Randomness comes from a
splitmix64 stream that each kernel call starts from its seed and keeps in a local variable, so a
call's result depends only on its arguments, whichever thread runs it.

Id spaces: "rows" are local to one CSC (0..R-1); a :class:`NeighborProvider` speaks global ids;
``SampledSubgraph.edge_index`` holds local indices into ``SampledSubgraph.n_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numba import njit

_MASK64 = (1 << 64) - 1
_GOLDEN, _MIX1, _MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB  # splitmix64's constants


def _splitmix64(x: int) -> int:
    """One splitmix64 step on a Python int (taken mod 2**64): a cheap, well-mixed 64-bit hash."""
    z = (x + _GOLDEN) & _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def _kernel_seed(seed: int) -> np.uint64:
    """The kernel's starting state, from any Python int seed (taken mod 2**64)."""
    return np.uint64(_splitmix64(seed))


def _hop_seed(seed: int, hop: int) -> int:
    """A distinct seed in [0, 2**63) for each hop of one ``sample_khop`` call."""
    return _splitmix64(_splitmix64(seed) ^ hop) >> 1


# ---------------------------------------------------------------------------------------- one hop


@njit(cache=True, nogil=True)
def _sample_counts(indptr, rows, fanout):
    """Per-row sample sizes (int64 [n]) and the largest degree / fanout among rows that need
    a real draw (deg > fanout), which size the scratch buffers of :func:`_sample_kernel`."""
    counts = np.empty(rows.size, np.int64)
    max_deg = 0
    for i in range(rows.size):
        r = rows[i]
        deg = indptr[r + 1] - indptr[r]
        if fanout < 0 or deg <= fanout:
            counts[i] = deg
        else:
            counts[i] = fanout
            max_deg = max(max_deg, deg)
    return counts, max_deg


# The kernel's splitmix64 stream in uint64 (numba would turn mixed uint64/int64 arithmetic into floats).
_U_GOLDEN, _U_MIX1, _U_MIX2 = np.uint64(_GOLDEN), np.uint64(_MIX1), np.uint64(_MIX2)
_LOW32 = np.uint64(0xFFFFFFFF)
_S27, _S30, _S31, _S32 = np.uint64(27), np.uint64(30), np.uint64(31), np.uint64(32)


@njit(cache=True, nogil=True, inline="always")
def _below(state, bound):
    """A uniform integer in [0, bound) for 0 < bound < 2**32, and the advanced splitmix64
    ``state`` (uint64). Lemire's multiply-shift with rejection: exact, and almost never divides."""
    while True:
        state += _U_GOLDEN
        z = (state ^ (state >> _S30)) * _U_MIX1
        z = (z ^ (z >> _S27)) * _U_MIX2
        m = ((z ^ (z >> _S31)) >> _S32) * bound
        low = m & _LOW32
        # Rejecting the lowest (2**32 mod bound) values of `low` leaves every result equally likely.
        if low >= bound or low >= ((_LOW32 - bound + np.uint64(1)) & _LOW32) % bound:
            return state, np.int64(m >> _S32)


@njit(cache=True, nogil=True)
def _sample_kernel(indptr, indices, rows, fanout, seed):
    """See :func:`sample_neighbors`; ``seed`` (uint64) starts the random stream."""
    state = seed
    counts, max_deg = _sample_counts(indptr, rows, fanout)
    out = np.empty(counts.sum(), np.int64)
    # Floyd's algorithm draws k distinct offsets out of deg with exactly k random numbers, so a
    # degree-10^5 hub costs O(fanout), not O(deg). ``taken`` marks drawn offsets (cleared after
    # each row through ``picked``), making the membership test O(1) for any fanout.
    taken = np.zeros(max_deg, np.bool_)
    picked = np.empty(max(fanout, 0) if max_deg > 0 else 0, np.int64)
    pos = 0
    for i in range(rows.size):
        start = indptr[rows[i]]
        deg = indptr[rows[i] + 1] - start
        k = counts[i]
        if k == deg:
            out[pos:pos + k] = indices[start:start + deg]
        else:
            for m in range(k):
                j = deg - k + m
                state, t = _below(state, np.uint64(j + 1))
                if taken[t]:
                    t = j  # j was never in range before this step, so it is still free
                taken[t] = True
                picked[m] = t
                out[pos + m] = indices[start + t]
            for m in range(k):
                taken[picked[m]] = False
        pos += k
    return counts, out


def _as_ids(a) -> np.ndarray:
    """Contiguous int64 1-d copy-if-needed of an id array, so the kernels compile once."""
    arr = np.ascontiguousarray(a, dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"ids must be a 1-d array, got shape {arr.shape}")
    return arr


def _check_rows(rows: np.ndarray, num_rows: int, first: int = 0) -> None:
    """IndexError naming the first id of ``rows + first`` outside ``first..first+num_rows-1``."""
    if rows.size and (int(rows.min()) < 0 or int(rows.max()) >= num_rows):
        bad = int(rows[(rows < 0) | (rows >= num_rows)][0]) + first
        raise IndexError(f"node id {bad} is not a row of this CSC (rows are {first}..{first + num_rows - 1})")


def sample_neighbors(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, fanout: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample up to ``fanout`` distinct in-neighbours of each row, uniformly without replacement.

    Args:
        indptr: int64 [R + 1] CSC offsets; ``indices``: int [E], the neighbours of row r are
            ``indices[indptr[r]:indptr[r + 1]]`` (any id space; returned as they are).
        rows: int64 [n], row ids local to ``indptr`` (0..R-1), duplicates allowed.
        fanout: neighbours per row; ``< 0`` takes all of them, ``0`` none.
        seed: any Python int; the same arguments and seed give the same result.

    Returns:
        ``(counts int64 [n], neighbors int64 [counts.sum()])``: ``counts[i] = min(fanout, deg)``
        (``deg`` if fanout < 0) and row i's sample is the i-th contiguous run of ``neighbors``.

    Raises:
        IndexError: a row id is outside 0..R-1 (the message names it).
    """
    indptr, indices, rows = _as_ids(indptr), _as_ids(indices), _as_ids(rows)
    _check_rows(rows, indptr.size - 1)
    return _sample_kernel(indptr, indices, rows, int(fanout), _kernel_seed(seed))


class NeighborProvider(Protocol):
    """Where :func:`sample_khop` gets one hop of neighbours from (a local CSC, or remote parts)."""

    def sample(self, ids: np.ndarray, fanout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """:func:`sample_neighbors` for GLOBAL ids: ``ids`` int64 [n] global ->
        ``(counts int64 [n], neighbours int64 [counts.sum()], global ids)``."""
        ...


class CSCProvider:
    """A :class:`NeighborProvider` over one CSC whose rows are the global ids
    ``first..first + R - 1`` (``indptr`` int64 [R + 1]; ``indices`` int64 [E], global ids)."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, first: int = 0):
        self.indptr = indptr
        self.indices = indices
        self.first = first

    def sample(self, ids: np.ndarray, fanout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`NeighborProvider.sample`; IndexError names an id that is not a row here."""
        rows = _as_ids(ids) - self.first
        _check_rows(rows, len(self.indptr) - 1, self.first)
        return sample_neighbors(self.indptr, self.indices, rows, fanout, seed)


# ---------------------------------------------------------------------------------------- k hops


@dataclass(frozen=True, eq=False)
class SampledSubgraph:
    """The output of :func:`sample_khop`, laid out as PyG's ``NeighborLoader`` lays out a batch.

    Attributes:
        n_id: int64 [n] global ids; the seeds first, then nodes in order of discovery.
        edge_index: int64 [2, E]; row 0 the sampled neighbour (source), row 1 the node it was
            sampled for (target), both local indices into ``n_id``.
        batch_size: number of seeds (``n_id[:batch_size]``).
        num_sampled_nodes: nodes first discovered in each hop, hop 0 = the seeds (len hops + 1).
        num_sampled_edges: edges sampled in each hop (len hops).
    """

    n_id: np.ndarray
    edge_index: np.ndarray
    batch_size: int
    num_sampled_nodes: list[int]
    num_sampled_edges: list[int]


@njit(cache=True, nogil=True)
def _slot(table, n_id, v):
    """Slot of global id ``v`` in the open-addressing ``table`` (int64 [2**b] of local indices
    into ``n_id``, -1 = empty): where it is, or the empty slot where it belongs."""
    mask = table.size - 1
    h = v ^ (v >> 29)
    h *= -7046029254386353131  # 0x9E3779B97F4A7C15 as int64: spreads nearby ids apart
    h = (h ^ (h >> 32)) & mask
    while table[h] >= 0 and n_id[table[h]] != v:
        h = (h + 1) & mask
    return h


@njit(cache=True, nogil=True)
def _rehash(n_id, n, capacity):
    """A fresh table (int64 [capacity], a power of two) holding ``n_id[:n]``."""
    table = np.full(capacity, -1, np.int64)
    for i in range(n):
        table[_slot(table, n_id, n_id[i])] = i
    return table


@njit(cache=True, nogil=True)
def _relabel(table, n_id, n, ids):
    """Local index of each global id in ``ids`` (int64 [m]); ids not yet in ``n_id[:n]`` are
    appended in order of first appearance. The caller makes room: ``n_id.size >= n + m`` and
    ``table.size >= 2 * (n + m)``. Returns ``(local int64 [m], new n)``."""
    local = np.empty(ids.size, np.int64)
    for i in range(ids.size):
        h = _slot(table, n_id, ids[i])
        if table[h] < 0:
            table[h] = n
            n_id[n] = ids[i]
            n += 1
        local[i] = table[h]
    return local, n


def _reserve(n_id: np.ndarray, table: np.ndarray, n: int, extra: int) -> tuple[np.ndarray, np.ndarray]:
    """Grow ``n_id`` (int64, ``n`` used) and its hash ``table`` to take ``extra`` more ids."""
    need = n + extra
    if n_id.size < need:
        grown = np.empty(max(need, 2 * n_id.size), np.int64)
        grown[:n] = n_id[:n]
        n_id = grown
    if table.size < 2 * need:  # load factor <= 1/2 keeps linear probing short
        table = _rehash(n_id, n, 1 << int(2 * need - 1).bit_length())
    return n_id, table


def _start(seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(n_id, table)`` holding the seeds (int64 [s], global ids) at local indices 0..s-1."""
    n_id, table = _reserve(np.empty(0, np.int64), np.empty(0, np.int64), 0, seeds.size)
    _, n = _relabel(table, n_id, 0, seeds)
    if n != seeds.size:
        values, counts = np.unique(seeds, return_counts=True)
        raise ValueError(f"seeds must be unique; node {int(values[counts > 1][0])} appears more than once")
    return n_id, table


def sample_khop(seeds: np.ndarray, fanouts: Sequence[int], provider: NeighborProvider,
                seed: int) -> SampledSubgraph:
    """k-hop neighbour sampling with ``NeighborLoader`` semantics (directed, non-disjoint,
    ``replace=False``).

    Hop h samples ``fanouts[h]`` in-neighbours (``-1``: all, ``0``: none) of the nodes first
    discovered in hop h - 1 (the seeds for hop 0) through ``provider`` with a seed derived from
    ``seed`` and h. Neighbours not yet in ``n_id`` are appended in order of first appearance and
    every sampled (neighbour -> node) pair becomes an edge.

    Args:
        seeds: int [s] unique global ids (ValueError otherwise); may be empty.
        fanouts: one fanout per hop.
        provider: answers one hop for global ids.
        seed: the same seed (and provider data) gives the same subgraph.
    """
    seeds = _as_ids(seeds)
    n_id, table = _start(seeds)
    lo, n = 0, seeds.size  # nodes lo..n-1 were first discovered in the previous hop
    sources, targets = [], []
    num_nodes, num_edges = [n], []
    for hop, fanout in enumerate(fanouts):
        counts, nbrs = _expand(provider, n_id[lo:n], fanout, _hop_seed(seed, hop))
        n_id, table = _reserve(n_id, table, n, nbrs.size)
        local, new_n = _relabel(table, n_id, n, nbrs)
        sources.append(local)
        targets.append(np.repeat(np.arange(lo, n, dtype=np.int64), counts))
        lo, n = n, new_n
        num_nodes.append(n - lo)
        num_edges.append(local.size)
    edge_index = np.stack([np.concatenate(sources or [np.empty(0, np.int64)]),
                           np.concatenate(targets or [np.empty(0, np.int64)])])
    return SampledSubgraph(n_id=n_id[:n].copy(), edge_index=edge_index, batch_size=seeds.size,
                           num_sampled_nodes=num_nodes, num_sampled_edges=num_edges)


def _expand(provider: NeighborProvider, frontier: np.ndarray, fanout: int,
            seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One hop through ``provider`` (global ids in and out), checked for a consistent shape; an
    empty frontier never reaches the provider, so providers need not handle it."""
    if frontier.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    counts, nbrs = provider.sample(frontier, fanout, seed)
    counts, nbrs = _as_ids(counts), _as_ids(nbrs)
    if counts.size != frontier.size or int(counts.sum()) != nbrs.size:
        raise RuntimeError(f"{type(provider).__name__}.sample returned {counts.size} counts summing to "
                           f"{int(counts.sum())} with {nbrs.size} neighbours for {frontier.size} ids")
    return counts, nbrs
