"""`gnndist train` and `gnndist evaluate` end to end on the bundled Cora."""

from __future__ import annotations

import json

from gnndist.cli import main
from gnndist.config import TrainConfig


def test_train_shows_phases_plots_and_evaluate_reproduces_the_scores(tmp_path, capsys, ray_session):
    run, png = tmp_path / "run", tmp_path / "curves.png"
    assert main(["train", "--epochs", "3", "--eval-every", "1", "--fanouts", "5,5", "--batch-size", "32",
                 "--hidden", "16", "--cache-fraction", "0.2", "--cache-lookahead", "--out", str(run),
                 "--plot", str(png), "--policy", "schedule:lr@1=0.005", "--monitor-every", "2"]) == 0
    out = capsys.readouterr().out
    sampler = json.loads((run / "run.json").read_text())["sampler"]
    assert sampler["cache_fraction"] == 0.2 and sampler["cache_lookahead"] is True
    assert "epoch 3/3: loss" in out and "all-reduce" in out and "waiting for batches" in out
    assert "slowest rank" in out and "fastest rank" in out and "seeds/s" in out  # per-worker figures
    assert "policy schedule: set_lr 0.005 at epoch 2 (scheduled for epoch 1)" in out  # a decision, on screen
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    best = last["best"]
    assert last["noise"]["trace_sigma"] > 0 and last["part_variance"]["relative"] > 0  # measured, and plotted
    assert (f"test accuracy {best['test_acc']:.4f} at the best validation epoch, {best['epoch'] + 1} "
            f"(val_acc {best['val_acc']:.4f}); last epoch's {last['test_acc']:.4f}") in out

    # A run directory's latest checkpoint is evaluated in test_train_ddp; here one named by path.
    assert main(["evaluate", str(run / "checkpoints" / "epoch-00002"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores == {"epoch": 2, "val_acc": last["val_acc"], "test_acc": last["test_acc"]}


def test_evaluate_refuses_what_is_not_a_checkpoint(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "neither a training run directory" in capsys.readouterr().err


def test_more_workers_than_cpus_is_an_error_not_a_hang(tmp_path, capsys, ray_session):
    assert main(["train", "--parts", "4", "--workers", "4", "--epochs", "1", "--out", str(tmp_path / "run"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "4 workers x 1 CPUs need 4 CPUs but the Ray cluster has 2" in err
    assert "--cpus-per-worker 0.5" in err  # on the command line, the flag to change


def test_by_default_there_are_as_many_workers_as_parts_that_fit(ray_session):
    from gnndist.train.trainer import _workers

    assert _workers(4, TrainConfig()) == 2  # the session's 2 CPUs, 1 each
    assert _workers(4, TrainConfig(cpus_per_worker=0.5)) == 4
    assert _workers(3, TrainConfig(cpus_per_worker=0.5)) == 3  # never more than the parts
    assert _workers(4, TrainConfig(workers=1)) == 1


def test_gpu_workers_on_a_cluster_without_gpus_is_an_error_not_a_hang(tmp_path, capsys, ray_session):
    assert main(["train", "--gpus-per-worker", "1", "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "1 worker x 1 GPUs need 1 GPUs but the Ray cluster has 0" in err
    assert "train on CPU (--gpus-per-worker 0)" in err
