"""gather_rows and merge_segments against a plain Python loop over rows."""

from __future__ import annotations

import numpy as np
import pytest

from gnndist.partition.csc import gather_rows, merge_segments


def test_gather_rows_concatenates_the_segments_in_the_order_asked():
    rng = np.random.default_rng(0)
    degrees = rng.integers(0, 6, 40)
    indptr = np.concatenate([[0], np.cumsum(degrees)])
    indices = rng.integers(0, 1000, indptr[-1])
    rows = rng.integers(0, 40, 25)
    out_indptr, values = gather_rows(indptr, indices, rows)
    expected = [indices[indptr[r]:indptr[r + 1]] for r in rows]
    assert np.array_equal(np.diff(out_indptr), [e.size for e in expected])
    assert np.array_equal(values, np.concatenate(expected))


@pytest.mark.parametrize("num_groups", [1, 3])
def test_merge_segments_puts_every_group_back_in_row_order(num_groups):
    rng = np.random.default_rng(num_groups)
    num_rows = 50
    segments = [rng.integers(0, 100, rng.integers(0, 5)) for _ in range(num_rows)]
    owner = rng.integers(0, num_groups, num_rows)
    groups = []
    for g in range(num_groups):
        rows = rng.permutation(np.flatnonzero(owner == g))  # a group's rows in any order
        counts = np.array([segments[r].size for r in rows], dtype=np.int64)
        values = np.concatenate([segments[r] for r in rows] + [np.empty(0, np.int64)])
        groups.append((rows, counts, values))
    counts, values = merge_segments(num_rows, groups)
    assert np.array_equal(counts, [s.size for s in segments])
    assert np.array_equal(values, np.concatenate(segments))


def test_merge_segments_of_one_group_in_row_order_and_of_none():
    counts = np.array([2, 0, 1])
    counts_out, values = merge_segments(3, [(np.arange(3), counts, np.array([7, 8, 9]))])
    assert np.array_equal(counts_out, counts) and np.array_equal(values, [7, 8, 9])
    counts_out, values = merge_segments(0, [])
    assert counts_out.size == 0 and values.size == 0
