"""A part read in this process from its files: the local part store.

Every array is memory-mapped read-only (``load_part``), so the processes of one node that read
a part (its partition server, the worker that trains it, workers that read it beside their own)
share one copy of it in the page cache instead of each holding its own.
"""

from __future__ import annotations

import numpy as np

from gnndist.partition.book import PartitionBook
from gnndist.partition.features import SparseRows
from gnndist.partition.format import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL, PartArrays, load_part
from gnndist.runtime.rows import put_rows, take_rows
from gnndist.sampling import sample_neighbors

SPLITS = {"train": SPLIT_TRAIN, "val": SPLIT_VAL, "test": SPLIT_TEST}


class LocalPart:
    """Part ``part`` of the partition at ``root``, read by global id: its own nodes' neighbour samples, features
    and labels, and the in-edges it stores of its halo nodes within L - 1 hops."""

    def __init__(self, root: str, part: int, arrays: PartArrays, book: PartitionBook) -> None:
        self.root = root
        self.part = part
        self.arrays = arrays
        self.book = book
        self.lo, self.hi = book.part_range(part)
        # Halo nodes whose in-edges this part stores (the first H' of them), sorted for lookups.
        stored = arrays.halo_ids[:arrays.halo_indptr.size - 1]
        self._halo_order = np.argsort(stored, kind="stable")
        self._halo_sorted = stored[self._halo_order]

    @classmethod
    def load(cls, root: str, part: int, manifest: dict, *, verify: bool = False) -> LocalPart:
        return cls(root, part, load_part(root, part, manifest=manifest, verify=verify),
                   PartitionBook(manifest["offsets"]))

    @property
    def feature_dim(self) -> int:
        return self.arrays.features.shape[1]

    @property
    def feature_dtype(self) -> np.dtype:
        """The stored features' dtype (``gnndist.partition.features.stored_dtype``)."""
        return self.arrays.features.dtype

    @property
    def sparse(self) -> bool:
        """Whether the part's features are CSR (its replies are then CSR too: :meth:`take`)."""
        return isinstance(self.arrays.features, SparseRows)

    def owns(self, ids: np.ndarray) -> np.ndarray:
        """bool [n]: which global ``ids`` this part owns."""
        return (ids >= self.lo) & (ids < self.hi)

    def sample(self, ids: np.ndarray, fanout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour samples of global ``ids`` this part owns (contract of ``sample_neighbors``)."""
        return sample_neighbors(self.arrays.indptr, self.arrays.indices, ids - self.lo, fanout, seed)

    def gather(self, ids: np.ndarray, x: np.ndarray, y: np.ndarray, at: np.ndarray) -> None:
        """Features and labels of global ``ids`` this part owns, into rows ``at`` of ``x`` (dense,
        stored dtype) and ``y``."""
        local = ids - self.lo
        put_rows(x, at, self.arrays.features, local)
        y[at] = self.arrays.labels[local]

    def take(self, ids: np.ndarray) -> tuple[np.ndarray | SparseRows, np.ndarray]:
        """Features (in the part's encoding and stored dtype) and labels (int64 [n]) of global
        ``ids`` this part owns: a reply to send."""
        local = ids - self.lo
        return take_rows(self.arrays.features, local), self.arrays.labels[local]

    def stored_halo(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of global ``ids`` (owned elsewhere) are halo nodes whose in-edges this part
        stores (bool [n]), and their rows in the halo's CSC (for the ones that are)."""
        if not self._halo_sorted.size:
            return np.zeros(ids.size, dtype=bool), np.empty(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._halo_sorted, ids), self._halo_sorted.size - 1)
        here = self._halo_sorted[pos] == ids
        return here, self._halo_order[pos[here]]

    def sample_halo(self, rows: np.ndarray, fanout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour samples of the stored halo nodes at ``rows`` (from :meth:`stored_halo`)."""
        return sample_neighbors(self.arrays.halo_indptr, self.arrays.halo_indices, rows, fanout, seed)

    def seeds(self, split: str) -> np.ndarray:
        """Global ids of this part's nodes in ``split`` (train, val or test), ascending."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: choose one of {sorted(SPLITS)}")
        return self.lo + np.flatnonzero(self.arrays.split == SPLITS[split]).astype(np.int64)
