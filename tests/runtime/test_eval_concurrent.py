"""Evaluation beside a prefetching training loader on one ``PartView``: every row of every batch
is still the global graph's, and the training cache and counters see only training batches."""

from __future__ import annotations

import threading

import numpy as np

from gnndist.config import SamplerConfig
from gnndist.runtime.loader import DistributedNeighborLoader, PartView

CONFIG = SamplerConfig(fanouts=(3, 2), batch_size=8, prefetch=2, cache_fraction=0.2, cache_lookahead=True)


def _assert_global(batch, graph, new_to_old, edges) -> None:
    """Features (bit for bit) and labels of every node of ``batch`` and every sampled edge are the global graph's."""
    old = new_to_old[batch.n_id.numpy()]
    src, dst = batch.edge_index.numpy()
    assert set(zip(old[src].tolist(), old[dst].tolist(), strict=True)) <= edges
    assert batch.x.numpy().tobytes() == graph.x.numpy()[old].tobytes()
    assert np.array_equal(batch.y.numpy(), graph.y.numpy()[old])


def _counters(loader: DistributedNeighborLoader) -> dict:
    stats = loader.stats()
    return {k: stats[k] for k in ("hits", "misses", "cached_nodes", "remote_requests", "remote_ids", "remote_bytes")}


def test_evaluation_beside_lookahead_prefetching_reads_the_global_rows(partitioned, graph):
    root, servers, new_to_old = partitioned
    src, dst = graph.edge_index().numpy()
    edges = set(zip(src.tolist(), dst.tolist(), strict=True))
    alone = PartView.open(str(root), 0, servers, CONFIG)
    alone_loader = DistributedNeighborLoader(alone, alone.seeds("train"), CONFIG)
    expected = list(alone_loader.batches(range(3)))

    view = PartView.open(str(root), 0, servers, CONFIG)
    train = DistributedNeighborLoader(view, view.seeds("train"), CONFIG)
    done, evaluated, failed = threading.Event(), [], []

    def evaluate() -> None:  # what the training loop's evaluation does, again and again
        try:
            while not done.is_set() or len(evaluated) < 2:
                evaluated.append([b for split in ("val", "test")
                                  for b in DistributedNeighborLoader.for_evaluation(view, split, CONFIG)])
        except Exception as e:  # raised again in the test's own thread below
            failed.append(e)

    thread = threading.Thread(target=evaluate)
    thread.start()
    try:
        got = list(train.batches(range(3)))
    finally:
        done.set()
        thread.join()
    if failed:
        raise failed[0]
    # training gives the batches it gives alone, and its cache counted only those
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected, strict=True):
        assert a.n_id.equal(b.n_id) and a.edge_index.equal(b.edge_index)
        _assert_global(a, graph, new_to_old, edges)
    assert _counters(train) == _counters(alone_loader)
    assert train.stats()["hits"] > 0
    # each evaluation pass is every val and test seed of the part once, in order, with the global rows
    seeds = np.concatenate([view.seeds("val"), view.seeds("test")])
    for batches in evaluated:
        assert np.array_equal(np.concatenate([b.n_id[:b.batch_size].numpy() for b in batches]), seeds)
        for batch in batches:
            _assert_global(batch, graph, new_to_old, edges)


def test_a_fetch_reads_one_state_of_a_changing_cache(partitioned, graph, monkeypatch):
    """A retain between a fetch's cache lookup and its copy (what another thread's loader may
    do at any moment) cannot pair the ids of one state of the cache with the rows of another."""
    root, servers, new_to_old = partitioned
    view = PartView.open(str(root), 0, servers, CONFIG)
    cache, lookup = view.cache, view.cache.lookup
    lo, hi = view.book.part_range(0)
    held = cache.ids.copy()
    others = np.setdiff1d(np.r_[0:lo, hi:view.book.num_nodes], held)[:cache.capacity]
    assert held.size == cache.capacity == others.size > 0

    def lookup_then_retain(ids):
        found = lookup(ids)
        old = new_to_old[others]  # rows of other nodes take every place, as a retain elsewhere may decide
        cache.retain(others, graph.x.numpy()[old], graph.y.numpy()[old], upcoming=[others])
        return found

    monkeypatch.setattr(cache, "lookup", lookup_then_retain)
    ids = np.concatenate([held, np.arange(lo, min(hi, lo + 5))])  # every remote id a hit: no retain after
    x, y = view.fetch(ids)
    assert np.array_equal(cache.ids, np.sort(others))  # the cache did change in between
    assert x.tobytes() == graph.x.numpy()[new_to_old[ids]].tobytes()
    assert np.array_equal(y, graph.y.numpy()[new_to_old[ids]])
