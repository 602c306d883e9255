"""The exchange with the other parts survives a server's restart, and a run's cache candidates
are computed once."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import ray

from gnndist.config import SamplerConfig
from gnndist.runtime import halo
from gnndist.runtime.halo import HALO_DIR
from gnndist.runtime.loader import DistributedNeighborLoader, PartView
from gnndist.runtime.partition_server import launch_servers
from gnndist.runtime.transport import ObjectStore, SharedMemory

CONFIG = SamplerConfig(fanouts=(3, 2), batch_size=32, prefetch=0)


def _batches(view: PartView, epochs=range(2)) -> list:
    return list(DistributedNeighborLoader(view, view.seeds("train"), CONFIG).batches(epochs))


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) > 0 and all(x.n_id.equal(y.n_id) and x.edge_index.equal(y.edge_index)
                                        and x.x.equal(y.x) and x.y.equal(y.y) for x, y in zip(a, b, strict=True))


def test_a_restarted_server_is_found_again_while_the_other_buffers_stay_usable(partitioned):
    """Part 0's view calls every other server; one of them is killed mid-stream and restarted by
    Ray: the stream goes on with the same batches, and neither the lost server's buffer nor the
    others' (locked during the failed call) stand in the way."""
    root, servers, _ = partitioned
    if servers.num_parts != 4:  # one case is enough: a server that dies beside two that do not
        pytest.skip("run on the 4-part partition")
    expected = _batches(PartView.open(str(root), 0, servers, CONFIG))
    restarting = launch_servers(root, max_restarts=1)
    try:
        view = PartView.open(str(root), 0, restarting, CONFIG)
        kinds = {type(t) for t in view.exchange.transports.values()}
        assert kinds <= {SharedMemory, ObjectStore}
        stream = DistributedNeighborLoader(view, view.seeds("train"), CONFIG).batches(range(2))
        got = [next(stream)]
        before = view.exchange.transports[2]
        ray.kill(restarting.handles[2], no_restart=False)
        done = []
        worker = threading.Thread(target=lambda: done.append(got + list(stream)), daemon=True)
        worker.start()
        worker.join(timeout=60)
        assert done, "the stream hung after a server restarted"
        assert _same(done[0], expected)
        assert view.exchange.transports[2] is not before  # found again, with a buffer of its own
    finally:
        restarting.kill()


def test_the_cache_candidates_are_computed_once_per_run_directory(partitioned, tmp_path, monkeypatch):
    root, servers, _ = partitioned
    config = SamplerConfig(fanouts=(3, 2), batch_size=32, prefetch=0, cache_fraction=0.5)
    first = PartView.open(str(root), 0, servers, config, run_dir=tmp_path)
    [kept] = (tmp_path / HALO_DIR).glob("part-00000-*.npy")
    alone = PartView.open(str(root), 0, servers, config)  # computed afresh, not kept
    assert np.array_equal(first.cache.ids, alone.cache.ids) and first.cache_halo_nodes == alone.cache_halo_nodes

    def no_search(*args, **kwargs):
        raise AssertionError("the sampling halo was searched again")

    monkeypatch.setattr(halo, "sampling_halo", no_search)
    again = PartView.open(str(root), 0, servers, config, run_dir=tmp_path)
    assert np.array_equal(again.cache.ids, first.cache.ids)
    assert _same(_batches(again), _batches(first))
    # Other settings, another ranking: searched for, not read from the first one's file.
    with pytest.raises(AssertionError, match="searched again"):
        PartView.open(str(root), 0, servers, SamplerConfig(fanouts=(3,), cache_fraction=0.5), run_dir=tmp_path)
    monkeypatch.undo()
    kept.write_bytes(b"not an array")  # a damaged file is made again, never trusted
    remade = PartView.open(str(root), 0, servers, config, run_dir=tmp_path)
    assert np.array_equal(remade.cache.ids, first.cache.ids)
    assert np.array_equal(np.load(kept), halo.ranked_halo(remade.store, remade, config))
