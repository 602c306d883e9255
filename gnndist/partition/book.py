"""Which part owns a global id: a ``searchsorted`` over the P + 1 range offsets."""

from __future__ import annotations

import numpy as np


class PartitionBook:
    """Maps global ids (relabelled, contiguous per part) to owning parts and local ids.

    ``offsets``: int64 [P + 1]; part ``p`` owns global ids ``offsets[p]:offsets[p + 1]``.
    """

    def __init__(self, offsets) -> None:
        self.offsets = np.asarray(offsets, dtype=np.int64)

    @property
    def num_parts(self) -> int:
        return self.offsets.shape[0] - 1

    @property
    def num_nodes(self) -> int:
        return int(self.offsets[-1])

    def owner(self, ids: np.ndarray) -> np.ndarray:
        """int32 [n]: the part owning each global id in ``ids`` (int64 [n])."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_nodes):
            bad = ids[(ids < 0) | (ids >= self.num_nodes)][0]
            raise IndexError(f"global id {bad} is outside 0..{self.num_nodes - 1}")
        return (np.searchsorted(self.offsets, ids, side="right") - 1).astype(np.int32)

    def group(self, ids: np.ndarray) -> dict[int, np.ndarray]:
        """Positions in ``ids`` grouped by owner part, ascending within each (owners with no ids
        left out)."""
        owners = self.owner(ids)
        order = np.argsort(owners, kind="stable")
        bounds = np.searchsorted(owners[order], np.arange(self.num_parts + 1))
        return {q: order[bounds[q]:bounds[q + 1]] for q in range(self.num_parts) if bounds[q + 1] > bounds[q]}

    def to_local(self, ids: np.ndarray, part: int) -> np.ndarray:
        """int64 [n]: ids local to ``part`` of global ids it owns; IndexError for others."""
        ids = np.asarray(ids, dtype=np.int64)
        lo, hi = self.offsets[part], self.offsets[part + 1]
        if ids.size and (ids.min() < lo or ids.max() >= hi):
            bad = ids[(ids < lo) | (ids >= hi)][0]
            raise IndexError(f"global id {bad} is not owned by part {part} (it owns {lo}..{hi - 1})")
        return ids - lo

    def part_range(self, part: int) -> tuple[int, int]:
        """``(first, end)`` global ids owned by ``part``."""
        return int(self.offsets[part]), int(self.offsets[part + 1])
