"""Sparse features stay sparse from every source that has them: gnn-benchmark .npz, PyG's sparse
``x``, SciPy matrices in memory and SciPy ``.npz`` feature files."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from test_source_npz import CS, write_benchmark_npz

from gnndist.config import SourceConfig
from gnndist.graph import Graph, GraphError
from gnndist.sources import from_pyg, load_graph

DENSE = np.array([[0, 2.5, 0, 0], [0, 0, 0, 0], [1, 0, 0, -3], [0, 0, 7, 0]], dtype=np.float32)


def _edges(tmp_path):
    edges = tmp_path / "edges.csv"
    edges.write_text("0,1\n1,2\n2,3\n")
    return edges


def _masks(n: int) -> dict:
    return {k: np.zeros(n, bool) for k in ("train_mask", "val_mask", "test_mask")}


def test_a_gnn_benchmark_file_keeps_its_csr_features_binarised(tmp_path):
    g = load_graph(SourceConfig(dataset=str(write_benchmark_npz(tmp_path / "tiny.npz"))))
    assert sp.issparse(g.features) and g.features.format == "csr" and g.features.dtype == np.float32
    assert g.features.toarray().tolist() == [[1, 0], [0, 1], [1, 1], [0, 0]] and g.x.dtype == torch.float32


@pytest.mark.skipif(not CS.is_file(), reason="shared datasets not available")
def test_coauthor_cs_loads_sparse_and_equals_its_densified_self():
    g = load_graph(SourceConfig(dataset=str(CS)))
    assert sp.issparse(g.features) and g.features.shape == (18_333, 6_805) and g.features.nnz == 1_092_079
    assert g.features.has_canonical_format and set(np.unique(g.features.data)) == {1.0}


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_pyg_sparse_x_stays_sparse_and_equals_the_dense_x(layout):
    from torch_geometric.data import Data

    dense = torch.from_numpy(DENSE)
    x = dense.to_sparse() if layout == "coo" else dense.to_sparse_csr()
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 3]])
    g = from_pyg(Data(edge_index=edge_index, x=x, y=torch.tensor([0, 1, 0, 1])))
    assert sp.issparse(g.features) and g.features.nnz == 4
    assert torch.equal(g.x, dense)
    # either torch layout gives the same graph (sparse features hash as CSR, whatever came in)
    coo = from_pyg(Data(edge_index=edge_index, x=dense.to_sparse(), y=torch.tensor([0, 1, 0, 1])))
    assert g.sha256() == coo.sha256()


def test_a_scipy_matrix_in_memory_becomes_canonical_csr_and_is_not_modified():
    coo = sp.coo_matrix(([1.0, 2.0, 5.0], ([0, 0, 3], [1, 1, 2])), shape=(4, 3))  # a duplicate at (0, 1)
    g = Graph.from_edges([0, 1], [1, 2], num_nodes=4, x=coo, y=[0, 1, 0, 1], name="m", origin="m", **_masks(4))
    assert g.features.format == "csr" and g.features.has_canonical_format
    assert g.features.toarray().tolist() == [[0, 3, 0], [0, 0, 0], [0, 0, 0], [0, 0, 5]]
    assert coo.nnz == 3  # the caller's matrix is left as it was
    csr = sp.csr_matrix(DENSE)
    g = Graph.from_edges([0], [1], num_nodes=4, x=csr, y=[0, 1, 0, 1], name="m", origin="m", **_masks(4))
    assert g.features is not csr and np.array_equal(g.x.numpy(), DENSE)


def test_sparse_features_with_nan_are_refused():
    bad = sp.csr_matrix(np.array([[0, 0], [1, np.inf]], dtype=np.float32))
    with pytest.raises(GraphError, match=r"NaN or inf \(first at node 1, column 1\)"):
        Graph.from_edges([0], [1], num_nodes=2, x=bad, y=[0, 1], name="m", origin="m", **_masks(2))


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_a_scipy_npz_features_file_stays_sparse(tmp_path, fmt):
    path = tmp_path / "x.npz"
    sp.save_npz(path, sp.csr_matrix(DENSE).asformat(fmt))
    g = load_graph(SourceConfig(dataset=str(_edges(tmp_path)), features=str(path)))
    assert g.features.format == "csr" and np.array_equal(g.features.toarray(), DENSE)


def test_a_features_npz_that_is_not_a_scipy_matrix_is_refused_naming_it(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=DENSE)
    with pytest.raises(GraphError, match=r"plain\.npz: not a SciPy sparse matrix saved by scipy.sparse.save_npz"):
        load_graph(SourceConfig(dataset=str(_edges(tmp_path)), features=str(plain)))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, format=np.array("csr"), shape=np.array([4, 4]), data=np.array([object()], dtype=object),
             indices=np.array([0]), indptr=np.array([0, 1, 1, 1, 1]))
    with pytest.raises(GraphError, match=r"pickled\.npz: not a SciPy sparse matrix.*pickle"):
        load_graph(SourceConfig(dataset=str(_edges(tmp_path)), features=str(pickled)))
    cut = tmp_path / "cut.npz"
    sp.save_npz(cut, sp.csr_matrix(DENSE))
    cut.write_bytes(cut.read_bytes()[:40])
    with pytest.raises(GraphError, match=r"cut\.npz: not a SciPy sparse matrix"):
        load_graph(SourceConfig(dataset=str(_edges(tmp_path)), features=str(cut)))
