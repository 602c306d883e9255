"""from_pyg and from_networkx."""

from __future__ import annotations

import pytest
import torch

from gnndist.graph import UNLABELLED, GraphError
from gnndist.sources import from_networkx, from_pyg, with_split


def test_from_pyg_reads_everything():
    from torch_geometric.data import Data

    data = Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 2]]), x=torch.rand(3, 4),
                y=torch.tensor([[0], [2], [1]]), train_mask=torch.tensor([True, False, False]),
                test_mask=torch.tensor([False, False, True]))
    g = from_pyg(data, name="toy")
    assert g.name == "toy" and g.num_nodes == 3 and g.num_edges == 3 and g.dropped_self_loops == 1
    assert torch.equal(g.x, data.x) and g.y.tolist() == [0, 2, 1] and g.num_classes == 3
    assert g.train_mask.tolist() == [True, False, False] and not bool(g.val_mask.any())


def test_from_pyg_refuses_multilabel_and_handles_missing_y():
    from torch_geometric.data import Data

    edge_index = torch.tensor([[0], [1]])
    with pytest.raises(GraphError, match="multi-label"):
        from_pyg(Data(edge_index=edge_index, y=torch.zeros(2, 3), num_nodes=2))
    g = from_pyg(Data(edge_index=edge_index, num_nodes=2))
    assert g.y.tolist() == [UNLABELLED, UNLABELLED] and g.feature_dim == 0


def test_from_networkx_relabels_and_keeps_names():
    import networkx as nx

    G = nx.Graph()
    G.add_node("b", x=[1.0, 2.0], y=1)
    G.add_node("a", x=[3.0, 4.0], y=0)
    G.add_node("c", x=[5.0, 6.0])
    G.add_edges_from([("b", "a"), ("a", "c"), ("c", "c")])
    g = from_networkx(G, name="letters")
    assert g.meta["node_names"] == ["b", "a", "c"]
    assert g.x.tolist() == [[1, 2], [3, 4], [5, 6]] and g.y.tolist() == [1, 0, UNLABELLED]
    src, dst = g.edge_index().tolist()
    assert set(zip(src, dst, strict=True)) == {(0, 1), (1, 0), (1, 2), (2, 1)}
    assert g.dropped_self_loops == 1


def test_from_networkx_directed_and_integer_nodes():
    import networkx as nx

    G = nx.DiGraph([(0, 1), (1, 2)])
    g = from_networkx(G)
    assert "node_names" not in g.meta and g.feature_dim == 0
    src, dst = g.edge_index().tolist()
    assert set(zip(src, dst, strict=True)) == {(0, 1), (1, 2)}


def test_from_networkx_errors():
    import networkx as nx

    with pytest.raises(GraphError, match="no nodes"):
        from_networkx(nx.Graph())
    G = nx.path_graph(3)
    G.nodes[0]["x"] = [1.0]
    with pytest.raises(GraphError, match="node 1 has no 'x'"):
        from_networkx(G)


def test_with_split_adds_masks():
    import networkx as nx

    G = nx.karate_club_graph()
    for v in G.nodes:
        G.nodes[v]["y"] = int(G.nodes[v]["club"] == "Officer")
    g = with_split(from_networkx(G, name="karate"), "per_class:2,3", seed=0)
    assert int(g.train_mask.sum()) == 4 and int(g.val_mask.sum()) == 6 and int(g.test_mask.sum()) == 24
