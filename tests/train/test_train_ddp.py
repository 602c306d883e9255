"""Data-parallel training on Ray Train: identical parameters on every worker, real accuracy.

Tests that only read a run share one (``cora_run`` in tests/conftest.py, ``custom_run`` here):
each Ray Train run pays for starting its workers and servers.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from gnndist.config import SamplerConfig, TrainConfig
from gnndist.testing import SaveParameters, saved_parameters
from gnndist.train.checkpoint import CheckpointError, state_file
from gnndist.train.evaluate import evaluate
from gnndist.train.loop import PHASES
from gnndist.train.metrics import macro_f1
from gnndist.train.trainer import train


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_workers_keep_identical_parameters_and_learn_cora(cora_run):
    result = cora_run.result
    assert _same(saved_parameters(cora_run.params, 0), saved_parameters(cora_run.params, 1))
    assert len(result.history) == 12
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.test_acc >= 0.70  # GraphSAGE on Cora's public split, 12 short epochs (chance: 0.32)


def test_each_epoch_records_where_the_time_went(cora_run):
    for record in cora_run.result.history:  # averaged over the workers
        assert set(record["phases"]) == set(PHASES) and record["epoch_s"] > 0
        assert record["phases"]["forward_backward"] > 0 and record["phases"]["allreduce"] > 0
        assert record["phases"]["sample"] > 0 and record["phases"]["fetch"] > 0
        assert record["steps"] == 5  # 140 seeds in global batches of 32
        assert [w["parts"] for w in record["workers"]] == [[0], [1]]
        assert [w["seeds"] for w in record["workers"]] == [68, 72]
        assert all(w["seeds_per_s"] > 0 and w["step_s"] > 0 and w["allreduce_s"] > 0 for w in record["workers"])
        assert record["remote_bytes"] > 0 and record["same_node_bytes"] == 0  # server calls
    assert list((cora_run.out / "tensorboard").glob("events.out.tfevents.*"))


def test_the_best_and_the_last_checkpoint_evaluated_afresh_give_the_run_s_scores(cora_run):
    history = cora_run.result.history
    assert all("val_acc" in r for r in history)  # validated every epoch by default
    best = cora_run.result.best
    assert best["val_acc"] == max(r["val_acc"] for r in history)
    assert best["epoch"] == min(r["epoch"] for r in history if r["val_acc"] == best["val_acc"])  # the first of ties
    # Test scores at each new best only (and after the last epoch), the best's the run's result.
    improved = [r["epoch"] for r in history if r["best"]["epoch"] == r["epoch"]]
    assert [r["epoch"] for r in history if "test_acc" in r] == sorted({*improved, 11})
    assert cora_run.result.test_acc == history[best["epoch"]]["test_acc"] == best["test_acc"]
    scores = evaluate(None, cora_run.out)  # the best, part by part, in Ray tasks of its own
    assert scores == {"epoch": best["epoch"], "val_acc": best["val_acc"], "test_acc": best["test_acc"]}
    scores = evaluate(None, cora_run.out, latest=True)
    last = history[-1]
    assert scores == {"epoch": 11, "val_acc": last["val_acc"], "test_acc": last["test_acc"]}


@pytest.fixture(scope="module")
def same_node_cut(cora_run, tmp_path_factory):
    """The first 5 epochs of ``cora_run``'s training, reading the other part from its files
    (``same_node_reads``) instead of calling its server. Its last checkpoint is epoch 4."""
    out = tmp_path_factory.mktemp("cut") / "run"
    return train(None, cora_run.parts, config=replace(cora_run.config, epochs=5),
                 sampler=replace(cora_run.sampler, same_node_reads=True), out_dir=out)


def test_same_node_reads_train_exactly_as_server_calls_do(cora_run, same_node_cut):
    moved = [(r["remote_bytes"], r["same_node_bytes"]) for r in same_node_cut.history]
    assert all(remote == 0 and same_node > 0 for remote, same_node in moved), moved
    # After the same 5 epochs, the same model and optimizer state as the run that called the server.
    direct = torch.load(state_file(same_node_cut.out_dir, 4), weights_only=True)
    served = torch.load(state_file(cora_run.out, 4), weights_only=True)
    assert _same(direct["model"], served["model"])
    assert direct["optimizer"]["state"].keys() == served["optimizer"]["state"].keys()
    for key, state in served["optimizer"]["state"].items():
        assert _same(direct["optimizer"]["state"][key], state)


def test_resume_ends_where_an_uninterrupted_run_ends(cora_run, same_node_cut):
    params = same_node_cut.out_dir.parent / "params"
    resumed = train(None, cora_run.parts, config=cora_run.config, sampler=cora_run.sampler,
                    out_dir=same_node_cut.out_dir, resume=True, hooks=[SaveParameters(params)])
    assert [m["epoch"] for m in resumed.history] == list(range(12))
    assert _same(saved_parameters(params), saved_parameters(cora_run.params))


@pytest.fixture(scope="module")
def custom_run(cora_parts, tmp_path_factory, ray_session):
    """A custom model factory with a custom loss and metric (no weight decay: with a zero gradient
    Adam then leaves every parameter where it started): ``(factory, draws dir, result)``."""
    tmp = tmp_path_factory.mktemp("custom")
    draws = tmp / "draws"
    draws.mkdir()

    # Defined here, not at module level: the workers get them by value (they cannot import a test module).
    class CountingDraws(torch.nn.Module):
        """Two SAGE layers that record, per worker process, what a dropout mask would draw from
        torch's generator at each training forward."""

        def __init__(self):
            super().__init__()
            from torch_geometric.nn import SAGEConv

            self.a, self.b = SAGEConv(1433, 16), SAGEConv(16, 7)

        def forward(self, x, edge_index):
            if self.training:
                with open(draws / f"{os.getpid()}.txt", "a") as f:
                    f.write(f"{torch.rand(()).item()!r}\n")
            return self.b(self.a(x, edge_index).relu(), edge_index)

    def constant_loss(logits, y):  # a hook the history and the parameters can tell apart from cross-entropy
        return F.cross_entropy(logits, y) * 0.0 + 2.5

    # Patience 1: a model that does not move scores as it did at the first epoch, and stops at the second.
    result = train(CountingDraws, cora_parts, config=TrainConfig(epochs=5, weight_decay=0.0, patience=1),
                   sampler=SamplerConfig(fanouts=(5, 5), batch_size=32), out_dir=tmp / "run",
                   loss_fn=constant_loss, metrics={"f1": macro_f1(7)}, hooks=[SaveParameters(tmp / "params")])
    return CountingDraws, draws, result


def test_a_custom_loss_drives_the_gradients_and_a_custom_metric_is_reported(custom_run):
    factory, _, result = custom_run
    assert [r["loss"] for r in result.history] == [2.5, 2.5]
    torch.manual_seed(TrainConfig().seed)  # the workers' initial parameters
    start = factory().state_dict()
    assert _same(saved_parameters(result.out_dir.parent / "params"), start)  # a zero gradient moved nothing
    # The run's scores are those of its best checkpoint (the first epoch's) evaluated afresh, with the factory.
    assert "patience 1" in result.history[-1]["stopped"]
    assert result.best["epoch"] == 0 and result.test_acc == result.history[0]["test_acc"]
    scores = evaluate(factory, result.out_dir, metrics={"f1": macro_f1(7)})
    for name in ("val_acc", "test_acc", "val_f1", "test_f1"):
        assert scores[name] == result.best[name], name


def test_the_command_line_refuses_to_evaluate_a_custom_model(custom_run):
    with pytest.raises(CheckpointError, match="custom model"):
        evaluate(None, custom_run[2].out_dir)


def test_each_part_draws_its_own_dropout_masks(custom_run):
    # 2 parts on 2 workers: a file per worker, each part's stream of its own.
    streams = [path.read_text().split() for path in custom_run[1].iterdir()]
    assert len(streams) == 2 and all(len(stream) == 10 for stream in streams)  # 5 steps x 2 epochs
    assert not set(streams[0]) & set(streams[1])


def test_the_custom_model_example_runs(ray_session, tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "custom_model.py"
    spec = importlib.util.spec_from_file_location("custom_model_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.main(epochs=3, workdir=tmp_path)
    # It learns (evaluating a custom model's checkpoint is checked on custom_run above).
    assert len(result.history) == 3 and result.history[-1]["loss"] < result.history[0]["loss"]
