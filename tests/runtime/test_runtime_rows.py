import numpy as np
import pytest

from gnndist.runtime.rows import copy_rows


def test_copy_rows_equals_numpy_fancy_assignment_from_a_read_only_memory_map(tmp_path):
    rng = np.random.default_rng(0)
    src = rng.standard_normal((50, 7)).astype(np.float32)
    np.save(tmp_path / "src.npy", src)
    mapped = np.load(tmp_path / "src.npy", mmap_mode="r")
    dst, expected = np.zeros((30, 7), np.float32), np.zeros((30, 7), np.float32)
    dst_rows = rng.permutation(30)[:20]
    src_rows = rng.integers(0, 50, 20)
    expected[dst_rows] = src[src_rows]
    copy_rows(dst, dst_rows, mapped, src_rows)
    assert np.array_equal(dst, expected)


def test_copy_rows_with_no_rows_leaves_the_destination_as_it_was():
    dst = np.ones((3, 2), np.float32)
    copy_rows(dst, np.empty(0, np.int64), np.zeros((4, 2), np.float32), np.empty(0, np.int64))
    assert np.array_equal(dst, np.ones((3, 2), np.float32))


@pytest.mark.parametrize("src, rows, match", [
    (np.zeros((4, 3), np.float32), 2, "one dtype and width"),
    (np.zeros((4, 2), np.float64), 2, "one dtype and width"),
    (np.zeros((4, 2), np.float32), 1, "2 destination rows for 1 source rows"),
])
def test_copy_rows_refuses_mismatched_arrays(src, rows, match):
    with pytest.raises(ValueError, match=match):
        copy_rows(np.zeros((3, 2), np.float32), np.arange(2), src, np.arange(rows))
