"""The built-in policies, and how ``--policy NAME[:key=value,...]`` names one."""

from __future__ import annotations

from gnndist.adapt.policy import Context, Policy, PolicyError

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
            ctx.set_batch_size(change["batch_size"], reason=f"scheduled for epoch {ctx.epoch}")
        if "lr" in change:
            ctx.set_lr(change["lr"], reason=f"scheduled for epoch {ctx.epoch}")


#: The policies ``--policy`` and the job file's ``[adapt]`` section know, by name.
POLICIES: dict[str, type[Policy]] = {EpochSchedule.name: EpochSchedule}


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
