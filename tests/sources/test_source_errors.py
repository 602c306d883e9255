"""Every kind of bad input raises a GraphError that names the offending file."""

from __future__ import annotations

import builtins
import re

import numpy as np
import pytest

from gnndist.config import SourceConfig
from gnndist.graph import GraphError
from gnndist.sources import load_graph


def _fails(match: str, dataset, **kw) -> GraphError:
    with pytest.raises(GraphError, match=match) as info:
        load_graph(SourceConfig(dataset=str(dataset), **kw))
    return info.value


@pytest.fixture
def edges(tmp_path):
    path = tmp_path / "edges.csv"
    path.write_text("0,1\n1,2\n2,3\n")
    return path


def test_missing_path_lists_accepted_formats(tmp_path):
    err = _fails(r"nope\.csv: no such file", tmp_path / "nope.csv")
    assert "Planetoid" in str(err) and "synthetic:sbm|rmat" in str(err) and "cora" in str(err)


def test_wrong_suffix(tmp_path):
    path = tmp_path / "graph.json"
    path.write_text("{}")
    _fails(r"graph\.json: not a recognised graph format.*accepted", path)


def test_npz_without_known_keys(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.arange(3))
    _fails(r"other\.npz: not a recognised", tmp_path / "other.npz")


def test_npz_missing_key(tmp_path):
    np.savez(tmp_path / "partial.npz", adj_indptr=np.array([0, 1]))
    _fails(r"partial\.npz: missing arrays \['adj_data'", tmp_path / "partial.npz")


def test_empty_edge_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("# nothing here\n")
    _fails(r"empty\.csv: the edge file holds no edges", path)


def test_zero_nodes(edges, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((0, 3), np.float32))
    _fails(r"x\.npy: the graph has no nodes", edges, features=str(tmp_path / "x.npy"))


def test_non_integer_ids(tmp_path):
    path = tmp_path / "floats.csv"
    path.write_text("0,1\n1.5,2\n")
    _fails(r"floats\.csv: cannot read a numeric table", path)


def test_edge_id_beyond_node_count(edges, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 2), np.float32))
    _fails(r"edges\.csv: edge endpoint 3 names a node beyond the 3 rows of .*x\.npy", edges,
           features=str(tmp_path / "x.npy"))


def test_negative_edge_id(tmp_path):
    path = tmp_path / "neg.tsv"
    path.write_text("0\t-1\n")
    _fails(r"neg\.tsv: edge endpoint -1", path)


def test_nan_features(edges, tmp_path):
    x = np.zeros((4, 2), np.float32)
    x[2, 1] = np.nan
    np.save(tmp_path / "x.npy", x)
    _fails(r"x\.npy: features hold NaN or inf \(first at node 2, column 1\)", edges, features=str(tmp_path / "x.npy"))


def test_inf_features_in_csv(edges, tmp_path):
    (tmp_path / "x.csv").write_text("0\n1\ninf\n3\n")
    _fails(r"x\.csv: features hold NaN or inf", edges, features=str(tmp_path / "x.csv"))


def test_features_rows_vs_labels_rows(edges, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 2), np.float32))
    np.save(tmp_path / "y.npy", np.zeros(5, np.int64))
    _fails(r"x\.npy: the features file has 4 rows but the labels file .*y\.npy has 5", edges,
           features=str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"))


def test_label_out_of_range(edges, tmp_path):
    (tmp_path / "y.txt").write_text("0\n1\n-3\n1\n")
    _fails(r"y\.txt: label -3 at row 2 \(node 2\) is negative", edges, labels=str(tmp_path / "y.txt"))


def test_label_beyond_classes_in_npz(tmp_path):
    n = 3
    np.savez(tmp_path / "het.npz", node_features=np.zeros((n, 1), np.float32), node_labels=np.array([0, 1, -7]),
             edges=np.array([[0, 1]]), train_masks=np.zeros((1, n), bool), val_masks=np.zeros((1, n), bool),
             test_masks=np.zeros((1, n), bool))
    _fails(r"het\.npz: label -7", tmp_path / "het.npz")


def test_fractional_labels(edges, tmp_path):
    (tmp_path / "y.csv").write_text("0\n0.5\n1\n1\n")
    _fails(r"y\.csv: labels are not integer", edges, labels=str(tmp_path / "y.csv"))


def test_labels_length_mismatch_in_npz(tmp_path):
    np.savez(tmp_path / "het.npz", node_features=np.zeros((3, 1), np.float32), node_labels=np.array([0, 1]),
             edges=np.array([[0, 1]]), train_masks=np.zeros((1, 3), bool), val_masks=np.zeros((1, 3), bool),
             test_masks=np.zeros((1, 3), bool))
    _fails(r"het\.npz: labels have 2 rows but the graph has 3 nodes", tmp_path / "het.npz")


def test_pickled_features_file_is_refused(edges, tmp_path):
    np.save(tmp_path / "x.npy", np.array([{"a": 1}] * 4, dtype=object), allow_pickle=True)
    _fails(r"x\.npy: cannot read without pickle", edges, features=str(tmp_path / "x.npy"))


def test_missing_features_file(edges, tmp_path):
    _fails(r"absent\.npy: array file not found", edges, features=str(tmp_path / "absent.npy"))


def test_parquet_without_pyarrow(tmp_path, monkeypatch):
    path = tmp_path / "g.parquet"
    path.write_bytes(b"PAR1")
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    _fails(re.escape("g.parquet: reading Parquet needs pyarrow (pip install gnndist[parquet])"), path)


def test_unknown_bundled_name():
    _fails(r"bundled:citeseer: no such bundled dataset.*\['amazon-photo', 'cora'\]", "bundled:citeseer")


def test_self_loops_dropped_and_duplicates_merged(tmp_path):
    path = tmp_path / "messy.csv"
    path.write_text("0,1\n0,1\n1,1\n1,0\n2,2\n")
    g = load_graph(SourceConfig(dataset=str(path), undirected=False))
    assert g.num_nodes == 3 and g.num_edges == 2 and g.dropped_self_loops == 2
    assert g.in_degree().tolist() == [1, 1, 0]  # node 2 kept, isolated
