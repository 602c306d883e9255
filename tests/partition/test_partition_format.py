"""Partition format v1: round trips, atomic writes, refusal to overwrite, tamper detection."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnndist import inspect
from gnndist.config import PartitionConfig
from gnndist.partition import PartitionBook, PartitionFormatError, load_part, read_manifest
from gnndist.partition.format import MANIFEST, SPLIT_TRAIN
from gnndist.testing import random_graph
from partitioners.writer import write_partitions


def _write(graph, parts, out, hops=1, **kw):
    rng = np.random.default_rng(0)
    assignment = rng.permutation(np.arange(graph.num_nodes) % parts)
    config = PartitionConfig(method="random", num_parts=parts, halo_hops=hops)
    return write_partitions(graph, assignment, config, out, **kw), assignment


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 60), density=st.floats(0, 4), parts=st.integers(1, 5), hops=st.integers(0, 3),
       seed=st.integers(0, 2**16))
def test_round_trip_properties(tmp_path_factory, n, density, parts, hops, seed):
    parts = min(parts, n)
    graph = random_graph(n, int(n * density), seed=seed)
    out = tmp_path_factory.mktemp("p") / "parts"
    rng = np.random.default_rng(seed)
    assignment = rng.integers(0, parts, n)
    write_partitions(graph, assignment, PartitionConfig(method="random", num_parts=parts, halo_hops=hops), out)
    manifest = read_manifest(out)
    loaded = [load_part(out, p) for p in range(parts)]
    orig = np.concatenate([a.orig_ids for a in loaded])
    # every node in exactly one part, in the part the assignment chose
    assert np.array_equal(np.sort(orig), np.arange(n))
    for p, a in enumerate(loaded):
        assert np.all(assignment[a.orig_ids] == p)
    # features, labels and splits round-trip bit for bit
    x = np.concatenate([np.asarray(a.features) for a in loaded])
    assert x.tobytes() == graph.x.numpy()[orig].tobytes()
    assert np.array_equal(np.concatenate([a.labels for a in loaded]), graph.y.numpy()[orig])
    assert np.array_equal(np.concatenate([a.split for a in loaded]) == SPLIT_TRAIN, graph.train_mask.numpy()[orig])
    # every edge kept, in its target's part; halos are exactly the cross-part in-neighbours
    old_to_new = np.empty(n, dtype=np.int64)
    old_to_new[orig] = np.arange(n)
    book = PartitionBook(manifest["offsets"])
    src, dst = graph.edge_index().numpy()
    got = set()
    for p, a in enumerate(loaded):
        lo, hi = book.part_range(p)
        targets = np.repeat(np.arange(lo, hi), np.diff(a.indptr))
        got |= set(zip(a.indices.tolist(), targets.tolist(), strict=True))
        if hops >= 1:
            outside = a.indices[(a.indices < lo) | (a.indices >= hi)]
            assert np.array_equal(a.halo_ids[a.halo_hop == 1], np.unique(outside))
            assert np.array_equal(a.halo_owner, book.owner(a.halo_ids))
        else:
            assert a.halo_ids.size == 0
    assert got == set(zip(old_to_new[src].tolist(), old_to_new[dst].tolist(), strict=True))
    assert inspect.check(out, source=graph) == []


def test_deeper_halo_is_the_l_hop_neighbourhood(tmp_path):
    graph = random_graph(120, 300, seed=3)
    out, _ = _write(graph, 3, tmp_path / "p", hops=3)
    manifest = read_manifest(out)
    book = PartitionBook(manifest["offsets"])
    orig = np.concatenate([load_part(out, p).orig_ids for p in range(3)])
    old_to_new = np.empty(graph.num_nodes, dtype=np.int64)
    old_to_new[orig] = np.arange(graph.num_nodes)
    src, dst = old_to_new[graph.edge_index().numpy()]
    for p in range(3):
        a = load_part(out, p)
        lo, hi = book.part_range(p)
        dist = {v: 0 for v in range(lo, hi)}
        frontier = set(dist)
        for hop in (1, 2, 3):  # breadth-first search along in-edges
            frontier = {int(s) for s, d in zip(src, dst, strict=True) if int(d) in frontier} - dist.keys()
            dist.update({v: hop for v in frontier})
        expected = sorted((h, v) for v, h in dist.items() if h > 0)
        assert list(zip(a.halo_hop.tolist(), a.halo_ids.tolist(), strict=True)) == expected


def test_refuses_to_overwrite_without_force(tmp_path, small_graph):
    out, _ = _write(small_graph, 2, tmp_path / "p")
    before = (out / MANIFEST).read_bytes()
    with pytest.raises(FileExistsError, match="--force"):
        _write(small_graph, 3, out)
    assert (out / MANIFEST).read_bytes() == before
    _write(small_graph, 3, out, force=True)
    assert read_manifest(out)["num_parts"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # no temporary or backup directory left


def test_force_never_replaces_a_foreign_directory(tmp_path, small_graph):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="not a gnndist partition"):
        _write(small_graph, 2, precious, force=True)
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_failed_write_leaves_no_trace(tmp_path, small_graph, monkeypatch):
    out, _ = _write(small_graph, 2, tmp_path / "p")
    before = (out / MANIFEST).read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr("gnndist.partition.format._write_npy", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        _write(small_graph, 3, out, force=True)
    assert (out / MANIFEST).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p"]


def test_truncated_file_is_detected_at_load(tmp_path, small_graph):
    out, _ = _write(small_graph, 2, tmp_path / "p")
    victim = out / "part-00001" / "indices.npy"
    victim.write_bytes(victim.read_bytes()[:-8])
    with pytest.raises(PartitionFormatError, match=r"part-00001/indices.npy: .* bytes, manifest says"):
        load_part(out, 1)
    assert any("indices.npy" in p for p in inspect.check(out))


def test_tampered_file_is_detected_with_verify(tmp_path, small_graph):
    out, _ = _write(small_graph, 2, tmp_path / "p")
    victim = out / "part-00000" / "features.npy"
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF  # same size, different content
    victim.write_bytes(bytes(data))
    load_part(out, 0)  # sizes still match: only the checksum can tell
    with pytest.raises(PartitionFormatError, match=r"features.npy: checksum mismatch"):
        load_part(out, 0, verify=True)
    assert any("checksum mismatch" in p for p in inspect.check(out))


def test_pickled_array_is_refused(tmp_path, small_graph):
    out, _ = _write(small_graph, 2, tmp_path / "p")
    victim = out / "part-00000" / "labels.npy"
    np.save(victim, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["parts"][0]["files"]["labels.npy"]["bytes"] = victim.stat().st_size
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(PartitionFormatError, match="labels.npy"):
        load_part(out, 0)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(version=99), "format version 99"),
    (lambda m: m.update(format="other"), "not a gnndist partition manifest"),
    (lambda m: m.pop("offsets"), "missing keys"),
    (lambda m: m["offsets"].reverse(), "inconsistent"),
])
def test_schema_mismatch_is_a_clear_error(tmp_path, small_graph, edit, message):
    out, _ = _write(small_graph, 2, tmp_path / "p")
    manifest = json.loads((out / MANIFEST).read_text())
    edit(manifest)
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(PartitionFormatError, match=message):
        read_manifest(out)


def test_missing_directory_and_garbage_manifest(tmp_path):
    with pytest.raises(PartitionFormatError, match="no such partition directory"):
        read_manifest(tmp_path / "nope")
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(PartitionFormatError, match="not valid JSON"):
        read_manifest(tmp_path)


def test_check_catches_a_wrong_halo(tmp_path, small_graph):
    out, _ = _write(small_graph, 2, tmp_path / "p")
    halo_path = out / "part-00000" / "halo_owner.npy"
    owners = np.load(halo_path)
    owners[0] = 0  # a halo node claimed to be owned by its own part
    np.save(halo_path, owners)
    manifest = json.loads((out / MANIFEST).read_text())
    import hashlib
    manifest["parts"][0]["files"]["halo_owner.npy"]["sha256"] = hashlib.sha256(halo_path.read_bytes()).hexdigest()
    (out / MANIFEST).write_text(json.dumps(manifest))
    assert any("recorded owner is wrong" in p for p in inspect.check(out))


def test_book_owner_and_local_ids():
    book = PartitionBook([0, 3, 3, 10])
    assert book.owner(np.array([0, 2, 3, 9])).tolist() == [0, 0, 2, 2]
    assert book.to_local(np.array([3, 9]), 2).tolist() == [0, 6]
    with pytest.raises(IndexError, match="not owned by part 0"):
        book.to_local(np.array([5]), 0)
    with pytest.raises(IndexError, match="outside"):
        book.owner(np.array([10]))
