"""A run recovers by itself (``--max-failures``): after ``kill -9`` of a training worker mid-run
the workers go on from the last checkpoint, after ``kill -9`` of a partition server the workers
call it again once Ray has restarted it; either way the run ends with the parameters of an
uninterrupted run with the same seed and workers, bit for bit."""

from __future__ import annotations

import threading
import time

import psutil
import torch

from gnndist.config import replace
from gnndist.testing import SaveParameters, saved_parameters
from gnndist.train.trainer import train

# Liveness bound, not a benchmark: a busy machine starts Ray Train's workers slowly.
WAIT_S = 600


def _processes(name: str) -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if name in _title(p)]


def _title(process: psutil.Process) -> str:
    """What Ray names the process after (``ray::RayTrainWorker...``; its name is cut at 15 characters)."""
    try:
        return " ".join(process.cmdline())
    except psutil.NoSuchProcess:
        return ""


def _kill(plan: list[tuple[int, str]], epochs: list[int], others: set[int], killed: list) -> None:
    """For each ``(after, name)`` of ``plan`` in turn: once ``after`` epochs are reported,
    ``kill -9`` the newest process named ``name`` that is not in ``others`` (the session's shared
    servers), and note when (epochs reported then) and what."""
    for after, name in plan:
        deadline = time.monotonic() + WAIT_S
        while len(epochs) < after and time.monotonic() < deadline:
            time.sleep(0.05)
        victims = sorted((p for p in _processes(name) if p.pid not in others), key=lambda p: p.pid)
        if victims:
            killed.append((len(epochs), _title(victims[-1])))
            victims[-1].kill()


def test_a_run_recovers_from_killed_servers_and_workers_and_ends_as_if_uninterrupted(cora_run, tmp_path):
    epochs, killed = [], []
    # The shared run checkpoints after epochs 4, 9 and 11. A server killed in epoch 2 is restarted
    # by Ray and called again (no epoch again); a worker killed in epoch 7 makes Ray Train restart
    # the workers from the checkpoint of epoch 4.
    others = {p.pid for p in _processes("PartitionServer")}  # Ray names a process after the actor it hosts
    plan = [(2, "PartitionServer"), (7, "RayTrainWorker")]
    threading.Thread(target=_kill, args=(plan, epochs, others, killed), daemon=True).start()
    result = train(None, cora_run.parts, config=replace(cora_run.config, max_failures=2), sampler=cora_run.sampler,
                   out_dir=tmp_path / "run", hooks=[SaveParameters(tmp_path / "params")],
                   on_epoch=lambda record: epochs.append(record["epoch"]))
    assert [name in title for (_, title), (_, name) in zip(killed, plan, strict=True)] == [True, True], killed
    restart = next(i for i in range(1, len(epochs)) if epochs[i] <= epochs[i - 1])
    assert epochs[:restart] == list(range(restart)) and restart >= 7  # nothing again after the server's death
    assert epochs[restart:] == list(range(5, 12)), epochs  # from the checkpoint of epoch 4 after the worker's
    assert [r["epoch"] for r in result.history] == list(range(12))  # metrics.jsonl without repeats
    got, want = saved_parameters(tmp_path / "params"), saved_parameters(cora_run.params)
    assert all(torch.equal(got[k], want[k]) for k in want)
