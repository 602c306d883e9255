"""Metrics add up exactly over batches and parts."""

from __future__ import annotations

import pytest
import torch

from gnndist.train.metrics import ACCURACY, macro_f1, with_accuracy


def _f1_by_hand(pred: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    scores = []
    for c in range(num_classes):
        tp = int(((pred == c) & (y == c)).sum())
        fp = int(((pred == c) & (y != c)).sum())
        fn = int(((pred != c) & (y == c)).sum())
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


@pytest.mark.parametrize("metric_name", ["acc", "f1"])
def test_sums_over_pieces_equal_the_whole(metric_name):
    gen = torch.Generator().manual_seed(0)
    logits, y = torch.randn(500, 5, generator=gen), torch.randint(0, 5, (500,), generator=gen)
    metric = ACCURACY if metric_name == "acc" else macro_f1(5)
    pieces = [(logits[a:b], y[a:b]) for a, b in ((0, 7), (7, 300), (300, 300), (300, 500))]
    total = sum(metric.sums(*piece) for piece in pieces)
    pred = logits.argmax(-1)
    expected = (pred == y).double().mean().item() if metric_name == "acc" else _f1_by_hand(pred, y, 5)
    assert metric.value(total) == pytest.approx(expected, abs=1e-12)


def test_accuracy_is_always_evaluated_and_its_name_is_reserved():
    assert list(with_accuracy({"f1": macro_f1(3)})) == ["acc", "f1"]
    with pytest.raises(ValueError, match="'acc' is taken"):
        with_accuracy({"acc": macro_f1(3)})
