"""An elastic run on a Ray cluster of two nodes on this machine: one node leaves mid-run and comes
back; prints each epoch's worker count and the run's test score (JSON).

Run by ``test_multinode.py`` in its own process: a multi-node cluster cannot share the test
session's single-node Ray instance.

    python elastic_job.py PARTITION_DIR RUN_DIR
"""

from __future__ import annotations

import json
import sys
import threading
import time

from ray.cluster_utils import Cluster

from gnndist.config import SamplerConfig, TrainConfig
from gnndist.train.trainer import train

EPOCHS = 120
WAIT_S = 300  # for each change, on a busy machine


def _wait_for(records: list, done) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done() and time.monotonic() < deadline:
        time.sleep(0.1)


def main(parts: str, run: str) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    second = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    records: list[dict] = []
    changes: list[str] = []

    def take_a_node_away_and_back() -> None:
        _wait_for(records, lambda: len(records) >= 3)
        cluster.remove_node(second)
        changes.append(f"removed after epoch {records[-1]['epoch']}")
        _wait_for(records, lambda: len(records[-1]["workers"]) == 1)
        cluster.add_node(num_cpus=2)
        changes.append(f"added after epoch {records[-1]['epoch']}")

    threading.Thread(target=take_a_node_away_and_back, daemon=True).start()
    try:
        result = train(None, parts, config=TrainConfig(epochs=EPOCHS, hidden=16, eval_every=EPOCHS, checkpoint_every=1,
                                                       workers=2, min_workers=1, max_failures=5, rescale_check_s=3),
                       sampler=SamplerConfig(fanouts=(5, 5)), out_dir=run, address=cluster.address,
                       on_epoch=records.append)
        print(json.dumps({"test_acc": result.test_acc, "changes": changes,
                          "epochs": [r["epoch"] for r in result.history],
                          "workers": [len(r["workers"]) for r in result.history],
                          "workers_changed": [r["workers_changed"] for r in result.history if "workers_changed" in r]}))
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
