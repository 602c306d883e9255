"""Which split a graph's masks are, recorded as ``meta["split"]`` for the partition manifest."""

from __future__ import annotations

import networkx as nx
import pytest

from gnndist.config import SourceConfig
from gnndist.sources import from_networkx, load_graph, with_split
from gnndist.sources.splits import FALLBACK, describe_split


@pytest.mark.parametrize("config, record", [
    (SourceConfig(dataset="cora"), {"scheme": "default", "used": "own"}),
    (SourceConfig(dataset="amazon-photo"), {"scheme": "default", "used": FALLBACK, "seed": 0}),
    (SourceConfig(dataset="cora", split="per_class:5,10", seed=3), {"scheme": "per_class:5,10", "seed": 3}),
    (SourceConfig(dataset="cora", split="random:0.6,0.2"), {"scheme": "random:0.6,0.2", "seed": 0}),
])
def test_loading_records_the_split(config, record):
    assert load_graph(config).meta["split"] == record


def test_an_unlabelled_edge_list_records_no_split(tmp_path):
    (tmp_path / "e.csv").write_text("0,1\n1,2\n")
    assert load_graph(SourceConfig(dataset=str(tmp_path / "e.csv"))).meta["split"] == {"scheme": "default",
                                                                                       "used": "none"}


def test_with_split_records_on_the_copy_only():
    G = nx.karate_club_graph()
    nx.set_node_attributes(G, {n: int(G.nodes[n]["club"] == "Officer") for n in G}, "y")
    graph = from_networkx(G, name="karate")
    chosen = with_split(graph, "per_class:2,3", seed=1)
    assert chosen.meta["split"] == {"scheme": "per_class:2,3", "seed": 1} and "split" not in graph.meta


@pytest.mark.parametrize("record, words", [
    ({"scheme": "per_class:20,30", "seed": 0}, "per_class:20,30, seed 0"),
    ({"scheme": "3"}, "the source's split 3"),
    ({"scheme": "time"}, "the source's split time"),
    ({"scheme": "default", "used": "own"}, "default: the source's own split"),
    ({"scheme": "default", "used": FALLBACK, "seed": 2}, "default: per_class:20,30, seed 2 (the source has no split"),
    ({"scheme": "default", "used": "none"}, "default: none (no node has a label)"),
    ({"scheme": "given"}, "the masks the graph came with"),
    (None, "not recorded"),
])
def test_records_in_words(record, words):
    assert describe_split(record).startswith(words)
