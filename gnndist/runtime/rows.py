"""Copying feature rows between arrays: the hot loop of assembling a batch's features.

Rows are dense arrays or :class:`~gnndist.partition.features.SparseRows` (a CSR part's, or a
reply's), in their stored type; :func:`put_rows` writes either into a batch's dense rows and
:func:`take_rows` cuts either, keeping its encoding, for a reply.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gnndist.partition.features import SparseRows, bits


@njit(cache=True, nogil=True)
def _copy_rows(dst, dst_rows, src, src_rows):
    # An explicit loop over columns compiles to a vectorised copy: about twice as fast here as
    # numpy's fancy-index gather followed by a fancy-index scatter, and it needs no temporary.
    for i in range(src_rows.size):
        d, s = dst_rows[i], src_rows[i]
        for j in range(src.shape[1]):
            dst[d, j] = src[s, j]


def copy_rows(dst: np.ndarray, dst_rows: np.ndarray, src: np.ndarray, src_rows: np.ndarray) -> None:
    """``dst[dst_rows[i]] = src[src_rows[i]]`` for every i, in place (releases the GIL).

    ``dst`` and ``src``: 2-d arrays with the same dtype (of 2 or 4 bytes: copied as bit patterns)
    and number of columns (``src`` may be a memory map); ``dst_rows`` / ``src_rows``: int64 [n]
    row indices, which must be in range (they are not checked again here: callers derive them
    from ids they have validated).
    """
    src = np.asarray(src)
    if dst.ndim != 2 or src.ndim != 2 or dst.shape[1] != src.shape[1] or dst.dtype != src.dtype:
        raise ValueError(f"copy_rows needs 2-d arrays of one dtype and width, got {dst.dtype}{dst.shape} "
                         f"and {src.dtype}{src.shape}")
    if dst_rows.shape != src_rows.shape:
        raise ValueError(f"copy_rows got {dst_rows.size} destination rows for {src_rows.size} source rows")
    _copy_rows(bits(dst), dst_rows.astype(np.int64, copy=False), bits(src), src_rows.astype(np.int64, copy=False))


def put_rows(dst: np.ndarray, dst_rows: np.ndarray, src: np.ndarray | SparseRows, src_rows: np.ndarray) -> None:
    """:func:`copy_rows` from dense ``src`` or :class:`SparseRows` (densified into ``dst``, whose
    dtype is theirs)."""
    if isinstance(src, SparseRows):
        src.scatter(dst, dst_rows, src_rows)
    else:
        copy_rows(dst, dst_rows, src, src_rows)


def take_rows(src: np.ndarray | SparseRows, rows: np.ndarray) -> np.ndarray | SparseRows:
    """Rows ``rows`` (int64 [n], local) of ``src``, in ``src``'s encoding and dtype."""
    if isinstance(src, SparseRows):
        return src.take(rows)
    out = np.empty((rows.size, src.shape[1]), dtype=src.dtype)
    copy_rows(out, np.arange(rows.size), src, rows)
    return out
