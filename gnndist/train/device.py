"""Batches onto the training device: pinned off the training thread, copied one step ahead.

A worker's steps come as lists of :class:`~gnndist.sampling.batch.MiniBatch` (one per part of its
shard, ``None`` for a part without seeds in the step), built on CPU. On a GPU, :func:`pinned`
copies each batch into page-locked memory, and :func:`staged` issues the next step's copies
(non-blocking, on a stream of their own) before handing out the current step, so the copy
overlaps the current step's forward and backward. On CPU the batches are already where they are
used: both hand the steps on untouched, and :func:`staged` still runs one step ahead, so that the
structure the GPU path relies on runs, and is tested, on CPU too.

No Ray here, so ``scripts/gpu_check.py`` runs the same path on a GPU machine without Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import torch

from gnndist.sampling.batch import MiniBatch

Step = Sequence[MiniBatch | None]  # one step's batch of each part of a shard


def pinned(steps: Iterable[Step], device: torch.device) -> Iterable[Step]:
    """``steps`` with every batch pinned when ``device`` is a GPU; ``steps`` itself otherwise.

    Lazy: a batch is pinned when its step is drawn. Wrap the stream that the prefetch thread draws
    (:func:`gnndist.runtime.loader.prefetched`) so that pinning, a copy of every tensor, runs there
    rather than on the training thread, as torch's ``DataLoader`` pins in a thread of its own.
    """
    if device.type != "cuda":
        return steps
    return ([None if b is None else b.pin() for b in batches] for batches in steps)


def staged(steps: Iterable[Step], device: torch.device) -> Iterator[Step]:
    """``steps``, each on ``device``, drawn and (on a GPU) copied one step ahead of the one handed out.

    Step k is handed out once step k + 1 has been drawn from ``steps`` and its copies issued, so
    they run while step k trains; the last step is handed out when ``steps`` ends. A GPU's
    batches should come pinned (:func:`pinned`): a copy from pageable memory is still right, but
    the host waits for it. On CPU the steps' lists and batches are handed out as they came.

    Raises:
        ValueError: ``device`` is neither a CPU nor a CUDA device.
    """
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"batches are staged to a CPU or a CUDA device, not {device}")
    issue, ready = _gpu_copies(device) if device.type == "cuda" else (_as_is, _as_is)
    return _one_ahead(steps, issue, ready)


def _one_ahead(steps: Iterable[Step], issue: Callable, ready: Callable) -> Iterator[Step]:
    ahead = []  # at most one step, issued
    try:
        for batches in steps:
            ahead.append(issue(batches))
            if len(ahead) == 2:
                yield ready(ahead.pop(0))
        yield from map(ready, ahead)
    finally:  # closed early (a new batch size restarts the stream): so is the stream it draws
        if hasattr(steps, "close"):
            steps.close()


def _as_is(batches: Step) -> Step:
    return batches


def _gpu_copies(device: torch.device) -> tuple[Callable, Callable]:
    """``issue``: a step's copies queued on a side stream, with an event recorded after them;
    ``ready``: the step's batches, once the current stream has been made to wait for that event."""
    side = torch.cuda.Stream(device)

    def issue(batches: Step) -> tuple[Step, torch.cuda.Event]:
        # The copies' memory is allocated on ``side``; the pinned sources stay unreused until the
        # copies are done (torch's pinned-memory allocator records an event for each copy).
        with torch.cuda.stream(side):
            moved = [None if b is None else b.to(device, non_blocking=True) for b in batches]
        return moved, side.record_event()

    def ready(issued: tuple[Step, torch.cuda.Event]) -> Step:
        moved, copied = issued
        current = torch.cuda.current_stream(device)
        current.wait_event(copied)  # on the device: the host does not wait
        for b in moved:
            if b is not None:
                # Used on ``current``, allocated on ``side``: without this, the allocator could
                # hand their memory to the next copies on ``side`` while ``current`` still reads it.
                for t in (b.x, b.y, b.edge_index, b.n_id):
                    t.record_stream(current)
        return moved

    return issue, ready
