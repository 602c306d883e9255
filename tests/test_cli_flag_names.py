"""Errors name the flags a user typed, and the job-file keys of values that came from a job file."""

from __future__ import annotations

import pytest
import yaml

from gnndist.cli import main
from gnndist.config import as_flags, setting
from gnndist.partition import read_manifest


def _error(capsys, *argv) -> str:
    assert main([str(a) for a in argv]) == 2
    return capsys.readouterr().err


def test_as_flags_replaces_whole_keys_and_settings():
    text = (f"lower {setting('train.lr', 0.5)}, mind train.lr_decay, runs/train.lr and 'train.lr'; "
            "train.lr is positive")
    assert as_flags(text, {"train.lr": "--lr"}) == ("lower --lr 0.5, mind train.lr_decay, runs/train.lr and "
                                                    "'train.lr'; --lr is positive")


def test_a_bad_flag_names_the_flag_and_a_bad_job_value_its_key(tmp_path, capsys):
    out = tmp_path / "p"
    assert "--parts must be at least 1, got 0" in _error(capsys, "partition", "--parts", "0", "--out", out)
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"partition": {"num_parts": 0}}))
    assert "partition.num_parts must be at least 1" in _error(capsys, "partition", "--config", job, "--out", out)
    # a flag given over the job file's value is named as the flag
    assert "--parts must be at least 1, got -1" in _error(capsys, "partition", "--config", job, "--parts", "-1",
                                                          "--out", out)
    assert "--split 'bogus' is not understood" in _error(capsys, "partition", "--split", "bogus", "--out", out)


def test_a_source_error_names_the_label_column_flag(tmp_path, capsys):
    (tmp_path / "e.csv").write_text("0,1\n")
    (tmp_path / "y.csv").write_text("id,name,ml_target\n0,a,0\n1,b,1\n")
    err = _error(capsys, "partition", "--dataset", tmp_path / "e.csv", "--labels", tmp_path / "y.csv",
                 "--out", tmp_path / "p")
    assert "name it, e.g. --label-column ml_target" in err


@pytest.mark.usefixtures("ray_session")
def test_train_partitions_with_split_and_names_cpus_per_worker(tmp_path, capsys):
    """``train --dataset`` partitions with ``--split``/``--split-seed``; a run the cluster has no room
    for is refused before it starts, naming ``--cpus-per-worker`` or, from a job file, its key."""
    run = tmp_path / "run"
    err = _error(capsys, "train", "--dataset", "cora", "--method", "random", "--split", "per_class:5,10",
                 "--split-seed", "3", "--workers", "1", "--cpus-per-worker", "100", "--out", run, "--quiet")
    assert "give each worker fewer CPUs (--cpus-per-worker 2)" in err and "fewer workers (--workers)" in err
    assert read_manifest(run / "parts")["split"] == {"scheme": "per_class:5,10", "seed": 3}
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"train": {"cpus_per_worker": 100, "workers": 1}}))
    err = _error(capsys, "train", "--config", job, "--partitions", run / "parts", "--out", tmp_path / "run2",
                 "--quiet")
    assert "give each worker fewer CPUs (train.cpus_per_worker = 2)" in err and "(train.workers)" in err
