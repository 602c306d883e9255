"""``gnndist partition --feature-storage/--feature-dtype`` (and ``partition.feature_*`` in a job file)."""

from __future__ import annotations

import json
import re

import pytest

from gnndist.cli import main
from gnndist.partition import read_manifest


def test_the_flags_choose_how_features_are_stored_and_inspect_shows_it(tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["partition", "--dataset", "cora", "--feature-storage", "dense", "--feature-dtype", "bfloat16",
                 "--out", str(out), "--quiet"]) == 0
    graph = read_manifest(out)["graph"]
    assert (graph["feature_encoding"], graph["feature_dtype"]) == ("dense", "bfloat16")
    assert main(["inspect", str(out), "--check", "--source", "cora"]) == 0
    assert "1433 features stored dense bfloat16" in " ".join(capsys.readouterr().out.split())
    # Cora's bag of words is 1.3% non-zero: stored as CSR unless told otherwise
    assert main(["partition", "--dataset", "cora", "--out", str(tmp_path / "q"), "--quiet"]) == 0
    assert read_manifest(tmp_path / "q")["graph"]["feature_encoding"] == "csr"


@pytest.mark.parametrize("args, message", [
    (["--feature-dtype", "half"], "argument --feature-dtype: invalid choice: 'half'"),
    (["--feature-storage", "csr"], "argument --feature-storage: invalid choice: 'csr'"),
    (["--features", "sparse"], "argument --features: names a features file.*pass --feature-storage sparse"),
])
def test_bad_values_name_the_flag(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        main(["partition", "--out", str(tmp_path / "p"), *args])
    assert e.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_a_bad_job_file_value_names_its_key(tmp_path, capsys):
    job = tmp_path / "job.yaml"
    job.write_text(json.dumps({"partition": {"feature_dtype": "float64"}}))
    assert main(["partition", "--config", str(job), "--out", str(tmp_path / "p"), "--quiet"]) == 2
    assert "partition.feature_dtype 'float64' is unknown: choose one of ('float32', 'float16', 'bfloat16')" \
        in capsys.readouterr().err
