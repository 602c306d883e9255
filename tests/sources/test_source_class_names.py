"""Classes given by name: text labels are numbered in sorted order, and the names travel to
partition.json and ``gnndist inspect``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gnndist.cli import main
from gnndist.config import SourceConfig
from gnndist.graph import UNLABELLED, GraphError
from gnndist.partition import read_manifest
from gnndist.sources import load_graph

EDGES = "0,1\n1,2\n2,3\n3,4\n4,5\n5,0\n"


def _edges(tmp_path):
    path = tmp_path / "edges.csv"
    path.write_text(EDGES)
    return path


def test_text_labels_by_id_become_sorted_class_ids_with_their_names(tmp_path):
    labels = tmp_path / "labels.csv"
    # rows out of order, a name with the delimiter quoted, a node without a label
    labels.write_text('id,label\n3,Theory\n0,Neural_Networks\n5,"Rule, Learning"\n1,Theory\n4,\n2,Neural_Networks\n')
    g = load_graph(SourceConfig(dataset=str(_edges(tmp_path)), labels=str(labels), split="random:0.5,0.5"))
    assert g.class_names == ("Neural_Networks", "Rule, Learning", "Theory") and g.num_classes == 3
    assert g.y.tolist() == [0, 2, 0, 2, UNLABELLED, 1]


def test_number_labels_in_a_table_stay_numbers_without_names(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("2\n0\n1\n-1\nnan\n1\n")
    g = load_graph(SourceConfig(dataset=str(_edges(tmp_path)), labels=str(labels), split="random:0.5,0.5"))
    assert g.class_names is None and g.y.tolist() == [2, 0, 1, UNLABELLED, UNLABELLED, 1]


def test_an_npy_array_of_names_is_text_labels(tmp_path):
    labels = tmp_path / "labels.npy"
    np.save(labels, np.array(["b", "a", "c", "a", "", "b"]))
    g = load_graph(SourceConfig(dataset=str(_edges(tmp_path)), labels=str(labels), split="random:0.5,0.5"))
    assert g.class_names == ("a", "b", "c") and g.y.tolist() == [1, 0, 2, 0, UNLABELLED, 1]


def test_a_class_count_that_the_names_do_not_fill_is_refused(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("a\nb\na\nb\na\nb\n")
    with pytest.raises(GraphError, match="2 class names for 5 classes"):
        load_graph(SourceConfig(dataset=str(_edges(tmp_path)), labels=str(labels), num_classes=5))


def test_names_reach_partition_json_and_inspect(tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("node,kind\n0,cat\n1,dog\n2,cat\n3,eel\n4,dog\n5,cat\n")
    out = tmp_path / "p"
    assert main(["partition", "--dataset", str(_edges(tmp_path)), "--labels", str(labels), "--method", "random",
                 "--split", "random:0.5,0.25", "--out", str(out), "--quiet"]) == 0
    assert read_manifest(out)["graph"]["class_names"] == ["cat", "dog", "eel"]
    assert main(["inspect", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["graph"]["class_names"] == ["cat", "dog", "eel"]
    assert main(["inspect", str(out)]) == 0
    assert "classes: 0 cat, 1 dog, 2 eel" in capsys.readouterr().out


def test_a_gnn_benchmark_file_gives_its_class_names():
    g = load_graph(SourceConfig(dataset="amazon-photo"))
    assert g.class_names is not None and len(g.class_names) == g.num_classes == 8
    assert g.class_names[1] == "Digital Cameras"
    assert load_graph(SourceConfig(dataset="cora")).class_names is None  # the bundled Cora names none


def test_labels_mixing_ids_and_names_are_refused(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("cat\ndog\n3\ncat\ndog\ncat\n")
    with pytest.raises(GraphError, match="mix class ids and class names.*'3' and 'cat'"):
        load_graph(SourceConfig(dataset=str(_edges(tmp_path)), labels=str(labels)))
