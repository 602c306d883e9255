"""gnn-benchmark and heterophilous .npz readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from gnndist.config import SourceConfig
from gnndist.graph import GraphError
from gnndist.sources import detect_format, load_graph

CS = Path("/work/shared/datasets/npz/CS/raw/ms_academic_cs.npz")


def write_benchmark_npz(path: Path, *, n: int = 4, with_masks: bool = False, **override) -> Path:
    """A tiny gnn-benchmark file: path 0-1-2-3 stored one way, features with a count of 3."""
    adj = sp.csr_matrix((np.ones(3, np.float32), ([0, 1, 2], [1, 2, 3])), shape=(n, n))
    attr = sp.csr_matrix(np.array([[3, 0], [0, 1], [1, 1], [0, 0]], np.float32)[:n])
    arrays = dict(adj_data=adj.data, adj_indices=adj.indices, adj_indptr=adj.indptr, adj_shape=np.array(adj.shape),
                  attr_data=attr.data, attr_indices=attr.indices, attr_indptr=attr.indptr,
                  attr_shape=np.array(attr.shape), labels=np.array([0, 1, 1, 0])[:n])
    if with_masks:
        arrays.update(train_mask=np.array([1, 0, 0, 0], bool), val_mask=np.array([0, 1, 0, 0], bool),
                      test_mask=np.array([0, 0, 1, 1], bool))
    arrays.update(override)
    np.savez(path, **arrays)
    return path


def test_benchmark_layout_symmetrises_and_binarises(tmp_path):
    path = write_benchmark_npz(tmp_path / "tiny.npz")
    assert detect_format(path) == "gnn-benchmark"
    g = load_graph(SourceConfig(dataset=str(path)))
    assert g.num_edges == 6 and g.name == "tiny"
    assert g.x.tolist() == [[1, 0], [0, 1], [1, 1], [0, 0]]
    directed = load_graph(SourceConfig(dataset=str(path), undirected=False))
    assert directed.num_edges == 3


def test_own_masks_are_the_default_split(tmp_path):
    g = load_graph(SourceConfig(dataset=str(write_benchmark_npz(tmp_path / "m.npz", with_masks=True))))
    assert g.train_mask.tolist() == [True, False, False, False]
    assert g.test_mask.tolist() == [False, False, True, True]


def test_without_masks_default_is_per_class(tmp_path):
    g = load_graph(SourceConfig(dataset=str(write_benchmark_npz(tmp_path / "m.npz"))))
    # Two nodes per class, at most 20 train per class: every labelled node lands in train.
    assert bool(g.train_mask.all())


def test_coauthor_cs_sizes():
    if not CS.is_file():
        pytest.skip("shared datasets not available")
    g = load_graph(SourceConfig(dataset=str(CS)))
    assert (g.num_nodes, g.num_edges, g.feature_dim, g.num_classes) == (18_333, 163_788, 6_805, 15)
    assert bool(((g.x == 0) | (g.x == 1)).all())  # binarised like PyG's read_npz


def test_npz_needing_pickle_is_refused(tmp_path):
    path = tmp_path / "obj.npz"
    write_benchmark_npz(path, labels=np.array([0, "a", None, 1], dtype=object))
    with pytest.raises(GraphError, match=r"obj\.npz.*pickle"):
        load_graph(SourceConfig(dataset=str(path)))


def test_sparse_multilabel_is_refused(tmp_path):
    path = write_benchmark_npz(tmp_path / "ml.npz", labels_data=np.ones(2))
    with pytest.raises(GraphError, match="multi-label"):
        load_graph(SourceConfig(dataset=str(path)))


def write_heterophilous_npz(path: Path, splits: int = 3) -> Path:
    n = 6
    rng = np.random.default_rng(0)
    train = np.zeros((splits, n), bool)
    val = np.zeros((splits, n), bool)
    test = np.zeros((splits, n), bool)
    for i in range(splits):
        order = rng.permutation(n)
        train[i, order[:3]], val[i, order[3:4]], test[i, order[4:]] = True, True, True
    np.savez(path, node_features=rng.normal(size=(n, 2)).astype(np.float32), node_labels=np.arange(n) % 2,
             edges=np.array([[0, 1], [1, 2], [2, 3], [4, 5]]), train_masks=train, val_masks=val, test_masks=test)
    return path


def test_heterophilous_split_index(tmp_path):
    path = write_heterophilous_npz(tmp_path / "het.npz")
    assert detect_format(path) == "heterophilous"
    arrays = np.load(path)
    first = load_graph(SourceConfig(dataset=str(path)))
    second = load_graph(SourceConfig(dataset=str(path), split="2"))
    assert first.train_mask.numpy().tolist() == arrays["train_masks"][0].tolist()
    assert second.test_mask.numpy().tolist() == arrays["test_masks"][2].tolist()
    assert first.num_edges == 8
    with pytest.raises(GraphError, match=r"het\.npz.*splits 0\.\.2"):
        load_graph(SourceConfig(dataset=str(path), split="3"))
