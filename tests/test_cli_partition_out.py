"""A ``--out`` that would be refused is refused before the graph is loaded and partitioned."""

from __future__ import annotations

import pytest

from gnndist.api import partition
from gnndist.cli import main
from gnndist.config import PartitionConfig, SourceConfig


@pytest.mark.parametrize(("force", "expected"), [
    (False, "already exists: choose another --out, or pass --force"),
    (True, "exists and is not a gnndist partition directory: refusing to replace it even with --force"),
])
def test_partition_refuses_out_before_loading_the_source(tmp_path, capsys, force, expected):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    # A source that cannot be loaded: had it been loaded first, its error would be the one shown.
    missing = tmp_path / "no-such-graph.npz"
    code = main(["partition", "--dataset", str(missing), "--out", str(out), "--quiet"]
                + (["--force"] if force else []))
    err = capsys.readouterr().err
    assert code == 2
    assert f"{out} {expected}" in err
    assert "no-such-graph" not in err
    assert (out / "notes.txt").read_text() == "the user's" and [p.name for p in out.iterdir()] == ["notes.txt"]


def test_the_api_checks_out_first_too(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    with pytest.raises(FileExistsError, match="taken already exists"):
        partition(SourceConfig(dataset=str(tmp_path / "missing.npz")), PartitionConfig(num_parts=2), out)
