"""Vectorised operations on CSC (or CSR) offset/index arrays."""

from __future__ import annotations

import numpy as np


def gather_rows(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The segments ``indices[indptr[r]:indptr[r + 1]]`` of each r in ``rows``, concatenated.

    ``indptr``: int64 [R + 1]; ``indices``: [E]; ``rows``: int64 [n], ids local to ``indptr``.
    Returns ``(out_indptr int64 [n + 1], values [sum of segment lengths])`` with the segments in
    the order of ``rows``; no Python loop over rows.
    """
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    out_indptr = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_indptr[1:])
    # Position of each wanted entry: its row's start plus its rank inside the row.
    pos = np.arange(out_indptr[-1], dtype=np.int64)
    pos += np.repeat(starts - out_indptr[:-1], lengths)
    return out_indptr, indices[pos]
