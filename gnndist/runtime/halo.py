"""The nodes a part's remote-feature cache is chosen from: its sampling halo, hottest first.

Finding them costs a breadth-first search over the part's L-hop neighbourhood and, with the
``access`` policy, sampling warm-up batches: both through the other parts' servers. The result
depends on the partition, the training seeds and the sampler's settings only, so a run computes
it once per part and keeps it in its run directory, where every later start of the run (after a
failure, a resize or a resume) reads it back.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from gnndist import streams
from gnndist.config import SamplerConfig
from gnndist.partition.format import partition_sha
from gnndist.runtime.store import LocalPart
from gnndist.sampling import sample_khop
from gnndist.sampling.cache import AccessCounter, hottest_halo_nodes, sampling_halo
from gnndist.sampling.neighbor import NeighborProvider

#: The run directory's folder of each part's ranked halo.
HALO_DIR = "halo"


def ranked_halo(store: LocalPart, provider: NeighborProvider, config: SamplerConfig,
                run_dir: Path | None = None) -> np.ndarray:
    """Every node outside the part that sampling its training seeds with ``config.fanouts`` can
    put in a batch (global ids, int64), hottest first: by draws in warm-up batches (policy
    "access"), then by in-edges into the part, then the rest by id. ``provider`` samples any
    node (a :class:`~gnndist.runtime.loader.PartView` of the part). Read from, or else written to,
    ``run_dir`` when given."""
    path = None if run_dir is None else (Path(run_dir) / HALO_DIR /
                                         f"part-{store.part:05d}-{_settings_key(store, config)}.npy")
    if path is not None and (known := _read(path, store)) is not None:
        return known
    halo = sampling_halo(store.seeds("train"), config.fanouts, provider, store.book.num_nodes, store.lo, store.hi)
    ranked = [hottest_halo_nodes(store.arrays, store.lo, store.hi), halo]
    if config.cache_policy == "access":
        # Most nodes a batch fetches lie 2 or more hops out, beyond the 1-hop halo that the
        # degree ranking sees, so count which remote nodes sampled batches really draw. Kernel
        # seeds 0, 1, ... are not the loader's (random 62-bit ones): the warm-up batches are
        # fresh samples, never the batches the cache then serves.
        counter = AccessCounter(store.lo, store.hi)
        for i, seeds in enumerate(warmup_batches(store, config)):
            counter.add(sample_khop(seeds, config.fanouts, provider, seed=i))
        ranked.insert(0, counter.ranked())
    order = np.concatenate(ranked)
    _, first = np.unique(order, return_index=True)
    order = order[np.sort(first)]  # each node where it first appears
    order = order[np.isin(order, halo)]
    if path is not None:
        _write(path, order)
    return order


def warmup_batches(store: LocalPart, config: SamplerConfig) -> list[np.ndarray]:
    """Batches of the part's training seeds (global ids) for ``config.cache_warmup_epochs``
    passes over them, each pass a fresh shuffle; at least one batch."""
    seeds, b = store.seeds("train"), config.batch_size
    count = max(1, math.ceil(config.cache_warmup_epochs * math.ceil(seeds.size / b)))
    rng = streams.rng(config.seed, streams.WARMUP, store.part)
    batches = []
    while seeds.size and len(batches) < count:
        order = rng.permutation(seeds)
        batches += [order[i:i + b] for i in range(0, order.size, b)]
    return batches[:count]


def _settings_key(store: LocalPart, config: SamplerConfig) -> str:
    """A name for the partition and the settings the ranking depends on: another partition or
    setting, another file."""
    settings = {"partition": partition_sha(store.root), "fanouts": list(config.fanouts),
                "policy": config.cache_policy, "seed": config.seed,
                "warmup_epochs": config.cache_warmup_epochs, "batch_size": config.batch_size}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _read(path: Path, store: LocalPart) -> np.ndarray | None:
    """The ranking kept at ``path``, or ``None`` when there is none (or it is not one: it is made again)."""
    try:
        order = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    ok = (order.dtype == np.int64 and order.ndim == 1 and np.unique(order).size == order.size
          and (order.size == 0 or 0 <= order.min() <= order.max() < store.book.num_nodes)
          and not store.owns(order).any())
    return order if ok else None


def _write(path: Path, order: np.ndarray) -> None:
    """Write ``order`` to ``path`` whole or not at all (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, order, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
