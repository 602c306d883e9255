"""Metrics add up exactly over batches and parts, worker placement follows the servers, and every
training seed weighs the same in a data-parallel step."""

from __future__ import annotations

import pytest
import torch

from gnndist.train.loop import assign_parts
from gnndist.train.metrics import ACCURACY, macro_f1, with_accuracy
from gnndist.train.step import loss_weights, step_batch_sizes


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


def test_workers_take_the_part_whose_server_shares_their_node():
    assert assign_parts(["a", "a"], ["a", "a"]) == [0, 1]  # one node: part = rank
    assert assign_parts(["b", "a"], ["a", "b"]) == [1, 0]
    assert assign_parts(["b", "a", "a"], ["a", "a", "c"]) == [2, 0, 1]  # part 2's node has no worker


def test_parts_take_as_many_steps_as_the_most_batches_and_rerun_their_seeds():
    assert step_batch_sizes([130, 100, 0], 64, drop_last=False) == [[64, 64, 2], [64, 36, 64], [0, 0, 0]]
    assert step_batch_sizes([130, 100], 64, drop_last=True) == [[64, 64], [64, 64]]
    assert step_batch_sizes([0, 0], 64, drop_last=False) == [[], []]


def test_weighted_mean_losses_average_to_the_mean_over_every_seed_of_the_step():
    counts, b = [130, 100, 7, 0], 64
    sizes = step_batch_sizes(counts, b, drop_last=False)
    weights = [loss_weights(counts, b, False, rank) for rank in range(len(counts))]
    gen = torch.Generator().manual_seed(0)
    for step in range(len(sizes[0])):
        losses = [torch.rand(sizes[rank][step], generator=gen, dtype=torch.float64) for rank in range(len(counts))]
        # DDP's gradient is the average over workers of each one's (weighted) mean loss's gradient.
        ddp = sum(weights[rank][step] * losses[rank].mean() for rank in range(len(counts)) if losses[rank].numel())
        assert torch.isclose(ddp / len(counts), torch.cat(losses).mean())
