"""Planetoid reader: the restricted unpickler and folder handling (PyG parity: test_source_vs_pyg)."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from gnndist.config import SourceConfig
from gnndist.graph import GraphError
from gnndist.sources import load_graph
from gnndist.sources.planetoid import safe_unpickle

CORA = Path("/work/shared/datasets/planetoid/Cora")


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pickle_calling_os_system_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "ind.evil.x"
    path.write_bytes(pickle.dumps(_RunsCode(), protocol=2))
    with pytest.raises(GraphError, match=r"ind\.evil\.x.*(system|posix)"):
        safe_unpickle(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("obj", [
    sp.csr_matrix(np.eye(3, dtype=np.float32)),
    sp.lil_matrix(np.eye(3)),
    np.arange(6, dtype=np.int64).reshape(2, 3),
])
def test_arrays_and_sparse_matrices_round_trip(tmp_path, obj):
    path = tmp_path / "ind.ok.x"
    path.write_bytes(pickle.dumps(obj, protocol=2))
    back = safe_unpickle(path)
    assert type(back) is type(obj)
    np.testing.assert_array_equal(back.toarray() if sp.issparse(back) else back,
                                  obj.toarray() if sp.issparse(obj) else obj)


def test_other_globals_are_refused(tmp_path):
    path = tmp_path / "ind.x.graph"
    path.write_bytes(pickle.dumps({1: [2]}, protocol=2))
    assert safe_unpickle(path) == {1: [2]}
    path.write_bytes(pickle.dumps(getattr, protocol=2))
    with pytest.raises(GraphError, match="getattr"):
        safe_unpickle(path)


def test_corrupt_pickle_names_the_file(tmp_path):
    path = tmp_path / "ind.bad.y"
    path.write_bytes(b"\x80\x02garbage")
    with pytest.raises(GraphError, match=r"ind\.bad\.y"):
        safe_unpickle(path)


def test_raw_folder_itself_and_missing_member(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(CORA / "raw", raw)
    assert load_graph(SourceConfig(dataset=str(raw))).num_nodes == 2708
    (raw / "ind.cora.ty").unlink()
    with pytest.raises(GraphError, match=r"ind\.cora\.ty"):
        load_graph(SourceConfig(dataset=str(tmp_path)))


def test_public_split_sizes_and_geom_gcn_index_range():
    g = load_graph(SourceConfig(dataset=str(CORA)))
    assert (int(g.train_mask.sum()), int(g.val_mask.sum()), int(g.test_mask.sum())) == (140, 500, 1000)
    assert g.meta["format"] == "planetoid"
    # the bag-of-words features stay CSR from the pickles on (their values: test_source_vs_pyg)
    assert sp.issparse(g.features) and g.features.nnz == 49_216 and g.features.has_canonical_format
    with pytest.raises(GraphError, match="splits 0..9"):
        load_graph(SourceConfig(dataset=str(CORA), split="10"))
    random = load_graph(SourceConfig(dataset=str(CORA), split="per_class:20,30", seed=1))
    assert int(random.train_mask.sum()) == 140 and int(random.val_mask.sum()) == 210
