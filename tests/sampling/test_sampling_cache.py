"""The remote-feature cache's parts: the L-hop sampling halo, draw counts, capacity, and the
cache's hit and byte counters, each against a count made here independently."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from gnndist.graph import Graph
from gnndist.sampling import CSCProvider, sample_khop
from gnndist.sampling.cache import AccessCounter, FeatureCache, cache_capacity, sampling_halo
from gnndist.testing import random_graph


@pytest.fixture(scope="module")
def graph() -> Graph:
    return random_graph(400, 1200, seed=5)


def _bfs(graph: Graph, seeds: np.ndarray, hops: int) -> set[int]:
    """Nodes within ``hops`` in-hops of ``seeds``, by a plain search over the edge list."""
    src, dst = graph.edge_index().numpy()
    in_nbrs: dict[int, list[int]] = {}
    for s, d in zip(src.tolist(), dst.tolist(), strict=True):
        in_nbrs.setdefault(d, []).append(s)
    seen, frontier = set(seeds.tolist()), set(seeds.tolist())
    for _ in range(hops):
        frontier = {u for v in frontier for u in in_nbrs.get(v, [])} - seen
        seen |= frontier
    return seen


@pytest.mark.parametrize("fanouts", [(3, 2), (15, 10, 5), (2, 0, 3), (1,), (0,)])
def test_sampling_halo_is_every_node_within_the_sampled_hops(graph, fanouts):
    provider = CSCProvider(graph.indptr.numpy(), graph.indices.numpy())
    seeds = np.arange(0, 400, 37, dtype=np.int64)
    lo, hi = 0, 100
    hops = next((h for h, f in enumerate(fanouts) if f == 0), len(fanouts))
    expected = sorted(v for v in _bfs(graph, seeds, hops) if not lo <= v < hi)
    got = sampling_halo(seeds, fanouts, provider, graph.num_nodes, lo, hi, chunk=4)
    assert got.dtype == np.int64 and got.tolist() == expected
    # every node a real sample reaches lies in it
    n_id = sample_khop(seeds, fanouts, provider, seed=3).n_id
    assert set(n_id[(n_id < lo) | (n_id >= hi)].tolist()) <= set(expected)


def test_access_counter_ranks_remote_nodes_by_draws(graph):
    provider = CSCProvider(graph.indptr.numpy(), graph.indices.numpy())
    lo, hi = 0, 200
    counter, draws = AccessCounter(lo, hi), Counter()
    for i in range(6):
        sub = sample_khop(np.arange(lo + 10 * i, lo + 10 * i + 10, dtype=np.int64), (4, 3), provider, seed=i)
        counter.add(sub)
        draws.update(int(sub.n_id[s]) for s in sub.edge_index[0] if not lo <= sub.n_id[s] < hi)
    expected = sorted(draws, key=lambda v: (-draws[v], v))
    assert counter.ranked().tolist() == expected
    assert AccessCounter(lo, hi).ranked().size == 0


def test_capacity_from_megabytes_or_fraction():
    assert cache_capacity(1000, 100, cache_mb=None, cache_fraction=0.25) == 250
    assert cache_capacity(1000, 2**10, cache_mb=0.5, cache_fraction=None) == 512
    assert cache_capacity(10, 2**10, cache_mb=1.0, cache_fraction=None) == 10
    assert cache_capacity(10, 8, cache_mb=None, cache_fraction=None) == 0


def test_feature_cache_serves_its_rows_and_counts_hits_and_bytes():
    rng = np.random.default_rng(0)
    x_all, y_all = rng.normal(size=(50, 3)).astype(np.float32), rng.integers(0, 4, 50)
    cache = FeatureCache.build(np.array([40, 3, 17, 29]), lambda ids: (x_all[ids], y_all[ids]))
    assert cache.ids.tolist() == [3, 17, 29, 40]
    cached, hits = {3, 17, 29, 40}, 0
    for _ in range(5):
        ids = rng.choice(50, size=12, replace=False)
        hit, rows = cache.lookup(ids)
        assert hit.tolist() == [int(v) in cached for v in ids]
        assert np.array_equal(cache.x[rows], x_all[ids[hit]]) and np.array_equal(cache.y[rows], y_all[ids[hit]])
        hits += sum(int(v) in cached for v in ids)
    stats = cache.stats()
    assert stats["hits"] == hits and stats["misses"] == 60 - hits and stats["cached_nodes"] == 4
    assert stats["bytes_saved"] == hits * (3 * 4 + 8) and stats["hit_rate"] == hits / 60
    empty = FeatureCache.empty(3)
    assert not empty.lookup(np.array([1, 2]))[0].any() and empty.stats()["misses"] == 2
