"""Built-in models: per-layer blocks over a sparse adjacency give exactly the seed logits and
gradients of PyG's models on the untrimmed batch."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torch_geometric.nn as pyg_nn

from gnndist.config import TrainConfig
from gnndist.sampling.neighbor import CSCProvider, sample_khop
from gnndist.testing import random_graph
from gnndist.train.models import build_model, sparse_blocks

MODELS = ("sage", "gcn", "gat", "gin")
STOCK = {"sage": pyg_nn.GraphSAGE, "gcn": pyg_nn.GCN, "gat": pyg_nn.GAT, "gin": pyg_nn.GIN}
FEATURES, CLASSES, HIDDEN, LAYERS = 6, 4, 16, 3
TIGHT = {"rtol": 1e-5, "atol": 1e-6}


@pytest.fixture(scope="module")
def graph():
    return random_graph(400, 3000, seed=3, feature_dim=FEATURES, num_classes=CLASSES)


def _batch(graph, fanouts=(5, 4, 3), num_seeds=24):
    seeds = np.flatnonzero(graph.train_mask.numpy())[:num_seeds]
    sub = sample_khop(seeds, fanouts, CSCProvider(graph.indptr.numpy(), graph.indices.numpy()), seed=11)
    n_id = torch.from_numpy(sub.n_id)
    layout = {"num_sampled_nodes_per_hop": sub.num_sampled_nodes, "num_sampled_edges_per_hop": sub.num_sampled_edges}
    return graph.x[n_id], graph.y[n_id], torch.from_numpy(sub.edge_index), sub.batch_size, layout


def _pair(name: str, dropout: float = 0.0):
    """Ours and the stock PyG model, holding the same parameters."""
    torch.manual_seed(0)
    ours = build_model(TrainConfig(model=name, hidden=HIDDEN, dropout=dropout), FEATURES, CLASSES, LAYERS)
    stock = STOCK[name](FEATURES, HIDDEN, num_layers=LAYERS, out_channels=CLASSES, dropout=dropout)
    stock.load_state_dict(ours.state_dict())
    return ours, stock


def test_sampled_batches_arrive_grouped_by_target(graph):
    # The models take their fast path (no sort) only when targets never decrease.
    _, _, edge_index, _, _ = _batch(graph)
    assert bool((edge_index[1, 1:] >= edge_index[1, :-1]).all())


@pytest.mark.parametrize("name", MODELS)
def test_seed_logits_equal_the_untrimmed_batch_and_stock_pyg(graph, name):
    x, _, edge_index, seeds, layout = _batch(graph)
    ours, stock = _pair(name)
    ours.eval(), stock.eval()
    with torch.no_grad():
        blocks = ours(x, edge_index, **layout)
        untrimmed = ours(x, edge_index)
        expected = stock(x, edge_index)
    assert blocks.shape == (seeds, CLASSES) and untrimmed.shape == (x.size(0), CLASSES)
    assert torch.allclose(blocks, untrimmed[:seeds], **TIGHT)
    assert torch.allclose(blocks, expected[:seeds], **TIGHT)
    assert expected[:seeds].abs().max() > 0.1  # not trivially equal


@pytest.mark.parametrize("name", MODELS)
def test_gradients_equal_stock_pyg(graph, name):
    x, y, edge_index, seeds, layout = _batch(graph)
    ours, stock = _pair(name)
    F.cross_entropy(ours(x, edge_index, **layout)[:seeds], y[:seeds]).backward()
    F.cross_entropy(stock(x, edge_index)[:seeds], y[:seeds]).backward()
    expected = dict(stock.named_parameters())
    for key, param in ours.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, key
        assert torch.allclose(param.grad, expected[key].grad, rtol=1e-4, atol=1e-6), key


@pytest.mark.parametrize("name", MODELS)
def test_a_whole_graph_without_hop_layout(graph, name):
    # Evaluation of a plain graph: edges in any order, every node's output.
    edge_index = graph.edge_index()
    edge_index = edge_index[:, torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(0))]
    ours, stock = _pair(name)
    ours.eval(), stock.eval()
    with torch.no_grad():
        assert torch.allclose(ours(graph.x, edge_index), stock(graph.x, edge_index), **TIGHT)


@pytest.mark.parametrize("name", ["sage", "gcn"])
def test_edges_in_any_order_with_the_hop_layout(graph, name):
    x, _, edge_index, seeds, layout = _batch(graph)
    shuffled = edge_index[:, torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(1))]
    ours, _ = _pair(name)
    ours.eval()
    with torch.no_grad():
        assert torch.allclose(ours(x, shuffled, **layout), ours(x, edge_index, **layout), **TIGHT)


@pytest.mark.parametrize("name", MODELS)
def test_seeds_without_neighbours(graph, name):
    x, _, edge_index, seeds, layout = _batch(graph, fanouts=(0, 0, 0))
    assert edge_index.size(1) == 0
    ours, stock = _pair(name)
    ours.eval(), stock.eval()
    with torch.no_grad():
        assert torch.allclose(ours(x, edge_index, **layout), stock(x, edge_index)[:seeds], **TIGHT)


def test_more_hops_than_layers_and_fewer(graph):
    ours, stock = _pair("sage")
    ours.eval(), stock.eval()
    for fanouts in ((4, 3, 3, 2), (5, 4)):
        x, _, edge_index, seeds, layout = _batch(graph, fanouts=fanouts)
        with torch.no_grad():
            assert torch.allclose(ours(x, edge_index, **layout)[:seeds], stock(x, edge_index)[:seeds], **TIGHT)


def test_a_layout_that_does_not_fit_the_batch_is_refused(graph):
    x, _, edge_index, _, layout = _batch(graph)
    nodes, edges = layout["num_sampled_nodes_per_hop"], layout["num_sampled_edges_per_hop"]
    with pytest.raises(ValueError, match="hold"):
        sparse_blocks(edge_index, x.size(0), LAYERS, nodes[:-1] + [nodes[-1] + 1], edges)
    with pytest.raises(ValueError, match="one more hop"):
        sparse_blocks(edge_index, x.size(0), LAYERS, nodes, edges[:-1])
    # Claiming that hop 1 holds one node: the seeds' other neighbours would lie beyond it.
    short = [nodes[0], 1, nodes[1] - 1 + nodes[2], nodes[3]]
    with pytest.raises(ValueError, match="beyond the next hop"):
        sparse_blocks(edge_index, x.size(0), LAYERS, short, edges)
    with pytest.raises(ValueError, match="or neither"):
        sparse_blocks(edge_index, x.size(0), LAYERS, nodes, None)


def test_blocks_shrink_layer_by_layer(graph):
    x, _, edge_index, seeds, layout = _batch(graph)
    nodes = np.cumsum(layout["num_sampled_nodes_per_hop"])
    blocks = sparse_blocks(edge_index, x.size(0), LAYERS, layout["num_sampled_nodes_per_hop"],
                           layout["num_sampled_edges_per_hop"])
    assert [(b.num_src, b.num_dst) for b in blocks] == [(nodes[3], nodes[2]), (nodes[2], nodes[1]), (nodes[1], seeds)]
    edges = np.cumsum(layout["num_sampled_edges_per_hop"])
    assert [b.adj_t._nnz() for b in blocks] == [edges[2], edges[1], edges[0]]


def test_forward_declares_the_hop_layout_keywords():
    # The training loop passes the layout only to models whose forward names these keywords.
    model = build_model(TrainConfig(), FEATURES, CLASSES, LAYERS)
    params = inspect.signature(model.forward).parameters
    assert {"num_sampled_nodes_per_hop", "num_sampled_edges_per_hop"} <= set(params)


def test_training_mode_uses_dropout(graph):
    x, _, edge_index, _, layout = _batch(graph)
    ours, _ = _pair("sage", dropout=0.5)
    first, second = ours(x, edge_index, **layout), ours(x, edge_index, **layout)
    assert not torch.allclose(first, second)
    ours.eval()
    assert torch.equal(ours(x, edge_index, **layout), ours(x, edge_index, **layout))
