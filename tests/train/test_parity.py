"""Accuracy parity: GraphSAGE trained on 2 and 4 parts reaches the test accuracy of training on
one part in one process (same model, hyper-parameters and epochs; mean of 3 seeds).

The global batch is the same in every run (each of k workers takes 1/k of it), so every run makes
the same number of optimizer steps with the same learning rate: what differs is only that the
batches are drawn and the gradients computed in parts.
"""

from __future__ import annotations

import statistics

import pytest

from gnndist.config import PartitionConfig, SamplerConfig, SourceConfig, TrainConfig
from gnndist.train.trainer import train

SEEDS = (0, 1, 2)
GLOBAL_BATCH = 32


def _mean_test_acc(parts, num_parts: int, tmp_path) -> float:
    accs = []
    for seed in SEEDS:
        config = TrainConfig(model="sage", hidden=64, epochs=20, eval_every=20, checkpoint_every=20, seed=seed,
                             cpus_per_worker=2 / num_parts)
        sampler = SamplerConfig(fanouts=(10, 10), batch_size=GLOBAL_BATCH // num_parts, seed=seed)
        accs.append(train(None, parts, config=config, sampler=sampler, out_dir=tmp_path / str(seed)).test_acc)
    return statistics.mean(accs)


@pytest.mark.parametrize("dataset", ["cora", "amazon-photo"])
def test_distributed_accuracy_matches_one_process(dataset, tmp_path, ray_session):
    from gnndist.api import partition

    source = SourceConfig(dataset=dataset)
    acc = {}
    for num_parts in (1, 2, 4):
        parts = partition(source, PartitionConfig(method="metis", num_parts=num_parts), tmp_path / f"parts-{num_parts}")
        acc[num_parts] = _mean_test_acc(parts, num_parts, tmp_path / f"run-{num_parts}")
    assert abs(acc[2] - acc[1]) <= 0.015 and abs(acc[4] - acc[1]) <= 0.015, acc
    if dataset == "cora":
        assert min(acc.values()) >= 0.78, acc
