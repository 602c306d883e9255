"""``--normalize-features``: PyG's ``NormalizeFeatures``, applied by the source, dense or sparse."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gnndist.cli import _TRAIN_FLAGS, _configs, build_parser, main
from gnndist.config import AdaptConfig, PartitionConfig, SamplerConfig, SourceConfig, TrainConfig
from gnndist.graph import GraphError, normalized_rows
from gnndist.partition import load_part, read_manifest
from gnndist.partition.features import SparseRows
from gnndist.sources import NORMALIZED_BY, load_graph

pyg_transforms = pytest.importorskip("torch_geometric.transforms")


def _pyg(x: np.ndarray) -> np.ndarray:
    from torch_geometric.data import Data

    return pyg_transforms.NormalizeFeatures()(Data(x=torch.from_numpy(x.copy()))).x.numpy()


def _counts(seed: int = 0) -> np.ndarray:
    """Bag-of-words-like counts, with an all-zero row and a row summing below 1."""
    x = np.random.default_rng(seed).poisson(0.3, size=(40, 25)).astype(np.float32)
    x[3] = 0
    x[7] = 0
    x[7, 2] = 0.25
    return x


def test_dense_features_normalise_as_pyg_does_and_are_not_changed_in_place():
    x = _counts()
    before = x.copy()
    assert np.allclose(normalized_rows(x, "t"), _pyg(x), rtol=1e-6, atol=0)
    assert np.array_equal(x, before)
    shifted = np.random.default_rng(1).normal(size=(30, 8)).astype(np.float32)  # negative values: PyG shifts
    assert np.allclose(normalized_rows(shifted, "t"), _pyg(shifted), rtol=1e-6, atol=1e-7)


def test_sparse_features_stay_sparse_and_equal_the_dense_result():
    x = _counts()
    out = normalized_rows(sp.csr_matrix(x), "t")
    assert sp.issparse(out) and out.format == "csr" and out.dtype == np.float32 and out.nnz == np.count_nonzero(x)
    assert np.allclose(out.toarray(), _pyg(x), rtol=1e-6, atol=0)
    full = np.random.default_rng(2).normal(size=(6, 4)).astype(np.float32)  # every entry stored: shifted
    assert np.allclose(normalized_rows(sp.csr_matrix(full), "t").toarray(), _pyg(full), rtol=1e-6, atol=1e-7)


def test_sparse_features_with_negative_values_are_refused():
    x = _counts()
    x[0, 0] = -1.0
    with pytest.raises(GraphError, match="negative values.*load them dense"):
        normalized_rows(sp.csr_matrix(x), "feats.npz")


def test_partition_stores_normalised_sparse_rows_and_records_it(tmp_path):
    out = tmp_path / "p"
    assert main(["partition", "--dataset", "cora", "--method", "random", "--parts", "2", "--normalize-features",
                 "--feature-storage", "sparse", "--out", str(out), "--quiet"]) == 0
    manifest = read_manifest(out)
    assert manifest["graph"]["meta"]["features_normalized"] == NORMALIZED_BY
    assert manifest["graph"]["feature_encoding"] == "csr"
    for part in range(2):
        rows = load_part(out, part).features
        assert isinstance(rows, SparseRows)
        assert np.allclose(rows.toarray().sum(axis=1), 1.0, atol=1e-5)  # every Cora paper has a word
    plain = load_graph(SourceConfig(dataset="cora"))
    normalised = load_graph(SourceConfig(dataset="cora", normalize_features=True))
    assert "features_normalized" not in plain.meta
    assert np.allclose(normalised.features.toarray() if sp.issparse(normalised.features) else normalised.features,
                       _pyg(plain.x.numpy()), rtol=1e-6, atol=0)


def test_train_takes_the_source_flags_when_it_partitions():
    args = build_parser().parse_args(["train", "--dataset", "citeseer", "--normalize-features", "--feature-storage",
                                      "sparse", "--feature-dtype", "float16", "--label-column", "y", "--out", "r"])
    source, part, *_ = _configs(args, _TRAIN_FLAGS,
                                (SourceConfig, PartitionConfig, SamplerConfig, TrainConfig, AdaptConfig))
    assert (source.dataset, source.normalize_features, source.label_column) == ("citeseer", True, "y")
    assert (part.feature_storage, part.feature_dtype) == ("sparse", "float16")
    default, *_ = _configs(build_parser().parse_args(["train", "--out", "r"]), _TRAIN_FLAGS,
                           (SourceConfig, PartitionConfig, SamplerConfig, TrainConfig, AdaptConfig))
    assert default.normalize_features is False
