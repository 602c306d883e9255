from __future__ import annotations

import pytest

from gnndist.graph import Graph
from gnndist.testing import random_graph


@pytest.fixture
def small_graph() -> Graph:
    return random_graph(300, 1500, seed=7)
