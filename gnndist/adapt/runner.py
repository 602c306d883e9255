"""Running a run's policies: on rank 0, their decisions broadcast to every worker.

No Ray here: plain ``torch.distributed``, so that the runner works wherever the training step does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
import torch.distributed as dist

from gnndist.adapt.policy import Context, Decision, Policy, Settings, hook_order


class Adapter:
    """The policies of a run (``policies``, in the order given), for the worker of ``rank`` of
    ``world``. ``history``: the epoch records so far (rank 0's; the policies see them).
    ``check(decision)``: why the run cannot honour a decision (``None`` when it can); a refused
    decision is logged with its reason and not applied."""

    def __init__(self, policies: list[Policy], rank: int, world: int, device: torch.device,
                 check: Callable[[Decision], str | None]) -> None:
        self.policies = list(policies)
        self.rank = rank
        self.world = world
        self.device = device
        self.check = check
        self.history: list[dict] = []

    def run(self, hook: str, *, epoch: int, step: int | None, seeds_trained: int, settings: Settings,
            noise_scale: float | None) -> list[Decision]:
        """Call ``hook`` of the policies that have one (on rank 0) and return their decisions, the
        same on every worker; those the run cannot honour carry the reason in ``refused``. A
        hook no policy has costs nothing (no collective)."""
        order = hook_order(self.policies, hook)
        if not order:
            return []
        decisions: list[Decision] = []
        if self.rank == 0:
            for policy in order:
                ctx = Context(policy.name, epoch=epoch, step=step, seeds_trained=seeds_trained, settings=settings,
                              history=tuple(self.history), noise_scale=noise_scale)
                getattr(policy, hook)(ctx)
                decisions += [replace(d, refused=self.check(d)) for d in ctx.decisions]
        if self.world > 1:
            box = [decisions]
            # NCCL moves the pickled objects through the device; gloo through the host.
            dist.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
            decisions = box[0]
        return decisions

    def state_dict(self) -> list[dict]:
        return [{"name": policy.name, "state": policy.state_dict()} for policy in self.policies]

    def load_state_dict(self, states: list[dict]) -> bool:
        """Give each policy its saved state, where the run resumes with the policies it saved (the
        same names in the same order); a run resumed with other policies starts them afresh.
        Whether the states were taken."""
        if [s["name"] for s in states] != [policy.name for policy in self.policies]:
            return False
        for policy, saved in zip(self.policies, states, strict=True):
            policy.load_state_dict(saved["state"])
        return True
