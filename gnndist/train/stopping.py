"""Stopping a run: Ctrl-C and SIGTERM (the first one stops it cleanly, a second one at once), a
worker's error, and how to go on from the last checkpoint. No Ray here: the CLI imports it early."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gnndist.train import checkpoint

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunError(RuntimeError):
    """A worker stopped the run with an error meant for the user (``trainer.USER_ERRORS``): the
    message names the part (and the partition server's actor) and says how to continue."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived. A ``KeyboardInterrupt``, so code written for Ctrl-C handles both."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by this signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


@contextmanager
def interruptible() -> Iterator[None]:
    """Within this block the first SIGINT or SIGTERM raises :class:`Interrupted` in the main
    thread, so the code around it can stop its workers; a second one ends the process at once
    (exit code 128 + signal), for when that cleanup hangs. Previous handlers come back after.

    Python's default SIGTERM kills the process without running any cleanup, and Ray's driver
    replaces it with ``sys.exit``; both would leave Ray Train's workers running. Outside the main
    thread (where no handler can be installed) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []

    def handler(signum: int, frame) -> None:
        if received:
            os._exit(128 + signum)
        received.append(signum)
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def resume_hint(out: Path, command: str | None = None) -> str:
    """How to continue the run in ``out`` from its latest complete checkpoint: with ``command``,
    the command line to give (default: ``gnndist train ... --resume --out OUT``, or in Python
    ``train(..., resume=True)``)."""
    how = (f"`{command}`" if command
           else f"`gnndist train ... --resume --out {out}` (in Python: train(..., resume=True))")
    epoch = checkpoint.latest_epoch(Path(out))
    if epoch is None:
        return f"No checkpoint was complete yet: {how} starts the run again."
    return f"The checkpoint of epoch {epoch + 1} is complete: continue from it with {how}."
