"""Train on a Ray cluster of two nodes on this machine, then print the nodes and the test score (JSON).

Run by ``test_multinode.py`` in its own process: a multi-node cluster cannot share the test
session's single-node Ray instance.

    python multinode_job.py PARTITION_DIR RUN_DIR PARAMS_DIR
"""

from __future__ import annotations

import json
import sys

import ray
from ray.cluster_utils import Cluster

from gnndist.config import SamplerConfig, TrainConfig
from gnndist.testing import SaveParameters
from gnndist.train.trainer import train


def main(parts: str, run: str, params: str) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    try:
        result = train(None, parts, config=TrainConfig(epochs=3, hidden=16), sampler=SamplerConfig(fanouts=(5, 5)),
                       out_dir=run, address=cluster.address, hooks=[SaveParameters(params)])
        nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        print(json.dumps({"nodes": nodes, "test_acc": result.test_acc}))
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
