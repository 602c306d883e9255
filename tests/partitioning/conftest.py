"""Seeded graphs for the partitioner tests: a planted-partition (SBM) graph with shuffled ids."""

from __future__ import annotations

import numpy as np
import pytest

from gnndist.graph import Graph


def sbm_graph(num_nodes: int, blocks: int, *, avg_degree: float = 10.0, p_in: float = 0.9,
              train_fraction: float = 0.1, seed: int = 0) -> Graph:
    """Undirected SBM: node ``i`` is in block ``perm[i] % blocks`` (ids shuffled, so id order says
    nothing about blocks); a fraction ``p_in`` of the edges join two nodes of the same block, the
    rest join uniform pairs. Labels are blocks; ``train_fraction`` of the nodes train."""
    rng = np.random.default_rng(seed)
    block = rng.permutation(num_nodes) % blocks
    members = np.argsort(block, kind="stable")
    starts = np.searchsorted(block[members], np.arange(blocks + 1))
    m = int(num_nodes * avg_degree / 2)
    src = rng.integers(0, num_nodes, m)
    lo, hi = starts[block[src]], starts[block[src] + 1]
    same_block = members[lo + (rng.random(m) * (hi - lo)).astype(np.int64)]
    dst = np.where(rng.random(m) < p_in, same_block, rng.integers(0, num_nodes, m))
    train = np.zeros(num_nodes, dtype=bool)
    train[rng.permutation(num_nodes)[: int(train_fraction * num_nodes)]] = True
    none = np.zeros(num_nodes, dtype=bool)
    return Graph.from_edges(src, dst, num_nodes=num_nodes, x=None, y=block, train_mask=train, val_mask=none,
                            test_mask=none, name=f"sbm{num_nodes}", origin="<sbm>", undirected=True)


def edge_cut(graph: Graph, parts: np.ndarray) -> float:
    """Fraction of the graph's edges whose endpoints lie in different parts."""
    src, dst = graph.edge_index().numpy()
    return float(np.mean(parts[src] != parts[dst]))


@pytest.fixture(scope="session")
def sbm4000() -> Graph:
    return sbm_graph(4000, 8)


@pytest.fixture(scope="session")
def sbm20000() -> Graph:
    return sbm_graph(20000, 8, avg_degree=6, seed=1)


@pytest.fixture(scope="session")
def make_sbm():
    """The :func:`sbm_graph` builder (fixtures are how test modules share helpers here)."""
    return sbm_graph


@pytest.fixture(scope="session")
def cut():
    """The :func:`edge_cut` measure."""
    return edge_cut
