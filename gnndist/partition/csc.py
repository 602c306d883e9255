"""Vectorised operations on CSC (or CSR) offset/index arrays."""

from __future__ import annotations

import numpy as np
from numba import njit


def gather_rows(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The segments ``indices[indptr[r]:indptr[r + 1]]`` of each r in ``rows``, concatenated.

    ``indptr``: int64 [R + 1]; ``indices``: [E]; ``rows``: int64 [n], ids local to ``indptr``.
    Returns ``(out_indptr int64 [n + 1], values [sum of segment lengths])`` with the segments in
    the order of ``rows``; no Python loop over rows.
    """
    out_indptr, pos = gather_positions(indptr, rows)
    return out_indptr, indices[pos]


def gather_positions(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`gather_rows`'s offsets, and the positions (int64) of its values in ``indices``: so
    arrays beside ``indices`` (a CSR's values) are gathered with the same positions."""
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    out_indptr = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_indptr[1:])
    # Position of each wanted entry: its row's start plus its rank inside the row.
    pos = np.arange(out_indptr[-1], dtype=np.int64)
    pos += np.repeat(starts - out_indptr[:-1], lengths)
    return out_indptr, pos


def merge_segments(num_rows: int, groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                   dtype=np.int64) -> tuple[np.ndarray, np.ndarray]:
    """Reassemble per-row segments computed in groups back into row order.

    ``groups``: ``(rows int64 [m], counts int64 [m], values [counts.sum()])`` triples whose rows
    partition ``0..num_rows-1``; each group's values hold its rows' segments in its row order.
    Returns ``(counts int64 [num_rows], values [sum])`` with segments in row order.
    """
    counts = np.zeros(num_rows, dtype=np.int64)
    for rows, group_counts, _ in groups:
        counts[rows] = group_counts
    indptr = np.zeros(num_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    values = np.empty(int(indptr[-1]), dtype=dtype)
    for rows, group_counts, group_values in groups:
        _place_segments(indptr, rows, group_counts, np.asarray(group_values, dtype=dtype), values)
    return counts, values


@njit(cache=True, nogil=True)
def _place_segments(indptr, rows, counts, values, out):
    # One pass over the group: a vectorised gather (positions by np.repeat, then a fancy-index
    # store) wrote three temporaries of the group's size and took twice as long in the sampler.
    pos = 0
    for i in range(rows.size):
        start = indptr[rows[i]]
        for k in range(counts[i]):
            out[start + k] = values[pos + k]
        pos += counts[i]
