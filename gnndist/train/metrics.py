"""Evaluation metrics that combine exactly across batches and parts.

A :class:`Metric` turns one batch's seed logits and labels into a tensor of sums (counts,
confusion-matrix cells, ...). Sums add up over batches and, with one all-reduce, over parts; the
metric's value is computed once from the total. So the value over all parts is exactly the value
one process would compute over all the nodes, which an average of per-part values is not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Metric:
    """``sums(logits [n, C], y [n]) -> float64 tensor`` of one batch (any fixed shape);
    ``value(total) -> float`` from the sums over every batch of every part."""

    sums: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    value: Callable[[torch.Tensor], float]


def _accuracy_sums(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.tensor([(logits.argmax(-1) == y).sum().item(), y.numel()], dtype=torch.float64)


def _ratio(total: torch.Tensor) -> float:
    return float(total[0] / total[1]) if total[1] else float("nan")


ACCURACY = Metric(_accuracy_sums, _ratio)


def macro_f1(num_classes: int) -> Metric:
    """Macro-averaged F1 over the classes present in labels or predictions (from a confusion matrix)."""

    def sums(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cells = y * num_classes + logits.argmax(-1)
        return torch.bincount(cells, minlength=num_classes * num_classes).to(torch.float64)

    def value(total: torch.Tensor) -> float:
        confusion = total.view(num_classes, num_classes)  # rows: true class, columns: predicted
        tp = confusion.diagonal()
        support = confusion.sum(1) + confusion.sum(0)
        present = support > 0
        return float((2 * tp[present] / support[present]).mean()) if present.any() else float("nan")

    return Metric(sums, value)


def with_accuracy(metrics: Mapping[str, Metric] | None) -> dict[str, Metric]:
    """The metrics to evaluate: accuracy (``acc``) always, then the caller's."""
    metrics = dict(metrics or {})
    if "acc" in metrics:
        raise ValueError("the metric name 'acc' is taken by the built-in accuracy; name yours otherwise")
    return {"acc": ACCURACY, **metrics}
