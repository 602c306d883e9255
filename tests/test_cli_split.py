"""The split a partition was made with: recorded in partition.json and shown by ``gnndist inspect``."""

from __future__ import annotations

import json

from gnndist.cli import main
from gnndist.partition import read_manifest
from gnndist.partition.format import MANIFEST


def test_the_split_is_recorded_and_inspected_and_old_manifests_still_read(tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["partition", "--dataset", "cora", "--method", "random", "--split", "per_class:5,10",
                 "--split-seed", "3", "--out", str(out), "--quiet"]) == 0
    assert read_manifest(out)["split"] == {"scheme": "per_class:5,10", "seed": 3}
    assert main(["inspect", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["split"] == {"scheme": "per_class:5,10", "seed": 3}
    assert main(["inspect", str(out)]) == 0
    assert "split: per_class:5,10, seed 3" in capsys.readouterr().out

    manifest = json.loads((out / MANIFEST).read_text())
    del manifest["split"]  # as gnndist wrote it before recording splits
    (out / MANIFEST).write_text(json.dumps(manifest))
    assert main(["inspect", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["split"] is None
    assert main(["inspect", str(out), "--check"]) == 0
    assert "split: not recorded" in capsys.readouterr().out


def test_an_in_memory_graph_records_its_given_masks(tmp_path, small_graph):
    from gnndist.api import partition
    from gnndist.config import PartitionConfig

    out = partition(small_graph, PartitionConfig(method="random", num_parts=2), tmp_path / "p")
    assert read_manifest(out)["split"] == {"scheme": "given"}
