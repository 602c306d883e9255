"""How a part holds its feature rows: dense or CSR, in float32, float16 or bfloat16.

Partition format 2 (see ``gnndist.partition.format``) stores features in one of two encodings,
chosen by the writer (``PartitionConfig.feature_storage``) and recorded in the manifest:

- ``dense``: one array [n, F];
- ``csr``: :class:`SparseRows`, the non-zero entries of each row (column ids and values), for
  bag-of-words features where most entries are 0 (Coauthor CS: 0.9% non-zero).

and one of three value types (``PartitionConfig.feature_dtype``, :data:`FEATURE_DTYPES`):
float32, float16, or bfloat16 kept as uint16 bit patterns (numpy has no bfloat16): the top 16
bits of the float32, rounded to nearest even. Rows travel in the stored type and encoding;
the worker turns a batch's rows into float32 (:func:`as_float32`) before the first layer.

Rows are copied as bit patterns (unsigned integers of the value's width): numba has no float16,
and a bitwise copy cannot change a value, so every path gives the bits the writer stored. An
absent CSR entry is +0.0, whose bit pattern is 0 in every type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit

from gnndist.partition.csc import gather_positions

#: Encodings recorded in the manifest (``graph.feature_encoding``).
DENSE, CSR = "dense", "csr"
#: ``auto`` stores features as CSR when fewer than this share of their entries are non-zero.
#: A CSR entry costs its column id (4 bytes) beside its value, so CSR is smaller below 50%
#: (float32) or 33% (16-bit); the margin pays for the scattered writes of densifying a row.
SPARSE_BELOW = 0.10
#: The largest finite float16: features beyond it would be stored as inf.
FLOAT16_MAX = float(np.finfo(np.float16).max)

_STORED = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16), "bfloat16": np.dtype(np.uint16)}
_BITS = {2: np.dtype(np.uint16), 4: np.dtype(np.uint32)}


def stored_dtype(name: str) -> np.dtype:
    """The numpy dtype that holds features of value type ``name`` (bfloat16: uint16)."""
    return _STORED[name]


def encode(values: np.ndarray, name: str) -> np.ndarray:
    """float32 ``values`` (any shape) in the stored type of ``name``, rounded to nearest even
    (float16 values beyond :data:`FLOAT16_MAX` become inf: see :func:`largest_magnitude`)."""
    values = np.asarray(values, dtype=np.float32)
    if name == "float32":
        return values
    if name == "float16":
        return values.astype(np.float16)
    import torch  # the partition servers never encode, and run without torch

    # torch rounds float32 to bfloat16 to nearest even, as the format says.
    return torch.from_numpy(np.ascontiguousarray(values)).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


def as_float32(rows: np.ndarray):
    """float32 torch tensor [n, F] of dense stored feature ``rows``, by their dtype: float32 as
    is (shared), float16 widened, uint16 read as bfloat16 bit patterns."""
    import torch

    if rows.dtype == np.uint16:
        return torch.from_numpy(rows.view(np.int16)).view(torch.bfloat16).float()
    tensor = torch.from_numpy(rows)
    return tensor if rows.dtype == np.float32 else tensor.float()


def bits(array: np.ndarray) -> np.ndarray:
    """``array`` (2- or 4-byte values) viewed as unsigned integers of its width, for bitwise copies."""
    return array.view(_BITS[array.dtype.itemsize])


@dataclass(frozen=True)
class SparseRows:
    """Feature rows in CSR: row ``i`` holds ``data[indptr[i]:indptr[i + 1]]`` at the columns
    ``indices[indptr[i]:indptr[i + 1]]``, every other column 0.

    ``indptr``: int64 [n + 1]; ``indices``: int32 [nnz], column ids in ``0..width-1``;
    ``data``: stored type [nnz]; ``width``: F. Rows are local to what holds them (a part's inner
    nodes, or the rows of one reply).
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    width: int

    @classmethod
    def from_dense(cls, rows: np.ndarray) -> SparseRows:
        """The CSR of dense stored ``rows`` [n, F]: every entry whose bits are not 0 (so -0.0 too)."""
        nonzero = bits(rows) != 0
        indptr = np.zeros(rows.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.count_nonzero(nonzero, axis=1), out=indptr[1:])
        _, columns = np.nonzero(nonzero)
        return cls(indptr, columns.astype(np.int32), rows[nonzero], rows.shape[1])

    @classmethod
    def from_scipy(cls, matrix, name: str) -> SparseRows:
        """The rows of a SciPy CSR ``matrix`` (float32 [n, F]), values in the stored type of ``name``."""
        return cls(matrix.indptr.astype(np.int64), matrix.indices.astype(np.int32),
                   encode(matrix.data, name), matrix.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        return self.indptr.shape[0] - 1, self.width

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.indptr.nbytes + self.indices.nbytes + self.data.nbytes)

    def take(self, rows: np.ndarray) -> SparseRows:
        """The CSR of ``rows`` (int64 [m], local), in that order."""
        indptr, pos = gather_positions(self.indptr, rows)
        return SparseRows(indptr, self.indices[pos], self.data[pos], self.width)

    def scatter(self, out: np.ndarray, at: np.ndarray, rows: np.ndarray) -> None:
        """``out[at[i]] = dense row rows[i]`` for every i: ``out`` [*, F] of the stored type."""
        _scatter(bits(out), at.astype(np.int64, copy=False), rows.astype(np.int64, copy=False), self.indptr,
                 self.indices, bits(np.asarray(self.data)))

    def toarray(self) -> np.ndarray:
        """All rows, dense [n, F] (stored type)."""
        out = np.empty(self.shape, dtype=self.dtype)
        everything = np.arange(self.shape[0], dtype=np.int64)
        self.scatter(out, everything, everything)
        return out


@njit(cache=True, nogil=True)
def _scatter(out, at, rows, indptr, indices, data):
    for i in range(rows.size):
        d, r = at[i], rows[i]
        out[d, :] = 0
        for k in range(indptr[r], indptr[r + 1]):
            out[d, indices[k]] = data[k]


def density(x) -> float:
    """Share of the entries of features ``x`` (float32 [N, F], ndarray or SciPy sparse) that are
    non-zero (1 for a matrix without entries)."""
    cells = x.shape[0] * x.shape[1]
    if not cells:
        return 1.0
    nonzero = x.nnz if sp.issparse(x) else int(np.count_nonzero(x))
    return nonzero / cells


def largest_magnitude(x) -> float:
    """The largest absolute value among features ``x`` (ndarray or SciPy sparse), 0 when empty."""
    values = x.data if sp.issparse(x) else x
    return float(np.abs(values).max()) if values.size else 0.0


def choose_encoding(storage: str, share: float) -> str:
    """:data:`DENSE` or :data:`CSR` for ``PartitionConfig.feature_storage`` and features of
    ``share`` non-zero entries (:func:`density`)."""
    if storage == "auto":
        return CSR if share < SPARSE_BELOW else DENSE
    return CSR if storage == "sparse" else DENSE


def part_features(x, rows: np.ndarray, encoding: str, name: str) -> np.ndarray | SparseRows:
    """The stored features of ``rows`` (int64 [n], ids of ``x``) of features ``x`` (float32
    [N, F], ndarray or SciPy CSR): a dense array or :class:`SparseRows` in the stored type of
    ``name``. Only these rows are ever dense at once."""
    if sp.issparse(x):  # row indexing keeps it sparse
        piece = x[rows]
        if encoding == CSR:
            return SparseRows.from_scipy(piece, name)
        return encode(piece.toarray(), name)
    dense = encode(np.ascontiguousarray(x[rows]), name)
    return SparseRows.from_dense(dense) if encoding == CSR else dense


def same_rows(a: np.ndarray | SparseRows, b: np.ndarray | SparseRows) -> bool:
    """Whether two stored feature matrices hold the same encoding, shape and bits."""
    if isinstance(a, SparseRows) and isinstance(b, SparseRows):
        return (a.width == b.width and a.dtype == b.dtype and np.array_equal(a.indptr, b.indptr)
                and np.array_equal(a.indices, b.indices) and np.array_equal(bits(a.data), bits(b.data)))
    if isinstance(a, SparseRows) or isinstance(b, SparseRows):
        return False
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(bits(a), bits(b))
