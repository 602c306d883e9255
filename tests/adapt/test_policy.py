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
        ctx.set_lr(ctx.settings.lr / 2, "halve", loss=ctx.metrics["loss"])


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
            ctx.set_batch_size(10**9, "more")

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


def test_policy_states_go_back_in_order_and_other_policies_start_afresh():
    class Counting(Policy):
        def __init__(self):
            self.seen = 0

        def state_dict(self):
            return {"seen": self.seen}

        def load_state_dict(self, state):
            self.seen = state["seen"]

    first, second = Counting(), Counting()
    first.seen, second.seen = 3, 5
    saved = _adapter([first, second]).state_dict()
    adapter = _adapter([Counting(), Counting()])
    assert adapter.load_state_dict(saved) and [p.seen for p in adapter.policies] == [3, 5]
    fewer = _adapter([Counting()])
    assert not fewer.load_state_dict(saved) and fewer.policies[0].seen == 0


@pytest.mark.parametrize("noise, want", [(None, []), (35.0, []),  # unknown; within the hysteresis
                                         (50.0, [50]), (500.0, [64])])  # towards it, at most doubling
def test_gns_batch_grows_the_batch_towards_the_noise_scale_with_the_square_root_rule(noise, want):
    from gnndist.adapt.policies import NoiseScaleBatch

    ctx = Context("gns-batch", epoch=3, step=None, seeds_trained=0, settings=SETTINGS, history=(), noise_scale=noise)
    NoiseScaleBatch().before_epoch(ctx)
    assert [d.value for d in ctx.decisions if d.action == "set_batch_size"] == want
    assert [d.value for d in ctx.decisions if d.action == "set_lr"] == pytest.approx(
        [SETTINGS.lr * (b / SETTINGS.batch_size) ** 0.5 for b in want])


def test_gns_batch_stops_at_its_bound_and_reads_its_settings():
    from gnndist.adapt.policies import NoiseScaleBatch

    policy = from_spec("gns-batch:max_batch=40,growth=4")
    assert isinstance(policy, NoiseScaleBatch) and policy.reads_monitors
    ctx = Context("gns-batch", epoch=0, step=None, seeds_trained=0, settings=SETTINGS, history=(), noise_scale=1e4)
    policy.before_epoch(ctx)
    assert ctx.decisions[0].value == 40
    with pytest.raises(PolicyError, match="unknown settings"):
        from_spec("gns-batch:max=40")
    with pytest.raises(PolicyError, match="growth > 1"):
        from_spec("gns-batch:growth=1")


def _epoch(rates_s: list[tuple[list[int], int, float, float]], steps: int = 10) -> dict:
    """An epoch record: per worker (parts, seeds, busy seconds, all-reduce seconds)."""
    return {"epoch": 0, "steps": steps, "loss": 1.0,
            "workers": [{"rank": r, "shard": r, "parts": parts, "seeds": seeds, "step_s": (busy + waited) / steps,
                         "allreduce_s": waited} for r, (parts, seeds, busy, waited) in enumerate(rates_s)]}


def _balance(policy, record, shards, part_seeds) -> list:
    settings = Settings(batch_size=32, lr=0.01, workers=len(shards), shards=shards, part_seeds=part_seeds,
                        shard_seeds=tuple(sum(part_seeds[p] for p in shard) for shard in shards))
    ctx = Context("balance", epoch=0, step=None, seeds_trained=0, settings=settings, history=(record,),
                  noise_scale=None)
    policy.after_epoch(ctx)
    return ctx.decisions


def test_balance_moves_parts_from_a_worker_at_half_speed():
    from gnndist.adapt.policies import Balance

    # 8 parts of 100 seeds, 4 a worker; worker 1 takes twice as long for its 400 (the other waits).
    record = _epoch([([0, 1, 2, 3], 400, 4.0, 4.0), ([4, 5, 6, 7], 400, 8.0, 0.0)])
    shards, seeds = ((0, 1, 2, 3), (4, 5, 6, 7)), (100,) * 8
    [decision] = _balance(Balance(split=True), record, shards, seeds)
    assert decision.action == "rebalance" and decision.value["split"] is True
    assert decision.value["weights"] == pytest.approx([100.0, 50.0])
    # Per-worker shares: part 5 is split at a third, 5.33 s each against 8 s.
    from gnndist.train.schedule import Piece, assign_shards, shard_seeds, split_shards

    balanced = split_shards(seeds, 2, decision.value["weights"])
    assert balanced == [[*map(Piece, range(5)), Piece(5, 0.0, pytest.approx(1 / 3))],
                        [Piece(5, pytest.approx(1 / 3), 1.0), Piece(6), Piece(7)]]
    assert [shard_seeds(seeds, shard) for shard in balanced] == pytest.approx([1600 / 3, 800 / 3])
    # Whole parts only: the fast worker takes 5 parts, the slow one 3: 5 s and 6 s against 8 s.
    [whole] = _balance(Balance(), record, shards, seeds)
    assert whole.value == {"weights": pytest.approx([100.0, 50.0]), "split": False}
    assert assign_shards(seeds, 2, whole.value["weights"]) == [[0, 1, 2, 3, 4], [5, 6, 7]]
    assert from_spec("balance:split=true").split is True
    with pytest.raises(PolicyError, match="split='no' is not true or false"):
        from_spec("balance:split=no")


def test_balance_gives_one_slow_worker_of_four_less_than_a_part():
    from gnndist.adapt.policies import Balance
    from gnndist.train.schedule import shard_seeds, split_shards

    # 8 parts of 100 seeds, 2 a worker, the last at half speed: whole parts can give it 1 part and
    # the others 7 (3 s for 3 parts at best), shares give it 0.57 of a part's worth less.
    shards, seeds = ((0, 1), (2, 3), (4, 5), (6, 7)), (100,) * 8
    record = _epoch([([0, 1], 200, 2.0, 2.0), ([2, 3], 200, 2.0, 2.0), ([4, 5], 200, 2.0, 2.0),
                     ([6, 7], 200, 4.0, 0.0)])
    [decision] = _balance(Balance(split=True), record, shards, seeds)
    balanced = split_shards(seeds, 4, decision.value["weights"])
    times = [shard_seeds(seeds, shard) / r for shard, r in zip(balanced, decision.value["weights"], strict=True)]
    assert max(times) == pytest.approx(800 / 350, rel=0.01)  # the ideal: every worker busy all the time


def test_balance_leaves_balanced_workers_and_small_gains_alone():
    from gnndist.adapt.policies import Balance

    shards, seeds = ((0, 1, 2, 3), (4, 5, 6, 7)), (100,) * 8
    assert _balance(Balance(), _epoch([([0, 1, 2, 3], 400, 4.0, 0.1), ([4, 5, 6, 7], 400, 4.1, 0.0)]),
                    shards, seeds) == []
    # 4% slower: shares would take 4.08 s against 4.16, a gain under the 3% threshold.
    slower = _epoch([([0, 1, 2, 3], 400, 4.0, 0.16), ([4, 5, 6, 7], 400, 4.16, 0.0)])
    assert _balance(Balance(), slower, shards, seeds) == []
    # 10% slower: 4.19 s against 4.4 s moves a share, but not a whole part (5 s on the fast worker).
    tenth = _epoch([([0, 1, 2, 3], 400, 4.0, 0.4), ([4, 5, 6, 7], 400, 4.4, 0.0)])
    [decision] = _balance(Balance(split=True), tenth, shards, seeds)
    assert decision.value["split"] is True
    assert _balance(Balance(), tenth, shards, seeds) == []


def test_balance_follows_a_worker_that_slows_down_and_keeps_its_state():
    from gnndist.adapt.policies import Balance

    shards, seeds = ((0, 1, 2, 3), (4, 5, 6, 7)), (100,) * 8
    policy = Balance(decay=0.5)
    assert _balance(policy, _epoch([([0, 1, 2, 3], 400, 4.0, 0.0), ([4, 5, 6, 7], 400, 4.0, 0.0)]),
                    shards, seeds) == []
    slow = _epoch([([0, 1, 2, 3], 400, 4.0, 8.0), ([4, 5, 6, 7], 400, 12.0, 0.0)])  # worker 1 at a third
    [decision] = _balance(policy, slow, shards, seeds)
    assert decision.value["weights"] == pytest.approx([100.0, (100 + 100 / 3) / 2])  # halfway there after one epoch
    again = Balance(decay=0.5)
    again.load_state_dict(policy.state_dict())
    assert again.rates == policy.rates


def _context(epoch: int, history: tuple, workers: int = 2, sync_every: int = 1) -> Context:
    settings = Settings(batch_size=32, lr=0.01, workers=workers, sync_every=sync_every)
    return Context("p", epoch=epoch, step=None, seeds_trained=0, settings=settings, history=history,
                   noise_scale=None)


def test_sync_starts_with_local_sgd_and_switches_once():
    from gnndist.adapt.policies import Sync

    policy = Sync(every=4, until_epoch=3, until_loss=0.5)
    ctx = _context(0, ())
    policy.before_train(ctx)
    assert [(d.action, d.value) for d in ctx.decisions] == [("set_sync", 4)]
    for epoch, loss, want in ((1, 0.9, []), (2, 0.4, [1]), (3, 0.3, [])):  # the loss gets there first
        ctx = _context(epoch, ({"epoch": epoch - 1, "loss": loss},), sync_every=4)
        policy.before_epoch(ctx)
        assert [d.value for d in ctx.decisions] == want
    resumed = Sync(every=4, until_epoch=3)
    resumed.load_state_dict(policy.state_dict())
    ctx = _context(5, ())
    resumed.before_train(ctx)  # a resumed run that had switched stays synchronous
    assert ctx.decisions == []
    with pytest.raises(PolicyError, match="until_epoch, until_loss or until_variance"):
        Sync(every=4)
    assert not policy.reads_monitors


def test_sync_switches_once_the_parts_gradients_spread():
    from gnndist.adapt.policies import POLICIES, Sync

    policy = POLICIES["sync"].from_settings({"every": "4", "until_variance": "1.5"})
    assert isinstance(policy, Sync) and policy.reads_monitors  # the run then measures the spread
    decided = []
    for epoch, spread in ((1, None), (2, 0.4), (3, 1.2), (4, 2.5), (5, 3.0)):  # None: not measured yet
        record = {"epoch": epoch - 1, "loss": 1.0} | ({} if spread is None else {"part_variance": {"relative": spread}})
        ctx = _context(epoch, (record,), sync_every=4)
        policy.before_epoch(ctx)
        decided += [(epoch, d.value, d.used["part_variance"]) for d in ctx.decisions]
    assert decided == [(4, 1, 2.5)]  # once, at the epoch after the spread crossed 1.5


def _throughput_epoch(epoch: int, workers: int, seeds_per_s: float, changed: bool = False) -> dict:
    record = {"epoch": epoch, "epoch_s": 10.0, "loss": 1.0,
              "workers": [{"rank": r, "seeds": seeds_per_s * 10.0 / workers} for r in range(workers)]}
    return record | ({"workers_changed": {"from": workers - 1, "to": workers}} if changed else {})


def test_provision_adds_workers_while_they_pay_and_gives_back_the_last_one():
    from gnndist.adapt.policies import Provision

    policy, history, decisions = Provision(max_workers=4, gain=0.1), [], []
    # (workers, throughput, first epoch of that count): 1 -> 2 gains 80%, 2 -> 3 only 5%.
    for epoch, (workers, rate, changed) in enumerate([(1, 100, False), (1, 100, False), (2, 170, True),
                                                      (2, 180, False), (3, 190, True), (3, 189, False),
                                                      (2, 180, True), (2, 180, False)]):
        history.append(_throughput_epoch(epoch, workers, rate, changed))
        ctx = _context(epoch, tuple(history), workers=workers)
        policy.after_epoch(ctx)
        decisions += [(epoch, d.value) for d in ctx.decisions]
    assert decisions == [(1, 2), (3, 3), (5, 2)]
    assert policy.done and Provision(max_workers=4).state_dict() != policy.state_dict()


def test_the_schedule_resizes_at_the_end_of_the_epoch_before_the_one_named():
    policy = from_spec("schedule:workers@3=4")
    decisions = []
    for epoch in range(4):
        ctx = _context(epoch, (), workers=2)
        policy.after_epoch(ctx)
        decisions += [(epoch, d.action, d.value) for d in ctx.decisions]
    assert decisions == [(2, "resize", 4)]
