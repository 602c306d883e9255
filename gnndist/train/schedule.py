"""What a run trains at each step, and which worker trains which parts. Plain numpy, no Ray.

A partition has K parts and a run W <= K workers; each worker holds a shard (a set of parts) and
at each step trains on one batch of each of its parts. ``batch_size`` is the global batch: the
seeds of one step over all parts. :class:`Schedule` cuts each epoch into the same steps whatever
W is: every part's training seeds are seen once per epoch, each part gives each step a share in
proportion to its seeds, so all parts end the epoch together, and the steps of an epoch depend on
the total number of training seeds and the batch size alone, not on K or W.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gnndist.config import ConfigError


@dataclass(frozen=True)
class Schedule:
    """The seeds each part gives each step of an epoch.

    ``counts``: training seeds of each part. ``steps`` is ``ceil(N / batch_size)`` for ``N`` seeds
    in all (``floor`` with ``drop_last``: no step smaller than the batch, and no seed dropped
    either; the steps are then a little larger instead). Step ``s`` takes the seeds of global
    ranks ``floor(s N / steps)`` to ``floor((s + 1) N / steps)`` of one order that interleaves the
    parts evenly (seed ``j`` of a part with ``n`` seeds at ``(j + 1/2) / n``, ties by part), so
    step sizes differ by at most one, no step is empty, and a part's share of every step is
    ``n / steps`` to within a seed or so per part (the other parts' seeds shift the cuts).
    """

    counts: tuple[int, ...]
    batch_size: int
    drop_last: bool = False
    _bounds: np.ndarray = field(init=False, repr=False, compare=False)
    _sizes: np.ndarray = field(init=False, repr=False, compare=False)
    _weights: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        total = sum(self.counts)
        if total == 0:
            raise ConfigError("the partition has no training nodes: there is nothing to train on")
        steps = total // self.batch_size if self.drop_last else -(-total // self.batch_size)
        if steps == 0:
            raise ConfigError(f"sampler.batch_size {self.batch_size} is larger than the {total} training nodes, "
                              "and drop_last leaves no step: lower the batch size or turn drop_last off")
        bounds = _interleaved_bounds(np.asarray(self.counts, dtype=np.int64), steps)
        sizes = np.diff(bounds, axis=1)
        object.__setattr__(self, "_bounds", bounds)
        object.__setattr__(self, "_sizes", sizes)
        object.__setattr__(self, "_weights", sizes / sizes.sum(axis=0))

    @property
    def steps(self) -> int:
        return self._bounds.shape[1] - 1

    def bounds(self, part: int) -> np.ndarray:
        """int64 [steps + 1]: step ``s`` of ``part`` takes positions ``bounds[s]:bounds[s + 1]``
        of the part's shuffled training seeds."""
        return self._bounds[part]

    def sizes(self) -> np.ndarray:
        """int64 [K, steps]: the seeds each part gives each step."""
        return self._sizes

    def step_seeds(self) -> np.ndarray:
        """int64 [steps]: the seeds of each step over all parts (never 0)."""
        return self._sizes.sum(axis=0)

    def weights(self, part: int) -> np.ndarray:
        """float64 [steps]: the weight of ``part``'s mean batch loss at each step (its seeds over
        the step's), so that the summed gradients of a step are its mean loss's over all seeds."""
        return self._weights[part]


def _interleaved_bounds(counts: np.ndarray, steps: int) -> np.ndarray:
    """Each part's cut points (``[K, steps + 1]``) of the interleaved order of :class:`Schedule`."""
    parts = np.repeat(np.arange(counts.size), counts)
    within = np.arange(parts.size) - np.repeat(np.cumsum(counts) - counts, counts)
    where = (within + 0.5) / np.repeat(counts, counts)
    order = np.lexsort((parts, where))  # by place in (0, 1), then by part
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    cuts = (np.arange(steps + 1) * parts.size) // steps
    starts = np.cumsum(counts) - counts
    # A part's seeds come in its own order within the interleaving (their places increase), so
    # its seeds among the first cuts[s] of the order are a count of ranks below cuts[s].
    return np.stack([np.searchsorted(rank[a:a + n], cuts) for a, n in zip(starts, counts, strict=True)])


def assign_shards(counts: Sequence[int], workers: int, weights: Sequence[float] | None = None) -> list[list[int]]:
    """Parts (by id) of each of ``workers`` shards: contiguous runs in the partitioner's order
    (neighbouring parts share the most edges), none empty, balanced so that each worker's share of
    the training seeds ``counts`` is closest to its share of the capacity ``weights`` (default:
    equal)."""
    k = len(counts)
    if not 1 <= workers <= k:
        raise ConfigError(f"{workers} workers for {k} parts: a run has between 1 and as many workers as parts "
                          "(a worker trains one or more whole parts); lower --workers or partition into more parts")
    weights = np.ones(workers) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != (workers,) or not (weights > 0).all():
        raise ConfigError(f"worker weights {list(weights)} must be {workers} positive numbers, one per worker")
    prefix = np.concatenate([[0], np.cumsum(counts)]).astype(np.float64)
    targets = prefix[-1] * np.cumsum(weights)[:-1] / weights.sum()
    cuts = [0]
    for w, target in enumerate(targets, start=1):
        # Leave at least one part for each shard still to come.
        lo, hi = cuts[-1] + 1, k - (workers - w)
        cuts.append(lo + int(np.argmin(np.abs(prefix[lo:hi + 1] - target))))
    cuts.append(k)
    return [list(range(a, b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
