"""METIS partitioning (minimum edge cut under balance constraints), through pymetis's METIS.

METIS needs a symmetric adjacency without self-loops or duplicates. :func:`symmetric_adjacency`
builds it from the graph's CSC in-edges (``A + A^T``, deduplicated) with one extra int64 per
symmetric entry and one byte per edge, or reuses the graph's own arrays when it is already
symmetric (the CSC of a symmetric graph is its CSR).

Why METIS is called through ctypes rather than ``pymetis.part_graph``: pymetis 2025.2 always
passes ``ncon = 1`` to METIS, so multi-constraint vertex weights (``[N, ncon]``) are read as
``N`` interleaved single weights and the extra constraints are silently ignored (measured: the
second constraint ended up 558/0/442/0 across 4 parts). Its ``tpwgts`` check also accepts only
``nparts`` entries, where METIS reads ``nparts * ncon``. The METIS that pymetis ships exports
``METIS_PartGraphKway`` / ``METIS_PartGraphRecursive`` (64-bit ``idx_t``, 32-bit ``real_t``),
so we call those with the real ``ncon``, ``tpwgts`` of ``nparts * ncon`` and ``ubvec``. Arrays
go by pointer: nothing is copied.
"""

from __future__ import annotations

import ctypes

import numba
import numpy as np
import pymetis._internal as _metis_lib

from gnndist.graph import Graph
from gnndist.progress import Reporter

from .base import Partitioner, PartitionError

_METIS_OK = 1
_METIS_ERRORS = {-2: "invalid input", -3: "out of memory", -4: "internal error"}
#: Recursive bisection up to this many parts (pymetis's default), k-way beyond. On the 1M-node
#: benchmark graph bisection is faster (4 parts: 8.4 s against 12.9 s) with a lower cut and
#: balance well within ubvec; on small graphs with coarse constraints (a 4000-node SBM with 400
#: training nodes) its per-level imbalances compound (training nodes 1.05 at 4 parts, 1.08 at
#: 8, for ubvec 1.03) where k-way stays within ubvec: see ``MetisPartitioner._run_metis``.
_MAX_RECURSIVE_PARTS = 8


class MetisPartitioner(Partitioner):
    """Multi-constraint METIS: balances ``config.balance`` (nodes, edges, training nodes) at once,
    part ``k`` getting ``part_shares()[k]`` of each, within ``1 + config.imbalance``."""

    def _assign(self, graph: Graph, reporter: Reporter) -> np.ndarray:
        if self.config.num_parts == 1:
            return np.zeros(graph.num_nodes, dtype=np.int32)
        with reporter.step("partition: symmetrise", total=None):
            xadj, adjncy = symmetric_adjacency(graph.indptr.numpy(), graph.indices.numpy())
        targets = self._balance_targets(graph.train_mask.numpy(), graph.name)
        vwgt = vertex_weights(graph, targets)
        with reporter.step("partition: METIS", total=None):
            return self._run_metis(xadj, adjncy, vwgt, len(targets))

    def _run_metis(self, xadj: np.ndarray, adjncy: np.ndarray, vwgt: np.ndarray, ncon: int) -> np.ndarray:
        """METIS on a symmetric CSR (int64 [N+1], int64 [nnz]) with vertex weights int64 [N*ncon]."""
        cfg = self.config
        shares = np.asarray(cfg.part_shares(), dtype=np.float64)
        # METIS reads target weights as [nparts, ncon], row-major: every constraint gets the same share.
        tpwgts = np.repeat(shares, ncon).astype(np.float32)
        ubvec = np.full(ncon, 1.0 + cfg.imbalance, dtype=np.float32)
        options = _metis_options(seed=cfg.seed, ufactor=round(cfg.imbalance * 1000))
        args = (cfg.num_parts, ncon, xadj, adjncy, vwgt, tpwgts, ubvec, options)
        recursive = cfg.num_parts <= _MAX_RECURSIVE_PARTS
        parts = _part_graph(recursive, *args)
        if recursive and ncon > 1:
            # Bisection's per-level imbalances compound when a constraint is coarse (few training
            # nodes per part): then k-way, which honours ubvec, is tried and the better kept.
            excess = _excess(parts, vwgt.reshape(-1, ncon), shares, cfg.imbalance)
            if excess > 0:
                kway = _part_graph(False, *args)
                if _excess(kway, vwgt.reshape(-1, ncon), shares, cfg.imbalance) < excess:
                    parts = kway
        return parts


def _excess(parts: np.ndarray, vwgt: np.ndarray, shares: np.ndarray, imbalance: float) -> float:
    """Largest overshoot, over parts and constraints, of a part's weight beyond what METIS can
    promise, relative to the part's target; <= 0 when every part is within.

    METIS promises ``1 + imbalance`` times the target up to one vertex's weight and its float32
    rounding (0.1% here; measured 0.005% on the 1M-node graph). ``parts``: int32 [N];
    ``vwgt``: int64 [N, ncon]; ``shares``: float64 [nparts], summing to 1.
    """
    worst = -np.inf
    for column in vwgt.T:
        target = shares * column.sum()
        weight = np.bincount(parts, weights=column, minlength=shares.size)
        allowed = target * (1.0 + imbalance + 0.001) + column.max()
        worst = max(worst, float(np.max((weight - allowed) / target)))
    return worst


def _part_graph(recursive: bool, nparts: int, ncon: int, xadj: np.ndarray, adjncy: np.ndarray,
                vwgt: np.ndarray, tpwgts: np.ndarray, ubvec: np.ndarray, options: np.ndarray) -> np.ndarray:
    """Call METIS_PartGraphRecursive or METIS_PartGraphKway; int32 [N] part per node.

    Array dtypes: ``xadj``/``adjncy``/``vwgt``/``options`` int64 (METIS ``idx_t``), ``tpwgts``
    float32 [nparts * ncon] and ``ubvec`` float32 [ncon] (METIS ``real_t``).
    """
    for a, dtype in ((xadj, np.int64), (adjncy, np.int64), (vwgt, np.int64), (options, np.int64),
                     (tpwgts, np.float32), (ubvec, np.float32)):
        if a.dtype != dtype or not a.flags.c_contiguous:
            raise TypeError(f"METIS needs contiguous {np.dtype(dtype)} arrays, got {a.dtype}")
    if _metis_lib._idx_type_width() != 64:  # the pointers below would be misread otherwise
        raise PartitionError("this pymetis build uses 32-bit METIS ids; install a 64-bit build of pymetis>=2025.2")
    n = xadj.size - 1
    lib = ctypes.CDLL(_metis_lib.__file__)  # already loaded by the import: this only looks it up
    fn = lib.METIS_PartGraphRecursive if recursive else lib.METIS_PartGraphKway
    fn.restype = ctypes.c_int
    part = np.empty(n, dtype=np.int64)
    edgecut = ctypes.c_int64(0)
    status = fn(ctypes.byref(ctypes.c_int64(n)), ctypes.byref(ctypes.c_int64(ncon)),
                _ptr(xadj), _ptr(adjncy), _ptr(vwgt), None, None, ctypes.byref(ctypes.c_int64(nparts)),
                _ptr(tpwgts), _ptr(ubvec), _ptr(options), ctypes.byref(edgecut), _ptr(part))
    if status != _METIS_OK:
        raise PartitionError(f"METIS failed ({_METIS_ERRORS.get(status, status)}) partitioning {n} nodes "
                             f"into {nparts} parts with {ncon} balance constraints")
    return part.astype(np.int32)


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _metis_options(*, seed: int, ufactor: int) -> np.ndarray:
    """METIS's options array (int64 [METIS_NOPTIONS]) with defaults, a seed and a ufactor."""
    keys = _metis_lib.options_indices
    options = np.empty(_metis_lib.Options._len(), dtype=np.int64)
    ctypes.CDLL(_metis_lib.__file__).METIS_SetDefaultOptions(_ptr(options))
    options[keys.SEED] = seed % (1 << 31)  # METIS seeds its RNG with a non-negative idx_t
    options[keys.UFACTOR] = max(ufactor, 1)
    options[keys.NUMBERING] = 0
    return options


def vertex_weights(graph: Graph, targets: tuple[str, ...]) -> np.ndarray:
    """Flat int64 [N * ncon] (row-major [N, ncon]) METIS vertex weights, one column per target.

    ``"nodes"``: 1 per node. ``"edges"``: in-degree + 1, so isolated nodes still weigh something
    and the column can never total zero (METIS divides by each column's total). ``"train"``: 1
    for training nodes, 0 otherwise (callers drop it when there are none).
    """
    n = graph.num_nodes
    vwgt = np.empty((n, len(targets)), dtype=np.int64)
    for j, target in enumerate(targets):
        if target == "nodes":
            vwgt[:, j] = 1
        elif target == "edges":
            np.add(np.diff(graph.indptr.numpy()), 1, out=vwgt[:, j])
        elif target == "train":
            vwgt[:, j] = graph.train_mask.numpy()
        else:
            raise PartitionError(f"cannot balance {target!r}: choose from nodes, edges, train")
    return vwgt.reshape(-1)


def symmetric_adjacency(indptr: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric CSR ``(xadj int64 [N+1], adjncy int64 [nnz])`` of ``A + A^T`` from CSC in-edges.

    ``indptr`` int64 [N+1] / ``indices`` int64 [E]: the graph's CSC (sorted rows, no duplicates,
    no self-loops, as :class:`~gnndist.graph.Graph` guarantees). Rows of the result are not
    sorted (METIS does not need it). When every edge already has its reverse, the inputs are
    returned as they are.
    """
    if _is_symmetric(indptr, indices):
        return indptr, indices
    reciprocal = np.empty(indices.size, dtype=np.bool_)
    extra = np.zeros(indptr.size - 1, dtype=np.int64)
    _mark_reciprocal(indptr, indices, reciprocal, extra)
    xadj = np.empty_like(indptr)
    xadj[0] = 0
    extra += np.diff(indptr)  # symmetric degree: in-degree plus the missing reverses
    np.cumsum(extra, out=xadj[1:])
    del extra
    adjncy = np.empty(int(xadj[-1]), dtype=np.int64)
    _fill_symmetric(indptr, indices, reciprocal, xadj, adjncy)
    return xadj, adjncy


@numba.njit(cache=True, nogil=True)
def _advance_to(indices, cursor, end, u, v):
    """Whether v is an in-neighbour of u, moving u's cursor past everything below v.

    The callers ask about each row with increasing v (v is their outer loop), so cursors only
    move forward: O(E) in all, against O(E log d) for a binary search per edge.
    """
    c = cursor[u]
    while c < end and indices[c] < v:
        c += 1
    cursor[u] = c
    return c < end and indices[c] == v


@numba.njit(cache=True, nogil=True)
def _is_symmetric(indptr, indices):
    """Whether every edge u -> v has its reverse (rows sorted, no duplicates).

    Checks only edges with u > v: if each has its reverse (an edge with u < v) and both kinds
    are equally many, the reversal is a bijection between them, so all edges have reverses.
    """
    cursor = indptr[:-1].copy()
    up, down = 0, 0
    for v in range(indptr.size - 1):
        for e in range(indptr[v], indptr[v + 1]):
            u = indices[e]
            if u < v:
                down += 1
            else:
                up += 1
                if not _advance_to(indices, cursor, indptr[u + 1], u, v):
                    return False
    return up == down


@numba.njit(cache=True, nogil=True)
def _mark_reciprocal(indptr, indices, reciprocal, extra):
    """reciprocal[e] = edge e (u -> v) has its reverse v -> u; extra[u] counts the reverses missing."""
    cursor = indptr[:-1].copy()
    for v in range(indptr.size - 1):
        for e in range(indptr[v], indptr[v + 1]):
            u = indices[e]
            reciprocal[e] = _advance_to(indices, cursor, indptr[u + 1], u, v)
            if not reciprocal[e]:
                extra[u] += 1


@numba.njit(cache=True, nogil=True)
def _fill_symmetric(indptr, indices, reciprocal, xadj, adjncy):
    """Row v of the result: v's in-neighbours, then every w with a non-reciprocated edge v -> w."""
    n = indptr.size - 1
    cursor = np.empty(n, dtype=np.int64)
    for v in range(n):
        cursor[v] = xadj[v] + indptr[v + 1] - indptr[v]
    for v in range(n):
        start = xadj[v]
        for e in range(indptr[v], indptr[v + 1]):
            u = indices[e]
            adjncy[start + e - indptr[v]] = u
            if not reciprocal[e]:
                adjncy[cursor[u]] = v
                cursor[u] += 1
