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
class Piece:
    """What a worker trains of a part: the fraction ``[lo, hi)`` of the part's batch at every step
    (the whole part by default). A part is split between two workers only where per-worker shares
    finer than whole parts balance them (:func:`split_shards`)."""

    part: int
    lo: float = 0.0
    hi: float = 1.0

    @property
    def whole(self) -> bool:
        return self.lo == 0.0 and self.hi == 1.0

    @property
    def key(self) -> tuple[int, ...]:
        """The piece's keys for its random streams after the part's (sampling, dropout): none for
        a piece that starts the part's batch, so that a whole part's streams are those of a run
        that never splits; a later piece's draw apart from the first's."""
        return () if self.lo == 0.0 else (round(self.lo * 2**20),)

    @property
    def evaluates(self) -> bool:
        """Whether this piece's worker evaluates the part (one worker does: the first piece's)."""
        return self.lo == 0.0


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
    _spans: dict = field(init=False, repr=False, compare=False, default_factory=dict)  # by piece, made once

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

    def spans(self, piece: Piece) -> np.ndarray:
        """int64 [steps, 2]: the positions ``start:stop`` of the part's shuffled training seeds
        that ``piece`` takes at each step: its fraction of the part's batch of the step (adjacent
        pieces of one part meet exactly, so every seed of the batch is in one of them)."""
        return self._piece(piece)[0]

    def _piece(self, piece: Piece) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``piece``'s spans, sizes and weights, made once: the loop reads them at every step."""
        if piece not in self._spans:
            bounds = self._bounds[piece.part]
            size = np.diff(bounds)
            # Rounded to the nearest seed (halves up), so a piece is within half a seed a step of its share.
            spans = np.stack([bounds[:-1] + np.floor(piece.lo * size + 0.5).astype(np.int64),
                              bounds[:-1] + np.floor(piece.hi * size + 0.5).astype(np.int64)], axis=1)
            sizes = spans[:, 1] - spans[:, 0]
            self._spans[piece] = (spans, sizes, sizes / self._sizes.sum(axis=0))
        return self._spans[piece]

    def sizes(self) -> np.ndarray:
        """int64 [K, steps]: the seeds each part gives each step."""
        return self._sizes

    def piece_sizes(self, piece: Piece) -> np.ndarray:
        """int64 [steps]: the seeds ``piece`` gives each step."""
        return self._piece(piece)[1]

    def step_seeds(self) -> np.ndarray:
        """int64 [steps]: the seeds of each step over all parts (never 0)."""
        return self._sizes.sum(axis=0)

    def weights(self, piece: Piece) -> np.ndarray:
        """float64 [steps]: the weight of ``piece``'s mean batch loss at each step (its seeds over
        the step's), so that the summed gradients of a step are its mean loss's over all seeds."""
        if piece.whole:
            return self._weights[piece.part]
        return self._piece(piece)[2]


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
                          "(a worker trains one or more whole parts); lower train.workers or partition into more parts")
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


def whole_shards(shards: Sequence[Sequence[int]]) -> list[list[Piece]]:
    """Shards of whole parts as pieces."""
    return [[Piece(p) for p in shard] for shard in shards]


def split_shards(counts: Sequence[int], workers: int, weights: Sequence[float],
                 min_piece: float = 0.1) -> list[list[Piece]]:
    """Pieces of each of ``workers`` shards whose shares of the training seeds ``counts`` follow
    the capacities ``weights`` to within ``min_piece`` of a part: per-worker shares finer than
    whole parts (:func:`assign_shards` at best balances to a part). The shards stay contiguous in
    partition order and a part is split where a shard's boundary falls inside it, unless that
    leaves a piece of less than ``min_piece`` of the part (its batch would be sampled twice for
    too little to gain): the boundary then moves to the part's edge. Parts without training seeds
    stay whole with the shard before the boundary."""
    k = len(counts)
    weights = np.asarray(weights, dtype=np.float64)
    if not 1 <= workers <= k or weights.shape != (workers,) or not (weights > 0).all():
        raise ConfigError(f"per-worker shares need 1 to {k} workers and one positive weight each, "
                          f"got {workers} workers and weights {list(weights)}")
    counts = np.asarray(counts, dtype=np.float64)
    prefix = np.concatenate([[0.0], np.cumsum(counts)])
    targets = prefix[-1] * np.cumsum(weights)[:-1] / weights.sum()
    # Each boundary as a place in part units: part p spans [p, p + 1), its seeds evenly.
    cuts = [0.0]
    for target in targets:
        p = int(np.clip(np.searchsorted(prefix, target, side="right") - 1, 0, k - 1))
        where = p + ((target - prefix[p]) / counts[p] if counts[p] else 0.0)
        frac = where - p
        if frac < min_piece or frac > 1 - min_piece:
            where = float(round(where))
        cuts.append(max(where, cuts[-1]))
    cuts.append(float(k))
    shards = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        pieces = [Piece(p, max(a - p, 0.0), min(b - p, 1.0)) for p in range(int(np.floor(a)), int(np.ceil(b)))
                  if min(b, p + 1) > max(a, p)]
        if not pieces:  # two boundaries in one place: this shard would hold nothing
            raise ConfigError(f"per-worker shares {list(weights)} leave a worker with less than {min_piece} of a part "
                              "to train: give it a larger weight or use fewer workers")
        shards.append(pieces)
    return shards


def shard_seeds(counts: Sequence[int], shard: Sequence[Piece]) -> float:
    """A shard's training seeds an epoch: its pieces' shares of their parts' (to within a seed a step)."""
    return sum(counts[piece.part] * (piece.hi - piece.lo) for piece in shard)
