"""Graph files written by ``dgl.save_graphs``: recognised by their first bytes, their first graph
loaded by ``load_graph`` and partitioned by ``gnndist partition``."""

from __future__ import annotations

import json

import pytest
import torch

from gnndist.cli import main
from gnndist.config import SourceConfig
from gnndist.graph import GraphError
from gnndist.sources import detect_format, load_graph

dgl = pytest.importorskip("dgl")


@pytest.fixture
def cora_file(tmp_path, cora, to_dgl):
    """The bundled Cora as the first of two graphs in a ``dgl.save_graphs`` file."""
    path = tmp_path / "cora.bin"
    dgl.save_graphs(str(path), [to_dgl(cora), dgl.graph(([0], [1]))])
    return path


def test_the_first_graph_of_a_file_loads_bit_for_bit(cora_file, cora, assert_same_graph):
    graph = load_graph(SourceConfig(dataset=str(cora_file)))
    assert_same_graph(graph, cora)
    assert graph.name == "cora" and graph.origin == str(cora_file)
    assert graph.meta == {"format": "dgl", "split": {"scheme": "default", "used": "own"}}


def test_the_file_is_recognised_by_its_content_not_its_name(cora_file):
    renamed = cora_file.rename(cora_file.with_name("graph"))
    assert detect_format(renamed) == "dgl"


def test_the_source_options_apply(cora_file, cora):
    graph = load_graph(SourceConfig(dataset=str(cora_file), split="random:0.5,0.25", num_classes=9))
    assert graph.num_classes == 9
    assert int(graph.train_mask.sum()) == cora.num_nodes // 2
    assert graph.meta["split"] == {"scheme": "random:0.5,0.25", "seed": 0}


def test_gnndist_partition_takes_the_file(cora_file, tmp_path, cora):
    out = tmp_path / "parts"
    assert main(["partition", "--dataset", str(cora_file), "--parts", "2", "--out", str(out), "--quiet"]) == 0
    # Every edge, feature and label of the partition against the file, and the files' integrity.
    assert main(["inspect", str(out), "--check", "--source", str(cora_file)]) == 0
    source = json.loads((out / "partition.json").read_text())["graph"]
    assert source["name"] == "cora" and source["num_nodes"] == cora.num_nodes
    assert source["origin"] == str(cora_file) and source["meta"]["format"] == "dgl"


def test_a_file_cut_short_is_refused_saying_so(cora_file, tmp_path):
    cut = tmp_path / "cut.bin"
    cut.write_bytes(cora_file.read_bytes()[:1000])
    with pytest.raises(GraphError, match=r"cut\.bin: not a readable DGL graph file: .*\(a file cut short"):
        load_graph(SourceConfig(dataset=str(cut)))


def test_a_heterograph_file_says_how_to_save_one_relation(tmp_path, capsys):
    path = tmp_path / "hetero.bin"
    dgl.save_graphs(str(path), [dgl.heterograph({("user", "follows", "user"): ([0], [1]),
                                                 ("user", "buys", "item"): ([0], [0])})])
    assert main(["partition", "--dataset", str(path), "--out", str(tmp_path / "parts"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "hetero.bin: a heterograph (node types ['item', 'user']" in error
    assert "g.edge_type_subgraph([etype])" in error


def test_one_part_of_a_distdgl_partition_is_refused(tmp_path, cora, to_dgl):
    dgl.distributed.partition_graph(to_dgl(cora), "cora", 2, str(tmp_path), part_method="random")
    with pytest.raises(GraphError, match=r"part0/graph\.dgl: this is one part of a DistDGL partition"):
        load_graph(SourceConfig(dataset=str(tmp_path / "part0" / "graph.dgl")))


def test_an_empty_graph_is_refused(tmp_path):
    path = tmp_path / "empty.bin"
    dgl.save_graphs(str(path), [dgl.graph((torch.tensor([], dtype=torch.int64),) * 2, num_nodes=0)])
    with pytest.raises(GraphError, match=r"empty\.bin: the graph has no nodes"):
        load_graph(SourceConfig(dataset=str(path)))
