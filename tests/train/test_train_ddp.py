"""Data-parallel training on Ray Train: identical parameters on every worker, real accuracy."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from gnndist.config import PartitionConfig, SamplerConfig, SourceConfig, TrainConfig
from gnndist.train.checkpoint import CheckpointError
from gnndist.train.evaluate import evaluate
from gnndist.train.loop import PHASES
from gnndist.train.metrics import macro_f1
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
    for record in result.history:  # where the time went, averaged over the workers
        assert set(record["phases"]) == set(PHASES) and record["epoch_s"] > 0
        assert record["phases"]["forward_backward"] > 0 and record["phases"]["allreduce"] > 0
        assert record["phases"]["sample"] > 0 and record["phases"]["fetch"] > 0
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    # The last checkpoint evaluated afresh, part by part, gives exactly the run's final scores.
    scores = evaluate(None, tmp_path)
    assert scores["epoch"] == 11
    assert scores["test_acc"] == result.test_acc and scores["val_acc"] == result.history[-1]["val_acc"]


def test_a_custom_model_factory(cora_parts, tmp_path):
    class TwoLayer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            from torch_geometric.nn import SAGEConv

            self.a, self.b = SAGEConv(1433, 16), SAGEConv(16, 7)

        def forward(self, x, edge_index):
            return self.b(self.a(x, edge_index).relu(), edge_index)

    def constant_loss(logits, y):  # a hook the history can tell apart from cross-entropy
        return F.cross_entropy(logits, y) * 0.0 + 2.5

    result = train(TwoLayer, cora_parts, config=TrainConfig(epochs=2), sampler=SamplerConfig(fanouts=(5, 5)),
                   out_dir=tmp_path, loss_fn=constant_loss, metrics={"f1": macro_f1(7)})
    assert [r["loss"] for r in result.history] == [2.5, 2.5]
    last = result.history[-1]
    assert 0 <= result.test_acc <= 1 and last["steps"] >= 1
    assert 0 <= last["val_f1"] <= 1 and 0 <= last["test_f1"] <= 1
    # A custom model is evaluated from Python, with its factory; the command line refuses it.
    scores = evaluate(TwoLayer, tmp_path, splits=("test",), metrics={"f1": macro_f1(7)})
    assert scores["test_acc"] == last["test_acc"] and scores["test_f1"] == last["test_f1"]
    with pytest.raises(CheckpointError, match="custom model"):
        evaluate(None, tmp_path)


def test_each_worker_draws_its_own_dropout_masks(cora_parts, tmp_path):
    draws = tmp_path / "draws"
    draws.mkdir()

    class Noisy(torch.nn.Module):
        """Records, per worker process, what a dropout mask would draw from torch's generator."""

        def __init__(self):
            super().__init__()
            from torch_geometric.nn import SAGEConv

            self.conv = SAGEConv(1433, 7)

        def forward(self, x, edge_index):
            if self.training:
                with open(draws / f"{os.getpid()}.txt", "a") as f:
                    f.write(f"{torch.rand(()).item()!r}\n")
            return self.conv(x, edge_index)

    train(Noisy, cora_parts, config=TrainConfig(epochs=2), sampler=SamplerConfig(fanouts=(5,), batch_size=32),
          out_dir=tmp_path / "run")
    streams = [path.read_text().split() for path in draws.iterdir()]
    assert len(streams) == 2 and all(len(stream) == 6 for stream in streams)  # 140 seeds / 2 parts / 32, x 2 epochs
    assert not set(streams[0]) & set(streams[1])


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


def test_same_node_reads_train_exactly_as_server_calls_do(cora_parts, tmp_path):
    config = TrainConfig(epochs=2, hidden=16, eval_every=2)
    params = {}
    for direct in (False, True):
        sampler = SamplerConfig(fanouts=(5, 5), batch_size=32, same_node_reads=direct)
        result = train(None, cora_parts, config=config, sampler=sampler, out_dir=tmp_path / str(direct))
        params[direct] = torch.load(tmp_path / str(direct) / "params-rank00000.pt", weights_only=True)
        moved = [(r["remote_bytes"], r["same_node_bytes"]) for r in result.history]
        assert all((remote == 0) == direct and (same_node > 0) == direct for remote, same_node in moved), moved
    assert all(torch.equal(params[False][k], params[True][k]) for k in params[False])
