"""Edge-list files with optional per-node feature and label files.

Edges: ``.csv`` (comma), ``.tsv`` (tab) or ``.txt`` (any whitespace) with two integer columns
``src dst`` (further columns are ignored), ``#`` comment lines and an optional header line
(detected: a first line whose first two fields are not integers); or ``.parquet`` (columns
``src``/``dst`` if present, else the first two; needs pyarrow). Node ids are global ids
starting at 0.

``SourceConfig.features``: ``.npy`` (no pickle) or a text table, one row per node. Without it
the graph has no features (``x`` float32 [N, 0]) and partitioning stores structural ones
(see :meth:`gnndist.graph.Graph.input_features`).
``SourceConfig.labels``: ``.npy`` or a text table with one class per node (``-1``, ``nan`` or
an empty field: no label), an integer id or a class name; names are numbered in sorted order
and kept as :attr:`gnndist.graph.Graph.class_names`. Text tables may have a header row and
an id column, and a labels table several columns (``SourceConfig.label_column``): see
:mod:`gnndist.sources.tables`. The class count is ``SourceConfig.num_classes`` or the largest
label + 1, checked by :func:`gnndist.graph.class_count`. The node count is the row count of
those files when given (they must agree, and every edge must name a node they have a row for),
else the largest edge id + 1. Without labels every node is ``UNLABELLED`` and the splits are empty.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gnndist.config import SourceConfig
from gnndist.graph import UNLABELLED, Graph, GraphError, class_count
from gnndist.sources._io import DELIMITERS, load_table, parses_as, require_file, table_layout
from gnndist.sources.splits import choose_split
from gnndist.sources.tables import read_features, read_labels

SUFFIXES = (*DELIMITERS, ".parquet")


def load_edgelist(path: Path, config: SourceConfig) -> Graph:
    """The graph of edge file ``path`` with ``config.features`` / ``config.labels`` files."""
    src, dst = read_edges(path)
    origin = str(path)
    if src.size == 0:
        raise GraphError(origin, "the edge file holds no edges", "an empty graph cannot be partitioned")
    x = read_features(Path(config.features), config) if config.features else None
    y, class_names = read_labels(Path(config.labels), config) if config.labels else (None, None)
    n = _num_nodes(src, dst, x, y, config, origin)
    if y is None:
        y = np.full(n, UNLABELLED, dtype=np.int64)
    labels_origin = config.labels or origin
    num_classes = class_count(y, labels_origin, config.num_classes)
    train, val, test = choose_split(config.split, y, seed=config.seed, origin=labels_origin)
    return Graph.from_edges(src, dst, num_nodes=n, x=x, y=y, num_classes=num_classes, labels_origin=labels_origin,
                            train_mask=train, val_mask=val, test_mask=test, name=path.stem, origin=origin,
                            undirected=config.undirected, meta={"format": "edgelist"}, class_names=class_names)


def read_edges(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """int64 [E] source and target ids from an edge-list file."""
    require_file(path, "edge list")
    if path.suffix.lower() == ".parquet":
        return _read_parquet(path)
    layout = table_layout(path, lambda first, _: not all(parses_as(v, int) for v in first[:2]))
    table = load_table(path, np.int64, skip_rows=layout.skip_rows, usecols=(0, 1))
    return table[:, 0].copy(), table[:, 1].copy()


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
