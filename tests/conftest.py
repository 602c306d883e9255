from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from gnndist.config import PartitionConfig, SamplerConfig, SourceConfig, TrainConfig
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


@pytest.fixture(scope="session")
def cora_parts(tmp_path_factory) -> Path:
    """The bundled Cora in 2 METIS parts (68 and 72 training seeds), shared by the whole test run:
    read it, never write into it."""
    from gnndist.api import partition

    return partition(SourceConfig(dataset="cora"), PartitionConfig(method="metis", num_parts=2),
                     tmp_path_factory.mktemp("cora") / "parts")


@pytest.fixture(scope="session")
def cora_servers(cora_parts, ray_session):
    """Partition servers of :func:`cora_parts` for the whole test run (tests that kill or stall a
    server launch their own)."""
    from gnndist.runtime.partition_server import launch_servers

    servers = launch_servers(cora_parts)
    yield servers
    servers.kill()


@dataclass(frozen=True)
class SharedRun:
    """A finished training run that several tests read: what it was given and what it returned."""

    parts: Path
    config: TrainConfig
    sampler: SamplerConfig
    result: object  # gnndist.train.TrainResult
    params: Path  # each rank's final parameters (gnndist.testing.SaveParameters)

    @property
    def out(self) -> Path:
        return self.result.out_dir


@pytest.fixture(scope="session")
def cora_run(cora_parts, tmp_path_factory, ray_session) -> SharedRun:
    """One 2-worker GraphSAGE run on :func:`cora_parts` (12 epochs, 3 steps each, dropout 0 so that
    one process can replay it), made once for every test that only reads its results:
    parameters, history, phases, TensorBoard, checkpoints (epochs 4, 9 and 11), evaluation.
    Read its directory, never write into it; a test that resumes or retrains makes its own."""
    from gnndist.testing import SaveParameters
    from gnndist.train.trainer import train

    # The warm-up set, not derived from the epochs: runs cut shorter take the same steps.
    config = TrainConfig(epochs=12, hidden=64, lr=0.01, dropout=0.0, warmup_steps=3)
    sampler = SamplerConfig(fanouts=(10, 10), batch_size=32)
    tmp = tmp_path_factory.mktemp("cora-run")
    result = train(None, cora_parts, config=config, sampler=sampler, out_dir=tmp / "run",
                   hooks=[SaveParameters(tmp / "params")])
    return SharedRun(cora_parts, config, sampler, result, tmp / "params")
