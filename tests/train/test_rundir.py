"""A run directory belongs to one run: its lock, fresh/resume/overwrite, and files gnndist did not write.

Most refusals come before Ray is needed. A run that gets past them is stopped cheaply by asking
for 8 CPUs per worker of the 2-CPU test cluster (refused after run.json is written, before any
worker starts), so only the shared fixture run trains.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest
import torch

from gnndist.cli import main
from gnndist.config import PartitionConfig, SamplerConfig, SourceConfig, TrainConfig
from gnndist.train import checkpoint, rundir
from gnndist.train.checkpoint import CheckpointError
from gnndist.train.rundir import RunDirError
from gnndist.train.trainer import train

STOP = ["--cpus-per-worker", "8", "--quiet"]  # refused by the cluster once past the run directory's checks
TOO_BIG = "1 worker x 8 CPUs need 8 CPUs but the Ray cluster has 2"


@pytest.fixture
def run_copy(cora_run, tmp_path):
    """A copy of the shared finished run (12 epochs, checkpoints after epochs 4, 9 and 11)."""
    return shutil.copytree(cora_run.out, tmp_path / "run")


def _train_args(parts, out, *extra):
    """``gnndist train`` with the shared run's settings (tests/conftest.py ``cora_run``)."""
    return ["train", "--partitions", str(parts), "--out", str(out), "--fanouts", "10,10", "--hidden", "64",
            "--dropout", "0", *extra]


def _snapshot(root):
    """Every file under ``root`` with its modification time and contents' sha256."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_fresh_run_refuses_a_directory_holding_an_earlier_run(run_copy, capsys):
    before = _snapshot(run_copy)
    assert main(["train", "--out", str(run_copy), "--epochs", "1", *STOP]) == 2
    err = capsys.readouterr().err
    assert "holds an earlier run" in err and "--resume" in err and "--overwrite" in err and "another --out" in err
    assert _snapshot(run_copy) == before
    assert not (run_copy / "parts").exists()  # refused before partitioning into OUT/parts


def test_overwrite_deletes_the_earlier_run_so_a_resume_cannot_pick_up_its_weights(cora_parts, run_copy, capsys):
    old_id = json.loads((run_copy / "run.json").read_text())["run_id"]
    (run_copy / "notes.txt").write_text("the user's, not the run's\n")
    assert main(_train_args(cora_parts, run_copy, "--overwrite", *STOP)) == 2
    assert TOO_BIG in capsys.readouterr().err
    assert sorted(p.name for p in run_copy.iterdir()) == ["notes.txt", "run.json"]
    assert (run_copy / "notes.txt").read_text() == "the user's, not the run's\n"
    assert checkpoint.latest_epoch(run_copy) is None
    assert json.loads((run_copy / "run.json").read_text())["run_id"] != old_id

    assert main(_train_args(cora_parts, run_copy, "--resume", *STOP)) == 2  # no checkpoint: said, then a fresh run
    captured = capsys.readouterr()
    assert "no complete checkpoint to resume from; starting a fresh run" in captured.out
    assert TOO_BIG in captured.err


def test_resume_refuses_another_model_before_touching_anything(cora_parts, run_copy, capsys):
    before = _snapshot(run_copy)
    assert main(_train_args(cora_parts, run_copy, "--resume", "--hidden", "32", "--epochs", "3", *STOP)) == 2
    err = capsys.readouterr().err
    assert "checkpoint has hidden 64, this run asks for 32" in err
    assert "checkpoint has shape [64, 1433], this model [32, 1433]" in err
    # run.json included: it is written only once the run is valid, so `gnndist evaluate` of the
    # checkpoint still builds the model the checkpoint holds.
    assert _snapshot(run_copy) == before


@pytest.mark.parametrize(("flags", "legacy", "expected"), [
    (["--fanouts", "5,5,5"], False, "checkpoint has layers 2, this run asks for 3"),
    (["--model", "gcn"], False, "checkpoint has model sage, this run asks for gcn"),
    (["--hidden", "8"], True, "checkpoint has hidden 64, this run asks for 8"),  # a run.json from before "format"
])
def test_resume_names_what_differs_from_the_checkpoint(cora_parts, run_copy, capsys, flags, legacy, expected):
    if legacy:
        info = json.loads((run_copy / "run.json").read_text())
        legacy_info = {key: info[key] for key in ("partitions", "builtin_model", "train", "sampler")}
        (run_copy / "run.json").write_text(json.dumps(legacy_info))
    before = _snapshot(run_copy)
    assert main(_train_args(cora_parts, run_copy, "--resume", *flags, *STOP)) == 2
    assert expected in capsys.readouterr().err
    assert _snapshot(run_copy) == before


def test_resume_refuses_a_checkpoint_of_another_partition(run_copy, tmp_path, capsys):
    from gnndist.api import partition

    other = partition(SourceConfig(dataset="cora"), PartitionConfig(method="random", num_parts=2), tmp_path / "other")
    before = _snapshot(run_copy)
    assert main(_train_args(other, run_copy, "--resume", *STOP)) == 2
    err = capsys.readouterr().err
    assert "the checkpoint was trained on another partition" in err and str(other) in err
    assert _snapshot(run_copy) == before


class _Linear(torch.nn.Module):
    """A custom model with parameters of its own names."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(1433, 7)

    def forward(self, x, edge_index):
        return self.lin(x)


def test_resume_builds_a_custom_model_once_to_compare_its_parameters(cora_parts, run_copy):
    before = _snapshot(run_copy)
    with pytest.raises(CheckpointError) as refused:
        train(_Linear, cora_parts, config=TrainConfig(epochs=3, cpus_per_worker=8),
              sampler=SamplerConfig(fanouts=(5, 5)), out_dir=run_copy, resume=True)
    message = str(refused.value)
    assert "checkpoint has model sage, this run asks for custom" in message
    assert "parameter lin.weight of this model is not in the checkpoint" in message
    assert _snapshot(run_copy) == before


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize(("name", "text"), [("metrics.jsonl", '{"epoch": 0, "mine": 1}\n'), ("run.json", "{}"),
                                            ("notes.txt", "a directory of the user's\n")])
def test_a_directory_that_is_not_a_runs_is_refused(cora_parts, tmp_path, capsys, name, text, overwrite):
    out = tmp_path / "out"
    out.mkdir()
    (out / name).write_text(text)
    before = _snapshot(out)
    assert main(_train_args(cora_parts, out, *(["--overwrite"] if overwrite else []), *STOP)) == 2
    err = capsys.readouterr().err
    assert f"{out} is not a gnndist run directory" in err and f"holds {out / name}" in err
    assert _snapshot(out) == before


def test_resume_and_overwrite_together_are_refused(cora_parts, tmp_path):
    with pytest.raises(RunDirError, match="pass one"):
        train(None, cora_parts, out_dir=tmp_path, resume=True, overwrite=True)


_HOLDER = """
import sys
from gnndist.train import rundir
with rundir.hold(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_run_directory_is_locked_and_a_dead_holders_lock_is_taken_over(cora_parts, tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert main(["train", "--out", str(out), "--epochs", "1", *STOP]) == 2
        err = capsys.readouterr().err
        assert f"is locked by pid {holder.pid} on {socket.gethostname()}" in err
        assert not (out / "parts").exists()  # refused before partitioning
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # dies holding it: the lock file stays, naming it
        holder.wait()
    assert json.loads((out / "run.lock").read_text())["pid"] == holder.pid

    assert main(_train_args(cora_parts, out, "--epochs", "1", *STOP)) == 2
    captured = capsys.readouterr()
    assert f"taking over the lock left by pid {holder.pid}" in captured.out
    assert TOO_BIG in captured.err
    assert not (out / "run.lock").exists()  # released on the error path too
    with rundir.hold(out) as run:  # and free again
        assert json.loads((run.path / "run.lock").read_text())["pid"] == os.getpid()


def test_without_flock_the_lock_file_alone_decides(tmp_path, monkeypatch):
    """On a filesystem that refuses flock (Lustre without -o flock): held while the file names a
    live holder, taken over when it names a process of this host that is gone."""
    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(rundir.fcntl, "flock", no_flock)
    with rundir.hold(tmp_path) as run:
        with pytest.raises(RunDirError, match=f"locked by pid {os.getpid()} on .*delete .*run.lock"):
            with rundir.hold(tmp_path):
                pass
    assert not (run.path / "run.lock").exists()

    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    (tmp_path / "run.lock").write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname()}))
    notes = []
    with rundir.hold(tmp_path, notify=notes.append):
        assert json.loads((tmp_path / "run.lock").read_text())["pid"] == os.getpid()
    assert notes == [f"{tmp_path}: taking over the lock left by pid {gone.pid} on {socket.gethostname()}, "
                     "which is no longer running"]

    (tmp_path / "run.lock").write_text(json.dumps({"pid": gone.pid, "host": "another-host"}))
    with pytest.raises(RunDirError, match="on another-host"):  # cannot be checked from here
        with rundir.hold(tmp_path):
            pass
    assert json.loads((tmp_path / "run.lock").read_text())["host"] == "another-host"
