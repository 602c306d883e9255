"""Streaming LDG: better cut than random, guaranteed balance, bounded memory, chunk-agnostic."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from gnndist.config import PartitionConfig
from partitioners import PartitionError, StreamingPartitioner, make_partitioner


def _ldg(parts=4, **kw):
    return StreamingPartitioner(PartitionConfig(method="streaming", num_parts=parts, **kw))


def test_cuts_fewer_edges_than_random(sbm4000, cut):
    streaming = cut(sbm4000, _ldg().assign(sbm4000))
    random = cut(sbm4000, make_partitioner(PartitionConfig(method="random", num_parts=4)).assign(sbm4000))
    assert streaming < 0.8 * random, (streaming, random)


def test_nodes_within_capacity_and_training_nodes_balanced(sbm4000):
    assignment = _ldg(imbalance=0.02).assign(sbm4000)
    counts = np.bincount(assignment, minlength=4)
    assert counts.max() <= 1000 * 1.02
    train = np.bincount(assignment[sbm4000.train_mask.numpy()], minlength=4)
    assert train.max() / train.mean() <= 1.05


def test_result_does_not_depend_on_chunk_size(sbm4000):
    small = _ldg(chunk_edges=7).assign(sbm4000)
    large = _ldg(chunk_edges=1 << 20).assign(sbm4000)
    np.testing.assert_array_equal(small, large)


def test_assign_stream_matches_assign_on_the_same_edges(sbm4000):
    train = sbm4000.train_mask.numpy()
    streamed = _ldg().assign_stream(sbm4000.num_nodes, sbm4000.iter_in_edge_chunks(5000), train)
    np.testing.assert_array_equal(streamed, _ldg().assign(sbm4000))


def _random_chunks(num_nodes: int, degree: int, chunk_edges: int, seed: int = 0):
    """CSC chunks of a random graph, generated on the fly: only one chunk exists at a time."""
    rng = np.random.default_rng(seed)
    per_chunk = max(chunk_edges // degree, 1)
    for first in range(0, num_nodes, per_chunk):
        n = min(per_chunk, num_nodes - first)
        yield first, np.arange(n + 1, dtype=np.int64) * degree, rng.integers(0, num_nodes, n * degree)


def _traced_peak(num_nodes: int, degree: int) -> int:
    partitioner = _ldg()
    partitioner.assign_stream(50, _random_chunks(50, 2, 16))  # compile before measuring
    tracemalloc.start()
    try:
        partitioner.assign_stream(num_nodes, _random_chunks(num_nodes, degree, chunk_edges=8192))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_edge_count():
    n = 20_000
    peak_e = _traced_peak(n, 10)  # 200k edges: 1.6 MB of int64 ids if held at once
    peak_4e = _traced_peak(n, 40)  # 800k edges: 6.4 MB
    assert peak_4e / peak_e < 1.3, (peak_e, peak_4e)
    assert peak_4e < 800_000 * 8 / 4, peak_4e  # far below the edge list itself


def test_stream_errors_name_the_problem():
    indptr = np.array([0, 1, 2, 3], dtype=np.int64)
    with pytest.raises(PartitionError, match="expected a chunk starting at node 3, got nodes 5..7"):
        _ldg(2).assign_stream(10, [(0, indptr, np.array([1, 2, 0])), (5, indptr, np.array([1, 2, 0]))])
    with pytest.raises(PartitionError, match="names node 99, outside 0..9"):
        _ldg(2).assign_stream(10, [(0, indptr, np.array([1, 99, 0]))])
    with pytest.raises(PartitionError, match="the chunks covered 3 of 10 nodes"):
        _ldg(2).assign_stream(10, [(0, indptr, np.array([1, 2, 0]))])
    with pytest.raises(PartitionError, match="has 3 nodes, cannot make 4 parts: use at most 3"):
        _ldg(4).assign_stream(3, [(0, indptr, np.array([1, 2, 0]))])
