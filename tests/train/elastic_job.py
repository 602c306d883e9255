"""An elastic run on a Ray cluster of two nodes on this machine: one node leaves mid-run (and, with
``grow``, comes back); prints each epoch's worker count and the run's test score (JSON). With
``provision``, no node leaves: the run starts with one worker and the ``provision`` policy adds the
second node's worker, measures what it gains, and keeps or gives it back
(its output kept in ``scripts/results/provision.json``, run by hand).

Run by ``test_multinode.py`` in its own process (``shrink``): a multi-node cluster cannot share
the test session's single-node Ray instance. ``grow`` takes minutes, most of them Ray Train's
wait before it grows a run (its autoscaling coordinator looks every 20 s), so it is run by hand
and its output kept in ``scripts/results/elastic_grow.json``. Training runs in a thread; the main
thread changes the cluster (Ray starts a node's processes only from the main thread).

    python tests/train/elastic_job.py PARTITION_DIR RUN_DIR shrink|grow|provision
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import ray
from ray.cluster_utils import Cluster

from gnndist.adapt.policies import Provision
from gnndist.config import SamplerConfig, TrainConfig
from gnndist.train.trainer import train

EPOCHS = {"shrink": 24, "grow": 120, "provision": 12}  # growing back takes about a minute of one-worker epochs
WAIT_S = 300  # for each change, on a busy machine


def _wait_for(done) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done() and time.monotonic() < deadline:
        time.sleep(0.1)


def main(parts: str, run: str, mode: str) -> None:
    # After the node leaves, Ray Train's view of the cluster lags: it first tries to start as many
    # workers as before, and goes on with fewer once that times out (60 s by default; our workers
    # start in about 10 s here). fit() hands this variable to Ray Train's controller.
    os.environ["RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S"] = "20"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    second = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    records: list[dict] = []
    outcome: dict = {}
    # Each worker takes a node's 2 CPUs: one worker a node.
    epochs = EPOCHS[mode]
    config = TrainConfig(epochs=epochs, hidden=16, eval_every=epochs, checkpoint_every=1, workers=2, min_workers=1,
                         max_failures=5, rescale_check_s=3, cpus_per_worker=2)
    policies = []
    if mode == "provision":  # a fixed-size run, resized by the policy
        config = TrainConfig(epochs=epochs, hidden=16, eval_every=epochs, checkpoint_every=1, workers=1,
                             cpus_per_worker=2)
        policies = [Provision(max_workers=2)]

    def fit() -> None:
        try:
            outcome["result"] = train(None, parts, config=config, sampler=SamplerConfig(fanouts=(5, 5)), out_dir=run,
                                      address=cluster.address, on_epoch=records.append, policies=policies)
        except BaseException as e:  # reported by the main thread
            outcome["error"] = e

    training = threading.Thread(target=fit)
    training.start()
    changes = []
    try:
        if mode == "provision":
            training.join()
        _wait_for(lambda: len(records) >= 3 or not training.is_alive())
        if mode != "provision":
            if not training.is_alive():
                raise outcome.get("error") or RuntimeError("training ended before the node could leave")
            cluster.remove_node(second)
            changes.append(f"removed after epoch {records[-1]['epoch']}")
        if mode == "grow":
            _wait_for(lambda: len(records[-1]["workers"]) == 1 or not training.is_alive())
            cluster.add_node(num_cpus=2)
            changes.append(f"added after epoch {records[-1]['epoch']}")
        training.join()
        if "error" in outcome:
            raise outcome["error"]
        history = outcome["result"].history
        print(json.dumps({"test_acc": outcome["result"].test_acc, "changes": changes,
                          "epochs": [r["epoch"] for r in history], "workers": [len(r["workers"]) for r in history],
                          "workers_changed": [r["workers_changed"] for r in history if "workers_changed" in r],
                          "seeds_per_s": [round(sum(w["seeds"] for w in r["workers"]) / r["epoch_s"], 1)
                                          for r in history],
                          "decisions": [d for r in history for d in r.get("decisions", [])]}))
    finally:
        training.join()
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
