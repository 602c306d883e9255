"""Hash partitioner: a pure function of (node id, seed), balanced within sampling noise."""

from __future__ import annotations

import numpy as np

from gnndist.config import PartitionConfig
from partitioners import RandomPartitioner, make_partitioner


def test_seed_changes_the_assignment(sbm4000):
    a = make_partitioner(PartitionConfig(method="random", num_parts=4, seed=0)).assign(sbm4000)
    b = make_partitioner(PartitionConfig(method="random", num_parts=4, seed=1)).assign(sbm4000)
    assert np.mean(a != b) > 0.5  # independent draws over 4 parts differ about 3/4 of the time


def test_part_depends_only_on_node_id_and_seed():
    partitioner = RandomPartitioner(PartitionConfig(method="random", num_parts=5, seed=42))
    ids = np.arange(10_000)
    every = partitioner.parts_of(ids)
    some = np.array([9_999, 3, 1_234, 0])
    np.testing.assert_array_equal(partitioner.parts_of(some), every[some])


def test_balanced_within_sampling_noise(sbm20000, cut):
    assignment = make_partitioner(PartitionConfig(method="random", num_parts=4)).assign(sbm20000)
    counts = np.bincount(assignment, minlength=4)
    # binomial standard deviation is sqrt(20000 * 1/4 * 3/4) ~ 61 nodes; allow 4 of them
    assert np.all(np.abs(counts - 5000) < 250), counts
    assert abs(cut(sbm20000, assignment) - 0.75) < 0.02  # a random cut severs 1 - 1/parts of the edges
