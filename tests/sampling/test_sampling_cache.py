"""The remote-feature cache's parts: the L-hop sampling halo, draw counts, capacity, and the
cache's hit and byte counters, each against a count made here independently."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from gnndist.graph import Graph
from gnndist.sampling import CSCProvider, sample_khop
from gnndist.sampling.cache import AccessCounter, FeatureCache, LookaheadCache, cache_capacity, sampling_halo
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
        state, hit, rows = cache.lookup(ids)
        assert hit.tolist() == [int(v) in cached for v in ids]
        assert np.array_equal(state.x[rows], x_all[ids[hit]]) and np.array_equal(state.y[rows], y_all[ids[hit]])
        hits += sum(int(v) in cached for v in ids)
    stats = cache.stats()
    assert stats["hits"] == hits and stats["misses"] == 60 - hits and stats["cached_nodes"] == 4
    assert stats["bytes_saved"] == hits * (3 * 4 + 8) and stats["hit_rate"] == hits / 60
    empty = FeatureCache.empty(3)
    assert not empty.lookup(np.array([1, 2]))[1].any() and empty.stats()["misses"] == 2


def _rows(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and labels that name their node, to check which row travels with which id."""
    return np.repeat(ids[:, None].astype(np.float32), 3, axis=1), ids * 10


def test_lookahead_cache_keeps_the_rows_used_soonest_then_the_hottest():
    ranked = np.array([50, 40, 30, 20, 10])  # hottest first; 60, 70, 80 are unranked
    start = np.array([10, 20])
    cache = LookaheadCache(start, *_rows(start), capacity=4, ranked=ranked)
    fetched = np.array([80, 30, 60, 70])
    # 70 is used by the next batch, 10 by the one after; of the rest 30 and 20 are the hottest.
    cache.retain(fetched, *_rows(fetched), upcoming=[np.array([70, 5]), np.array([10, 70, 99])])
    assert cache.ids.tolist() == [10, 20, 30, 70]
    x, y = _rows(cache.ids)
    assert np.array_equal(cache.rows.x, x) and np.array_equal(cache.rows.y, y)
    # With nothing ahead, heat alone decides: 70, needed no more, goes, and unranked 60 and 80 stay out.
    fetched = np.array([60, 80, 50])
    cache.retain(fetched, *_rows(fetched), upcoming=[])
    assert cache.ids.tolist() == [10, 20, 30, 50]
    state, hit, rows = cache.lookup(np.array([70, 60, 50, 10]))
    assert hit.tolist() == [False, False, True, True] and state.y[rows].tolist() == [500, 100]


def test_lookahead_cache_matches_a_brute_force_choice():
    rng = np.random.default_rng(0)
    ranked = rng.permutation(200)[:120]
    place = {int(v): i for i, v in enumerate(ranked)}
    cache = LookaheadCache(np.empty(0, np.int64), np.empty((0, 3), np.float32), np.empty(0, np.int64),
                           capacity=25, ranked=ranked)
    for _ in range(30):
        held = set(cache.ids.tolist())
        fetched = rng.choice(np.setdiff1d(np.arange(200), cache.ids), size=rng.integers(1, 40), replace=False)
        upcoming = [rng.choice(200, size=30, replace=False) for _ in range(rng.integers(0, 3))]

        soonest = {}
        for j, b in reversed(list(enumerate(upcoming))):
            soonest.update(dict.fromkeys(b.tolist(), j))
        pool = sorted(held) + fetched.tolist()  # the order the cache breaks ties in
        want = sorted(pool, key=lambda v: ((0, soonest[v]) if v in soonest else (1, place.get(v, 10**6)),
                                           pool.index(v)))[:25]
        cache.retain(fetched, *_rows(fetched), upcoming)
        assert cache.ids.tolist() == sorted(want)
        x, y = _rows(cache.ids)
        assert np.array_equal(cache.rows.x, x) and np.array_equal(cache.rows.y, y)


def test_a_snapshot_keeps_its_rows_and_counts_apart_while_the_cache_moves_on():
    """What a loader on another thread reads through: the rows held when it was taken, never
    changed (nor changeable), and hits and misses of its own."""
    start = np.array([10, 20, 30])
    cache = LookaheadCache(start, *_rows(start), capacity=3, ranked=np.array([10, 20, 30, 40, 50, 60]))
    snapshot = cache.snapshot()
    assert not isinstance(snapshot, LookaheadCache)  # nothing can make it retain
    state, hit, rows = cache.lookup(np.array([10, 99]))
    fetched = np.array([40, 50, 60])
    cache.retain(fetched, *_rows(fetched), upcoming=[fetched])
    assert cache.ids.tolist() == [40, 50, 60]
    assert state.y[rows].tolist() == [100]  # a state looked up before the retain still reads its rows
    state, hit, rows = snapshot.lookup(np.array([30, 40, 20]))
    assert hit.tolist() == [True, False, True] and state.y[rows].tolist() == [300, 200]
    assert np.array_equal(snapshot.rows.x, _rows(start)[0])
    assert (snapshot.hits, snapshot.misses, cache.hits, cache.misses) == (2, 1, 1, 1)
    for array in (cache.rows.ids, cache.rows.x, cache.rows.y, snapshot.rows.x):
        with pytest.raises(ValueError, match="read-only"):
            array[:1] = 0
