"""Policies in a real 2-worker run: local SGD (model averaging every 2 steps) switched to
synchronous SGD, a schedule that changes the learning rate and the global batch at given
epochs, a user's own policy that stops the run, a batch the run cannot take refused; every
decision is in metrics.jsonl, the workers hold identical parameters, and the checkpoint keeps
what a resumed run needs to decide as this one would; per-worker shares split a part between the
workers, and it is trained once and evaluated once. (Rebalancing and resizing are in
``test_parity.py``: they must leave the trajectory as it is.)"""

from __future__ import annotations

import math
import sys

import ray
import torch

from gnndist.adapt.policies import EpochSchedule, Sync
from gnndist.adapt.policy import Context, Policy
from gnndist.config import SamplerConfig, TrainConfig
from gnndist.partition.format import read_manifest
from gnndist.testing import SaveParameters, saved_parameters
from gnndist.train import checkpoint
from gnndist.train.metrics import Metric
from gnndist.train.trainer import train

# The workers cannot import this test module: its policy class travels by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _count(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.tensor([y.numel()], dtype=torch.float64)


NODES = Metric(_count, lambda total: int(total[0]))  # how many nodes were evaluated


class ShareAt(Policy):
    """Gives the second worker three times the first's share of the seeds, in per-worker shares
    (part 0 of Cora's two is then split between the workers), from epoch ``epoch``."""

    name = "share-at"

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def before_epoch(self, ctx: Context) -> None:
        if ctx.epoch == self.epoch:
            ctx.rebalance([1.0, 3.0], "the test splits a part", split=True)


class StopAfter(Policy):
    """Stops the run after epoch ``last``, counting the epochs it has seen (state it checkpoints)."""

    name = "stop-after"

    def __init__(self, last: int) -> None:
        self.last, self.seen = last, 0

    def after_epoch(self, ctx: Context) -> None:
        self.seen += 1
        if ctx.epoch == self.last:
            ctx.stop(f"epoch {self.last} reached", loss=ctx.metrics["loss"])

    def state_dict(self) -> dict:
        return {"seen": self.seen}

    def load_state_dict(self, state: dict) -> None:
        self.seen = state["seen"]


def test_policies_change_the_settings_at_epoch_boundaries_alike_on_every_worker(cora_parts, tmp_path):
    schedule = EpochSchedule({1: {"lr": 0.02}, 2: {"batch_size": 64}, 3: {"batch_size": 1000}})
    # Monitored every other step: in local SGD too, where a copy of the gradients is all-reduced for it.
    result = train(None, cora_parts, config=TrainConfig(epochs=8, hidden=32, checkpoint_every=100, select="val_nodes",
                                                        monitor_every=2),
                   sampler=SamplerConfig(fanouts=(5, 5), batch_size=32, drop_last=True),
                   out_dir=tmp_path / "run", hooks=[SaveParameters(tmp_path / "params")],
                   policies=[schedule, Sync(every=2, until_epoch=2), ShareAt(1), StopAfter(3)],
                   metrics={"nodes": NODES})
    history = result.history
    seeds = sum(w["seeds"] for w in history[0]["workers"])
    assert [r["epoch"] for r in history] == [0, 1, 2, 3]  # stopped after epoch 3 of 8
    assert [r["settings"]["lr"] for r in history] == [0.01, 0.02, 0.02, 0.02]
    assert [r["settings"]["batch_size"] for r in history] == [32, 32, 64, 64]
    assert [r["settings"]["sync_every"] for r in history] == [2, 2, 1, 1]
    assert all(r["part_variance"]["relative"] > 0 and r["noise"]["trace_sigma"] > 0 for r in history)
    assert [r["steps"] for r in history] == [seeds // 32, seeds // 32, seeds // 64, seeds // 64]
    # Selected by a custom score, the count of validation nodes, which never improves on the first epoch's.
    assert result.best["epoch"] == 0 and result.best["val_nodes"] == history[-1]["val_nodes"]
    assert [r["epoch"] for r in history if "test_acc" in r] == [0, 3]  # the best's test scores, and the last's
    decisions = [(r["epoch"], d["policy"], d["action"], d["value"], d["refused"] is None)
                 for r in history for d in r.get("decisions", [])]
    share = {"weights": [1.0, 3.0], "split": True}
    assert decisions == [(0, "sync", "set_sync", 2, True), (1, "schedule", "set_lr", 0.02, True),
                         (1, "share-at", "rebalance", share, True),
                         (2, "schedule", "set_batch_size", 64, True), (2, "sync", "set_sync", 1, True),
                         (3, "schedule", "set_batch_size", 1000, False), (3, "stop-after", "stop", None, True)]
    # From epoch 1 the first worker trains the first quarter of each step's seeds (part 0's first
    # piece), the second the rest; every seed is trained once an epoch all the same.
    cut = seeds / 4 / history[0]["workers"][0]["seeds"]  # a quarter of the seeds, in part 0 (worker 0's)
    shares = [[w.get("shares") for w in r["workers"]] for r in history]
    assert shares == [[None, None]] + [[[[0.0, cut]], [[cut, 1.0], [0.0, 1.0]]]] * 3
    assert [[w["parts"] for w in r["workers"]] for r in history[1:]] == [[[0], [0, 1]]] * 3
    assert all(sum(w["seeds"] for w in r["workers"]) == seeds for r in history)
    assert abs(history[1]["workers"][0]["seeds"] - seeds / 4) <= history[1]["steps"] / 2  # half a seed a step
    refused = history[3]["decisions"][0]["refused"]
    assert "larger than the" in refused and "training nodes" in refused
    # The same parameters everywhere: averaged at the end of each local-SGD epoch, then all-reduced gradients.
    first, second = saved_parameters(tmp_path / "params", 0), saved_parameters(tmp_path / "params", 1)
    assert all(torch.equal(first[k], second[k]) for k in first)
    saved = checkpoint.load(result.out_dir, 3, None)  # the last epoch is checkpointed
    monitored = [saved["adapt"].pop(key)["steps"] for key in ("noise_scale", "part_variance")]
    assert monitored[0] == monitored[1] >= sum(r["steps"] for r in history) // 2
    # Every epoch trains every seed (drop_last makes the steps larger, it drops no seed).
    assert saved["adapt"] == {"batch_size": 64, "seeds_trained": 4 * seeds, "weights": [1.0, 3.0], "split": True,
                              "sync_every": 1, "steps_done": sum(r["steps"] for r in history), "lr": 0.02,
                              "warmup": 3,  # a tenth of the 8 epochs' steps the run was started for
                              "policies": [{"name": "schedule", "state": {}},
                                           {"name": "sync", "state": {"switched": True}},
                                           {"name": "share-at", "state": {}},
                                           {"name": "stop-after", "state": {"seen": 4}}],
                              "selection": {"metric": "val_nodes", "mode": "max", "patience": None, "epoch": 0,
                                            "scores": {k: v for k, v in result.best.items()
                                                       if k not in ("epoch", "metric")},
                                            "waited": 3}}
    assert math.isclose(saved["optimizer"]["param_groups"][0]["lr"], 0.02)
    # The split part is evaluated once (by its first piece's worker): every test node counted once.
    assert history[-1]["test_nodes"] == int(sum(read_manifest(str(cora_parts))["parts"][p]["num_test"]
                                                for p in range(2)))

