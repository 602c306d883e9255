"""Progress reporting passed down as a context object (no global progress state).

Long steps (loading, partitioning, writing) call ``reporter.step(description, total)`` and
``advance`` on what it returns. The CLI hands in a :class:`RichReporter`; library users and tests
get :class:`QuietReporter` by default.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class Step(Protocol):
    def advance(self, amount: float = 1) -> None: ...


class Reporter(Protocol):
    def step(self, description: str, total: float | None = None) -> AbstractContextManager[Step]: ...


class _NoStep:
    def advance(self, amount: float = 1) -> None:
        pass


class QuietReporter:
    """Reports nothing."""

    @contextmanager
    def step(self, description: str, total: float | None = None) -> Iterator[Step]:
        yield _NoStep()


class _RichStep:
    def __init__(self, progress: Progress, task_id) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, amount: float = 1) -> None:
        self._progress.advance(self._task_id, amount)


class RichReporter:
    """One rich progress bar per step, left on screen when the step finishes."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    @contextmanager
    def step(self, description: str, total: float | None = None) -> Iterator[Step]:
        columns = [TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=self.console, transient=False) as progress:
            task_id = progress.add_task(description, total=total)
            yield _RichStep(progress, task_id)
            if total is None:  # a step of unknown length is shown complete once it ends
                done = progress.tasks[0].completed or 1
                progress.update(task_id, total=done, completed=done)
