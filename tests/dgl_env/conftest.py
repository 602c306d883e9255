"""DGL graphs built from gnndist's bundled Cora (DGL's own ``CoraGraphDataset`` downloads it,
which these tests cannot), and a bit-for-bit comparison of two graphs.

The tests of this folder need DGL, which has an environment of its own (``make dgl-env``); each
module that uses it skips without it, so the main environment's suite stays green. The folder is
not named ``tests/dgl``: pytest puts ``tests/`` on ``sys.path``, where a folder ``dgl`` would be
imported as the namespace package ``dgl`` wherever DGL is not installed.
"""

from __future__ import annotations

import pytest
import torch

from gnndist.config import SourceConfig
from gnndist.graph import Graph
from gnndist.sources import load_graph

MASKS = ("train_mask", "val_mask", "test_mask")


@pytest.fixture(scope="session")
def cora() -> Graph:
    return load_graph(SourceConfig(dataset="cora"))


@pytest.fixture(scope="session")
def to_dgl():
    """``graph -> DGLGraph``: the graph's edges (source -> destination, global ids) and its node
    data under DGL's dataset names (``feat`` float32 [N, F], ``label``, the three masks)."""
    dgl = pytest.importorskip("dgl")

    def build(graph: Graph):
        src, dst = graph.edge_index()
        g = dgl.graph((src, dst), num_nodes=graph.num_nodes)
        g.ndata["feat"] = graph.x.clone()
        g.ndata["label"] = graph.y.clone()
        for key in MASKS:
            g.ndata[key] = getattr(graph, key).clone()
        return g

    return build


@pytest.fixture(scope="session")
def assert_same_graph():
    """``(got, want)``: the same edges (CSC, so the same set), features bit for bit, labels,
    masks and class count."""

    def check(got: Graph, want: Graph) -> None:
        assert torch.equal(got.indptr, want.indptr)
        assert torch.equal(got.indices, want.indices)
        assert torch.equal(got.x.view(torch.int32), want.x.view(torch.int32))  # bit for bit, -0.0 included
        assert torch.equal(got.y, want.y)
        for key in MASKS:
            assert torch.equal(getattr(got, key), getattr(want, key)), key
        assert got.num_classes == want.num_classes

    return check
