"""The lines a run prints (``train/report.py``): an epoch's, with its slowest and fastest workers
and their shares, and a policy's decision."""

from __future__ import annotations

from gnndist.train.loop import PHASES
from gnndist.train.report import decision_line, epoch_line


def _worker(rank: int, parts: list[int], rate: float, shares=None) -> dict:
    worker = {"rank": rank, "parts": parts, "seeds_per_s": rate}
    return worker if shares is None else {**worker, "shares": shares}


def test_an_epoch_line_names_the_slowest_and_fastest_workers_and_split_parts():
    record = {"epoch": 2, "loss": 0.5, "val_acc": 0.8, "epoch_s": 3.0, "phases": dict.fromkeys(PHASES, 0.5),
              "workers": [_worker(0, [0, 1, 2, 3, 4], 2000.0, [[0.0, 1.0]] * 4 + [[0.0, 0.67]]),
                          _worker(1, [4, 5, 6, 7], 1000.0, [[0.67, 1.0]] + [[0.0, 1.0]] * 3)]}
    line = epoch_line(record, 10)
    assert line.startswith("epoch 3/10: loss 0.5000, val_acc 0.8000 | 3.00 s")
    assert "slowest rank 1 (parts 4-7: 0.67-1 of 4) 1000 seeds/s" in line
    assert "fastest rank 0 (parts 0-4: 0-0.67 of 4) 2000 seeds/s" in line
    whole = {**record, "workers": [_worker(0, [0], 5.0), _worker(1, [1, 2], 4.0)]}
    assert "slowest rank 1 (parts 1-2) 4 seeds/s, fastest rank 0 (part 0) 5 seeds/s" in epoch_line(whole, 10)


def test_a_decision_line_gives_the_value_the_reason_and_the_figures_used():
    decision = {"policy": "balance", "action": "rebalance", "value": {"weights": [2.0, 1.0], "split": True},
                "reason": "faster", "epoch": 3, "step": None, "used": {"rate": 1.23456}, "refused": None}
    assert decision_line(decision) == ("policy balance: rebalance {'weights': [2.0, 1.0], 'split': True} at epoch 4 "
                                       "(faster; rate 1.235)")
    refused = {**decision, "action": "resize", "value": 5, "step": 7, "used": {}, "refused": "no room"}
    assert decision_line(refused) == "policy balance: resize 5 at epoch 4 step 7 (faster) REFUSED: no room"
