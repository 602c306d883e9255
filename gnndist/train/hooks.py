"""Hooks: code of the user's (or an adaptation policy's) that every worker runs at step and
epoch boundaries. No Ray here, so hooks can be defined and pickled where Ray is not imported."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gnndist.train.loop import Worker


class Hooks:
    """Called on every worker at the boundaries of steps and epochs; subclass and override what
    you need (the adaptation policies plug in here). ``worker`` is the :class:`Worker`: its
    ``model``, ``optimizer``, ``parts``, ``rank``, ``epoch`` and ``step``. At
    :meth:`after_local_gradient` each parameter's ``.grad`` holds this worker's own gradient (its
    parts' weighted sum), before the all-reduce adds the others'. A hook that changes what the
    workers do must change it alike on every worker."""

    def before_epoch(self, worker: Worker) -> None: ...

    def before_step(self, worker: Worker) -> None: ...

    def after_local_gradient(self, worker: Worker) -> None: ...

    def after_step(self, worker: Worker) -> None: ...

    def after_epoch(self, worker: Worker, record: dict) -> None: ...

    def after_training(self, worker: Worker) -> None: ...
