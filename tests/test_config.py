from __future__ import annotations

import pytest

from gnndist.config import ConfigError, TrainConfig


@pytest.mark.parametrize("gpus", [0.5, 1.5, -1])
def test_gpus_per_worker_must_be_whole_gpus_for_nccl(gpus):
    with pytest.raises(ConfigError, match="one GPU of its own per worker"):
        TrainConfig(gpus_per_worker=gpus)


@pytest.mark.parametrize("gpus", [0, 1, 2.0])
def test_whole_gpus_per_worker_are_accepted(gpus):
    assert TrainConfig(gpus_per_worker=gpus).gpus_per_worker == gpus
