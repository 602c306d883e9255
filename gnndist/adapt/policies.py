"""The built-in policies, and how ``--policy NAME[:key=value,...]`` names one."""

from __future__ import annotations

import math

from gnndist.adapt.policy import Context, Policy, PolicyError
from gnndist.train.schedule import assign_shards

SETTINGS = {"batch_size": int, "lr": float}


class EpochSchedule(Policy):
    """Settings changed at given epochs, for users who know what they want: ``at`` maps an epoch
    (0-based) to the settings it starts with, e.g. ``{10: {"lr": 0.005}, 20: {"batch_size": 2048}}``.

    As ``--policy``: ``schedule:lr@10=0.005,batch_size@20=2048``.
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
    reads_noise_scale = True

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
    """Move parts from slow workers to fast ones (``balance``), so that every worker finishes its
    share of a step at about the same time: heterogeneous GPUs, a worker on a busy node, one that
    becomes slow mid-run.

    After each epoch it measures each shard's own rate: its seeds over the time its worker was
    busy (the epoch less what it spent in the all-reduce, which is where a fast worker waits for
    the slow ones), smoothed over epochs with ``decay`` so that one noisy epoch does not move
    parts, while a worker that slows down is followed within a few epochs. It then predicts the
    slowest shard's time with the shards balanced by those rates (contiguous parts, as
    ``--worker-weights`` places them) and rebalances only where that beats the current shards by
    more than ``threshold``: the hysteresis that keeps it from moving parts back and forth.
    Moving parts changes no result (the trajectory depends on the parts only).

    As ``--policy``: ``balance:threshold=0.05,decay=0.5``.
    """

    name = "balance"

    def __init__(self, threshold: float = 0.05, decay: float = 0.5) -> None:
        if not 0 <= threshold < 1 or not 0 <= decay < 1:
            raise PolicyError(f"policy 'balance': threshold and decay must be in [0, 1), got {threshold}, {decay}")
        self.threshold, self.decay = threshold, decay
        self.rates: list[float] | None = None  # each shard's seeds per busy second, smoothed

    @classmethod
    def from_settings(cls, settings: dict[str, str]) -> Balance:
        return cls(**_typed(cls.name, settings, {"threshold": float, "decay": float}))

    def after_epoch(self, ctx: Context) -> None:
        workers = sorted(ctx.workers, key=lambda w: w["parts"][0])  # in shard order
        busy = [w["step_s"] * ctx.metrics["steps"] - w["allreduce_s"] for w in workers]
        if len(workers) < 2 or not all(b > 0 and w["seeds"] > 0 for w, b in zip(workers, busy, strict=True)):
            return  # one worker, or a shard without seeds this epoch: nothing to compare
        rates = [w["seeds"] / b for w, b in zip(workers, busy, strict=True)]
        if self.rates is None or len(self.rates) != len(rates):
            self.rates = rates
        else:
            self.rates = [self.decay * old + (1 - self.decay) * new for old, new in zip(self.rates, rates, strict=True)]
        seeds = ctx.settings.part_seeds

        def slowest(shards) -> float:
            return max(sum(seeds[p] for p in shard) / r for shard, r in zip(shards, self.rates, strict=True))

        now = slowest(ctx.settings.shards)
        balanced = assign_shards(seeds, len(self.rates), self.rates)
        then = slowest(balanced)
        if then < now * (1 - self.threshold):
            ctx.rebalance(self.rates, f"the slowest shard's time goes from {now:.3g} s to {then:.3g} s an epoch",
                          seeds_per_busy_s=[round(r, 1) for r in self.rates])

    def state_dict(self) -> dict:
        return {"rates": self.rates}

    def load_state_dict(self, state: dict) -> None:
        self.rates = state["rates"]


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
            raise PolicyError(f"policy {policy!r}: {key}={value!r} is not a {types[key].__name__}") from None
    return typed


#: The policies ``--policy`` and the job file's ``[adapt]`` section know, by name.
POLICIES: dict[str, type[Policy]] = {p.name: p for p in (EpochSchedule, NoiseScaleBatch, Balance)}


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
