"""Partition format 2: features stored dense or CSR, in float32, float16 or bfloat16."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gnndist import inspect
from gnndist.config import PartitionConfig
from gnndist.graph import Graph, GraphError, as_features
from gnndist.partition import PartitionFormatError, load_part, read_manifest
from gnndist.partition.features import SparseRows, as_float32
from gnndist.partition.format import MANIFEST, check_files
from gnndist.testing import random_graph
from partitioners.writer import write_partitions

V1 = Path(__file__).parent / "data" / "v1-random-24"  # written by gnndist before format 2 (commit d67f09f)


def sparse_graph(n: int = 80, f: int = 300, density: float = 0.02, seed: int = 0) -> Graph:
    """A graph whose features are a SciPy CSR matrix with values of every magnitude and sign."""
    base = random_graph(n, 4 * n, seed=seed, feature_dim=1)
    rng = np.random.default_rng(seed)
    x = sp.random(n, f, density=density, format="csr", dtype=np.float32, random_state=seed,
                  data_rvs=lambda k: (rng.normal(size=k) * 10.0 ** rng.integers(-6, 4, k)).astype(np.float32))
    return with_features(base, x)


def with_features(graph: Graph, x, origin: str = "test") -> Graph:
    """``graph`` with features ``x`` (dense or SciPy sparse) in place of its own."""
    return dataclasses.replace(graph, features=as_features(x, origin), origin=origin)


def _write(graph: Graph, out: Path, parts: int = 3, **config) -> Path:
    assignment = np.arange(graph.num_nodes) % parts
    return write_partitions(graph, assignment, PartitionConfig(method="random", num_parts=parts, **config), out)


def _dense_rows(root: Path) -> list[np.ndarray]:
    rows = []
    for p in range(read_manifest(root)["num_parts"]):
        x = load_part(root, p).features
        rows.append(x.toarray() if isinstance(x, SparseRows) else np.asarray(x))
    return rows


def _bf16_reference(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits, round to nearest even, in plain integer arithmetic."""
    b = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_sparse_round_trip_equals_dense_bit_for_bit(tmp_path, dtype):
    graph = sparse_graph()
    dense = _write(graph, tmp_path / "dense", feature_storage="dense", feature_dtype=dtype)
    csr = _write(graph, tmp_path / "csr", feature_storage="sparse", feature_dtype=dtype)
    assert read_manifest(csr)["graph"]["feature_encoding"] == "csr"
    assert isinstance(load_part(csr, 0).features, SparseRows)
    for a, b in zip(_dense_rows(dense), _dense_rows(csr), strict=True):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if dtype == "float32":  # and the graph's own rows, exactly
        orig = np.concatenate([load_part(csr, p).orig_ids for p in range(3)])
        assert np.concatenate(_dense_rows(csr)).tobytes() == graph.features[orig].toarray().tobytes()
    assert inspect.check(csr, source=graph) == [] and inspect.check(dense, source=graph) == []


def test_a_dense_graph_stored_sparse_keeps_negative_zeros(tmp_path):
    graph = random_graph(30, 90, seed=1, feature_dim=4)
    x = graph.features.copy()
    x[::3] = 0.0
    x[1, 2] = -0.0
    graph = with_features(graph, x)
    root = _write(graph, tmp_path / "p", parts=1, feature_storage="sparse")
    assert np.concatenate(_dense_rows(root)).tobytes() == x.tobytes()


def test_half_precision_values_are_the_rounded_float32_ones(tmp_path):
    # Ties between two bfloat16 values (low 16 bits 0x8000) go to the even one; float16 rounds as numpy does.
    ties = np.array([0x3F808000, 0x3F818000, 0xBF808000, 0x3F80FFFF, 0x00018000], dtype=np.uint32).view(np.float32)
    graph = random_graph(40, 120, seed=2, feature_dim=5)
    x = graph.features.copy()
    x[0] = ties
    graph = with_features(graph, x)
    for dtype, expected in (("float16", x.astype(np.float16)), ("bfloat16", _bf16_reference(x))):
        root = _write(graph, tmp_path / dtype, parts=2, feature_dtype=dtype)
        assert read_manifest(root)["graph"]["feature_dtype"] == dtype
        parts = [load_part(root, p) for p in range(2)]
        stored = np.concatenate([np.asarray(a.features) for a in parts])
        orig = np.concatenate([a.orig_ids for a in parts])
        assert stored.dtype == expected.dtype and stored.tobytes() == expected[orig].tobytes()
        # widened on the worker: bfloat16 bits are float32's top half, float16 widens exactly
        widened = as_float32(stored).numpy()
        reference = ((stored.astype(np.uint32) << 16).view(np.float32) if dtype == "bfloat16"
                     else stored.astype(np.float32))
        assert widened.dtype == np.float32 and widened.tobytes() == reference.tobytes()
        assert np.array_equal(widened, torch.from_numpy(x[orig]).to(getattr(torch, dtype)).float().numpy())


def test_half_precision_halves_the_feature_files(tmp_path):
    graph = random_graph(200, 800, seed=3, feature_dim=16)

    def feature_bytes(root: Path) -> int:
        return sum(m["bytes"] - 128 for part in read_manifest(root)["parts"]  # less each .npy header
                   for name, m in part["files"].items() if name.startswith("features"))
    full = feature_bytes(_write(graph, tmp_path / "f32", parts=2))
    for dtype in ("float16", "bfloat16"):
        assert feature_bytes(_write(graph, tmp_path / dtype, parts=2, feature_dtype=dtype)) * 2 == full


def test_storage_follows_the_density_unless_told(tmp_path):
    sparse, dense = sparse_graph(density=0.05), random_graph(50, 200, seed=4, feature_dim=8)
    assert read_manifest(_write(sparse, tmp_path / "a"))["graph"]["feature_encoding"] == "csr"
    assert read_manifest(_write(dense, tmp_path / "b"))["graph"]["feature_encoding"] == "dense"
    forced = read_manifest(_write(sparse, tmp_path / "c", feature_storage="dense"))["graph"]
    assert forced["feature_encoding"] == "dense" and forced["feature_density"] == pytest.approx(0.05, rel=0.1)


def test_versions_dense_float32_stays_v1_everything_else_is_v2(tmp_path):
    graph = random_graph(30, 90, seed=5)
    assert read_manifest(_write(graph, tmp_path / "a"))["version"] == 1
    for i, config in enumerate(({"feature_storage": "sparse"}, {"feature_dtype": "float16"})):
        assert read_manifest(_write(graph, tmp_path / f"b{i}", **config))["version"] == 2


def test_a_v1_directory_written_before_format_2_still_loads(tmp_path):
    manifest = read_manifest(V1)
    assert manifest["version"] == 1 and "feature_encoding" not in manifest["graph"]
    check_files(V1, manifest, verify=True)
    parts = [load_part(V1, p, verify=True) for p in range(2)]
    assert all(a.features.dtype == np.float32 and a.features.shape[1] == 5 for a in parts)
    assert inspect.check(V1) == []
    assert inspect.report(V1)["graph"]["feature_encoding"] == "dense"


def test_sparse_files_are_checksummed_and_a_tampered_one_is_refused(tmp_path):
    root = _write(sparse_graph(), tmp_path / "p", feature_storage="sparse", feature_dtype="bfloat16")
    files = read_manifest(root)["parts"][1]["files"]
    for name in ("features_indptr.npy", "features_indices.npy", "features_data.npy"):
        assert len(files[name]["sha256"]) == 64 and files[name]["bytes"] == (root / "part-00001" / name).stat().st_size
    assert "features.npy" not in files
    data = root / "part-00001" / "features_data.npy"
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 0x40  # one value changed, the size kept
    data.write_bytes(bytes(raw))
    with pytest.raises(PartitionFormatError, match=r"part-00001/features_data\.npy: checksum mismatch"):
        check_files(root, read_manifest(root), verify=True)
    assert any("features_data.npy" in problem for problem in inspect.check(root))
    with pytest.raises(PartitionFormatError, match="features_data.npy"):
        load_part(root, 1, verify=True)


def test_a_column_outside_the_features_is_refused_even_with_matching_checksums(tmp_path):
    root = _write(sparse_graph(), tmp_path / "p", parts=1, feature_storage="sparse")
    path = root / "part-00000" / "features_indices.npy"
    columns = np.load(path)
    columns[3] = 300  # the graph has 300 columns
    np.save(path, columns)
    with pytest.raises(PartitionFormatError, match=r"features_indices\.npy: row 3 holds 300, outside 0..299"):
        load_part(root, 0)


def test_a_manifest_with_an_unknown_feature_layout_is_refused(tmp_path):
    root = _write(random_graph(30, 90, seed=6), tmp_path / "p", feature_dtype="float16")
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["graph"]["feature_encoding"] = "coo"
    (root / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(PartitionFormatError, match="features stored as 'coo'"):
        read_manifest(root)
    manifest["graph"]["feature_encoding"], manifest["version"] = "dense", 1  # float16 needs version 2
    (root / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(PartitionFormatError, match="version 1 does not hold"):
        read_manifest(root)


def test_float16_out_of_its_range_is_refused_naming_bfloat16(tmp_path):
    graph = random_graph(20, 60, seed=7, feature_dim=2)
    x = graph.features.copy()
    x[4, 1] = 1e6
    graph = with_features(graph, x, "big-graph")
    with pytest.raises(GraphError, match="big-graph: features reach 1e\\+06, beyond float16.*bfloat16"):
        _write(graph, tmp_path / "p", feature_dtype="float16")
    assert not (tmp_path / "p").exists()
    _write(graph, tmp_path / "q", feature_dtype="bfloat16")  # float32's range


def test_sparse_features_far_too_wide_to_densify_partition(tmp_path):
    # 100 x 50M float32 would take 20 GB dense: every step must keep them sparse.
    n, width = 100, 50_000_000
    base = random_graph(n, 300, seed=8)
    x = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), np.arange(n) * 400_000)), shape=(n, width))
    graph = with_features(base, x)
    root = _write(graph, tmp_path / "p", parts=2)
    assert read_manifest(root)["graph"]["feature_dim"] == width
    features = load_part(root, 1).features
    assert isinstance(features, SparseRows) and features.nnz == 50
    assert inspect.check(root, source=graph) == []
    shutil.rmtree(root)
