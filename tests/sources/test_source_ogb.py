"""OGB node-property folder reader on a small folder written by the test."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from gnndist.config import SourceConfig
from gnndist.graph import UNLABELLED, GraphError
from gnndist.sources import detect_format, load_graph


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write(text)


def make_ogb(root: Path, *, schemes=("time",), count: bool = True) -> Path:
    folder = root / "ogbn_tiny"
    _write(folder / "raw" / "edge.csv.gz", "0,1\n1,2\n2,3\n3,4\n")
    _write(folder / "raw" / "node-feat.csv.gz", "".join(f"{i}.5,{-i}\n" for i in range(5)))
    _write(folder / "raw" / "node-label.csv.gz", "0\n1\nnan\n1\n0\n")
    if count:
        _write(folder / "raw" / "num-node-list.csv.gz", "5\n")
    for i, scheme in enumerate(schemes):
        split = folder / "split" / scheme
        _write(split / "train.csv.gz", f"{i}\n")
        _write(split / "valid.csv.gz", "3\n" if i != 3 else "1\n")
        _write(split / "test.csv.gz", "4\n")
    return folder


def test_reads_edges_features_labels_split(tmp_path):
    folder = make_ogb(tmp_path)
    assert detect_format(folder) == "ogb"
    g = load_graph(SourceConfig(dataset=str(folder), undirected=False))
    assert g.name == "ogbn_tiny" and g.num_nodes == 5 and g.num_edges == 4
    assert g.x[:, 0].tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]
    assert g.y.tolist() == [0, 1, UNLABELLED, 1, 0]
    assert np.flatnonzero(g.train_mask.numpy()).tolist() == [0]
    assert np.flatnonzero(g.val_mask.numpy()).tolist() == [3]
    assert load_graph(SourceConfig(dataset=str(folder))).num_edges == 8


def test_node_count_from_features_without_count_file(tmp_path):
    g = load_graph(SourceConfig(dataset=str(make_ogb(tmp_path, count=False))))
    assert g.num_nodes == 5


def test_several_schemes_need_a_name(tmp_path):
    folder = make_ogb(tmp_path, schemes=("a", "b"))
    with pytest.raises(GraphError, match=r"split.*\['a', 'b'\]"):
        load_graph(SourceConfig(dataset=str(folder)))
    named = load_graph(SourceConfig(dataset=str(folder), split="b"))
    assert np.flatnonzero(named.train_mask.numpy()).tolist() == [1] and named.meta["split"] == {"scheme": "b"}
    indexed = load_graph(SourceConfig(dataset=str(folder), split="1"))
    assert indexed.sha256() == named.sha256()


def test_no_split_folder_falls_back_to_generated_split(tmp_path):
    folder = make_ogb(tmp_path, schemes=())
    g = load_graph(SourceConfig(dataset=str(folder), split="random:0.5,0.25"))
    assert int(g.train_mask.sum()) == 2 and int(g.val_mask.sum()) == 1 and int(g.test_mask.sum()) == 1


def test_count_mismatch_names_the_features_file(tmp_path):
    folder = make_ogb(tmp_path)
    _write(folder / "raw" / "num-node-list.csv.gz", "6\n")
    with pytest.raises(GraphError, match=r"node-feat\.csv\.gz.*5 rows.*6 nodes"):
        load_graph(SourceConfig(dataset=str(folder)))
