"""METIS: edge cut far below random, multi-constraint balance, and the symmetric adjacency it is fed."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from gnndist.config import PartitionConfig
from gnndist.graph import Graph
from gnndist.testing import random_graph
from partitioners import make_partitioner
from partitioners.metis import symmetric_adjacency, vertex_weights


def _assign(graph, **kw):
    return make_partitioner(PartitionConfig(method="metis", **kw)).assign(graph)


def _max_over_mean(assignment, parts, mask=None):
    counts = np.bincount(assignment if mask is None else assignment[mask], minlength=parts)
    return counts.max() / counts.mean()


@pytest.mark.parametrize("parts", [4, 12])
def test_cuts_far_fewer_edges_than_random(sbm4000, cut, parts):
    metis = cut(sbm4000, _assign(sbm4000, num_parts=parts))
    random = cut(sbm4000, make_partitioner(PartitionConfig(method="random", num_parts=parts)).assign(sbm4000))
    assert metis < 0.5 * random, (metis, random)


@pytest.mark.parametrize("parts", [2, 4, 8, 12])
def test_balances_nodes_and_training_nodes_together(sbm4000, parts):
    assignment = _assign(sbm4000, num_parts=parts)
    train = sbm4000.train_mask.numpy()
    assert _max_over_mean(assignment, parts) <= 1.05
    assert _max_over_mean(assignment, parts, train) <= 1.05
    degree = np.diff(sbm4000.indptr.numpy())
    edges = np.bincount(assignment, weights=degree, minlength=parts)
    assert edges.max() / edges.mean() <= 1.05


def test_single_part_and_seed_determinism(sbm4000):
    assert np.all(_assign(sbm4000, num_parts=1) == 0)
    np.testing.assert_array_equal(_assign(sbm4000, num_parts=4, seed=3), _assign(sbm4000, num_parts=4, seed=3))


def test_no_training_nodes_drops_that_constraint_with_a_warning(make_sbm):
    graph = make_sbm(500, 4, train_fraction=0.0)
    with pytest.warns(UserWarning, match="has no training nodes: not balancing 'train'"):
        assignment = _assign(graph, num_parts=4)
    assert _max_over_mean(assignment, 4) <= 1.05


def test_vertex_weights_are_row_major_per_target(sbm4000):
    w = vertex_weights(sbm4000, ("nodes", "edges", "train")).reshape(-1, 3)
    assert w.dtype == np.int64
    np.testing.assert_array_equal(w[:, 0], 1)
    np.testing.assert_array_equal(w[:, 1], np.diff(sbm4000.indptr.numpy()) + 1)
    np.testing.assert_array_equal(w[:, 2], sbm4000.train_mask.numpy())


def _pattern(indptr, indices, n):
    """Sorted (row, col) pairs of a CSR/CSC structure."""
    rows = np.repeat(np.arange(n), np.diff(indptr))
    return sorted(zip(rows.tolist(), np.asarray(indices).tolist(), strict=True))


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 40), density=st.floats(0, 6), seed=st.integers(0, 10**6), undirected=st.booleans())
def test_symmetric_adjacency_is_a_plus_a_transpose(n, density, seed, undirected):
    rng = np.random.default_rng(seed)
    m = int(n * density)
    z = np.zeros(n, dtype=bool)
    graph = Graph.from_edges(rng.integers(0, n, m), rng.integers(0, n, m), num_nodes=n, x=None,
                             y=np.zeros(n, dtype=np.int64), train_mask=z, val_mask=z, test_mask=z, name="g",
                             origin="<g>", undirected=undirected)
    indptr, indices = graph.indptr.numpy(), graph.indices.numpy()
    xadj, adjncy = symmetric_adjacency(indptr, indices)
    a = sp.csc_matrix((np.ones(indices.size), indices, indptr), shape=(n, n))
    expected = (a + a.T).tocsr()
    expected.sort_indices()
    assert _pattern(xadj, adjncy, n) == _pattern(expected.indptr, expected.indices, n)
    if undirected:  # already symmetric: reused as is, nothing built
        assert xadj is indptr and adjncy is indices


def test_directed_input_is_partitioned_on_its_symmetrised_form():
    graph = random_graph(600, 3000, seed=5)  # directed: few edges have their reverse
    assignment = _assign(graph, num_parts=3)
    assert _max_over_mean(assignment, 3) <= 1.05
