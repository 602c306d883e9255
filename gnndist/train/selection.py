"""Model selection as the field reports it: the test score at the best validation epoch.

A run validates (by default every epoch) and keeps, beside its latest checkpoint, the model of the epoch whose
chosen validation score (``TrainConfig.select``, default ``val_acc``) is best so far. At that
epoch, and only there, the test split is evaluated too: the run's result is the test score of
the best validation epoch, as OGB's and PyG's examples report it, rather than the last epoch's,
which on a graph whose validation score swings is a draw. With ``patience`` the run stops once
that many validations in a row have not improved on the best.

Every worker holds the same :class:`Selection`: it is fed the all-reduced scores, so the
decisions (a new best, a stop) are the same everywhere without a message of their own.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass
class Selection:
    """The best validation epoch so far, by the score ``metric`` (a key of the validation record,
    e.g. ``val_acc``), larger being better unless ``mode`` is ``"min"``.

    ``scores``: that epoch's validation and test scores; ``waited``: validations since it."""

    metric: str
    mode: str = "max"
    patience: int | None = None
    epoch: int | None = None
    scores: dict[str, float] = field(default_factory=dict)
    waited: int = 0

    def update(self, epoch: int, scores: dict[str, float]) -> bool:
        """Take ``epoch``'s validation ``scores``; whether they are the best so far (a NaN score,
        as from a split with no nodes, never is)."""
        value = scores[self.metric]
        best = self.scores.get(self.metric)
        better = not math.isnan(value) and (best is None or (value > best if self.mode == "max" else value < best))
        if better:
            self.epoch, self.scores, self.waited = epoch, dict(scores), 0
        else:
            self.waited += 1
        return better

    def add_test(self, scores: dict[str, float]) -> None:
        """The test scores of the best epoch, evaluated once it became the best."""
        self.scores.update(scores)

    @property
    def exhausted(self) -> bool:
        """Whether ``patience`` validations in a row have not improved on the best."""
        return self.patience is not None and self.waited >= self.patience

    def stop_reason(self) -> str:
        """Why an exhausted patience stops the run, for its record."""
        since = "any score" if self.epoch is None else f"epoch {self.epoch + 1}'s"
        return f"{self.metric} has not improved on {since} in {self.waited} validations (patience {self.patience})"

    def summary(self) -> dict:
        """What an epoch's record keeps of it: ``{"epoch", "metric", <scores>}``."""
        return {"epoch": self.epoch, "metric": self.metric, **self.scores}

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.scores, self.waited = state["epoch"], dict(state["scores"]), state["waited"]
