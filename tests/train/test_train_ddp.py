"""Data-parallel training on Ray Train: identical parameters on every worker, real accuracy."""

from __future__ import annotations

import pytest
import torch

from gnndist.config import PartitionConfig, SamplerConfig, SourceConfig, TrainConfig
from gnndist.train.trainer import train


@pytest.fixture(scope="module")
def cora_parts(tmp_path_factory, ray_session):
    from gnndist.api import partition

    return partition(SourceConfig(dataset="cora"), PartitionConfig(method="metis", num_parts=2),
                     tmp_path_factory.mktemp("cora") / "parts")


def test_two_workers_keep_identical_parameters_and_learn_cora(cora_parts, tmp_path):
    result = train(None, cora_parts, config=TrainConfig(epochs=12, hidden=64, lr=0.01),
                   sampler=SamplerConfig(fanouts=(10, 10), batch_size=32), out_dir=tmp_path)
    a = torch.load(tmp_path / "params-rank00000.pt", weights_only=True)
    b = torch.load(tmp_path / "params-rank00001.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len(result.history) == 12
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.test_acc >= 0.70  # GraphSAGE on Cora's public split, 12 short epochs


def test_a_custom_model_factory(cora_parts, tmp_path):
    class TwoLayer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            from torch_geometric.nn import SAGEConv

            self.a, self.b = SAGEConv(1433, 16), SAGEConv(16, 7)

        def forward(self, x, edge_index):
            return self.b(self.a(x, edge_index).relu(), edge_index)

    result = train(TwoLayer, cora_parts, config=TrainConfig(epochs=2), sampler=SamplerConfig(fanouts=(5, 5)),
                   out_dir=tmp_path)
    assert 0 <= result.test_acc <= 1 and result.history[-1]["steps"] >= 1


def test_the_custom_model_example_runs(ray_session, tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "custom_model.py"
    spec = importlib.util.spec_from_file_location("custom_model_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.main(epochs=3, workdir=tmp_path)
    assert len(result.history) == 3 and 0 <= result.test_acc <= 1


def test_resume_ends_where_an_uninterrupted_run_ends(cora_parts, tmp_path):
    config = dict(hidden=16, checkpoint_every=2, lr=0.01)
    sampler = SamplerConfig(fanouts=(5, 5), batch_size=32)
    train(None, cora_parts, config=TrainConfig(epochs=4, **config), sampler=sampler, out_dir=tmp_path / "whole")
    train(None, cora_parts, config=TrainConfig(epochs=2, **config), sampler=sampler, out_dir=tmp_path / "cut")
    resumed = train(None, cora_parts, config=TrainConfig(epochs=4, **config), sampler=sampler,
                    out_dir=tmp_path / "cut", resume=True)
    assert [m["epoch"] for m in resumed.history] == [0, 1, 2, 3]
    whole = torch.load(tmp_path / "whole" / "params-rank00000.pt", weights_only=True)
    cut = torch.load(tmp_path / "cut" / "params-rank00000.pt", weights_only=True)
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
