"""Our readers against PyG's dataset classes on the real files (copied: PyG writes processed/)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from gnndist.config import SourceConfig
from gnndist.graph import Graph
from gnndist.sources import from_pyg, load_graph

DATA = Path("/work/shared/datasets")
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared datasets not available")


def assert_same_graph(ours: Graph, theirs: Graph) -> None:
    """Same nodes, edge set (CSC arrays are canonical), features, labels and masks."""
    assert ours.num_nodes == theirs.num_nodes
    assert torch.equal(ours.indptr, theirs.indptr)
    assert torch.equal(ours.indices, theirs.indices)
    assert torch.equal(ours.x, theirs.x)
    assert torch.equal(ours.y, theirs.y)
    for key in ("train_mask", "val_mask", "test_mask"):
        assert torch.equal(getattr(ours, key), getattr(theirs, key)), key


def _copy(src: Path, root: Path) -> Path:
    shutil.copytree(src, root / src.name)
    return root


@pytest.mark.parametrize("name", ["Cora", "CiteSeer"])
def test_planetoid_matches_pyg(name, tmp_path):
    from torch_geometric.datasets import Planetoid

    root = _copy(DATA / "planetoid" / name, tmp_path)
    ours = load_graph(SourceConfig(dataset=str(root / name)))
    assert_same_graph(ours, from_pyg(Planetoid(str(root), name)[0]))


def test_geom_gcn_split_matches_pyg(tmp_path):
    from torch_geometric.datasets import Planetoid

    root = _copy(DATA / "planetoid" / "Cora", tmp_path)
    ours = load_graph(SourceConfig(dataset=str(root / "Cora"), split="3"))
    assert_same_graph(ours, from_pyg(Planetoid(str(root), "Cora", split="geom-gcn")[0], split_index=3))


def test_bundled_cora_equals_planetoid_raw():
    bundled = load_graph(SourceConfig(dataset="cora"))
    raw = load_graph(SourceConfig(dataset=str(DATA / "planetoid" / "Cora")))
    assert_same_graph(bundled, raw)
    assert bundled.name == "cora" and bundled.num_classes == 7
    assert load_graph(SourceConfig(dataset="bundled:cora")).sha256() == bundled.sha256()


def test_amazon_photo_matches_pyg(tmp_path):
    from torch_geometric.datasets import Amazon

    root = _copy(DATA / "npz" / "Photo", tmp_path)
    theirs = from_pyg(Amazon(str(root), "Photo")[0])
    shared = load_graph(SourceConfig(dataset=str(root / "Photo" / "raw" / "amazon_electronics_photo.npz")))
    bundled = load_graph(SourceConfig(dataset="amazon-photo"))
    for ours in (shared, bundled):
        # PyG's Amazon has no split: compare structure, features and labels only.
        assert torch.equal(ours.indptr, theirs.indptr) and torch.equal(ours.indices, theirs.indices)
        assert torch.equal(ours.x, theirs.x) and torch.equal(ours.y, theirs.y)
        assert ours.num_edges == 238_162 and ours.num_classes == 8
    assert torch.equal(bundled.train_mask, shared.train_mask)  # the same seeded per-class split


def test_tolokers_matches_pyg(tmp_path):
    from torch_geometric.datasets import HeterophilousGraphDataset

    _copy(DATA / "tolokers", tmp_path)
    npz = tmp_path / "tolokers" / "raw" / "tolokers.npz"
    data = HeterophilousGraphDataset(str(tmp_path), "Tolokers")[0]
    for split in ("default", "7"):
        ours = load_graph(SourceConfig(dataset=str(npz), split=split))
        index = 0 if split == "default" else 7
        assert_same_graph(ours, from_pyg(data, split_index=index))
