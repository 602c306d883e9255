"""Edge-list files with optional per-node feature and label files.

Edges: ``.csv`` (comma), ``.tsv`` (tab) or ``.txt`` (any whitespace) with two integer columns
``src dst`` (further columns are ignored), ``#`` comment lines and an optional header line
(detected: a first line whose first two fields are not integers); or ``.parquet`` (columns
``src``/``dst`` if present, else the first two; needs pyarrow). Node ids are global ids
starting at 0.

``SourceConfig.features``: ``.npy`` (no pickle) or a text table, one row per node. Without it
the graph has no features (``x`` float32 [N, 0]) and partitioning stores structural ones
(see :meth:`gnndist.graph.Graph.input_features`).
``SourceConfig.labels``: ``.npy`` or a text file with one integer per line (``-1`` or ``nan``:
no label); the class count is ``SourceConfig.num_classes`` or the largest label + 1, checked by
:func:`gnndist.graph.class_count`. The node count is the row count of those files when given
(they must agree, and every edge must name a node they have a row for), else the largest edge
id + 1. Without labels every node is ``UNLABELLED`` and the splits are empty.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gnndist.config import SourceConfig
from gnndist.graph import UNLABELLED, Graph, GraphError, check_finite, class_count
from gnndist.sources._io import (
    DELIMITERS,
    labels_from_array,
    load_table,
    load_vector_or_matrix,
    require_file,
)
from gnndist.sources.splits import choose_split

SUFFIXES = (*DELIMITERS, ".parquet")


def load_edgelist(path: Path, config: SourceConfig) -> Graph:
    """The graph of edge file ``path`` with ``config.features`` / ``config.labels`` files."""
    src, dst = read_edges(path)
    origin = str(path)
    if src.size == 0:
        raise GraphError(origin, "the edge file holds no edges", "an empty graph cannot be partitioned")
    x = _read_features(Path(config.features)) if config.features else None
    y = labels_from_array(load_vector_or_matrix(Path(config.labels), np.float64), config.labels) \
        if config.labels else None
    n = _num_nodes(src, dst, x, y, config, origin)
    if y is None:
        y = np.full(n, UNLABELLED, dtype=np.int64)
    labels_origin = config.labels or origin
    num_classes = class_count(y, labels_origin, config.num_classes)
    train, val, test = choose_split(config.split, y, seed=config.seed, origin=labels_origin)
    return Graph.from_edges(src, dst, num_nodes=n, x=x, y=y, num_classes=num_classes, labels_origin=labels_origin,
                            train_mask=train, val_mask=val, test_mask=test, name=path.stem, origin=origin,
                            undirected=config.undirected, meta={"format": "edgelist"})


def read_edges(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """int64 [E] source and target ids from an edge-list file."""
    require_file(path, "edge list")
    if path.suffix.lower() == ".parquet":
        return _read_parquet(path)
    table = load_table(path, np.int64, skip_rows=_header_rows(path), usecols=(0, 1))
    return table[:, 0].copy(), table[:, 1].copy()


def _header_rows(path: Path) -> int:
    """Lines to skip so that a header line goes too: 0 without a header, else the header's
    line number + 1 (``np.loadtxt`` counts comment lines among the skipped rows)."""
    delimiter = DELIMITERS[path.suffix.lower()]
    with path.open() as f:
        for i, line in enumerate(f):
            if line.strip() and not line.lstrip().startswith("#"):
                fields = [v.strip() for v in line.split(delimiter)][:2]
                return 0 if all(_is_int(v) for v in fields) else i + 1
    return 0


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _read_parquet(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise GraphError(str(path), "reading Parquet needs pyarrow", "pip install gnndist[parquet]") from e
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises its own error types for corrupt files
        raise GraphError(str(path), f"not a readable Parquet file: {e}") from e
    names = table.column_names
    cols = ("src", "dst") if {"src", "dst"} <= set(names) else tuple(names[:2])
    if len(cols) < 2:
        raise GraphError(str(path), f"needs two id columns, found {names}", "name them src and dst")
    out = []
    for col in cols:
        values = table.column(col).to_numpy()
        if not np.issubdtype(values.dtype, np.integer):
            raise GraphError(str(path), f"column {col!r} holds {values.dtype}, not integer node ids")
        out.append(values.astype(np.int64))
    return out[0], out[1]


def _read_features(path: Path) -> np.ndarray:
    """float32 [N, F] features, one row per node."""
    x = load_vector_or_matrix(path, np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise GraphError(str(path), f"features must be a 2-d array [nodes, columns], got shape {x.shape}")
    check_finite(x, str(path))
    return x


def _num_nodes(src: np.ndarray, dst: np.ndarray, x: np.ndarray | None, y: np.ndarray | None,
               config: SourceConfig, origin: str) -> int:
    """Rows of the feature/label files (which must agree), else the largest edge id + 1."""
    top = int(max(src.max(), dst.max()))
    rows = {path: a.shape[0] for path, a in ((config.features, x), (config.labels, y)) if a is not None}
    if len(set(rows.values())) > 1:
        raise GraphError(config.features, f"the features file has {x.shape[0]:,} rows but the labels file "
                         f"{config.labels} has {y.shape[0]:,}", "give one row per node in both files, in node id order")
    if not rows:
        return top + 1
    path, n = next(iter(rows.items()))
    if n == 0:
        raise GraphError(path, "the graph has no nodes", "give at least one row per node")
    if top >= n:
        raise GraphError(origin, f"edge endpoint {top:,} names a node beyond the {n:,} rows of {path}",
                         "give one row per node (ids start at 0), or drop the edges of nodes without a row")
    return n
