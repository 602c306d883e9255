"""The distributed loader on real Ray actors: batches are valid samples of the global graph."""

from __future__ import annotations

import os

import numpy as np
import pytest
import ray

from gnndist.config import SamplerConfig
from gnndist.runtime.halo import warmup_batches
from gnndist.runtime.loader import DistributedNeighborLoader, PartView
from gnndist.runtime.partition_server import RemoteError, launch_servers
from gnndist.runtime.shm import (
    PREFIX,
    SHM_DIR,
    ReplyBuffer,
    ReplyMaps,
    fetch_layout,
    message_bytes,
    sample_layout,
    shm_available,
)
from gnndist.runtime.transport import Files, ObjectStore, SharedMemory


def _loader(root, servers, part, split="train", **kw):
    config = SamplerConfig(**{"fanouts": (3, 2), "batch_size": 32, "prefetch": 2, **kw})
    view = PartView.open(str(root), part, servers, config)
    return DistributedNeighborLoader(view, view.seeds(split), config)


def _read_here(view) -> list[int]:
    """The other parts ``view`` reads from their files in this process."""
    return sorted(q for q, t in view.exchange.transports.items() if isinstance(t, Files))


def _edge_set(graph):
    src, dst = graph.edge_index().numpy()
    return set(zip(src.tolist(), dst.tolist(), strict=True))


def test_batches_are_valid_samples_of_the_global_graph(partitioned, graph):
    root, servers, new_to_old = partitioned
    edges = _edge_set(graph)
    in_degree = graph.in_degree().numpy()
    for part in range(servers.num_parts):
        loader = _loader(root, servers, part)
        seen = []
        for batch in loader:
            n_id = batch.n_id.numpy()
            old = new_to_old[n_id]
            src, dst = batch.edge_index.numpy()
            # every sampled edge exists in the global graph, whichever part owns its ends
            assert set(zip(old[src].tolist(), old[dst].tolist(), strict=True)) <= edges
            # seeds get min(fanout, in-degree) distinct in-neighbours at hop 1
            seeds = np.arange(batch.batch_size)
            per_seed = np.bincount(dst[np.isin(dst, seeds)], minlength=batch.batch_size)
            assert np.array_equal(per_seed, np.minimum(3, in_degree[old[seeds]]))
            # features and labels equal the global ones bit for bit
            assert batch.x.numpy().tobytes() == graph.x.numpy()[old].tobytes()
            assert np.array_equal(batch.y.numpy(), graph.y.numpy()[old])
            seen.append(n_id[:batch.batch_size])
        assert len(seen) == len(loader)
        got = np.sort(np.concatenate(seen)) if seen else np.empty(0, np.int64)
        assert np.array_equal(got, loader.seeds)  # each training seed exactly once per epoch
        assert graph.train_mask.numpy()[new_to_old[got]].all()


def test_same_seed_same_batches_and_epochs_differ(partitioned):
    root, servers, _ = partitioned
    a = [b.n_id for b in _loader(root, servers, 0)]
    b = [b.n_id for b in _loader(root, servers, 0, prefetch=0)]
    assert len(a) == len(b) and all(x.equal(y) for x, y in zip(a, b, strict=True))
    loader = _loader(root, servers, 0)
    loader.set_epoch(1)
    c = [b.n_id for b in loader]
    assert not all(x.equal(y) for x, y in zip(a, c, strict=True))


def test_a_stream_of_epochs_is_the_epochs_one_after_another(partitioned):
    """``batches`` (prefetching across epoch boundaries) yields exactly the batches of iterating
    each epoch on its own; ``stream`` cuts an epoch's order where it is told, empty cuts included."""
    root, servers, _ = partitioned
    loader = _loader(root, servers, 0, batch_size=8)
    expected = []
    for epoch in (3, 7, 4):
        loader.set_epoch(epoch)
        expected += [b.n_id for b in loader]
    got = [b.n_id for b in loader.batches([3, 7, 4])]
    assert len(got) == 3 * len(loader) and all(x.equal(y) for x, y in zip(got, expected, strict=True))
    n = loader.seeds.size
    cuts = np.array([0, 0, 5, n // 2, n // 2, n])
    items = list(loader.stream([(7, np.stack([cuts[:-1], cuts[1:]], axis=1))]))
    assert [None if b is None else b.batch_size for b in items] == [None, 5, n // 2 - 5, None, n - n // 2]
    loader.set_epoch(7)
    order = np.concatenate([b.n_id[:b.batch_size].numpy() for b in loader])
    assert np.array_equal(np.concatenate([b.n_id[:b.batch_size].numpy() for b in items if b is not None]), order)


def _sampling_halo(graph, new_to_old, seeds, hops, lo, hi) -> set[int]:
    """Partitioned ids outside ``lo..hi-1`` within ``hops`` in-hops of ``seeds``, searched in the global graph."""
    src, dst = graph.edge_index().numpy()
    old_to_new = np.argsort(new_to_old)
    in_nbrs: dict[int, list[int]] = {}
    for s, d in zip(old_to_new[src].tolist(), old_to_new[dst].tolist(), strict=True):
        in_nbrs.setdefault(d, []).append(s)
    seen, frontier = set(seeds.tolist()), set(seeds.tolist())
    for _ in range(hops):
        frontier = {u for v in frontier for u in in_nbrs.get(v, [])} - seen
        seen |= frontier
    return {v for v in seen if not lo <= v < hi}


@pytest.mark.parametrize("policy", ["access", "degree"])
def test_cache_gives_identical_batches_and_its_counters_add_up(partitioned, graph, policy):
    root, servers, new_to_old = partitioned
    plain = _loader(root, servers, 0)
    cached = _loader(root, servers, 0, cache_fraction=0.5, cache_policy=policy)
    lo, hi = cached.view.book.part_range(0)
    halo = _sampling_halo(graph, new_to_old, cached.seeds, 2, lo, hi)
    assert cached.view.cache_halo_nodes == len(halo) > 0
    assert cached.view.cache.ids.size == round(0.5 * len(halo)) and set(cached.view.cache.ids.tolist()) <= halo
    in_cache, hits, lookups = set(cached.view.cache.ids.tolist()), 0, 0
    for x, y in zip(plain, cached, strict=True):
        assert x.n_id.equal(y.n_id) and x.edge_index.equal(y.edge_index)
        assert x.x.equal(y.x) and x.y.equal(y.y)
        remote = [v for v in y.n_id.tolist() if not lo <= v < hi]
        lookups += len(remote)
        hits += sum(v in in_cache for v in remote)
    stats_plain, stats_cached = plain.stats(), cached.stats()
    assert stats_plain["remote_requests"] > 0 and stats_plain["hits"] == 0 and stats_plain["misses"] == lookups
    assert stats_cached["hits"] == hits > 0 and stats_cached["misses"] == lookups - hits
    # each hit is one feature row and label the owner did not send; sampling traffic is the same
    assert stats_cached["bytes_saved"] == hits * (graph.feature_dim * 4 + 8)
    assert stats_plain["remote_bytes"] - stats_cached["remote_bytes"] == stats_cached["bytes_saved"]
    assert stats_cached["cache_fill_bytes"] > 0


@pytest.mark.parametrize("prefetch", [0, 2])
def test_lookahead_cache_gives_identical_batches_and_its_counters_add_up(partitioned, graph, prefetch):
    """A lookahead cache changes where rows come from, never the batches, across epochs too; what
    it serves is counted as hits, and the owners send that much less."""
    root, servers, _ = partitioned
    plain = _loader(root, servers, 0, batch_size=8, prefetch=prefetch)
    cached = _loader(root, servers, 0, batch_size=8, prefetch=prefetch, cache_fraction=0.2, cache_lookahead=True)
    capacity = cached.view.cache.capacity
    assert capacity == round(0.2 * cached.view.cache_halo_nodes) > 0
    lo, hi = cached.view.book.part_range(0)
    lookups = 0
    for x, y in zip(plain.batches(range(2)), cached.batches(range(2)), strict=True):
        assert x.n_id.equal(y.n_id) and x.edge_index.equal(y.edge_index)
        assert x.x.equal(y.x) and x.y.equal(y.y)
        lookups += sum(not lo <= v < hi for v in y.n_id.tolist())
    assert cached.view.cache.ids.size == capacity
    stats_plain, stats_cached = plain.stats(), cached.stats()
    assert stats_cached["hits"] > 0 and stats_cached["hits"] + stats_cached["misses"] == lookups
    assert stats_cached["bytes_saved"] == stats_cached["hits"] * (graph.feature_dim * 4 + 8)
    assert stats_plain["remote_bytes"] - stats_cached["remote_bytes"] == stats_cached["bytes_saved"]


def test_a_cache_of_the_whole_sampling_halo_serves_every_remote_row(partitioned):
    root, servers, _ = partitioned
    loader = _loader(root, servers, 0, cache_fraction=1.0)
    assert sum(batch.batch_size for batch in loader) == loader.seeds.size
    stats = loader.stats()
    assert stats["cached_nodes"] == stats["cache_halo_nodes"] and stats["misses"] == 0 and stats["hits"] > 0


def test_same_node_reads_give_the_same_batches_without_calling_the_servers(partitioned, graph):
    root, servers, _ = partitioned
    row_bytes = graph.feature_dim * 4 + 8  # a float32 feature row and an int64 label
    for part in range(servers.num_parts):
        via_servers = list(_loader(root, servers, part))
        before = servers.stats()
        loader = _loader(root, servers, part, same_node_reads=True)
        assert sorted(_read_here(loader.view)) == [q for q in range(servers.num_parts) if q != part]  # one node
        batches = list(loader)
        assert servers.stats() == before  # no server was asked anything
        assert len(batches) == len(via_servers) > 0
        for x, y in zip(via_servers, batches, strict=True):
            assert x.n_id.equal(y.n_id) and x.edge_index.equal(y.edge_index)
            assert x.x.equal(y.x) and x.y.equal(y.y)
        lo, hi = loader.view.book.part_range(part)
        other = sum(int(((b.n_id < lo) | (b.n_id >= hi)).sum()) for b in batches)
        stats = loader.stats()
        assert stats["remote_requests"] == stats["remote_bytes"] == 0
        assert stats["same_node_bytes"] == other * row_bytes and stats["same_node_ids"] >= other > 0
    # rows this node reads from its own files are not cached
    cached = _loader(root, servers, 0, same_node_reads=True, cache_fraction=1.0)
    assert cached.view.cache_halo_nodes == 0 and cached.view.cache.ids.size == 0


def test_a_shard_reads_its_own_parts_in_process_and_calls_only_the_other_servers(partitioned):
    """A worker holding parts 0 and 1 never calls their servers, and its batches are those of
    views that call every server."""
    from gnndist.train.loop import _open_shard

    root, servers, _ = partitioned
    config = SamplerConfig(fanouts=(3, 2), batch_size=32, prefetch=2)
    alone = [list(_loader(root, servers, part)) for part in (0, 1)]
    before = servers.stats()
    views = _open_shard(str(root), [0, 1], servers, config)
    assert [_read_here(v) for v in views] == [[1], [0]]
    batches = [list(DistributedNeighborLoader(v, v.seeds("train"), config)) for v in views]
    after = servers.stats()
    assert after[0] == before[0] and after[1] == before[1]  # the shard's own servers: not a call
    assert (after[2:] != before[2:]) == (servers.num_parts > 2)  # the others' are called as before
    for mine, theirs in zip(batches, alone, strict=True):
        assert len(mine) == len(theirs) > 0
        for x, y in zip(mine, theirs, strict=True):
            assert x.n_id.equal(y.n_id) and x.edge_index.equal(y.edge_index) and x.x.equal(y.x)


def test_cache_warmup_passes_over_the_training_seeds(partitioned):
    root, servers, _ = partitioned
    view = PartView.open(str(root), 0, servers, SamplerConfig())
    seeds, per_pass = view.seeds("train"), -(-view.seeds("train").size // 32)
    batches = warmup_batches(view.store, SamplerConfig(batch_size=32, cache_warmup_epochs=2.5))
    assert len(batches) == -(-5 * per_pass // 2)
    for i in range(2):  # each full pass is a shuffle of all the seeds, and the passes differ
        assert np.array_equal(np.sort(np.concatenate(batches[i * per_pass:(i + 1) * per_pass])), seeds)
    assert not np.array_equal(np.concatenate(batches[:per_pass]), np.concatenate(batches[per_pass:2 * per_pass]))
    assert len(warmup_batches(view.store, SamplerConfig(batch_size=32, cache_warmup_epochs=1e-6))) == 1


def test_fanout_all_and_none(partitioned, graph):
    root, servers, new_to_old = partitioned
    in_degree = graph.in_degree().numpy()
    batch = next(iter(_loader(root, servers, 0, fanouts=(-1,))))
    dst = batch.edge_index[1].numpy()
    seeds_old = new_to_old[batch.n_id.numpy()[:batch.batch_size]]
    assert np.array_equal(np.bincount(dst, minlength=batch.batch_size)[:batch.batch_size], in_degree[seeds_old])
    batch = next(iter(_loader(root, servers, 0, fanouts=(0, 0))))
    assert batch.edge_index.shape == (2, 0) and batch.num_nodes == batch.batch_size


def test_a_part_without_seeds_yields_nothing(partitioned):
    root, servers, _ = partitioned
    view = PartView.open(str(root), 0, servers, SamplerConfig())
    loader = DistributedNeighborLoader(view, np.empty(0, dtype=np.int64), SamplerConfig())
    assert len(loader) == 0 and list(loader) == []


def test_batch_converts_to_pyg_and_runs_a_model(partitioned):
    from torch_geometric.nn import GraphSAGE

    root, servers, _ = partitioned
    data = next(iter(_loader(root, servers, 0))).to_pyg()
    model = GraphSAGE(data.num_features, 8, num_layers=2, out_channels=4)
    assert model(data.x, data.edge_index)[:data.batch_size].shape == (data.batch_size, 4)


def test_batch_moves_to_a_device_whole(partitioned):
    root, servers, _ = partitioned
    batch = next(iter(_loader(root, servers, 0)))
    assert batch.to("cpu") is batch
    moved = batch.to("meta")  # a device every machine has, standing in for a GPU
    for name in ("x", "y", "edge_index", "n_id"):
        assert getattr(moved, name).device.type == "meta" and getattr(moved, name).shape == getattr(batch, name).shape
    assert (moved.batch_size, moved.num_sampled_nodes, moved.num_sampled_edges) == \
        (batch.batch_size, batch.num_sampled_nodes, batch.num_sampled_edges)


def test_servers_count_exactly_what_a_loader_asked_and_refuse_ids_they_do_not_own(partitioned):
    root, servers, _ = partitioned
    before = servers.stats()
    loader = _loader(root, servers, 0, prefetch=0)
    batches = list(loader)
    after = servers.stats()
    asked = loader.stats()
    assert len(batches) == len(loader) > 0 and asked["remote_requests"] > 0
    served = {key: [a[key] - b[key] for a, b in zip(after, before, strict=True)]
              for key in ("requests", "ids", "bytes")}
    assert served["requests"][0] == served["ids"][0] == served["bytes"][0] == 0  # part 0's own rows are read here
    assert sum(served["requests"]) == asked["remote_requests"]
    assert sum(served["ids"]) == asked["remote_ids"] and sum(served["bytes"]) == asked["remote_bytes"]
    with pytest.raises(ValueError, match=r"part 0 \(gnndist-.*-part-00000\) does not own global id"):
        ray.get(servers.handles[0].fetch.remote(np.array([10**6])))
    assert servers.stats() == after  # a refused request serves nothing


def test_a_killed_server_is_a_clear_error(tmp_path, graph, ray_session):
    from gnndist.config import PartitionConfig
    from partitioners import make_partitioner
    from partitioners.writer import write_partitions

    config = PartitionConfig(method="random", num_parts=2)
    write_partitions(graph, make_partitioner(config).assign(graph), config, tmp_path / "p")
    servers = launch_servers(tmp_path / "p")
    loader = _loader(tmp_path / "p", servers, 0, timeout_s=20)
    ray.kill(servers.handles[1])
    with pytest.raises(RemoteError, match=r"part 1 \(gnndist-.*-part-00001\) died"):
        list(loader)


@ray.remote(num_cpus=0)
class _HangingServer:
    """Answers nothing in time: stands in for a server stuck behind a dead network link."""

    def sample(self, ids, fanout, seed):
        import time

        time.sleep(30)

    def fetch(self, ids):
        import time

        time.sleep(30)


def test_an_unresponsive_server_times_out_with_a_clear_error(partitioned):
    from gnndist.runtime.partition_server import ServerGroup

    root, servers, _ = partitioned
    hanging = ServerGroup(servers.root, group=servers.group, nodes=["another node"] * servers.num_parts,
                          handles=[servers.handles[0]] + [_HangingServer.remote() for _ in servers.handles[1:]])
    loader = _loader(root, hanging, 0, timeout_s=1, prefetch=0)
    with pytest.raises(RemoteError, match=r"no answer within 1 s from partition server\(s\) gnndist-"):
        next(iter(loader))
    for handle in hanging.handles[1:]:
        ray.kill(handle)


needs_shm = pytest.mark.skipif(not shm_available(), reason="no /dev/shm on this machine")


def _reply_files() -> list:
    return list(SHM_DIR.glob(f"{PREFIX}{os.getpid()}-*"))


@needs_shm
@pytest.mark.parametrize("store_by", ["another node", "message size"])
def test_replies_through_shared_memory_equal_replies_through_the_object_store(partitioned, store_by, monkeypatch):
    root, servers, _ = partitioned
    for part in range(servers.num_parts):
        shm = _loader(root, servers, part)
        transports = shm.view.exchange.transports
        assert all(isinstance(t, SharedMemory) for t in transports.values())  # one node
        assert sorted(transports) == [q for q in range(servers.num_parts) if q != part]
        a = list(shm)
        store = _loader(root, servers, part)
        if store_by == "another node":  # what a trainer on another node gets
            store.view.exchange.transports = {q: ObjectStore(t.server) for q, t in transports.items()}
        else:
            monkeypatch.setattr("gnndist.runtime.shm.MAX_MESSAGE_BYTES", 0)
        b = list(store)
        monkeypatch.undo()
        assert all(t.buffer.capacity == 0 for t in store.view.exchange.transports.values()
                   if isinstance(t, SharedMemory))
        assert len(a) == len(b) > 0
        for x, y in zip(a, b, strict=True):
            assert x.n_id.equal(y.n_id) and x.edge_index.equal(y.edge_index) and x.x.equal(y.x) and x.y.equal(y.y)
        assert all(t.buffer.capacity > 0 for t in transports.values())  # each was used
        assert shm.stats()["remote_bytes"] == store.stats()["remote_bytes"] > 0
        assert shm.stats()["remote_requests"] == store.stats()["remote_requests"]
    assert not _reply_files()  # each file is unlinked once its server has it mapped


@needs_shm
def test_a_server_follows_its_client_to_a_grown_reply_buffer(partitioned, graph):
    root, servers, new_to_old = partitioned
    lo, hi = PartView.open(str(root), 1, servers, SamplerConfig()).book.part_range(1)
    buffer, dim = ReplyBuffer(), graph.feature_dim
    for ids in (np.arange(lo, lo + 5), np.arange(lo, hi).repeat(10**6 // (hi - lo))):  # the second needs a bigger file
        layout = fetch_layout(ids.size, dim)
        args = buffer.request(ids, layout)
        assert args[2] >= message_bytes(layout)
        try:
            n = ray.get(servers.handles[1].fetch_into.remote(*args, ids.size))
        finally:
            buffer.served()
        x, y = buffer.reply(layout)
        assert n == ids.size and x.tobytes() == graph.x.numpy()[new_to_old[ids]].tobytes()
        assert np.array_equal(y, graph.y.numpy()[new_to_old[ids]])
        del x, y
    assert not _reply_files()
    # a failed call leaves nothing behind either
    buffer.close()
    with pytest.raises(ValueError, match="does not own global id"):
        try:
            ray.get(servers.handles[1].fetch_into.remote(*buffer.request(np.array([10**6]), fetch_layout(1, dim)), 1))
        finally:
            buffer.served()
    assert not _reply_files()


@needs_shm
def test_sampling_through_a_reply_buffer_equals_sampling_through_the_object_store(partitioned):
    root, servers, _ = partitioned
    lo, hi = PartView.open(str(root), 1, servers, SamplerConfig()).book.part_range(1)
    ids, buffer = np.arange(lo, hi)[::2], ReplyBuffer()
    for fanout in (3, 0, 100):
        layout = sample_layout(ids.size, fanout)
        try:
            m = ray.get(servers.handles[1].sample_into.remote(*buffer.request(ids, layout), ids.size, fanout, 7))
        finally:
            buffer.served()
        counts, neighbors = buffer.reply(layout)
        expected = ray.get(servers.handles[1].sample.remote(ids, fanout, 7))
        assert np.array_equal(counts, expected[0]) and np.array_equal(neighbors[:m], expected[1])
        del counts, neighbors
    buffer.close()


def test_a_server_opens_only_gnndist_reply_buffers_and_messages_that_fit(tmp_path):
    target = tmp_path / f"{PREFIX}x"
    target.write_bytes(b"\0" * 4096)
    with pytest.raises(ValueError, match="is not a gnndist buffer in /dev/shm"):
        ReplyMaps().sections("client", str(target), 4096, fetch_layout(1, 1))
    with pytest.raises(ValueError, match="is not a gnndist buffer"):
        ReplyMaps().sections("client", str(SHM_DIR / "other"), 4096, fetch_layout(1, 1))
    if shm_available():
        buffer = ReplyBuffer()
        client, path, capacity = buffer.request(np.arange(3), fetch_layout(3, 2))
        with pytest.raises(ValueError, match=f"does not fit reply buffer '{path}'"):
            ReplyMaps().sections(client, path, capacity, fetch_layout(10**6, 2))
        buffer.close()
