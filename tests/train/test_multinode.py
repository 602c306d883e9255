"""Training on a 2-node Ray cluster: each part's server and worker on a node of their own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from gnndist.testing import saved_parameters


def test_each_part_trains_beside_its_server_on_its_own_node(cora_parts, tmp_path, ray_session):
    job = Path(__file__).with_name("multinode_job.py")
    done = subprocess.run([sys.executable, str(job), str(cora_parts), str(tmp_path / "run"), str(tmp_path / "params")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(out["nodes"]) == 2
    # Trained across the nodes, it learned: 7 classes, chance 0.14 (an evaluation that reproduces a
    # run's scores is tested on the session's single node, test_train_ddp).
    assert out["test_acc"] > 0.5
    placement = json.loads((tmp_path / "run" / "placement.json").read_text())
    assert sorted(p["parts"] for p in placement) == [[0], [1]]
    for p in placement:
        assert p["server_nodes"] == [p["worker_node"]]  # each worker sits beside its own part's server
    assert {p["worker_node"] for p in placement} == set(out["nodes"])  # one part per node
    a, b = (saved_parameters(tmp_path / "params", r) for r in (0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_elastic_run_goes_on_with_fewer_workers_when_a_node_leaves(cora_parts, tmp_path):
    # Growing back when the node returns is checked by hand (minutes of Ray Train's waiting):
    # tests/train/elastic_job.py ... grow, output in scripts/results/elastic_grow.json.
    job = Path(__file__).with_name("elastic_job.py")
    done = subprocess.run([sys.executable, str(job), str(cora_parts), str(tmp_path / "run"), "shrink"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(out["changes"]) == 1, out  # the node left while the run went on
    assert out["epochs"] == list(range(24))  # every epoch, once, in metrics.jsonl
    workers = out["workers"]
    shrunk = workers.index(1)
    assert workers == [2] * shrunk + [1] * (24 - shrunk), workers
    assert out["workers_changed"] == [{"from": 2, "to": 1, "reason": "restarted by Ray Train"}]
    assert out["test_acc"] > 0.5  # it learned (7 classes, chance 0.14)
