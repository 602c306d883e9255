"""from_dgl: a DGLGraph in memory becomes a gnndist Graph, node ids and node data as DGL has them."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from gnndist.graph import UNLABELLED, GraphError
from gnndist.sources import from_dgl

dgl = pytest.importorskip("dgl")


def test_cora_round_trips_bit_for_bit(cora, to_dgl, assert_same_graph):
    graph = from_dgl(to_dgl(cora), name="cora")
    assert_same_graph(graph, cora)
    assert graph.name == "cora" and graph.meta == {"format": "dgl"}


def test_node_ids_are_dgl_ids_and_missing_node_data_is_empty():
    g = dgl.graph((torch.tensor([0, 1, 2, 2]), torch.tensor([1, 2, 0, 0])), num_nodes=4)  # node 3 isolated
    graph = from_dgl(g)
    assert graph.num_nodes == 4
    assert graph.edge_index().tolist() == [[2, 0, 1], [0, 1, 2]]  # 2 -> 0 once, grouped by target
    assert graph.feature_dim == 0 and graph.y.tolist() == [UNLABELLED] * 4
    assert not (graph.train_mask | graph.val_mask | graph.test_mask).any()


def test_other_names_and_one_split_of_many(cora, to_dgl):
    g = to_dgl(cora)
    g.ndata["x"], g.ndata["y"] = g.ndata.pop("feat"), g.ndata.pop("label")
    splits = torch.zeros(cora.num_nodes, 3, dtype=torch.bool)  # three splits, as DGL's heterophilous sets
    splits[:, 1] = cora.train_mask
    g.ndata["train"] = splits
    graph = from_dgl(g, feature_key="x", label_key="y", mask_keys=("train", "val_mask", "test_mask"),
                     split_index=1)
    assert torch.equal(graph.x, cora.x) and torch.equal(graph.y, cora.y)
    assert torch.equal(graph.train_mask, cora.train_mask)
    with pytest.raises(GraphError, match="train holds 3 splits; split_index 3 is out of range"):
        from_dgl(g, feature_key="x", label_key="y", mask_keys=("train", "val_mask", "test_mask"), split_index=3)


def _papers_and_authors():
    g = dgl.heterograph({("paper", "cites", "paper"): ([0, 1], [1, 2]),
                         ("author", "writes", "paper"): ([0, 1], [0, 2])})
    g.nodes["paper"].data["feat"] = torch.ones(3, 2)
    g.nodes["paper"].data["label"] = torch.tensor([0, 1, 0])
    return g


def test_a_heterograph_is_refused_naming_its_types_and_how_to_pick():
    with pytest.raises(GraphError, match=r"a heterograph \(node types \['author', 'paper'\], edge types .*'writes'.*"
                                         r"from_dgl\(g, ntype=\.\.\., etype=\.\.\.\).*edge_type_subgraph"):
        from_dgl(_papers_and_authors())


@pytest.mark.parametrize("pick", [{"ntype": "paper"}, {"etype": "cites"}, {"etype": ("paper", "cites", "paper")},
                                  {"ntype": "paper", "etype": "cites"}])
def test_a_node_type_and_an_edge_type_pick_one_graph(pick):
    graph = from_dgl(_papers_and_authors(), **pick)
    assert graph.num_nodes == 3 and graph.edge_index().tolist() == [[0, 1], [1, 2]]
    assert graph.y.tolist() == [0, 1, 0]
    assert graph.meta == {"format": "dgl", "ntype": "paper", "etype": "paper:cites:paper"}


@pytest.mark.parametrize(("pick", "match"), [
    ({"ntype": "venue"}, r"no node type 'venue' \(node types: \['author', 'paper'\]\)"),
    ({"ntype": "author"}, "a heterograph"),  # no edge type joins authors to authors
    ({"etype": "reviews"}, r"edge type 'reviews': .*\(edge types: \[.*\]\)"),
    ({"etype": "writes"}, "edge type .*'writes'.* joins 'author' nodes to 'paper' nodes"),
    ({"ntype": "author", "etype": "cites"}, "joins 'paper' nodes, not 'author' ones"),
])
def test_a_pick_that_is_no_graph_is_refused(pick, match):
    with pytest.raises(GraphError, match=match):
        from_dgl(_papers_and_authors(), **pick)


def test_one_part_of_a_distdgl_partition_is_refused():
    g = dgl.graph(([0], [1]))
    g.ndata["inner_node"] = torch.ones(2, dtype=torch.uint8)
    with pytest.raises(GraphError, match="one part of a DistDGL partition.*config .json"):
        from_dgl(g)


@pytest.mark.parametrize(("key", "value", "match"), [
    ("feat", torch.tensor([[0.0], [float("nan")]]), r"features hold NaN or inf \(first at node 1, column 0\)"),
    ("label", torch.tensor([0.0, 0.5]), "labels are not integer class ids"),
    ("val_mask", torch.tensor([True, False]), "node 0 is in more than one split"),
])
def test_bad_node_data_is_refused_naming_the_graph(key, value, match):
    g = dgl.graph(([0], [1]))
    g.ndata["label"], g.ndata["train_mask"] = torch.tensor([0, 1]), torch.tensor([True, False])
    g.ndata[key] = value
    with pytest.raises(GraphError, match=rf"<DGL DGLGraph 'mine'>: {match}"):
        from_dgl(g, name="mine")


def test_importing_gnndist_does_not_import_dgl():
    code = ("import sys, gnndist, gnndist.sources, gnndist.cli\n"
            "assert 'dgl' not in sys.modules, 'gnndist imported dgl'")
    subprocess.run([sys.executable, "-c", code], check=True)
