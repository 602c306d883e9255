"""One local Ray instance for the whole test session, and small partitioned graphs."""

from __future__ import annotations

import numpy as np
import pytest

from gnndist.config import PartitionConfig
from gnndist.runtime.partition_server import launch_servers
from gnndist.testing import random_graph
from partitioners import make_partitioner
from partitioners.writer import write_partitions


@pytest.fixture(scope="session")
def graph():
    return random_graph(500, 4000, seed=11, feature_dim=6, num_classes=4)


@pytest.fixture(scope="session", params=[(2, 1), (4, 1), (3, 2)], ids=["2parts", "4parts", "3parts-2hop"])
def partitioned(request, tmp_path_factory, graph, ray_session):
    """``(root, servers, new_to_old)`` for the graph split by METIS, servers running."""
    parts, hops = request.param
    config = PartitionConfig(method="metis", num_parts=parts, halo_hops=hops)
    root = tmp_path_factory.mktemp("parts") / "p"
    write_partitions(graph, make_partitioner(config).assign(graph), config, root)
    servers = launch_servers(root)
    from gnndist.partition import load_part

    new_to_old = np.concatenate([load_part(root, p).orig_ids for p in range(parts)])
    yield root, servers, new_to_old
    servers.kill()
