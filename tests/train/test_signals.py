"""Stopping a run: Ctrl-C and SIGTERM to a real ``gnndist train``, and a partition server lost mid-run."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import torch
from listening import is_loopback, listening

from gnndist.api import partition
from gnndist.cli import main
from gnndist.config import PartitionConfig
from gnndist.testing import random_graph
from gnndist.train import checkpoint

GNNDIST = [sys.executable, "-m", "gnndist.cli"]
# Liveness bounds, not benchmarks: start-up alone takes minutes when the machine is busy.
START_S, STOP_S = 900, 60


def _epochs(out: Path) -> list[int]:
    log = out / "metrics.jsonl"
    return [json.loads(line)["epoch"] for line in log.read_text().splitlines()] if log.exists() else []


def _wait_for(process: subprocess.Popen, done, what: str) -> None:
    deadline = time.monotonic() + START_S
    while not done():
        if process.poll() is not None:
            pytest.fail(f"gnndist train exited ({process.returncode}) before {what}: {process.communicate()[1]}")
        assert time.monotonic() < deadline, f"no {what} within {START_S} s"
        time.sleep(0.5)


def _stop(process: subprocess.Popen, signum: int) -> tuple[int, str, list[psutil.Process]]:
    """Send ``signum`` to a running ``gnndist train``; its exit code, its stderr, and the processes
    it had started (the local Ray instance's GCS, raylet and workers among them). A run that does
    not stop is killed, with all it started, before the test fails."""
    started = psutil.Process(process.pid).children(recursive=True)
    assert any(p.name() == "raylet" for p in started) and any("RayTrainWorker" in p.name() for p in started)
    process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        for p in [psutil.Process(process.pid), *started]:
            p.kill()
        pytest.fail(f"gnndist train did not stop within {STOP_S} s of {signal.Signals(signum).name}")
    return process.returncode, err, started


def _assert_only_loopback_listens(process: subprocess.Popen) -> None:
    """Mid-training, every socket the run listens on (Ray's, the partition servers', Ray Train's
    workers', torch's rendezvous store on rank 0 and gloo's) is on loopback."""
    found = listening({process.pid} | {p.pid for p in psutil.Process(process.pid).children(recursive=True)})
    assert any("RayTrainWorker" in name for _, name, *_ in found), found
    exposed = [s for s in found if not is_loopback(s[2])]
    assert not exposed, f"listening beyond loopback (pid, process, ip, port): {exposed}"


def _assert_gone(processes: list[psutil.Process]) -> None:
    deadline = time.monotonic() + STOP_S
    alive = processes
    while alive and time.monotonic() < deadline:
        time.sleep(0.5)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left behind: {[(p.pid, p.name()) for p in alive]}"


def _assert_complete_checkpoint(out: Path) -> int:
    epoch = checkpoint.latest_epoch(out)
    assert epoch is not None
    state = torch.load(checkpoint.state_file(out, epoch), weights_only=True)
    assert state["epoch"] == epoch and state["model"] and state["optimizer"]
    return epoch


def test_ctrl_c_stops_the_run_and_says_how_to_resume_it(tmp_path):
    out = tmp_path / "run"
    command = [*GNNDIST, "train", "--out", str(out), "--epochs", "200", "--checkpoint-every", "1", "--quiet",
               "--overwrite"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(run, lambda: len(_epochs(out)) >= 2, "two epochs")
    _assert_only_loopback_listens(run)
    code, err, started = _stop(run, signal.SIGINT)
    assert code == 130, err
    assert "stopped by SIGINT" in err and "Traceback" not in err
    _assert_gone(started)
    epoch = _assert_complete_checkpoint(out)
    assert epoch + 1 < 200
    # The command it prints continues from that checkpoint (resuming is tested in test_train_ddp):
    # the same flags with --resume, and without --overwrite, which would discard the checkpoint.
    assert f"The checkpoint of epoch {epoch + 1} is complete" in err
    printed = shlex.split(err.split("continue from it with `")[1].split("`")[0])
    assert printed == ["gnndist", "train", "--epochs", "200", "--checkpoint-every", "1", "--quiet",
                       "--resume", "--out", str(out)]


def test_sigterm_stops_a_run_with_143(tmp_path):
    # The handler is Ctrl-C's (the test above follows it through a training run); here SIGTERM
    # reaches a real gnndist train once its partition servers run, and they and its local Ray
    # must go with it.
    out = tmp_path / "run"
    run = subprocess.Popen([*GNNDIST, "train", "--out", str(out), "--quiet"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    _wait_for(run, lambda: any("PartitionServer" in p.name() for p in _descendants(run)), "the partition servers")
    started = _descendants(run)
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=STOP_S)
    assert run.returncode == 143, err
    assert "gnndist train: stopped by SIGTERM" in err and "--resume" in err and "Traceback" not in err
    _assert_gone(started)


def _descendants(process: subprocess.Popen) -> list[psutil.Process]:
    try:
        return psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_a_second_signal_ends_the_process_at_once(tmp_path):
    # The first SIGTERM starts a cleanup that never ends; the second must not wait for it.
    script = ("import os, signal, time\n"
              "from gnndist.train.stopping import Interrupted, interruptible\n"
              "with interruptible():\n"
              "    try:\n"
              "        os.kill(os.getpid(), signal.SIGTERM)\n"
              "        time.sleep(60)\n"
              "    except Interrupted as e:\n"
              "        assert e.exit_code == 143\n"
              "        os.kill(os.getpid(), signal.SIGINT)\n"
              "        time.sleep(60)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=STOP_S)
    assert done.returncode == 130, done.stderr


def test_a_killed_partition_server_is_the_runs_error(tmp_path, capsys, ray_session):
    import ray

    parts = partition(random_graph(300, 1500, seed=7), PartitionConfig(method="random", num_parts=2),
                      tmp_path / "parts")
    out = tmp_path / "run"
    before = {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)}
    killed = []

    def kill_a_server_after_the_first_epoch() -> None:
        while not _epochs(out):
            time.sleep(0.2)
        ours = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                      if a["name"] not in before and "-part-" in a["name"])
        killed.append(ours[1])
        ray.kill(ray.get_actor(ours[1]))

    threading.Thread(target=kill_a_server_after_the_first_epoch, daemon=True).start()
    code = main(["train", "--partitions", str(parts), "--out", str(out), "--epochs", "500", "--checkpoint-every",
                 "1", "--batch-size", "16", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and killed
    lines = [line for line in err.splitlines() if line.startswith("gnndist train: error:")]
    assert len(lines) == 1, err
    assert f"part 1 ({killed[0]}) died" in lines[0] and "--resume" in lines[0]
    assert "Traceback" not in err and "Error Snippet" not in err
