"""Batches from sparse and half-precision partitions: the same features as from dense float32
ones (bit for bit, or the rounded values), and half the halo bytes in half precision."""

from __future__ import annotations

import numpy as np
import pytest
import ray
import scipy.sparse as sp
import torch

from gnndist.config import PartitionConfig, SamplerConfig
from gnndist.graph import Graph
from gnndist.partition.features import SparseRows
from gnndist.partition.format import read_manifest
from gnndist.runtime.loader import DistributedNeighborLoader, PartView
from gnndist.runtime.partition_server import launch_servers
from gnndist.testing import random_graph
from partitioners.writer import write_partitions

LAYOUTS = {"dense-float32": ("dense", "float32"), "csr-float32": ("sparse", "float32"),
           "dense-float16": ("dense", "float16"), "csr-bfloat16": ("sparse", "bfloat16")}
SAMPLER = SamplerConfig(fanouts=(4, 4), batch_size=16, prefetch=0)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory, ray_session):
    """One graph with sparse features, written in every layout of :data:`LAYOUTS`, servers running."""
    base = random_graph(240, 1200, seed=12, feature_dim=1, num_classes=3)
    x = sp.random(240, 48, density=0.08, format="csr", dtype=np.float32, random_state=12)
    x.data = (x.data * 3 - 1).astype(np.float32)  # values that float16/bfloat16 round
    graph = Graph.from_edges(*base.edge_index().numpy(), num_nodes=240, x=x, y=base.y, train_mask=base.train_mask,
                             val_mask=base.val_mask, test_mask=base.test_mask, name="f", origin="test")
    assignment = np.arange(240) % 2
    made = {}
    for name, (storage, dtype) in LAYOUTS.items():
        root = tmp_path_factory.mktemp(name) / "p"
        write_partitions(graph, assignment, PartitionConfig(method="random", num_parts=2, feature_storage=storage,
                                                            feature_dtype=dtype), root)
        made[name] = (root, launch_servers(root))
    yield made
    for _, servers in made.values():
        servers.kill()


def _batches(root, servers, count: int = 3) -> list:
    view = PartView.open(str(root), 0, servers, SAMPLER)
    loader = DistributedNeighborLoader(view, view.seeds("train"), SAMPLER)
    return [b for _, b in zip(range(count), loader, strict=False)]


def test_sparse_partitions_give_the_dense_batches_bit_for_bit(layouts):
    dense, csr = (_batches(*layouts[name]) for name in ("dense-float32", "csr-float32"))
    assert len(dense) == 3
    for a, b in zip(dense, csr, strict=True):
        assert a.x.dtype == b.x.dtype == torch.float32
        assert torch.equal(a.n_id, b.n_id) and torch.equal(a.edge_index, b.edge_index)
        assert a.x.numpy().tobytes() == b.x.numpy().tobytes() and torch.equal(a.y, b.y)


@pytest.mark.parametrize("name", ["dense-float16", "csr-bfloat16"])
def test_half_precision_batches_are_float32_of_the_rounded_values(layouts, name):
    half = getattr(torch, LAYOUTS[name][1])
    for a, b in zip(_batches(*layouts["dense-float32"]), _batches(*layouts[name]), strict=True):
        assert torch.equal(a.n_id, b.n_id) and b.x.dtype == torch.float32
        assert torch.equal(b.x, a.x.to(half).float())


def _fetched_bytes(root, servers, ids: np.ndarray) -> tuple[int, int]:
    """Bytes a part-0 view counts for fetching ``ids`` (all owned by part 1), and part 1's server's."""
    view = PartView.open(str(root), 0, servers, SAMPLER)
    served = servers.stats()[1]["bytes"]
    view.fetch(ids)
    return view.traffic.bytes, servers.stats()[1]["bytes"] - served


def test_halo_bytes_halve_in_half_precision_and_shrink_as_csr(layouts):
    root, servers = layouts["dense-float32"]
    lo, hi = read_manifest(root)["offsets"][1:3]
    ids = np.arange(lo, hi, 3, dtype=np.int64)
    labels = 8 * ids.size
    full, full_served = _fetched_bytes(root, servers, ids)
    half, half_served = _fetched_bytes(*layouts["dense-float16"], ids)
    assert full == full_served == labels + ids.size * 48 * 4
    assert (half - labels) * 2 == full - labels and half == half_served
    csr, csr_served = _fetched_bytes(*layouts["csr-float32"], ids)
    assert csr == csr_served < full / 4  # 8% non-zero: a column id and a value each, beside the offsets


def test_a_csr_partition_server_replies_with_csr_rows(layouts):
    root, servers = layouts["csr-bfloat16"]
    lo = read_manifest(root)["offsets"][1]
    x, y = ray.get(servers.handles[1].fetch.remote(np.arange(lo, lo + 10)))
    assert isinstance(x, SparseRows) and x.shape == (10, 48) and x.dtype == np.uint16 and y.shape == (10,)
