"""The built-in policies, and how ``--policy NAME[:key=value,...]`` names one."""

from __future__ import annotations

import math

from gnndist.adapt.policy import Context, Policy, PolicyError
from gnndist.config import ConfigError
from gnndist.train.schedule import assign_shards, shard_seeds, split_shards, whole_shards

SETTINGS = {"batch_size": int, "lr": float, "workers": int}


class EpochSchedule(Policy):
    """Settings changed at given epochs, for users who know what they want: ``at`` maps an epoch
    (0-based) to the settings it starts with, e.g. ``{10: {"lr": 0.005}, 20: {"batch_size": 2048}}``.
    A number of ``workers`` takes effect after the epoch before (a resize ends a worker group at
    an epoch's end), so the epoch named is the first with them.

    As ``--policy``: ``schedule:lr@10=0.005,batch_size@20=2048,workers@30=4``.
    """

    name = "schedule"

    def __init__(self, at: dict[int, dict[str, float]]) -> None:
        for epoch, change in at.items():
            if not isinstance(epoch, int) or epoch < 0:
                raise PolicyError(f"policy 'schedule': epochs are whole numbers from 0, got {epoch!r}")
            unknown = sorted(set(change) - set(SETTINGS))
            if unknown:
                raise PolicyError(f"policy 'schedule': cannot schedule {unknown}; it sets {sorted(SETTINGS)}")
        self.at = {epoch: dict(change) for epoch, change in at.items()}

    @classmethod
    def from_settings(cls, settings: dict[str, str]) -> EpochSchedule:
        at: dict[int, dict[str, float]] = {}
        for key, value in settings.items():
            setting, _, epoch = key.partition("@")
            if setting not in SETTINGS or not epoch.isdigit():
                raise PolicyError(f"policy 'schedule': {key!r} is not SETTING@EPOCH (SETTING one of "
                                  f"{sorted(SETTINGS)}), e.g. lr@10=0.005")
            try:
                at.setdefault(int(epoch), {})[setting] = SETTINGS[setting](value)
            except ValueError:
                raise PolicyError(f"policy 'schedule': {key}={value!r} is not a {SETTINGS[setting].__name__}") from None
        return cls(at)

    def after_epoch(self, ctx: Context) -> None:
        workers = self.at.get(ctx.epoch + 1, {}).get("workers")
        if workers is not None and workers != ctx.settings.workers:
            ctx.resize(workers, f"scheduled for epoch {ctx.epoch + 1}")

    def before_epoch(self, ctx: Context) -> None:
        change = self.at.get(ctx.epoch, {})
        if "batch_size" in change:
            ctx.set_batch_size(change["batch_size"], f"scheduled for epoch {ctx.epoch}")
        if "lr" in change:
            ctx.set_lr(change["lr"], f"scheduled for epoch {ctx.epoch}")


class NoiseScaleBatch(Policy):
    """Grow the global batch towards the gradient noise scale (``gns-batch``), as Pollux/AdaptDL
    and KungFu's example do: below the noise scale a larger batch takes proportionally fewer
    steps for the same progress, so it costs no extra seeds and makes each step cheaper per seed.

    At each epoch's start, where the measured noise scale exceeds the batch by ``margin`` (the
    hysteresis: the estimate is noisy), the batch grows to the noise scale, by at most ``growth``
    times at once and to at most ``max_batch``; it never shrinks (the noise scale grows as the
    loss falls). The learning rate follows the square-root rule, ``lr * sqrt(new / old)``: the
    workers' optimizer is Adam, for which the square-root rule is the one that keeps the
    optimisation's dynamics (Malladi et al., NeurIPS 2022, "On the SDEs and scaling rules for
    adaptive gradient algorithms"); AdaScale's gain and the linear rule are derived for SGD.

    As ``--policy``: ``gns-batch:max_batch=8192,growth=2,margin=1.25``.
    """

    name = "gns-batch"
    reads_monitors = True

    def __init__(self, max_batch: int = 65536, growth: float = 2.0, margin: float = 1.25) -> None:
        if max_batch < 1 or not growth > 1 or not margin >= 1:
            raise PolicyError(f"policy 'gns-batch': needs max_batch >= 1, growth > 1 and margin >= 1, got "
                              f"max_batch={max_batch}, growth={growth}, margin={margin}")
        self.max_batch, self.growth, self.margin = max_batch, growth, margin

    @classmethod
    def from_settings(cls, settings: dict[str, str]) -> NoiseScaleBatch:
        return cls(**_typed(cls.name, settings, {"max_batch": int, "growth": float, "margin": float}))

    def before_epoch(self, ctx: Context) -> None:
        noise, batch = ctx.noise_scale, ctx.settings.batch_size
        if noise is None or noise < batch * self.margin or batch >= self.max_batch:
            return
        new = int(min(noise, batch * self.growth, self.max_batch))
        ctx.set_batch_size(new, "the noise scale exceeds the batch", noise_scale=noise, batch_size=batch)
        ctx.set_lr(ctx.settings.lr * math.sqrt(new / batch), "square-root rule (Adam) for the new batch",
                   batch_size=new, lr=ctx.settings.lr)


class Balance(Policy):
    """Move work from slow workers to fast ones (``balance``), so that every worker finishes its
    share of a step at about the same time: heterogeneous GPUs, a worker on a busy node, one that
    becomes slow mid-run.

    After each epoch it measures each shard's own rate: its seeds over the time its worker was
    busy (the epoch less what it spent in the all-reduce, which is where a fast worker waits for
    the slow ones), smoothed over epochs with ``decay`` so that one noisy epoch does not move
    work, while a worker that slows down is followed within a few epochs. It then predicts the
    slowest shard's time with the shards balanced by those rates and rebalances only where that
    beats the current shards by more than ``threshold``: the hysteresis that keeps it from moving
    work back and forth.

    By default it moves whole parts, as ``--worker-weights`` places them: the trajectory then
    stays that of the parts, whoever trains them, and no work is added. Whole parts cannot
    balance a worker at half speed better than 5:3 of 8 parts (0.89 of the ideal), or one slow
    worker of four better than 1 of 8 parts against 7 (0.76). With ``split=true`` the shards get
    per-worker shares that split the parts at their boundaries
    (:func:`~gnndist.train.schedule.split_shards`), which balance to within a tenth of a part, but
    a split part's batch is sampled in two pieces: its neighbours that both pieces' seeds reach
    are sampled, fetched and computed twice (measured in ``scripts/bench_adapt.py``: on 8 parts
    of the 100k and 1M graphs that costs more than the finer balance gains), and the trajectory
    then depends on the shares (not the expected gradient, the seed-weighted mean over every
    seed). Splitting pays where a part's batch neighbourhoods overlap little: large parts with
    small fanouts.

    As ``--policy``: ``balance:threshold=0.03,decay=0.3,split=false``. The defaults: a 2x slowdown
    is 90% followed after two epochs (``1 - decay**2``), and moving a share costs only the
    restart of the moved workers' streams, so a small threshold is cheap.
    """

    name = "balance"

    def __init__(self, threshold: float = 0.03, decay: float = 0.3, split: bool = False) -> None:
        if not 0 <= threshold < 1 or not 0 <= decay < 1:
            raise PolicyError(f"policy 'balance': threshold and decay must be in [0, 1), got {threshold}, {decay}")
        self.threshold, self.decay, self.split = threshold, decay, split
        self.rates: list[float] | None = None  # each shard's seeds per busy second, smoothed

    @classmethod
    def from_settings(cls, settings: dict[str, str]) -> Balance:
        return cls(**_typed(cls.name, settings, {"threshold": float, "decay": float, "split": _boolean}))

    def after_epoch(self, ctx: Context) -> None:
        workers = sorted(ctx.workers, key=lambda w: w["shard"])
        busy = [w["step_s"] * ctx.metrics["steps"] - w["allreduce_s"] for w in workers]
        if len(workers) < 2 or not all(b > 0 and w["seeds"] > 0 for w, b in zip(workers, busy, strict=True)):
            return  # one worker, or a shard without seeds this epoch: nothing to compare
        rates = [w["seeds"] / b for w, b in zip(workers, busy, strict=True)]
        if self.rates is None or len(self.rates) != len(rates):
            self.rates = rates
        else:
            self.rates = [self.decay * old + (1 - self.decay) * new for old, new in zip(self.rates, rates, strict=True)]
        seeds = ctx.settings.part_seeds
        now = max(s / r for s, r in zip(ctx.settings.shard_seeds, self.rates, strict=True))
        try:
            balanced = (split_shards(seeds, len(self.rates), self.rates) if self.split
                        else whole_shards(assign_shards(seeds, len(self.rates), self.rates)))
        except ConfigError:  # a share below a tenth of a part: whole parts instead
            balanced = whole_shards(assign_shards(seeds, len(self.rates), self.rates))
        split = any(not piece.whole for shard in balanced for piece in shard)
        then = max(shard_seeds(seeds, shard) / r for shard, r in zip(balanced, self.rates, strict=True))
        if then < now * (1 - self.threshold):
            ctx.rebalance(self.rates, f"the slowest shard's time goes from {now:.3g} s to {then:.3g} s an epoch",
                          split=split, seeds_per_busy_s=[round(r, 1) for r in self.rates])

    def state_dict(self) -> dict:
        return {"rates": self.rates}

    def load_state_dict(self, state: dict) -> None:
        self.rates = state["rates"]


class Sync(Policy):
    """Start with local SGD, averaging the models every ``every`` steps, and switch to synchronous
    SGD (``sync``), as KungFu's adaptive SGD does: early on, when the gradients are large and
    alike, averaging every few steps makes as much progress for fewer all-reduces; later, the
    all-reduce of every step keeps the accuracy. It switches at the start of epoch
    ``until_epoch``, of the first epoch after one whose training loss fell below
    ``until_loss``, or of the first epoch after one whose parts' gradients spread more than
    ``until_variance`` (their variance over ``|G|^2``, ``part_variance.relative``: once the parts
    pull apart, the models averaged drift), whichever comes first (at least one must be given).
    With ``until_variance`` the run measures the spread every ``monitor_every`` steps, which in
    local SGD costs an all-reduce of the gradients on those steps.

    As ``--policy``: ``sync:every=4,until_epoch=10``, ``sync:every=4,until_loss=0.5`` or
    ``sync:every=4,until_variance=1``.
    """

    name = "sync"

    def __init__(self, every: int = 4, until_epoch: int | None = None, until_loss: float | None = None,
                 until_variance: float | None = None) -> None:
        if every < 2 or (until_epoch is None and until_loss is None and until_variance is None):
            raise PolicyError("policy 'sync': needs every >= 2 and until_epoch, until_loss or until_variance (when "
                              f"to switch to synchronous SGD), got every={every}, until_epoch={until_epoch}, "
                              f"until_loss={until_loss}, until_variance={until_variance}")
        self.every, self.until_epoch, self.until_loss = every, until_epoch, until_loss
        self.until_variance = until_variance
        self.reads_monitors = until_variance is not None
        self.switched = False

    @classmethod
    def from_settings(cls, settings: dict[str, str]) -> Sync:
        return cls(**_typed(cls.name, settings, {"every": int, "until_epoch": int, "until_loss": float,
                                                 "until_variance": float}))

    def before_train(self, ctx: Context) -> None:
        if not self.switched and ctx.settings.sync_every != self.every:
            ctx.set_sync(self.every, f"local SGD, averaging the models every {self.every} steps, to start with")

    def before_epoch(self, ctx: Context) -> None:
        if self.switched:
            return
        loss = ctx.metrics.get("loss")
        spread = ctx.metrics.get("part_variance", {}).get("relative")
        if self.until_epoch is not None and ctx.epoch >= self.until_epoch:
            reason = f"epoch {self.until_epoch} reached"
        elif self.until_loss is not None and loss is not None and loss < self.until_loss:
            reason = f"the training loss fell below {self.until_loss}"
        elif self.until_variance is not None and spread is not None and spread > self.until_variance:
            reason = f"the parts' gradient variance rose above {self.until_variance} of |G|^2"
        else:
            return
        self.switched = True
        ctx.set_sync(1, f"synchronous SGD from here: {reason}", loss=loss, part_variance=spread)

    def state_dict(self) -> dict:
        return {"switched": self.switched}

    def load_state_dict(self, state: dict) -> None:
        self.switched = state["switched"]


class Provision(Policy):
    """Add workers while they pay (``provision``), as KungFu's adaptive provisioning does: after
    each epoch with a new number of workers it compares the run's throughput (training seeds per
    second of epoch) with that before the last addition; while the gain exceeds ``gain`` (10%:
    the last worker added at least that much) it adds one more, up to ``max_workers``; otherwise
    it goes back to the count before the last addition and stays there. It judges an epoch's
    throughput only from the second epoch with a count (the first one after a resize warms up).
    A resize the cluster cannot honour (no room) ends the search where it is.

    As ``--policy``: ``provision:max_workers=4,gain=0.1``.
    """

    name = "provision"

    def __init__(self, max_workers: int, gain: float = 0.1) -> None:
        if max_workers < 1 or not gain >= 0:
            raise PolicyError(f"policy 'provision': needs max_workers >= 1 and gain >= 0, got {max_workers}, {gain}")
        self.max_workers, self.gain = max_workers, gain
        self.before: dict | None = None  # {"workers", "throughput"} before the last addition
        self.done = False

    @classmethod
    def from_settings(cls, settings: dict[str, str]) -> Provision:
        return cls(**_typed(cls.name, settings, {"max_workers": int, "gain": float}))

    def after_epoch(self, ctx: Context) -> None:
        record, workers = ctx.metrics, ctx.settings.workers
        if any(d["policy"] == self.name and d["refused"] for d in record.get("decisions", [])):
            self.done = True  # the cluster had no room for more
        # The first epoch of a count (every epoch of a group that started at it) warms up.
        if self.done or "workers_changed" in record or len(ctx.history) < 2:
            return
        throughput = sum(w["seeds"] for w in record["workers"]) / record["epoch_s"]
        if self.before is None or workers > self.before["workers"]:
            gain = None if self.before is None else throughput / self.before["throughput"] - 1
            if gain is not None and gain <= self.gain:
                self.done = True
                ctx.resize(self.before["workers"], f"the last worker added {gain:.0%}, not over {self.gain:.0%}",
                           throughput=throughput, before=self.before["throughput"])
                return
            if workers >= self.max_workers:
                self.done = True  # as many as allowed, each of them worth it
                return
            self.before = {"workers": workers, "throughput": throughput}
            ctx.resize(workers + 1, "try one more worker" if gain is None else f"the last worker added {gain:.0%}",
                       throughput=throughput)

    def state_dict(self) -> dict:
        return {"before": self.before, "done": self.done}

    def load_state_dict(self, state: dict) -> None:
        self.before, self.done = state["before"], state["done"]


def _typed(policy: str, settings: dict[str, str], types: dict[str, type]) -> dict:
    """``settings`` (as written after ``--policy NAME:``) converted to ``types``, unknown keys refused."""
    unknown = sorted(set(settings) - set(types))
    if unknown:
        raise PolicyError(f"policy {policy!r}: unknown settings {unknown}; it takes {sorted(types)}")
    typed = {}
    for key, value in settings.items():
        try:
            typed[key] = types[key](value)
        except ValueError:
            kind = "true or false" if types[key] is _boolean else f"a {types[key].__name__}"
            raise PolicyError(f"policy {policy!r}: {key}={value!r} is not {kind}") from None
    return typed


def _boolean(value: str) -> bool:
    """``true`` or ``false`` (any case), as a ``--policy`` setting; anything else is refused."""
    if value.lower() not in ("true", "false"):
        raise ValueError(value)
    return value.lower() == "true"


#: The policies ``--policy`` and the job file's ``[adapt]`` section know, by name.
POLICIES: dict[str, type[Policy]] = {p.name: p for p in (EpochSchedule, NoiseScaleBatch, Balance, Sync, Provision)}


def from_spec(spec: str) -> Policy:
    """The policy ``NAME[:key=value,...]`` names (``--policy``, and the job file's ``adapt.policies``)."""
    name, _, rest = spec.partition(":")
    if name not in POLICIES:
        raise PolicyError(f"unknown policy {name!r} in {spec!r}: choose one of {sorted(POLICIES)}, or pass "
                          "your own Policy objects to gnndist.train(..., policies=[...])")
    settings = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise PolicyError(f"policy {name!r}: {item!r} is not key=value (in {spec!r})")
        settings[key.strip()] = value.strip()
    return POLICIES[name].from_settings(settings)
