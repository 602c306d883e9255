"""The one in-memory graph type that every source produces and every partitioner reads.

Id space: "global ids" here are the source graph's node ids 0..N-1 in the order the source gave
them (partitioning later relabels them; see ``gnndist.partition.format``).

Edges are stored as CSC in-edges: the in-neighbours of node ``v`` are
``indices[indptr[v]:indptr[v + 1]]``, sorted ascending. Sampling reads a node's neighbours from
there directly, as PyG's ``NeighborLoader`` samples along ``edge_index[0] -> edge_index[1]``.

Documented handling of messy input (applied by :meth:`Graph.from_edges`):
- duplicate edges are merged into one;
- self-loops are dropped (models that want them add their own, e.g. ``GCNConv``), and the number
  dropped is kept in ``Graph.dropped_self_loops``;
- isolated nodes are kept: they are nodes, they get a part and count towards balance;
- features are dense (``np.ndarray``) or sparse (``scipy.sparse.csr_matrix``, kept sparse from
  the source to the partition: bag-of-words features are mostly zeros), float32 either way;
- a graph without features is legal: it holds features float32 [N, 0] as given, and partitioning
  stores :meth:`Graph.input_features` instead, two structural columns (a constant 1 and
  ``log(1 + in-degree)``), so that every model has an input (see :data:`DEGREE_FEATURES`);
- the class count is the largest label + 1 unless given; a count that the labels make
  implausible is refused (see :func:`class_count`), and a given count must exceed every label.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

#: Label of a node without a class (it may sit in no split, or only in unsupervised use).
UNLABELLED = -1

#: :meth:`Graph.input_features` kinds: the graph's own features, or structural ones for a graph
#: without features (recorded as ``graph.features`` in a partition manifest).
GIVEN_FEATURES, DEGREE_FEATURES = "given", "degree"

#: An inferred class count (largest label + 1) is implausible above this many times the number of
#: distinct labels: the labels are then ids of something else or hold a typo, and the model's
#: output layer is as wide as the count (a label of 10^9 would ask for hundreds of GB).
CLASS_GAP_FACTOR = 10


class GraphError(ValueError):
    """Bad graph input. The message names the origin (a file or an object) and the problem."""

    def __init__(self, origin: str, problem: str, hint: str = ""):
        self.origin = origin
        self.problem = problem
        message = f"{origin}: {problem}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


@dataclass(frozen=True, eq=False)
class Graph:
    """A node-classification graph held in memory.

    Attributes (N nodes, E edges, F feature columns, all ids global):
        name: short dataset name, e.g. ``"cora"``.
        indptr: int64 [N + 1], CSC offsets of each node's in-edges.
        indices: int64 [E], source node of each in-edge, grouped by destination.
        features: float32 [N, F] node features, a dense ``np.ndarray`` or a canonical
            ``scipy.sparse.csr_matrix`` (sorted columns, no duplicates); F = 0 for a graph
            without features, which partitioning gives structural input features instead
            (:meth:`input_features`). :attr:`x` is them as a dense torch tensor.
        y: int64 [N] class labels in ``[0, num_classes)``, or ``UNLABELLED``.
        train_mask, val_mask, test_mask: bool [N], pairwise disjoint.
        num_classes: number of classes.
        origin: where the graph came from (a path or a description), used in error messages.
        dropped_self_loops: self-loops removed while building the graph.
        class_names: each class id's name, where the source has them (text labels, a
            gnn-benchmark file's ``class_names``), else ``None``.
    """

    name: str
    indptr: torch.Tensor
    indices: torch.Tensor
    features: np.ndarray | sp.csr_matrix
    y: torch.Tensor
    train_mask: torch.Tensor
    val_mask: torch.Tensor
    test_mask: torch.Tensor
    num_classes: int
    origin: str
    dropped_self_loops: int = 0
    meta: dict = field(default_factory=dict)
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_edges(
        cls,
        src: np.ndarray | torch.Tensor,
        dst: np.ndarray | torch.Tensor,
        *,
        num_nodes: int,
        x: np.ndarray | torch.Tensor | sp.spmatrix | sp.sparray | None,
        y: np.ndarray | torch.Tensor,
        train_mask: np.ndarray | torch.Tensor,
        val_mask: np.ndarray | torch.Tensor,
        test_mask: np.ndarray | torch.Tensor,
        num_classes: int | None = None,
        labels_origin: str | None = None,
        name: str,
        origin: str,
        undirected: bool = False,
        meta: dict | None = None,
        class_names: tuple[str, ...] | None = None,
    ) -> Graph:
        """Build a graph from an edge list ``src[i] -> dst[i]`` (int, global ids, length E).

        With ``undirected=True`` every edge is also added reversed. Duplicates are merged and
        self-loops dropped (see the module docstring). ``x``: features [N, F], dense, SciPy
        sparse or a torch sparse tensor (sparse ones stay sparse, as CSR). ``num_classes`` defaults to ``max(y) + 1``,
        checked by :func:`class_count`, whose errors name ``labels_origin`` (default ``origin``).
        """
        src = _as_int64(src, origin, "edge sources")
        dst = _as_int64(dst, origin, "edge targets")
        if src.shape != dst.shape or src.ndim != 1:
            raise GraphError(origin, f"edge arrays differ in shape: {src.shape} sources vs {dst.shape} targets")
        _check_ids(src, num_nodes, origin)
        _check_ids(dst, num_nodes, origin)
        indptr, indices, loops = _build_csc(src, dst, num_nodes, undirected)
        y_t = torch.as_tensor(np.asarray(y)).to(torch.int64)
        num_classes = class_count(y_t.numpy(), labels_origin or origin, num_classes)
        features = np.zeros((num_nodes, 0), dtype=np.float32) if x is None else as_features(x, origin)
        return cls(
            name=name,
            indptr=torch.from_numpy(indptr),
            indices=torch.from_numpy(indices),
            features=features,
            y=y_t,
            train_mask=torch.as_tensor(np.asarray(train_mask)).to(torch.bool),
            val_mask=torch.as_tensor(np.asarray(val_mask)).to(torch.bool),
            test_mask=torch.as_tensor(np.asarray(test_mask)).to(torch.bool),
            num_classes=int(num_classes),
            origin=origin,
            dropped_self_loops=loops,
            meta=dict(meta or {}),
            class_names=class_names,
        )

    # ------------------------------------------------------------------ validation

    def validate(self) -> None:
        """Refuse an inconsistent graph with a :class:`GraphError` naming ``origin``."""
        n = self.num_nodes
        if n <= 0:
            raise GraphError(self.origin, "the graph has no nodes", "an empty graph cannot be partitioned")
        if self.indptr.dtype != torch.int64 or self.indices.dtype != torch.int64:
            raise GraphError(self.origin, "indptr and indices must be int64")
        if int(self.indptr[0]) != 0 or int(self.indptr[-1]) != self.indices.numel():
            raise GraphError(self.origin, "indptr does not span indices")
        if self.indices.numel() and (int(self.indices.min()) < 0 or int(self.indices.max()) >= n):
            raise GraphError(self.origin, f"an edge names a node outside 0..{n - 1}")
        for what, t in (("features", self.features), ("labels", self.y), ("train_mask", self.train_mask),
                        ("val_mask", self.val_mask), ("test_mask", self.test_mask)):
            if t.shape[0] != n:
                raise GraphError(self.origin, f"{what} have {t.shape[0]} rows but the graph has {n} nodes")
        self._validate_features()
        self._validate_labels()

    def _validate_features(self) -> None:
        x = self.features
        if sp.issparse(x):
            if x.format != "csr" or x.dtype != np.float32 or not x.has_canonical_format:
                raise GraphError(self.origin, f"sparse features must be a canonical float32 CSR matrix, got "
                                 f"{x.format} {x.dtype}", "build the graph with Graph.from_edges")
            check_finite(x, self.origin)
            return
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 2:
            raise GraphError(self.origin, f"features must be float32 [N, F], got {type(x).__name__} "
                             f"{getattr(x, 'dtype', '')} {tuple(getattr(x, 'shape', ()))}")
        check_finite(x, self.origin)

    def _validate_labels(self) -> None:
        y = self.y
        class_count(y.numpy(), self.origin, self.num_classes)  # refuses a label outside the classes
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise GraphError(self.origin, f"{len(self.class_names)} class names for {self.num_classes} classes",
                             "give one name per class, or none")
        overlap = (self.train_mask.int() + self.val_mask.int() + self.test_mask.int()) > 1
        if bool(overlap.any()):
            raise GraphError(self.origin, f"node {int(torch.nonzero(overlap)[0])} is in more than one split")
        labelled = self.train_mask | self.val_mask | self.test_mask
        if bool((labelled & (y == UNLABELLED)).any()):
            raise GraphError(self.origin, "a node in a split has no label")

    # ------------------------------------------------------------------ views

    @property
    def num_nodes(self) -> int:
        return self.indptr.numel() - 1

    @property
    def num_edges(self) -> int:
        return self.indices.numel()

    @property
    def feature_dim(self) -> int:
        return self.features.shape[1]

    @property
    def x(self) -> torch.Tensor:
        """float32 [N, F] features as a dense tensor (shares memory with dense features; sparse
        ones are densified, N * F * 4 bytes: for small graphs and baselines, never partitioning)."""
        x = self.features
        return torch.from_numpy(x.toarray() if sp.issparse(x) else x)

    def in_degree(self) -> torch.Tensor:
        """int64 [N]: number of in-edges of each node."""
        return self.indptr[1:] - self.indptr[:-1]

    def edge_index(self) -> torch.Tensor:
        """int64 [2, E]: rows (source, target), global ids, in CSC order (grouped by target)."""
        dst = torch.repeat_interleave(torch.arange(self.num_nodes), self.in_degree())
        return torch.stack([self.indices, dst])

    def iter_in_edge_chunks(self, max_edges: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(first_node, indptr, indices)`` CSC slices holding about ``max_edges`` edges.

        ``indptr`` is int64 [n_chunk + 1] rebased to 0, ``indices`` int64 global ids; ``indices``
        is a view (no copy), so a consumer holds only its own O(num_nodes) state.
        """
        indptr = self.indptr.numpy()
        indices = self.indices.numpy()
        for start, stop in chunk_ranges(indptr, max_edges):
            lo, hi = indptr[start], indptr[stop]
            yield start, indptr[start:stop + 1] - lo, indices[lo:hi]

    def input_features(self) -> tuple[np.ndarray | sp.csr_matrix, str]:
        """The features a model reads: float32 [N, F'] (global ids, node order; dense or CSR as
        :attr:`features`) and their kind.

        The graph's own ``x`` (kind :data:`GIVEN_FEATURES`) when it has columns. A graph without
        features gets (kind :data:`DEGREE_FEATURES`) two columns computed from the whole graph,
        so that every part and every halo fetch see the same values: a constant 1 (a sum
        aggregator such as GIN's turns it into the degree; mean aggregators into "has
        in-neighbours") and ``log(1 + in-degree)``, logged so hubs do not swamp the scale.
        It costs 8 bytes a node, needs no parameters and no change to the halo exchange.
        """
        if self.feature_dim:
            return self.features, GIVEN_FEATURES
        x = np.ones((self.num_nodes, 2), dtype=np.float32)
        x[:, 1] = np.log1p(self.in_degree().numpy())
        return x, DEGREE_FEATURES

    def sha256(self) -> str:
        """Content hash of structure, features, labels and splits (hex). Sparse features hash
        their CSR arrays (the same values held dense hash differently): hashing them as dense
        rows would read N * F * 4 bytes."""
        h = hashlib.sha256()
        x = self.features
        features = (torch.from_numpy(x),) if not sp.issparse(x) else (
            torch.tensor(x.shape), torch.from_numpy(x.indptr), torch.from_numpy(x.indices), torch.from_numpy(x.data))
        for t in (self.indptr, self.indices, *features, self.y, self.train_mask, self.val_mask, self.test_mask):
            h.update(str((t.dtype, tuple(t.shape))).encode())
            # A flat byte view hashes the same bytes as before; memoryview.cast refuses an empty
            # [N, 0] feature array (a graph without features).
            h.update(np.ascontiguousarray(t.numpy()).reshape(-1).view(np.uint8))
        return h.hexdigest()

    def summary(self) -> dict:
        """Plain-JSON description: sizes, split sizes, classes."""
        return {
            "name": self.name,
            "num_nodes": self.num_nodes,
            "num_edges": self.num_edges,
            "feature_dim": self.feature_dim,
            "num_classes": self.num_classes,
            **({} if self.class_names is None else {"class_names": list(self.class_names)}),
            "train": int(self.train_mask.sum()),
            "val": int(self.val_mask.sum()),
            "test": int(self.test_mask.sum()),
            "dropped_self_loops": self.dropped_self_loops,
        }


def check_finite(x: np.ndarray | sp.csr_matrix, origin: str) -> None:
    """GraphError naming the first NaN/inf in ``x`` (float [N, F] features from ``origin``,
    dense or CSR: only its stored values are read)."""
    values = x.data if sp.issparse(x) else x
    # A float64 sum of float32 values is finite exactly when every value is (finite float32
    # values cannot overflow it); numpy casts in small buffers, where torch.isfinite or a torch
    # float64 sum would allocate an [N, F] temporary (670 MB on the 1M-node benchmark graph).
    if values.size == 0 or math.isfinite(float(values.sum(dtype=np.float64))):
        return
    if sp.issparse(x):
        k = int(np.flatnonzero(~np.isfinite(values))[0])
        node, col = int(np.searchsorted(x.indptr, k, side="right")) - 1, int(x.indices[k])
    else:
        node, col = (int(v) for v in np.argwhere(~np.isfinite(x))[0])
    raise GraphError(origin, f"features hold NaN or inf (first at node {node}, column {col})",
                     "clean or impute the features before loading")


def normalized_rows(x: np.ndarray | sp.csr_matrix, origin: str) -> np.ndarray | sp.csr_matrix:
    """``x`` (float32 [N, F], dense or CSR) normalised as PyG's ``NormalizeFeatures`` does it:
    shifted by its smallest value so that none is negative, then each row divided by its sum,
    or by 1 where the sum is below 1 (a row of zeros stays zeros). Bag-of-words counts become
    word frequencies, so that a long document does not give its node a larger input than a
    short one. A new array: ``x`` is not changed. Sparse features stay sparse: their implicit
    zeros make the smallest value 0 unless a stored value is negative, which would fill every
    zero, and is refused."""
    if sp.issparse(x):
        full = x.nnz == x.shape[0] * x.shape[1]
        low = float(x.data.min()) if x.nnz else 0.0
        if low < 0 and not full:
            raise GraphError(origin, "sparse features hold negative values: normalising them would shift every "
                                     "implicit zero",
                             "load them dense (a dense features file), or train without --normalize-features")
        out = x.copy()
        if full:
            out.data -= low
        sums = np.asarray(out.sum(axis=1), dtype=np.float32).ravel()
        out.data /= np.repeat(np.maximum(sums, 1.0), np.diff(out.indptr))
        return out
    out = x - (x.min() if x.size else np.float32(0))
    out /= np.maximum(out.sum(axis=1, keepdims=True), np.float32(1))
    return out


def class_count(y: np.ndarray, origin: str, given: int | None = None) -> int:
    """The number of classes of labels ``y`` (int64 [N], class ids or ``UNLABELLED``, node order).

    ``given`` (``SourceConfig.num_classes``, ``--num-classes``) is the count once every label is
    below it; else the count is the largest label + 1, refused as implausible when it exceeds the
    number of labelled nodes or :data:`CLASS_GAP_FACTOR` times the number of distinct labels.
    GraphErrors name ``origin`` (where the labels came from), the row (= node) and the value.
    """
    y = np.asarray(y)
    if y.size and int(y.min()) < UNLABELLED:
        row = int(np.argmax(y < UNLABELLED))
        raise GraphError(origin, f"label {int(y[row])} at row {row} (node {row}) is negative",
                         "labels must be class ids 0, 1, ..., or -1 for none")
    top = int(y.max()) if y.size else UNLABELLED
    if given is not None:
        if top >= given:
            row = int(np.argmax(y >= given))
            raise GraphError(origin, f"label {int(y[row])} at row {row} (node {row}) is not below the given "
                             f"class count {given}", "classes are 0..num_classes-1: fix the label or raise "
                             "source.num_classes")
        return given
    count = top + 1
    labelled = y[y != UNLABELLED]
    if count > labelled.size:
        problem = f"only {labelled.size:,} nodes are labelled"
    else:
        distinct = int(np.count_nonzero(np.bincount(labelled, minlength=count)))
        problem = f"only {distinct:,} distinct labels occur" if count > CLASS_GAP_FACTOR * distinct else ""
    if problem:
        row = int(np.argmax(y == top))
        raise GraphError(origin, f"the largest label, {top} at row {row} (node {row}), makes {count:,} classes "
                         f"but {problem}", "labels must be class ids 0..C-1: renumber them, or set the class "
                         "count with source.num_classes if it is right")
    return count


def chunk_ranges(indptr: np.ndarray, max_edges: int) -> Iterator[tuple[int, int]]:
    """Consecutive node ranges ``[start, stop)`` of a CSC (int64 [N + 1] offsets) holding at most
    ``max_edges`` edges each, except that a range always holds at least one node."""
    num_nodes = indptr.shape[0] - 1
    start = 0
    while start < num_nodes:
        stop = int(np.searchsorted(indptr, indptr[start] + max(max_edges, 1), side="right")) - 1
        stop = min(max(stop, start + 1), num_nodes)
        yield start, stop
        start = stop


def _as_int64(a, origin: str, what: str) -> np.ndarray:
    arr = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.mod(arr, 1) == 0):
            raise GraphError(origin, f"{what} are not integer node ids (dtype {arr.dtype})")
    return arr.astype(np.int64, copy=False).ravel() if arr.ndim <= 1 else arr.astype(np.int64, copy=False)


def as_features(a, origin: str) -> np.ndarray | sp.csr_matrix:
    """Features ``a`` ([N, F] or [N]: an array, a torch tensor, dense or sparse, or a SciPy
    sparse matrix) as float32: dense ones as a C-ordered ``np.ndarray``, sparse ones as a
    canonical CSR matrix (never densified)."""
    if isinstance(a, torch.Tensor) and a.layout != torch.strided:
        a = _torch_sparse_to_scipy(a, origin)
    if sp.issparse(a):
        if a.ndim != 2:
            raise GraphError(origin, f"features must be a 2-d matrix [nodes, columns], got shape {a.shape}")
        csr = sp.csr_matrix(a, dtype=np.float32, copy=True)  # the caller's matrix stays as it was
        csr.sum_duplicates()  # also sorts each row's columns
        return csr
    arr = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise GraphError(origin, f"features must be a 2-d array [nodes, columns], got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _torch_sparse_to_scipy(t: torch.Tensor, origin: str) -> sp.coo_matrix:
    """A 2-d torch sparse tensor (COO or CSR, PyG's ``SparseTensor`` converted by the caller) as SciPy COO."""
    if t.dim() != 2:
        raise GraphError(origin, f"sparse features must be 2-d [nodes, columns], got shape {tuple(t.shape)}")
    coo = t.to_sparse_coo().coalesce()
    rows, cols = coo.indices().numpy()
    return sp.coo_matrix((coo.values().numpy(), (rows, cols)), shape=tuple(t.shape))


def _check_ids(ids: np.ndarray, num_nodes: int, origin: str) -> None:
    if ids.size == 0:
        return
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= num_nodes:
        bad = lo if lo < 0 else hi
        raise GraphError(origin, f"edge endpoint {bad} is outside the node range 0..{num_nodes - 1}",
                         "check the node count or the id base (ids start at 0)")


def _build_csc(src: np.ndarray, dst: np.ndarray, num_nodes: int, undirected: bool):
    """Sort edges by (target, source), merge duplicates, drop self-loops.

    Returns ``(indptr int64 [N+1], indices int64 [E], dropped_self_loops)``.
    """
    loops = src == dst
    n_loops = int(loops.sum())
    if n_loops:
        src, dst = src[~loops], dst[~loops]
    if undirected:
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
    # One int64 key per edge sorts by target then source in a single pass (N^2 < 2^63 for N < 3e9).
    key = dst * np.int64(num_nodes) + src
    del src, dst
    key.sort()
    if key.size:
        keep = np.empty(key.size, dtype=bool)
        keep[0] = True
        np.not_equal(key[1:], key[:-1], out=keep[1:])
        key = key[keep]
    targets = key // num_nodes
    indices = key - targets * num_nodes
    indptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(targets, minlength=num_nodes), out=indptr[1:])
    return indptr, indices, n_loops
