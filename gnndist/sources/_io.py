"""Small readers shared by the file-format modules: safe ``.npy``/``.npz`` and text tables.

Every reader turns a failure into a :class:`~gnndist.graph.GraphError` that names the file, so a
user sees which of several files (edges, features, labels) is at fault.
"""

from __future__ import annotations

import csv
import gzip
import math
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gnndist.graph import UNLABELLED, GraphError

#: Column separator by suffix; ``None`` splits on any whitespace (SNAP-style ``.txt`` files).
DELIMITERS = {".csv": ",", ".tsv": "\t", ".txt": None}


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a GraphError saying which input is missing."""
    if not path.is_file():
        raise GraphError(str(path), f"{what} file not found", "check the path")
    return path


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file, read without pickle (object arrays are refused)."""
    require_file(path, "npz")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {key: f[key] for key in f.files}
    except ValueError as e:  # numpy raises ValueError for object arrays when pickle is off
        raise GraphError(str(path), f"cannot read without pickle: {e}",
                         "re-save the arrays as plain numeric arrays; pickled files are refused") from e
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise _unreadable_npz(path, e) from e


def npz_keys(path: Path) -> set[str]:
    """Names of the arrays in an ``.npz`` file (reads the zip directory only)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return set(f.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise _unreadable_npz(path, e) from e


def _unreadable_npz(path: Path, error: Exception) -> GraphError:
    # An .npz is a zip archive whose directory sits at its end, so a truncated copy fails here.
    return GraphError(str(path), f"not a readable .npz file ({path.stat().st_size:,} bytes): {error}",
                      "a zip archive cut short (an interrupted copy or download) reads like this: write it again")


def require_keys(arrays: dict[str, np.ndarray], keys: tuple[str, ...], path: Path) -> None:
    """GraphError naming the file and the missing keys if any of ``keys`` is absent."""
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise GraphError(str(path), f"missing arrays {missing}", f"the file holds {sorted(arrays)}")


def load_npy(path: Path) -> np.ndarray:
    """One ``.npy`` array, read without pickle; a file shorter than its header says is refused as
    truncated, with both sizes (numpy alone reports it as a failed read)."""
    require_file(path, "array")
    _check_npy_size(path)
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        raise GraphError(str(path), f"cannot read without pickle: {e}",
                         "save a plain numeric array with np.save; pickled files are refused") from e


def _check_npy_size(path: Path) -> None:
    """GraphError if the ``.npy`` file at ``path`` holds fewer bytes than its header declares."""
    header_readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            if version not in header_readers:
                return  # np.load reads (and checks) the rarer versions itself
            shape, _, dtype = header_readers[version](f)
        except ValueError as e:
            raise GraphError(str(path), f"not a .npy file: {e}", "save the array with np.save") from e
        data_start = f.tell()
    if dtype.hasobject:
        return  # np.load refuses object arrays (they need pickle) with its own message
    expected = data_start + math.prod(shape) * dtype.itemsize
    actual = path.stat().st_size
    if actual < expected:
        raise GraphError(str(path), f"truncated: its header declares a {dtype} array of shape {shape}, "
                         f"{expected:,} bytes in all, but the file has {actual:,} bytes",
                         "it was cut short, e.g. by an interrupted copy or download or a full disk: write it again")


def _delimiter(path: Path) -> str | None:
    """The column separator of a text table: by the suffix before any ``.gz`` (:data:`DELIMITERS`)."""
    inner = path.with_suffix("") if path.suffix == ".gz" else path
    return DELIMITERS.get(inner.suffix.lower(), ",")


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.suffix == ".gz" else open(path)


@dataclass(frozen=True)
class Layout:
    """Where a text table's data starts. ``skip_rows``: lines before it (``np.loadtxt`` counts
    comment lines among them), so a header line goes too; ``names``: the header's fields, ``None``
    without a header; ``width``: fields in the table's first line (0 for an empty table)."""

    skip_rows: int
    names: tuple[str, ...] | None
    width: int


def table_layout(path: Path, is_header: Callable[[list[str], list[str] | None], bool]) -> Layout:
    """The :class:`Layout` of a text table; ``is_header(first, second)`` says from the fields of
    its first two non-comment lines (``second`` is ``None`` in a one-line table) whether the
    first is a header."""
    require_file(path, "table")
    delimiter = _delimiter(path)
    lines: list[tuple[int, list[str]]] = []
    with _open_text(path) as f:
        for i, line in enumerate(f):
            if line.strip() and not line.lstrip().startswith("#"):
                lines.append((i, _fields(line, delimiter)))
                if len(lines) == 2:
                    break
    if not lines:
        return Layout(0, None, 0)
    (i, first), second = lines[0], (lines[1][1] if len(lines) > 1 else None)
    if is_header(first, second):
        return Layout(i + 1, tuple(first), len(first))
    return Layout(0, None, len(first))


def parses_as(text: str, kind: type) -> bool:
    """Whether ``kind(text)`` (``int`` or ``float``) reads ``text`` as a number."""
    try:
        kind(text)
    except ValueError:
        return False
    return True


def _fields(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return line.split()
    return [v.strip() for v in next(csv.reader([line], delimiter=delimiter, quotechar='"'))]


def load_table(path: Path, dtype, *, skip_rows: int = 0, usecols=None) -> np.ndarray:
    """A text table as a 2-d array [rows, columns] of ``dtype`` (a number type, or ``str`` for
    the fields as text); ``.gz`` files are decompressed.

    The delimiter follows the suffix before ``.gz`` (see :data:`DELIMITERS`); ``#`` starts a
    comment, and in a delimited file ``"`` quotes a field (a name holding the delimiter, in a
    column not read). An empty file gives zero rows.
    """
    require_file(path, "table")
    delimiter = _delimiter(path)
    quoting = {} if delimiter is None else {"quotechar": '"'}
    try:
        with _open_text(path) as f, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "loadtxt: input contained no data")
            # NumPy 1.x reads "1.5" in an integer column as 1, with only this warning; as an
            # error it is the ValueError NumPy 2 raises, so a fractional id is refused on both.
            warnings.filterwarnings("error", r"loadtxt\(\): Parsing an integer via a float", DeprecationWarning)
            table = np.loadtxt(f, dtype=dtype, delimiter=delimiter, comments="#", skiprows=skip_rows,
                               usecols=usecols, ndmin=2, **quoting)
    except (ValueError, OSError, EOFError) as e:
        raise GraphError(str(path), f"cannot read a numeric table: {e}",
                         "expected numbers separated by " + (repr(delimiter) if delimiter else "whitespace")) from e
    return table


def labels_from_array(values: np.ndarray, origin: str) -> np.ndarray:
    """int64 [N] class ids from a label column; NaN (a missing label) becomes ``UNLABELLED``.
    Their range is checked by :func:`gnndist.graph.class_count`.

    A 2-d array with more than one column is multi-label, which node classification here does
    not support, so it is refused.
    """
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise GraphError(origin, f"labels have shape {values.shape}: multi-label targets are not supported",
                         "give one integer class per node")
    if np.issubdtype(values.dtype, np.integer):
        labels = values.astype(np.int64)
    else:
        missing = np.isnan(values)
        filled = np.where(missing, UNLABELLED, values)
        if not np.all(np.mod(filled, 1) == 0):
            raise GraphError(origin, "labels are not integer class ids", "give one integer class per node")
        labels = filled.astype(np.int64)
    return labels


#: Text fields that mean "no label" in a column of class names (as ``-1`` and ``nan`` do in a numeric one).
MISSING_LABELS = ("", "-1", "nan")


def labels_from_text(values: np.ndarray, origin: str) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """``(class ids int64 [N], class names)`` from a label column read as text (str [N]).

    A column of numbers gives their ids as :func:`labels_from_array` does, and no names. A
    column of class names (``Neural_Networks``, ``Theory``, ...) numbers them in sorted order,
    so that the same names always get the same ids, and gives the names; an empty field,
    ``-1`` or ``nan`` is a node without a label. A column of both is refused: a number among
    names (or a name among numbers) is more likely a typo than a class.
    """
    values = np.char.strip(np.asarray(values, dtype=str))
    missing = np.isin(np.char.lower(values), MISSING_LABELS)
    unique, ids = np.unique(values[~missing], return_inverse=True)
    names = tuple(unique.tolist())
    numbers = [name for name in names if parses_as(name, float)]
    if len(numbers) == len(names):
        return labels_from_array(np.where(missing, "nan", values).astype(np.float64), origin), None
    if numbers:
        text = next(name for name in names if not parses_as(name, float))
        raise GraphError(origin, f"the labels mix class ids and class names (e.g. {numbers[0]!r} and {text!r})",
                         "give every labelled node a class id, or every one a class name")
    labels = np.full(values.size, UNLABELLED, dtype=np.int64)
    labels[~missing] = ids
    return labels, names


def ids_to_mask(ids: np.ndarray, num_nodes: int, origin: str) -> np.ndarray:
    """bool [num_nodes] that is True at ``ids`` (global node ids)."""
    ids = np.asarray(ids).astype(np.int64).ravel()
    if ids.size and (ids.min() < 0 or ids.max() >= num_nodes):
        raise GraphError(origin, f"split node id {int(ids.max() if ids.max() >= num_nodes else ids.min())} "
                         f"is outside 0..{num_nodes - 1}")
    mask = np.zeros(num_nodes, dtype=bool)
    mask[ids] = True
    return mask


def check_rows(array: np.ndarray, num_nodes: int, what: str, origin: str) -> None:
    """GraphError if a per-node array does not have exactly ``num_nodes`` rows."""
    if array.shape[0] != num_nodes:
        raise GraphError(origin, f"{what} have {array.shape[0]} rows but the graph has {num_nodes} nodes",
                         "give one row per node, in node id order")
