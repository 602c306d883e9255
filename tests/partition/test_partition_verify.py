"""Values that survive the checksums are checked when a part loads; a full disk mid-write is a
clear error that leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from gnndist import inspect
from gnndist.cli import main
from gnndist.config import PartitionConfig
from gnndist.partition import PartitionFormatError, load_part, read_manifest
from gnndist.partition.format import MANIFEST
from partitioners.writer import write_partitions


def _write(graph, out):
    assignment = np.random.default_rng(0).permutation(np.arange(graph.num_nodes) % 2)
    return write_partitions(graph, assignment, PartitionConfig(method="random", num_parts=2, halo_hops=2), out)


def _rewrite(out, part, name, array):
    """Replace a part's array and record its new size and sha256, as a careful forger would:
    only the value checks can tell."""
    path = out / f"part-{part:05d}" / f"{name}.npy"
    np.save(path, array, allow_pickle=False)
    manifest = json.loads((out / MANIFEST).read_text())
    meta = manifest["parts"][part]["files"][f"{name}.npy"]
    meta.update(bytes=path.stat().st_size, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                shape=list(array.shape))
    (out / MANIFEST).write_text(json.dumps(manifest))


def _set(name, row, value):
    def edit(a, n, k, c):
        a = a.copy()
        a[row] = value(a, n, k, c)
        return a
    return name, edit


@pytest.mark.parametrize("name, edit, message", [
    (*_set("labels", 5, lambda a, n, k, c: c), r"labels.npy: row 5 holds 3, outside -1..2"),
    (*_set("labels", 0, lambda a, n, k, c: -2), r"labels.npy: row 0 holds -2, outside -1..2"),
    (*_set("indices", 7, lambda a, n, k, c: n), r"indices.npy: row 7 holds 300, outside 0..299"),
    (*_set("halo_ids", 2, lambda a, n, k, c: -1), r"halo_ids.npy: row 2 holds -1, outside 0..299"),
    (*_set("halo_indices", 4, lambda a, n, k, c: n + 9), r"halo_indices.npy: row 4 holds 309, outside 0..299"),
    (*_set("halo_owner", 1, lambda a, n, k, c: k), r"halo_owner.npy: row 1 holds 2, outside 0..1"),
    (*_set("indptr", 3, lambda a, n, k, c: a[2] - 1), r"indptr.npy: row 3 holds -?\d+, less than row 2's"),
    (*_set("indptr", -1, lambda a, n, k, c: a[-1] + 5), r"indptr.npy: the last row \(\d+\) holds \d+, but "
                                                         r"indices.npy has \d+ entries"),
    (*_set("halo_indptr", 0, lambda a, n, k, c: 1), r"halo_indptr.npy: row 0 holds 1; CSC offsets start at 0"),
])
def test_out_of_range_values_are_refused_naming_part_file_and_row(tmp_path, small_graph, name, edit, message):
    out = _write(small_graph, tmp_path / "p")
    manifest = read_manifest(out)
    array = load_part(out, 1)
    k, c = manifest["num_parts"], manifest["graph"]["num_classes"]
    assert (small_graph.num_nodes, c) == (300, 3)  # the messages above spell these out
    _rewrite(out, 1, name, edit(getattr(array, name), small_graph.num_nodes, k, c))
    load_part(out, 0)  # the other part is fine
    with pytest.raises(PartitionFormatError, match=rf"^part 1: .*part-00001/{message}") as refused:
        load_part(out, 1, verify=True)  # the checksums agree: only the values can tell
    assert "\n" not in str(refused.value)
    # inspect --check reports the very same refusal (one implementation)
    assert inspect.check(out) == [str(refused.value)]


def test_a_row_count_that_disagrees_with_the_id_range_is_refused(tmp_path, small_graph):
    out = _write(small_graph, tmp_path / "p")
    _rewrite(out, 0, "labels", load_part(out, 0).labels[:-1])
    with pytest.raises(PartitionFormatError, match=r"part-00000/labels.npy: \d+ rows where part 0 has \d+ nodes"):
        load_part(out, 0)


_FULL_DISK = """
import resource, signal, sys
from gnndist.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
sys.exit(main(sys.argv[1:]))
"""


def _snapshot(root):
    """Every file under ``root`` with its bytes, inode and modification time: a replaced or
    rewritten file shows."""
    return {path.relative_to(root): (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns)
            for path in [root, *root.rglob("*")] if path.is_file()} | {".": root.stat().st_ino}


def test_a_full_disk_mid_write_names_the_file_and_leaves_nothing_behind(tmp_path):
    out = tmp_path / "p"
    args = ["partition", "--dataset", "synthetic:sbm:nodes=2000,edges=8000,features=64,seed=1", "--method", "random",
            "--parts", "2", "--quiet", "--out", str(out)]
    assert main(args) == 0
    before = _snapshot(out)
    needed = load_part(out, 0).features.nbytes  # the same partition is written again below
    # The parts' smaller files fit under the limit; the first part's features do not.
    assert max(p.stat().st_size for p in (out / "part-00000").glob("[!f]*.npy")) < needed // 2
    run = subprocess.run([sys.executable, "-c", _FULL_DISK.format(limit=needed // 2), *args, "--force"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    error = run.stderr.strip()
    assert "\n" not in error and "Traceback" not in error
    assert error.startswith(f"gnndist partition: error: {out}/part-00000/features.npy: File too large")
    assert f"it needs {needed:,} bytes" in error
    assert "the whole partition of 2 parts about" in error
    assert "Nothing partial was left" in error and f"{out} is as it was" in error
    # the destination is untouched and no temporary sibling remains
    assert _snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["p"]
