"""A run recovers by itself (``--max-failures``): after ``kill -9`` of a training worker mid-run
the workers go on from the last checkpoint, after ``kill -9`` of a partition server the workers
call it again once Ray has restarted it; either way the run ends with the parameters of an
uninterrupted run with the same seed and workers, bit for bit."""

from __future__ import annotations

import threading
import time

import psutil
import pytest
import torch

from gnndist.config import replace
from gnndist.testing import SaveParameters, saved_parameters
from gnndist.train.trainer import train

# Liveness bound, not a benchmark: a busy machine starts Ray Train's workers slowly.
WAIT_S = 600


def _epochs_done(notes: list) -> int:
    return sum(1 for kind, _ in notes if kind == "epoch")


def _processes(name: str) -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if name in _title(p)]


def _kill_after(epochs: int, notes: list, name: str, others: set[int], killed: list) -> None:
    """Once ``epochs`` epochs are reported, ``kill -9`` one process named ``name`` that is not in
    ``others`` (the pids of the session's shared servers)."""
    deadline = time.monotonic() + WAIT_S
    while _epochs_done(notes) < epochs and time.monotonic() < deadline:
        time.sleep(0.05)
    victims = sorted((p for p in _processes(name) if p.pid not in others), key=lambda p: p.pid)
    if victims:
        killed.append(_title(victims[-1]))
        victims[-1].kill()


def _title(process: psutil.Process) -> str:
    """What Ray names the process after (``ray::RayTrainWorker...``; its name is cut at 15 characters)."""
    try:
        return " ".join(process.cmdline())
    except psutil.NoSuchProcess:
        return ""


@pytest.mark.parametrize("name", ["RayTrainWorker", "PartitionServer"])
def test_a_run_recovers_from_a_killed_process_and_ends_as_if_uninterrupted(cora_run, tmp_path, name):
    notes, killed = [], []
    # The shared run's first checkpoint is epoch 4: killed in epoch 7, the run goes on from there.
    others = {p.pid for p in _processes(name)}  # Ray names a process after the actor it hosts
    threading.Thread(target=_kill_after, args=(7, notes, name, others, killed), daemon=True).start()
    result = train(None, cora_run.parts, config=replace(cora_run.config, max_failures=2), sampler=cora_run.sampler,
                   out_dir=tmp_path / "run", hooks=[SaveParameters(tmp_path / "params")],
                   on_epoch=lambda record: notes.append(("epoch", record["epoch"])))
    assert killed and name in killed[0], killed
    epochs = [e for _, e in notes]
    if name == "RayTrainWorker":  # Ray Train restarts the workers, from the checkpoint of epoch 4
        restart = next(i for i in range(1, len(epochs)) if epochs[i] <= epochs[i - 1])
        assert epochs[restart] == 5, epochs
    else:  # Ray restarts the server, the workers call it again: training goes on, no epoch again
        assert epochs == list(range(12)), epochs
    assert [r["epoch"] for r in result.history] == list(range(12))  # metrics.jsonl without repeats
    got, want = saved_parameters(tmp_path / "params"), saved_parameters(cora_run.params)
    assert all(torch.equal(got[k], want[k]) for k in want)
