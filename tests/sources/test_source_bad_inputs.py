"""Inputs a user meets through ``gnndist partition``: graphs without features are partitioned with
structural features; implausible class counts, truncated arrays and files that disagree are
refused (exit 2) with the file, the row or the sizes at fault."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gnndist.cli import main
from gnndist.partition.format import load_part, read_manifest


@pytest.fixture
def edges(tmp_path):
    """An edge list over nodes 0..5 (node 5 has no in-edges before symmetrising)."""
    path = tmp_path / "edges.csv"
    path.write_text("0,1\n1,2\n2,3\n3,4\n4,0\n0,2\n5,0\n")
    return path


def _partition(capsys, *args) -> tuple[int, str]:
    code = main(["partition", *map(str, args), "--parts", "2", "--quiet"])
    return code, capsys.readouterr().err


def _refused(capsys, *args) -> str:
    code, err = _partition(capsys, *args)
    assert code == 2, err
    return err


@pytest.mark.parametrize("undirected", [True, False])
def test_an_edge_list_without_features_gets_degree_features(edges, tmp_path, capsys, undirected):
    out = tmp_path / "parts"
    flag = "--undirected" if undirected else "--no-undirected"
    assert _partition(capsys, "--dataset", edges, flag, "--out", out) == (0, "")
    graph = read_manifest(out)["graph"]
    assert graph["features"] == "degree" and graph["feature_dim"] == 2
    parts = [load_part(out, p) for p in range(2)]
    orig = np.concatenate([a.orig_ids for a in parts])
    x = np.concatenate([np.asarray(a.features) for a in parts])
    # undirected, node 0's in-neighbours are 1, 2, 4 and 5; directed, 4 and 5
    in_degree = np.array([4, 2, 3, 2, 2, 1]) if undirected else np.array([2, 1, 2, 1, 1, 0])
    assert np.array_equal(x[:, 0], np.ones(6, np.float32))
    assert np.array_equal(x[:, 1], np.log1p(in_degree[orig]).astype(np.float32))
    # inspect shows the choice, and --check finds the stored features equal to the source's input
    assert main(["inspect", str(out)]) == 0
    assert "the graph has none: a constant and log(1 + in-degree)" in " ".join(capsys.readouterr().out.split())
    # --source reads the edge list undirected (its default), so it compares the undirected partition
    source = ["--source", str(edges)] if undirected else []
    assert main(["inspect", str(out), "--check", *source]) == 0


def test_a_synthetic_graph_with_zero_features_partitions(tmp_path, capsys):
    out = tmp_path / "parts"
    assert _partition(capsys, "--dataset", "synthetic:sbm:nodes=200,features=0", "--out", out) == (0, "")
    graph = read_manifest(out)["graph"]
    assert (graph["features"], graph["feature_dim"], graph["num_classes"]) == ("degree", 2, 8)
    assert main(["inspect", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["graph"]["features"] == "degree"


def test_a_label_of_a_billion_is_refused_with_the_figures(edges, tmp_path, capsys):
    labels = np.array([0, 1, 0, 10**9, 1, 0])
    np.save(tmp_path / "y.npy", labels)
    err = _refused(capsys, "--dataset", edges, "--labels", tmp_path / "y.npy", "--out", tmp_path / "parts")
    assert "y.npy: the largest label, 1000000000 at row 3 (node 3), makes 1,000,000,001 classes" in err
    assert "only 6 nodes are labelled" in err and "--num-classes" in err
    assert not (tmp_path / "parts").exists()


def test_labels_far_above_their_distinct_values_are_refused(tmp_path, capsys):
    n = 100
    (tmp_path / "ring.csv").write_text("".join(f"{i},{(i + 1) % n}\n" for i in range(n)))
    labels = np.where(np.arange(n) % 2 == 0, 0, 50)  # two classes numbered 0 and 50
    np.save(tmp_path / "y.npy", labels)
    args = ("--dataset", tmp_path / "ring.csv", "--labels", tmp_path / "y.npy")
    err = _refused(capsys, *args, "--out", tmp_path / "refused")
    assert "y.npy: the largest label, 50 at row 1 (node 1), makes 51 classes but only 2 distinct labels occur" in err
    # the user knows better: 51 classes it is
    assert _partition(capsys, *args, "--num-classes", "51", "--out", tmp_path / "parts") == (0, "")
    assert read_manifest(tmp_path / "parts")["graph"]["num_classes"] == 51


def test_a_label_not_below_num_classes_names_the_row(edges, tmp_path, capsys):
    (tmp_path / "y.txt").write_text("0\n1\n2\n-1\n3\n1\n")
    err = _refused(capsys, "--dataset", edges, "--labels", tmp_path / "y.txt", "--num-classes", "3",
                   "--out", tmp_path / "parts")
    assert "y.txt: label 3 at row 4 (node 4) is not below the given class count 3" in err


def test_num_classes_must_be_positive(edges, tmp_path, capsys):
    err = _refused(capsys, "--dataset", edges, "--num-classes", "0", "--out", tmp_path / "parts")
    assert "--num-classes must be at least 1, got 0" in err


def test_a_negative_label_other_than_minus_one_names_the_row(edges, tmp_path, capsys):
    np.save(tmp_path / "y.npy", np.array([0, 1, -1, 1, -2, 0]))
    err = _refused(capsys, "--dataset", edges, "--labels", tmp_path / "y.npy", "--out", tmp_path / "parts")
    assert "y.npy: label -2 at row 4 (node 4) is negative" in err and "-1 for none" in err


def test_a_truncated_npy_is_called_truncated_with_both_sizes(edges, tmp_path, capsys):
    np.save(tmp_path / "full.npy", np.zeros((6, 4), np.float32))
    data = (tmp_path / "full.npy").read_bytes()
    (tmp_path / "x.npy").write_bytes(data[:-10])
    err = _refused(capsys, "--dataset", edges, "--features", tmp_path / "x.npy", "--out", tmp_path / "parts")
    assert f"x.npy: truncated: its header declares a float32 array of shape (6, 4), {len(data):,} bytes" in err
    assert f"the file has {len(data) - 10:,} bytes" in err and "pickle" not in err


def test_a_truncated_npz_says_it_may_be_cut_short(tmp_path, capsys):
    np.savez(tmp_path / "full.npz", node_features=np.zeros((6, 2), np.float32), edges=np.array([[0, 1]]))
    data = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "g.npz").write_bytes(data[: len(data) // 2])
    err = _refused(capsys, "--dataset", tmp_path / "g.npz", "--out", tmp_path / "parts")
    assert f"g.npz: not a readable .npz file ({len(data) // 2:,} bytes)" in err and "cut short" in err


def test_fewer_feature_rows_than_labels_names_both_files_and_counts(edges, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((5, 2), np.float32))
    np.save(tmp_path / "y.npy", np.zeros(6, np.int64))
    err = _refused(capsys, "--dataset", edges, "--features", tmp_path / "x.npy", "--labels", tmp_path / "y.npy",
                   "--out", tmp_path / "parts")
    assert f"{tmp_path / 'x.npy'}: the features file has 5 rows but the labels file {tmp_path / 'y.npy'} has 6" in err


def test_an_edge_beyond_the_feature_rows_names_the_features_file(edges, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((5, 2), np.float32))
    err = _refused(capsys, "--dataset", edges, "--features", tmp_path / "x.npy", "--out", tmp_path / "parts")
    assert f"edges.csv: edge endpoint 5 names a node beyond the 5 rows of {tmp_path / 'x.npy'}" in err
