"""Neighbour sampling: validity against the global graph, exact sample sizes, uniformity,
determinism, and the hop-by-hop layout of PyG's NeighborLoader."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from gnndist.graph import Graph
from gnndist.sampling import CSCProvider, SampledSubgraph, sample_khop, sample_neighbors
from gnndist.testing import random_graph


def _csc(graph: Graph) -> tuple[np.ndarray, np.ndarray]:
    return graph.indptr.numpy(), graph.indices.numpy()


def _assert_valid(sub: SampledSubgraph, seeds, fanouts, indptr: np.ndarray, indices: np.ndarray) -> None:
    """Everything PyG's NeighborLoader guarantees about one sampled subgraph of the CSC graph."""
    n_id, (src, dst) = sub.n_id, sub.edge_index
    num_nodes = indptr.size - 1
    assert n_id.dtype == np.int64 and sub.edge_index.dtype == np.int64 and sub.edge_index.shape[0] == 2
    assert sub.batch_size == len(seeds) and np.array_equal(n_id[:len(seeds)], seeds)
    assert np.unique(n_id).size == n_id.size
    assert len(sub.num_sampled_nodes) == len(fanouts) + 1 and len(sub.num_sampled_edges) == len(fanouts)
    assert sum(sub.num_sampled_nodes) == n_id.size and sum(sub.num_sampled_edges) == src.size
    # every edge is an in-edge of the global graph, and no pair is sampled twice
    dst_of_edge = np.repeat(np.arange(num_nodes), np.diff(indptr))
    keys = n_id[dst] * num_nodes + n_id[src]
    assert np.isin(keys, dst_of_edge * num_nodes + indices).all()
    assert np.unique(keys).size == keys.size
    node_off = np.cumsum([0, *sub.num_sampled_nodes])
    edge_off = np.cumsum([0, *sub.num_sampled_edges])
    for hop, fanout in enumerate(fanouts):
        lo, hi = node_off[hop], node_off[hop + 1]
        s, d = src[edge_off[hop]:edge_off[hop + 1]], dst[edge_off[hop]:edge_off[hop + 1]]
        # the nodes expanded in this hop are exactly those first discovered in the previous one,
        # each getting min(fanout, in-degree) distinct neighbours (all of them for fanout -1)
        assert ((d >= lo) & (d < hi)).all()
        deg = indptr[n_id[lo:hi] + 1] - indptr[n_id[lo:hi]]
        expected = deg if fanout < 0 else np.minimum(deg, fanout)
        assert np.array_equal(np.bincount(d - lo, minlength=hi - lo), expected)
        # new nodes are appended in order of first appearance among this hop's sources
        _, first = np.unique(s, return_index=True)
        fresh = s[np.sort(first)]
        assert np.array_equal(fresh[fresh >= hi], np.arange(hi, node_off[hop + 2]))


@pytest.fixture(scope="module")
def graph() -> Graph:
    return random_graph(500, 6000, seed=11)


@pytest.mark.parametrize("fanouts", [[5, 3, 2], [15, 10, 5], [-1, 4], [-1, -1], [2, 0, 3], [1]])
def test_khop_is_a_valid_neighbor_loader_sample(graph, fanouts):
    indptr, indices = _csc(graph)
    seeds = np.random.default_rng(0).choice(graph.num_nodes, 40, replace=False)
    sub = sample_khop(seeds, fanouts, CSCProvider(indptr, indices), seed=3)
    _assert_valid(sub, seeds, fanouts, indptr, indices)
    assert sub.num_sampled_edges[0] > 0


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 80), density=st.floats(0, 8), fanouts=st.lists(st.integers(-1, 6), max_size=3),
       n_seeds=st.integers(0, 20), seed=st.integers(-2**40, 2**40))
def test_khop_properties(n, density, fanouts, n_seeds, seed):
    g = random_graph(n, int(n * density), seed=abs(seed) % 1000)
    indptr, indices = _csc(g)
    seeds = np.random.default_rng(abs(seed)).permutation(n)[:n_seeds]
    sub = sample_khop(seeds, fanouts, CSCProvider(indptr, indices), seed=seed)
    _assert_valid(sub, seeds, fanouts, indptr, indices)


def test_fanout_all_takes_every_in_neighbor(graph):
    indptr, indices = _csc(graph)
    sub = sample_khop(np.array([7, 3]), [-1], CSCProvider(indptr, indices), seed=0)
    src, dst = sub.edge_index
    for local, node in enumerate((7, 3)):
        got = np.sort(sub.n_id[src[dst == local]])
        assert np.array_equal(got, indices[indptr[node]:indptr[node + 1]])


def test_fanout_zero_keeps_only_the_seeds(graph):
    seeds = np.array([4, 9, 1])
    sub = sample_khop(seeds, [0, 5], CSCProvider(*_csc(graph)), seed=0)
    assert np.array_equal(sub.n_id, seeds) and sub.edge_index.shape == (2, 0)
    assert sub.num_sampled_nodes == [3, 0, 0] and sub.num_sampled_edges == [0, 0]


def test_nodes_without_in_edges():
    # 0 <- 1 <- 2; node 2 and the isolated node 3 have no in-edges
    g = Graph.from_edges(np.array([1, 2]), np.array([0, 1]), num_nodes=4, x=None, y=np.zeros(4, np.int64),
                         train_mask=np.zeros(4, bool), val_mask=np.zeros(4, bool), test_mask=np.zeros(4, bool),
                         name="path", origin="<path>")
    indptr, indices = _csc(g)
    counts, nbrs = sample_neighbors(indptr, indices, np.array([3, 2, 0, 3]), 5, seed=0)
    assert counts.tolist() == [0, 0, 1, 0] and nbrs.tolist() == [1]
    sub = sample_khop(np.array([3, 0]), [2, 2, 2], CSCProvider(indptr, indices), seed=0)
    assert sub.n_id.tolist() == [3, 0, 1, 2]
    assert sub.edge_index.tolist() == [[2, 3], [1, 2]]
    assert sub.num_sampled_nodes == [2, 1, 1, 0] and sub.num_sampled_edges == [1, 1, 0]


def test_empty_seeds(graph):
    sub = sample_khop(np.array([], np.int64), [5, 5], CSCProvider(*_csc(graph)), seed=0)
    assert sub.n_id.shape == (0,) and sub.edge_index.shape == (2, 0) and sub.batch_size == 0
    assert sub.num_sampled_nodes == [0, 0, 0] and sub.num_sampled_edges == [0, 0]
    counts, nbrs = sample_neighbors(*_csc(graph), np.array([], np.int64), 5, seed=0)
    assert counts.shape == (0,) and nbrs.shape == (0,)


def test_duplicate_seeds_are_refused(graph):
    with pytest.raises(ValueError, match="node 8 appears more than once"):
        sample_khop(np.array([3, 8, 5, 8]), [2], CSCProvider(*_csc(graph)), seed=0)


def test_ids_outside_the_csc_are_named(graph):
    indptr, indices = _csc(graph)
    with pytest.raises(IndexError, match=r"node id 500 .*0\.\.499"):
        sample_neighbors(indptr, indices, np.array([1, 500]), 3, seed=0)
    with pytest.raises(IndexError, match="node id -1 "):
        sample_neighbors(indptr, indices, np.array([-1]), 3, seed=0)
    with pytest.raises(IndexError, match=r"node id 1999 .*2000\.\.2499"):
        sample_khop(np.array([2003, 1999]), [2], CSCProvider(indptr, indices, first=2000), seed=0)


def _one_row(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """A CSC with a single row whose in-neighbours are 100, 107, 114, ... (degree of them)."""
    return np.array([0, degree]), 100 + 7 * np.arange(degree)


def test_draws_are_uniform_within_one_call():
    indptr, indices = _one_row(12)
    draws = 24_000
    counts, nbrs = sample_neighbors(indptr, indices, np.zeros(draws, np.int64), 4, seed=5)
    assert (counts == 4).all()
    per_row = ((nbrs.reshape(draws, 4) - 100) // 7)
    assert all(np.unique(r).size == 4 for r in per_row[:1000])
    assert chisquare(np.bincount(per_row.ravel(), minlength=12)).pvalue > 0.001
    # the drawn 4-sets, not only the single neighbours, are uniform over all C(12, 4) = 495
    subsets = np.unique((1 << per_row).sum(axis=1), return_counts=True)[1]
    assert subsets.size == 495 and chisquare(subsets).pvalue > 0.001


def test_draws_are_uniform_across_seeds():
    indptr, indices = _one_row(12)
    hits = np.zeros(12, np.int64)
    for seed in range(3000):
        _, nbrs = sample_neighbors(indptr, indices, np.zeros(1, np.int64), 4, seed=seed)
        hits[(nbrs - 100) // 7] += 1
    assert chisquare(hits).pvalue > 0.001


def test_high_degree_rows_get_distinct_samples():
    indptr, indices = _one_row(100_000)
    counts, nbrs = sample_neighbors(indptr, indices, np.zeros(50, np.int64), 15, seed=1)
    rows = nbrs.reshape(50, 15)
    assert (counts == 15).all() and all(np.unique(r).size == 15 for r in rows)
    assert np.isin(nbrs, indices).all() and np.unique(rows[:, 0]).size > 40


def test_same_seed_same_sample_other_seed_differs(graph):
    provider = CSCProvider(*_csc(graph))
    seeds = np.arange(0, 500, 7)
    a, b, c = (sample_khop(seeds, [4, 3], provider, seed=s) for s in (42, 42, 43))
    assert np.array_equal(a.n_id, b.n_id) and np.array_equal(a.edge_index, b.edge_index)
    assert not np.array_equal(a.edge_index, c.edge_index)
    indptr, indices = _csc(graph)
    rows = np.arange(500)
    # seeds equal modulo 2**32 still differ (numba keeps only 32 bits of a raw seed)
    n1, n2 = (sample_neighbors(indptr, indices, rows, 3, seed=s)[1] for s in (1, 2**32 + 1))
    assert not np.array_equal(n1, n2)


def test_threads_sample_independently(graph):
    """The kernels run without the GIL in parallel threads; each call's result is its own."""
    provider = CSCProvider(*_csc(graph))
    seeds = np.arange(0, 500, 3)

    def run(seed: int) -> np.ndarray:
        return sample_khop(seeds, [6, 4, 2], provider, seed=seed).edge_index

    serial = [run(s) for s in range(16)]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(run, range(16)))
    assert all(np.array_equal(a, b) for a, b in zip(serial, parallel, strict=True))


def test_provider_with_offset_matches_zero_based(graph):
    """Rows first..first+n-1 sample exactly what rows 0..n-1 of the same CSC do."""
    indptr, indices = _csc(graph)
    first = 10_000
    seeds = np.array([5, 77, 300, 2])
    base = sample_khop(seeds, [3, 3, 3], CSCProvider(indptr, indices), seed=9)
    shifted = sample_khop(seeds + first, [3, 3, 3], CSCProvider(indptr, indices + first, first=first), seed=9)
    assert np.array_equal(shifted.n_id, base.n_id + first)
    assert np.array_equal(shifted.edge_index, base.edge_index)
    assert shifted.num_sampled_nodes == base.num_sampled_nodes


def test_provider_over_a_slice_of_rows(graph):
    """A CSC holding only global rows 200..349 samples those rows as the full CSC does."""
    indptr, indices = _csc(graph)
    part = CSCProvider(indptr[200:351] - indptr[200], indices[indptr[200]:indptr[350]], first=200)
    ids = np.array([349, 200, 250, 250])
    got = part.sample(ids, 4, seed=7)
    want = CSCProvider(indptr, indices).sample(ids, 4, seed=7)
    assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))


def test_inconsistent_provider_is_reported():
    class Broken:
        def sample(self, ids, fanout, seed):
            return np.ones(ids.size, np.int64), np.zeros(0, np.int64)

    with pytest.raises(RuntimeError, match="Broken.sample returned 2 counts"):
        sample_khop(np.array([0, 1]), [1], Broken(), seed=0)


def test_each_hop_gets_its_own_seed(graph):
    """Reusing one seed for every hop would correlate the hops' draws."""
    inner = CSCProvider(*_csc(graph))
    seen: list[int] = []

    class Recording:
        def sample(self, ids, fanout, seed):
            seen.append(seed)
            return inner.sample(ids, fanout, seed)

    sample_khop(np.arange(10), [2, 2, 2, 2], Recording(), seed=0)
    sample_khop(np.arange(10), [2, 2, 2, 2], Recording(), seed=1)
    assert len(seen) == 8 and len(set(seen)) == 8
