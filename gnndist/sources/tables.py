"""Per-node files that go with an edge list: labels and features, as ``.npy`` or text tables,
and features also as a SciPy sparse matrix in ``.npz`` (``scipy.sparse.save_npz``), which stay
sparse.

A text table (``.csv``/``.tsv``/``.txt``, optionally ``.gz``) may start with a header row: a
first line with a field that is not a number where the line after has one in that column (so a
table whose rows carry text, such as names, is still read without a header). It may have an id
column (``SourceConfig.id_column``, or by default a header column named ``id``, ``node`` or
``node_id``, as the MUSAE/karateclub ``id,target`` files have); its rows are then placed by
id, in any order, and every node 0..N-1 needs exactly one row. Without an id column, row i is
node i. A labels table's classes come from ``SourceConfig.label_column``, by default its only
other column. Only the columns used are parsed, so other columns may hold text.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from gnndist.config import SourceConfig, setting
from gnndist.graph import GraphError, check_finite
from gnndist.sources._io import (
    Layout,
    labels_from_array,
    labels_from_text,
    load_npy,
    load_table,
    parses_as,
    require_file,
    table_layout,
)

#: Header names taken for the id column when ``SourceConfig.id_column`` is not given.
ID_NAMES = ("id", "node", "node_id")


def read_labels(path: Path, config: SourceConfig) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """``(class ids, class names)``: int64 [N] class ids in node id order (``UNLABELLED`` where
    a row has ``-1``, ``nan`` or nothing), and the names of the classes when the labels are
    text, numbered in sorted order (see :func:`~gnndist.sources._io.labels_from_text`), else ``None``."""
    if path.suffix == ".npy":
        if config.label_column is not None:
            raise GraphError(str(path), "source.label_column picks a column of a text table, but this is an "
                             ".npy array", "save one class per node in it, or give the labels as a table")
        values = load_npy(path)
        if values.dtype.kind in "US":  # an array of class names
            return labels_from_text(values.ravel() if values.ndim == 2 and values.shape[1] == 1 else values,
                                    str(path))
        return labels_from_array(values, str(path)), None
    layout = table_layout(path, _is_header)
    if layout.width == 0:
        return np.empty(0, dtype=np.int64), None
    ids = _id_column(layout, config.id_column, path)
    column = _label_column(layout, config.label_column, ids, path)
    values = load_table(path, str, skip_rows=layout.skip_rows, usecols=(column,))[:, 0]
    return labels_from_text(_by_id(values, layout, ids, path), str(path))


def read_features(path: Path, config: SourceConfig) -> np.ndarray | sp.csr_matrix:
    """float32 [N, F] features in node id order: every column of a table but its id column, or
    the rows of a sparse ``.npz`` (kept sparse)."""
    if path.suffix == ".npz":
        return _sparse_features(path)
    if path.suffix == ".npy":
        x = load_npy(path)
    else:
        layout = table_layout(path, _is_header)
        ids = _id_column(layout, config.id_column, path)
        columns = [c for c in range(layout.width) if c != ids]
        if not columns and layout.width:
            raise GraphError(str(path), "the features table holds no column besides its id column",
                             "give one row of numbers per node")
        x = _by_id(load_table(path, np.float32, skip_rows=layout.skip_rows, usecols=columns or None),
                   layout, ids, path)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise GraphError(str(path), f"features must be a 2-d array [nodes, columns], got shape {x.shape}")
    check_finite(x, str(path))
    return x


def _sparse_features(path: Path) -> sp.csr_matrix:
    """The matrix of a ``scipy.sparse.save_npz`` file, read without pickle, as float32 CSR."""
    require_file(path, "features")
    try:
        matrix = sp.load_npz(path)  # np.load with allow_pickle=False
    except (ValueError, KeyError, NotImplementedError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise GraphError(str(path), f"not a SciPy sparse matrix saved by scipy.sparse.save_npz ({e})",
                         "save the features with scipy.sparse.save_npz, or as a dense .npy") from None
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
        raise GraphError(str(path), f"features must be a numeric 2-d matrix [nodes, columns], got "
                         f"{matrix.dtype} of shape {matrix.shape}")
    x = sp.csr_matrix(matrix, dtype=np.float32)
    check_finite(x, str(path))
    return x


def _is_header(first: list[str], second: list[str] | None) -> bool:
    return any(not parses_as(a, float) and (second is None or b is None or parses_as(b, float))
               for a, b in zip(first, second or [None] * len(first), strict=False))


def _column(given: str | int, layout: Layout, path: Path, key: str) -> int:
    """The index of the column ``given`` names: a header name, else an index from 0."""
    text = str(given)
    if layout.names and text in layout.names:
        return layout.names.index(text)
    if text.isdigit() and int(text) < layout.width:
        return int(text)
    have = (f"its header names {', '.join(layout.names)}" if layout.names
            else f"it has no header row and {layout.width} columns")
    raise GraphError(str(path), f"{key} {text!r} names no column of it: {have}",
                     f"give {key} as a column name or an index 0..{layout.width - 1}")


def _id_column(layout: Layout, given: str | int | None, path: Path) -> int | None:
    if given is not None:
        return _column(given, layout, path, "source.id_column")
    found = [i for i, name in enumerate(layout.names or ()) if name.lower() in ID_NAMES]
    return found[0] if found else None


def _label_column(layout: Layout, given: str | int | None, ids: int | None, path: Path) -> int:
    if given is not None:
        column = _column(given, layout, path, "source.label_column")
        if column == ids:
            raise GraphError(str(path), f"source.label_column {given!r} is its id column",
                             "name the column that holds the classes")
        return column
    others = [c for c in range(layout.width) if c != ids]
    if len(others) != 1:
        names = [layout.names[c] for c in others] if layout.names else others
        raise GraphError(str(path), f"it has {len(others)} columns besides the id column ({names}): "
                         "which one holds the labels?",
                         f"name it, e.g. {setting('source.label_column', names[-1] if names else 1)}")
    return others[0]


def _by_id(values: np.ndarray, layout: Layout, ids: int | None, path: Path) -> np.ndarray:
    """``values`` (one row per table row) reordered so that row i is node i's, by the id column."""
    if ids is None:
        return values
    node = load_table(path, np.int64, skip_rows=layout.skip_rows, usecols=(ids,))[:, 0]
    name = f"id column {layout.names[ids]!r}" if layout.names else f"id column {ids}"
    n = node.size
    counts = np.bincount(node[(node >= 0) & (node < n)], minlength=n)
    if np.any(counts > 1):
        twice = int(np.flatnonzero(counts > 1)[0])
        raise GraphError(str(path), f"node {twice} has {counts[twice]} rows (its {name})",
                         "give every node exactly one row")
    if np.any(counts == 0):
        outside = node[(node < 0) | (node >= n)]
        raise GraphError(str(path), f"no row for node {int(np.flatnonzero(counts == 0)[0])}: the {name} of its "
                         f"{n:,} rows should hold 0..{n - 1} once each, but holds {int(outside[0])}",
                         "give every node exactly one row, ids from 0 as in the edge list")
    placed = np.empty_like(values)
    placed[node] = values
    return placed
