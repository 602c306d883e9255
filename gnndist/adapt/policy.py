"""Adaptation policies: code that reads what training measures and changes how it trains.

As in KungFu (OSDI'20), a policy is an object with hooks at the boundaries of the run, its epochs
and its steps (``before_train``, ``before_epoch``, ``before_step``, ``after_step``,
``after_epoch``, ``after_train``; each optional). The ``before_*`` hooks of a run's policies are
called in list order and the ``after_*`` ones in reverse, so the first policy wraps the others.
Each hook gets a :class:`Context`: what the run is at (epoch, step, seeds trained, the current
:class:`Settings`), what it measured (the last epoch's global figures and each worker's, the
noise scale, the history of epoch records), and the actions it may ask for:

- ``set_lr(lr)``: from the next step on;
- ``set_batch_size(n)``: the global batch, from the next epoch that starts (an epoch's steps
  are cut from every part at its start, :class:`~gnndist.train.schedule.Schedule`);
- ``rebalance(weights, split=False)``: the workers' relative capacities, one per shard (in
  partition order): from the next epoch that starts, parts move between workers so that each
  shard's share of the training seeds follows its weight (contiguous parts, as at the start).
  The trajectory does not change (it depends on the parts, not on who trains them), only who
  waits for whom. Whole parts balance to within a part at best; with ``split=True`` the parts
  at the shards' boundaries are split too (per-worker shares: a piece of each step's batch of the
  part on either side), so that the shares follow the weights to within a tenth of a part. The
  step's gradient stays the seed-weighted mean over every seed of the step, so training stays
  unbiased, but a split part's batch is sampled in two pieces: the trajectory then depends on
  the shares as well as the parts;
- ``resize(workers)``: the run goes on with that many workers after the epoch under way: it is
  checkpointed, and a new worker group of the new size resumes from it (the trajectory does not
  change). Refused beyond the parts, beyond the cluster's room, and in an elastic run (whose
  worker count Ray Train sets by the cluster's room);
- ``set_sync(every)``: ``1`` is synchronous SGD (the default: the gradients are all-reduced every
  step); ``k > 1`` is local SGD with model averaging (KungFu's SMA): each worker steps on its
  own parts' mean gradient and the workers average their parameters and optimizer states every
  ``k`` steps and at the end of every epoch (so evaluations, checkpoints and a switch back to
  synchronous SGD see one model). From the next step. Local SGD trades the all-reduce of every
  step for a trajectory that depends on the number of workers, which synchronous SGD never does;
- ``stop()``: the epoch under way is the run's last (evaluated and checkpointed as the last).

**Consistency.** The policies run on rank 0 only, from figures every worker agrees on (records
and metrics reduced over all workers); rank 0's decisions are broadcast to every worker at the
same boundary, and every worker applies them there. So the workers never disagree, and a
policy may keep state and be as irregular as it likes (a clock, a random draw): its decisions are
made once. A policy's state (``state_dict``) is saved with each checkpoint, so a run that resumes
or recovers decides as the uninterrupted one would.

Write one by subclassing :class:`Policy`; give it a ``name`` to use it as ``--policy NAME``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

HOOKS = ("before_train", "before_epoch", "before_step", "after_step", "after_epoch", "after_train")
ACTIONS = ("set_batch_size", "set_lr", "rebalance", "resize", "set_sync", "stop")


class PolicyError(ValueError):
    """A policy asked for something that cannot be done; the message names the policy."""


@dataclass(frozen=True)
class Settings:
    """What a run trains with now: the global batch (seeds a step over all parts), the learning
    rate, the number of workers, the steps between model averagings (1: synchronous SGD), the
    parts of each shard (in partition order; shard ``i`` is trained by the same worker
    throughout; a part split between two shards is in both), each part's training seeds, and
    each shard's training seeds an epoch (its pieces' shares of their parts')."""

    batch_size: int
    lr: float
    workers: int
    sync_every: int = 1
    shards: tuple[tuple[int, ...], ...] = ()
    part_seeds: tuple[int, ...] = ()
    shard_seeds: tuple[float, ...] = ()


@dataclass(frozen=True)
class Decision:
    """An action a policy asked for, why, and the figures it used (logged with the epoch);
    ``refused``: why the run could not honour it (then it was not applied)."""

    policy: str
    action: str
    value: Any
    reason: str
    epoch: int
    step: int | None  # None: at an epoch's boundary
    used: dict = field(default_factory=dict)
    refused: str | None = None

    def record(self) -> dict:
        return asdict(self)


class Context:
    """What a policy's hook sees (read only), and where it asks for actions.

    ``epoch`` and ``step``: where the run is (``step`` is ``None`` at an epoch's boundary);
    ``seeds_trained``: training seeds seen since the run began; ``settings``: the current
    :class:`Settings`; ``metrics``: the last epoch's record (loss, validation scores, epoch time,
    phases, and where they are monitored ``noise`` and ``part_variance``, the parts' gradient
    variance of :class:`gnndist.adapt.monitors.PartVariance`; empty before the first epoch
    ends); ``workers``: that record's per-worker figures (seeds/s, step time, waiting,
    sampling, fetching, bytes, parts held); ``noise_scale``: the
    gradient noise scale measured so far (``None`` where it is not monitored or not yet known);
    ``history``: every epoch record so far, oldest first.
    """

    def __init__(self, policy: str, *, epoch: int, step: int | None, seeds_trained: int, settings: Settings,
                 history: tuple[dict, ...], noise_scale: float | None) -> None:
        self.policy = policy
        self.epoch = epoch
        self.step = step
        self.seeds_trained = seeds_trained
        self.settings = settings
        self.history = tuple(MappingProxyType(r) for r in history)
        self.metrics = self.history[-1] if self.history else MappingProxyType({})
        self.workers = tuple(MappingProxyType(w) for w in self.metrics.get("workers", ()))
        self.noise_scale = noise_scale
        self.decisions: list[Decision] = []

    def _ask(self, action: str, value: Any, reason: str, used: dict) -> None:
        self.decisions.append(Decision(self.policy, action, value, reason, self.epoch, self.step, dict(used)))

    def set_batch_size(self, batch_size: int, reason: str, /, **used: Any) -> None:
        """Train with a global batch of ``batch_size`` seeds from the next epoch that starts.
        ``used``: the figures the decision rests on, by name (logged with it)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise PolicyError(f"policy {self.policy!r}: set_batch_size needs a positive whole number, "
                              f"got {batch_size!r}")
        self._ask("set_batch_size", batch_size, reason, used)

    def set_lr(self, lr: float, reason: str, /, **used: Any) -> None:
        """Train with learning rate ``lr`` from the next step."""
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0:
            raise PolicyError(f"policy {self.policy!r}: set_lr needs a positive finite number, got {lr!r}")
        self._ask("set_lr", float(lr), reason, used)

    def rebalance(self, weights: list[float], reason: str, /, *, split: bool = False, **used: Any) -> None:
        """Give shard ``i`` a share of the training seeds in proportion to ``weights[i]`` (one
        positive number per shard) from the next epoch that starts: in whole parts, or with
        ``split`` in per-worker shares that split the parts at the shards' boundaries."""
        weights = list(weights)
        if len(weights) != self.settings.workers or not all(
                isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w) and w > 0 for w in weights):
            raise PolicyError(f"policy {self.policy!r}: rebalance needs one positive weight per shard "
                              f"({self.settings.workers}), got {weights!r}")
        self._ask("rebalance", {"weights": [float(w) for w in weights], "split": bool(split)}, reason, used)

    def resize(self, workers: int, reason: str, /, **used: Any) -> None:
        """Go on with ``workers`` workers after the epoch under way."""
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise PolicyError(f"policy {self.policy!r}: resize needs a positive whole number of workers, "
                              f"got {workers!r}")
        self._ask("resize", workers, reason, used)

    def set_sync(self, every: int, reason: str, /, **used: Any) -> None:
        """Synchronous SGD (``every`` 1) or local SGD averaging the models every ``every`` steps."""
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise PolicyError(f"policy {self.policy!r}: set_sync needs a whole number of steps >= 1, got {every!r}")
        self._ask("set_sync", every, reason, used)

    def stop(self, reason: str, /, **used: Any) -> None:
        """Make the epoch under way the run's last."""
        self._ask("stop", None, reason, used)


class Policy:
    """Base of every policy: override the hooks you need (each gets a :class:`Context`), and
    ``state_dict`` / ``load_state_dict`` if the policy keeps state that later decisions depend
    on (plain numbers, strings, lists and dicts: it goes into the checkpoint)."""

    #: The name ``--policy`` and the job file know it by, and decisions are logged under.
    name = "policy"
    #: Whether it reads the monitored gradient figures, ``Context.noise_scale`` or the records'
    #: ``noise`` and ``part_variance`` (the run then measures them; see ``TrainConfig.monitor_every``).
    reads_monitors = False

    @classmethod
    def from_settings(cls, settings: dict[str, str]) -> Policy:
        """The policy ``--policy NAME:key=value,...`` names (keys and values as written there)."""
        return cls(**settings)

    def before_train(self, ctx: Context) -> None: ...

    def before_epoch(self, ctx: Context) -> None: ...

    def before_step(self, ctx: Context) -> None: ...

    def after_step(self, ctx: Context) -> None: ...

    def after_epoch(self, ctx: Context) -> None: ...

    def after_train(self, ctx: Context) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Take back what :meth:`state_dict` gave."""

    def uses(self, hook: str) -> bool:
        """Whether this policy overrides ``hook`` (a hook no policy uses costs the run nothing)."""
        return getattr(type(self), hook) is not getattr(Policy, hook)


def hook_order(policies: list[Policy], hook: str) -> list[Policy]:
    """The policies whose ``hook`` runs, in the order it runs: list order before, reverse after."""
    if hook not in HOOKS:
        raise ValueError(f"unknown hook {hook!r}: one of {HOOKS}")
    order = policies if hook.startswith("before_") else policies[::-1]
    return [p for p in order if p.uses(hook)]
