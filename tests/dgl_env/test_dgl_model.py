"""DGL models trained: a model written for DGL's mini-batch API, ``forward(blocks, x)``, gets one
real ``DGLBlock`` per hop of a gnndist batch (:meth:`MiniBatch.to_dgl_blocks`), computes what DGL
computes on blocks it builds itself from the same sampled subgraph, what a hand computation and
gnndist's PyG GraphSAGE give, and trains the bundled Cora on 2 parts with 2 workers, from Python
and from the command line (``--model-module``)."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gnndist.cli import main
from gnndist.config import TrainConfig
from gnndist.sampling.batch import MiniBatch
from gnndist.sampling.neighbor import CSCProvider, sample_khop
from gnndist.testing import SaveParameters, random_graph, saved_parameters
from gnndist.train.models import build_model
from gnndist.train.step import ModelInput, forward

dgl = pytest.importorskip("dgl")

FEATURES, HIDDEN, CLASSES = 6, 16, 4
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dgl_sage.py"


@pytest.fixture(scope="module")
def example():
    """``examples/dgl_sage.py`` as a module (its SAGE model is DGL's GraphSAGE example's)."""
    spec = importlib.util.spec_from_file_location("dgl_sage_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _batch(fanouts=(5, 4), num_seeds=24, num_nodes=400, num_edges=3000) -> MiniBatch:
    """A sampled batch of a random graph, as the loader builds it (features of ``n_id``)."""
    graph = random_graph(num_nodes, num_edges, seed=3, feature_dim=FEATURES, num_classes=CLASSES)
    seeds = np.flatnonzero(graph.train_mask.numpy())[:num_seeds]
    sub = sample_khop(seeds, fanouts, CSCProvider(graph.indptr.numpy(), graph.indices.numpy()), seed=11)
    n_id = torch.from_numpy(sub.n_id)
    return MiniBatch(x=graph.x[n_id], y=graph.y[n_id], edge_index=torch.from_numpy(sub.edge_index), n_id=n_id,
                     batch_size=sub.batch_size, num_sampled_nodes=sub.num_sampled_nodes,
                     num_sampled_edges=sub.num_sampled_edges)


def _dgl_own_blocks(batch: MiniBatch, num_layers: int) -> tuple[list, torch.Tensor]:
    """Blocks built by DGL from the batch's subgraph as its samplers build them, last layer first:
    the in-edges of the destinations (``in_subgraph``), then ``to_block``, whose sources are the
    next layer's destinations; and the first block's source features. No hop counts are used."""
    whole = dgl.graph((batch.edge_index[0], batch.edge_index[1]), num_nodes=batch.num_nodes)
    dst, blocks = torch.arange(batch.batch_size), []
    for _ in range(num_layers):
        block = dgl.to_block(dgl.in_subgraph(whole, dst), dst)
        blocks.insert(0, block)
        dst = block.srcdata[dgl.NID]
    return blocks, batch.x[blocks[0].srcdata[dgl.NID]]


def test_a_model_taking_blocks_is_detected_and_may_say_so_itself(example):
    assert ModelInput.of(example.SAGE(FEATURES, CLASSES, HIDDEN)) is ModelInput.DGL_BLOCKS

    class Declared(torch.nn.Module):  # forward's first parameter is not named blocks
        gnndist_input = "dgl_blocks"

        def forward(self, mfgs, h):
            return h

    assert ModelInput.of(Declared()) is ModelInput.DGL_BLOCKS


@pytest.mark.parametrize("fanouts", [(5, 4), (5, 4, 3), (3,)])
def test_the_blocks_are_one_per_hop_destinations_first(fanouts):
    batch = _batch(fanouts)
    blocks = batch.to_dgl_blocks()
    within = np.cumsum(batch.num_sampled_nodes)
    assert len(blocks) == len(fanouts)
    for layer, block in enumerate(blocks):
        hop = len(fanouts) - 1 - layer
        assert block.is_block and block.idtype == torch.int64
        assert (block.num_src_nodes(), block.num_dst_nodes()) == (within[hop + 1], within[hop])
        src, dst = block.edges()
        # Every edge of the batch into the destinations, and no other.
        into = batch.edge_index[1] < within[hop]
        assert torch.equal(src, batch.edge_index[0, into]) and torch.equal(dst, batch.edge_index[1, into])
    assert blocks[-1].num_dst_nodes() == batch.batch_size


@pytest.mark.parametrize(("fanouts", "aggregator"), [((5, 4), "mean"), ((4, 3, 2), "mean"), ((5, 4), "gcn")])
def test_logits_and_gradients_equal_those_on_dgl_s_own_blocks(example, fanouts, aggregator):
    batch = _batch(fanouts)
    torch.manual_seed(0)
    model = example.SAGE(FEATURES, CLASSES, HIDDEN, num_layers=len(fanouts), dropout=0.0, aggregator=aggregator)
    ours = forward(model, batch, ModelInput.of(model))
    ours.square().sum().backward()
    ours_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    blocks, x = _dgl_own_blocks(batch, len(fanouts))
    theirs = model(blocks, x)
    theirs.square().sum().backward()
    assert ours.shape == (batch.batch_size, CLASSES)
    assert torch.equal(ours, theirs)
    for got, want in zip(ours_grads, (p.grad for p in model.parameters()), strict=True):
        # DGL's own blocks may hold a node's edges in another order: the backward's sums over them
        # then round differently.
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


def _hand_sage(batch: MiniBatch, layer: dgl.nn.SAGEConv, h: torch.Tensor, num_dst: int) -> torch.Tensor:
    """SAGEConv('mean') by its definition, node by node over the batch's edge_index:
    ``W_self h_v + b + W_neigh mean_{u -> v} h_u`` (no in-edges: the mean is 0)."""
    rows = []
    for v in range(num_dst):
        nbrs = batch.edge_index[0, batch.edge_index[1] == v]
        mean = h[nbrs].mean(0) if nbrs.numel() else torch.zeros(h.size(1))
        rows.append(layer.fc_self.weight @ h[v] + layer.fc_self.bias + layer.fc_neigh.weight @ mean)
    return torch.stack(rows)


def test_dgl_sage_equals_a_hand_computation_and_gnndist_s_pyg_graphsage(example):
    # Seeds among isolated nodes too: a random graph of 60 nodes and 90 edges has some.
    batch = _batch((3, 3), num_seeds=12, num_nodes=60, num_edges=90)
    assert 0 in batch.edge_index[1].bincount(minlength=batch.batch_size)[:batch.batch_size]
    torch.manual_seed(0)
    model = example.SAGE(FEATURES, CLASSES, HIDDEN, aggregator="mean").eval()
    with torch.no_grad():
        logits = forward(model, batch, ModelInput.of(model))
        within = np.cumsum(batch.num_sampled_nodes)
        hidden = _hand_sage(batch, model.layers[0], batch.x, int(within[1])).relu()
        torch.testing.assert_close(logits, _hand_sage(batch, model.layers[1], hidden, batch.batch_size),
                                   rtol=1e-5, atol=1e-6)
        # PyG's SAGEConv is the same layer: lin_l (neighbours, with the bias) and lin_r (root).
        pyg = build_model(TrainConfig(model="sage", hidden=HIDDEN, dropout=0.0), FEATURES, CLASSES, 2).eval()
        pyg.load_state_dict({f"convs.{i}.{name}": getattr(conv, part).state_dict()[key]
                             for i, conv in enumerate(model.layers)
                             for name, part, key in (("lin_l.weight", "fc_neigh", "weight"),
                                                     ("lin_l.bias", "fc_self", "bias"),
                                                     ("lin_r.weight", "fc_self", "weight"))})
        torch.testing.assert_close(logits, forward(pyg, batch, ModelInput.of(pyg)), rtol=1e-5, atol=1e-6)


def test_the_example_trains_cora_on_two_parts_with_identical_parameters(example, ray_session, tmp_path):
    started = time.perf_counter()
    result = example.main(epochs=40, workdir=tmp_path, hooks=[SaveParameters(tmp_path / "params")])
    print(f"DGL SAGE on Cora, 2 parts, 2 workers, 40 epochs: test accuracy {result.test_acc:.4f} at epoch "
          f"{result.best['epoch']}, {time.perf_counter() - started:.1f} s")
    assert [w["parts"] for w in result.history[0]["workers"]] == [[0], [1]]
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.test_acc >= 0.78  # the test accuracy at the best validation epoch (chance: 0.32)
    first, second = saved_parameters(tmp_path / "params", 0), saved_parameters(tmp_path / "params", 1)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_the_command_line_trains_the_example_s_model_and_evaluates_it(cora_parts, ray_session, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--partitions", str(cora_parts), "--model-module", f"{EXAMPLE}:SAGE", "--epochs", "1",
                 "--hidden", "32", "--out", str(run), "--quiet"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    info = json.loads((run / "run.json").read_text())
    assert info["model"]["name"] == f"{EXAMPLE}:SAGE" and info["model"]["hidden"] == 32
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    # The run's config names the model, so `gnndist evaluate` builds it again.
    assert main(["evaluate", str(run), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores == {"epoch": 0, "val_acc": last["val_acc"], "test_acc": last["test_acc"]}
