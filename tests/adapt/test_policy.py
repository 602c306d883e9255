"""The policy API without Ray: what a hook sees, the order hooks run in, what an action accepts,
refusals, and how ``--policy`` names a policy."""

from __future__ import annotations

import pytest
import torch

from gnndist.adapt.policies import EpochSchedule, from_spec
from gnndist.adapt.policy import Context, Policy, PolicyError, Settings, hook_order
from gnndist.adapt.runner import Adapter

SETTINGS = Settings(batch_size=32, lr=0.01, workers=2)


class Calls(Policy):
    def __init__(self, name: str, log: list) -> None:
        self.name, self.log = name, log

    def before_epoch(self, ctx: Context) -> None:
        self.log.append(("before", self.name))

    def after_epoch(self, ctx: Context) -> None:
        self.log.append(("after", self.name))
        ctx.set_lr(ctx.settings.lr / 2, reason="halve", loss=ctx.metrics["loss"])


def _adapter(policies, check=lambda d: None) -> Adapter:
    return Adapter(policies, rank=0, world=1, device=torch.device("cpu"), check=check)


def test_before_hooks_run_in_list_order_and_after_hooks_in_reverse():
    log = []
    adapter = _adapter([Calls("a", log), Calls("b", log)])
    adapter.history = [{"epoch": 0, "loss": 1.5, "workers": [{"rank": 0, "seeds_per_s": 10.0}]}]
    assert adapter.run("before_epoch", epoch=1, step=None, seeds_trained=0, settings=SETTINGS, noise_scale=None) == []
    decisions = adapter.run("after_epoch", epoch=1, step=None, seeds_trained=0, settings=SETTINGS, noise_scale=None)
    assert log == [("before", "a"), ("before", "b"), ("after", "b"), ("after", "a")]
    assert [(d.policy, d.action, d.value, d.used) for d in decisions] == [("b", "set_lr", 0.005, {"loss": 1.5}),
                                                                          ("a", "set_lr", 0.005, {"loss": 1.5})]


def test_a_hook_no_policy_has_is_not_run():
    assert hook_order([Calls("a", [])], "before_step") == []
    with pytest.raises(ValueError, match="unknown hook"):
        hook_order([], "before_batch")


def test_the_context_is_read_only_and_shows_the_last_epoch_and_its_workers():
    history = ({"epoch": 0, "loss": 2.0, "workers": [{"rank": 0}, {"rank": 1}]},)
    ctx = Context("p", epoch=1, step=None, seeds_trained=140, settings=SETTINGS, history=history, noise_scale=None)
    assert ctx.metrics["loss"] == 2.0 and [w["rank"] for w in ctx.workers] == [0, 1]
    with pytest.raises(TypeError):
        ctx.metrics["loss"] = 0.0
    with pytest.raises(TypeError):
        ctx.workers[0]["rank"] = 3


@pytest.mark.parametrize("call", [lambda c: c.set_lr(0, "r"), lambda c: c.set_lr(float("nan"), "r"),
                                  lambda c: c.set_lr(True, "r"), lambda c: c.set_batch_size(0, "r"),
                                  lambda c: c.set_batch_size(3.5, "r")])
def test_an_action_out_of_range_is_an_error_naming_the_policy(call):
    ctx = Context("mine", epoch=0, step=None, seeds_trained=0, settings=SETTINGS, history=(), noise_scale=None)
    with pytest.raises(PolicyError, match="policy 'mine'"):
        call(ctx)
    assert ctx.decisions == []


def test_a_decision_the_run_cannot_honour_is_refused_with_its_reason():
    class Big(Policy):
        name = "big"

        def before_epoch(self, ctx):
            ctx.set_batch_size(10**9, reason="more")

    [decision] = _adapter([Big()], check=lambda d: "too large").run(
        "before_epoch", epoch=0, step=None, seeds_trained=0, settings=SETTINGS, noise_scale=None)
    assert decision.refused == "too large" and decision.record()["refused"] == "too large"


def test_the_schedule_policy_from_its_command_line_spec():
    policy = from_spec("schedule:lr@2=0.005,batch_size@4=64, lr@4=0.001")
    assert isinstance(policy, EpochSchedule) and policy.at == {2: {"lr": 0.005}, 4: {"batch_size": 64, "lr": 0.001}}
    ctx = Context("schedule", epoch=4, step=None, seeds_trained=0, settings=SETTINGS, history=(), noise_scale=None)
    policy.before_epoch(ctx)
    assert [(d.action, d.value) for d in ctx.decisions] == [("set_batch_size", 64), ("set_lr", 0.001)]


@pytest.mark.parametrize("spec, message", [("nope", "unknown policy 'nope'"), ("schedule:lr=0.1", "SETTING@EPOCH"),
                                           ("schedule:momentum@1=0.9", "SETTING@EPOCH"),
                                           ("schedule:lr@1=fast", "not a float"), ("schedule:lr@1", "key=value")])
def test_a_bad_policy_spec_says_what_is_wrong(spec, message):
    with pytest.raises(PolicyError, match=message):
        from_spec(spec)


def test_policy_states_go_back_in_order_and_a_different_list_is_refused():
    class Counting(Policy):
        def __init__(self):
            self.seen = 0

        def state_dict(self):
            return {"seen": self.seen}

        def load_state_dict(self, state):
            self.seen = state["seen"]

    first, second = Counting(), Counting()
    first.seen, second.seen = 3, 5
    adapter = _adapter([Counting(), Counting()])
    adapter.load_state_dict(_adapter([first, second]).state_dict())
    assert [p.seen for p in adapter.policies] == [3, 5]
    with pytest.raises(ValueError, match="state of 2 policies, this run has 1"):
        _adapter([Counting()]).load_state_dict([{}, {}])
