from __future__ import annotations

import pytest

from gnndist.graph import Graph
from gnndist.testing import random_graph


@pytest.fixture
def small_graph() -> Graph:
    return random_graph(300, 1500, seed=7)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance (2 CPUs, 127.0.0.1, no dashboard) shared by every test that needs it."""
    from gnndist.runtime.cluster import init_ray, shutdown_ray

    init_ray(num_cpus=2)
    yield
    shutdown_ray()
