"""Edge-list reader: CSV/TSV/TXT/Parquet with feature and label files."""

from __future__ import annotations

import numpy as np
import pytest

from gnndist.config import SourceConfig
from gnndist.graph import UNLABELLED
from gnndist.sources import load_graph


def _load(path, **kw):
    return load_graph(SourceConfig(dataset=str(path), **kw))


def _edges(g) -> set[tuple[int, int]]:
    src, dst = g.edge_index().tolist()
    return set(zip(src, dst, strict=True))


@pytest.mark.parametrize("suffix, text", [
    (".csv", "src,dst\n0,1\n1,2\n"),
    (".csv", "# comment\n# more\nsource, target\n0, 1\n1, 2\n"),
    (".tsv", "0\t1\t0.5\n1\t2\t0.7\n"),
    (".txt", "# SNAP style\n0 1\n1   2\n"),
])
def test_text_formats_and_headers(tmp_path, suffix, text):
    path = tmp_path / f"g{suffix}"
    path.write_text(text)
    g = _load(path, undirected=False)
    assert _edges(g) == {(0, 1), (1, 2)}
    assert g.num_nodes == 3 and g.feature_dim == 0
    assert bool((g.y == UNLABELLED).all()) and not bool(g.train_mask.any())


def test_undirected_adds_reverse_edges(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("0,1\n1,2\n")
    assert _edges(_load(path)) == {(0, 1), (1, 0), (1, 2), (2, 1)}


def test_parquet_named_and_positional_columns(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"weight": [1.0, 2.0], "dst": [1, 2], "src": [0, 1]}), tmp_path / "named.parquet")
    pq.write_table(pa.table({"a": [0, 1], "b": [1, 2]}), tmp_path / "plain.parquet")
    for name in ("named", "plain"):
        assert _edges(_load(tmp_path / f"{name}.parquet", undirected=False)) == {(0, 1), (1, 2)}


def test_features_and_labels_files(tmp_path):
    edges = tmp_path / "g.csv"
    edges.write_text("0,1\n")
    np.save(tmp_path / "x.npy", np.arange(8, dtype=np.float64).reshape(4, 2))
    (tmp_path / "y.txt").write_text("0\n1\nnan\n-1\n")
    g = _load(edges, features=str(tmp_path / "x.npy"), labels=str(tmp_path / "y.txt"), split="random:0.5,0")
    assert g.num_nodes == 4 and g.x.dtype.is_floating_point and g.x[3].tolist() == [6.0, 7.0]
    assert g.y.tolist() == [0, 1, UNLABELLED, UNLABELLED] and g.num_classes == 2
    assert int(g.train_mask.sum()) == 1 and int(g.test_mask.sum()) == 1
    (tmp_path / "x.csv").write_text("0.5,1\n2,3\n")
    assert _load(edges, features=str(tmp_path / "x.csv")).x.tolist() == [[0.5, 1.0], [2.0, 3.0]]


def test_labels_npy_and_default_split(tmp_path):
    edges = tmp_path / "g.csv"
    edges.write_text("0,1\n1,2\n")
    np.save(tmp_path / "y.npy", np.array([0, 1, 0]))
    g = _load(edges, labels=str(tmp_path / "y.npy"))
    assert bool(g.train_mask.all())  # per_class:20,30 on 3 nodes: all of them train
