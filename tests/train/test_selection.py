import math

import pytest

from gnndist.config import ConfigError, TrainConfig
from gnndist.train.selection import Selection
from gnndist.train.step import WARMUP_SHARE, WARMUP_STEPS, warmup_factor, warmup_length


def test_the_best_epoch_is_the_highest_score_and_keeps_its_test_scores():
    selection = Selection("val_acc")
    assert selection.update(0, {"val_acc": 0.5})
    selection.add_test({"test_acc": 0.4})
    assert not selection.update(1, {"val_acc": 0.5})  # a tie is no improvement: the earlier epoch stays
    assert selection.update(2, {"val_acc": 0.7})
    selection.add_test({"test_acc": 0.6})
    assert not selection.update(3, {"val_acc": 0.65})
    assert selection.summary() == {"epoch": 2, "metric": "val_acc", "val_acc": 0.7, "test_acc": 0.6}
    assert selection.waited == 1


def test_min_mode_and_nan_scores():
    selection = Selection("val_loss", mode="min")
    assert not selection.update(0, {"val_loss": math.nan})  # no validation nodes: never a best
    assert selection.epoch is None
    assert selection.update(1, {"val_loss": 2.0})
    assert selection.update(2, {"val_loss": 1.5})
    assert not selection.update(3, {"val_loss": 1.6})
    assert selection.epoch == 2


def test_patience_counts_validations_without_improvement():
    selection = Selection("val_acc", patience=2)
    selection.update(0, {"val_acc": 0.5})
    selection.update(1, {"val_acc": 0.4})
    assert not selection.exhausted
    selection.update(2, {"val_acc": 0.5})
    assert selection.exhausted
    assert "epoch 1's in 2 validations (patience 2)" in selection.stop_reason()
    assert not Selection("val_acc").exhausted  # no patience: never


def test_the_state_round_trips():
    selection = Selection("val_acc", patience=3)
    selection.update(4, {"val_acc": 0.8})
    selection.add_test({"test_acc": 0.75})
    selection.update(5, {"val_acc": 0.7})
    again = Selection("val_acc", patience=3)
    again.load_state_dict(selection.state_dict())
    assert again == selection


@pytest.mark.parametrize("changes, message", [({"select": "test_acc"}, "validation score"),
                                              ({"select_mode": "best"}, "max or min"),
                                              ({"patience": 0}, "patience must be positive"),
                                              ({"eval_every": 0}, "eval_every must be positive")])
def test_bad_selection_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)


def test_the_warmup_ramps_the_rate_up_over_its_steps_then_holds_it():
    assert [warmup_factor(step, 4) for step in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0  # none
    assert warmup_length(None, 10_000) == WARMUP_STEPS
    assert warmup_length(None, 200) == int(200 * WARMUP_SHARE)  # a short run is not mostly warm-up
    assert warmup_length(7, 200) == 7 and warmup_length(0, 200) == 0
    with pytest.raises(ConfigError, match="warmup_steps"):
        TrainConfig(warmup_steps=-1)
