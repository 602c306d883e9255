"""A trainer's view of the partitioned graph: neighbour sampling across parts, halo exchange,
the remote-feature cache, and the prefetching mini-batch iterator.

A :class:`PartView` of part ``p`` reads its own part from its files (:class:`~gnndist.runtime.
store.LocalPart`) and samples there the nodes whose in-edges it stores (inner nodes, and halo
nodes within L-1 hops). Everything else goes to the owning part through its transport
(:mod:`gnndist.runtime.transport`, chosen once per part when the view opens): one request per
owner per hop for sampling, and one per owner for the features of the batch (the halo exchange),
all owners in parallel, every wait within a timeout. The hottest remote rows are kept in a cache.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray
import torch

from gnndist import streams
from gnndist.config import SamplerConfig
from gnndist.partition.book import PartitionBook
from gnndist.partition.csc import merge_segments
from gnndist.partition.features import as_float32
from gnndist.partition.format import read_manifest
from gnndist.runtime.halo import ranked_halo
from gnndist.runtime.partition_server import ServerGroup
from gnndist.runtime.rows import copy_rows
from gnndist.runtime.shm import shm_available
from gnndist.runtime.store import LocalPart
from gnndist.runtime.transport import Exchange, Rows, choose
from gnndist.sampling import sample_khop
from gnndist.sampling.batch import MiniBatch
from gnndist.sampling.cache import FeatureCache, LookaheadCache, cache_capacity
from gnndist.sampling.neighbor import SampledSubgraph


@dataclass
class _Traffic:
    requests: int = 0
    ids: int = 0
    bytes: int = 0
    # Ids of other parts sampled or fetched in this process, from their files (a part the worker
    # holds, or same_node_reads), and the bytes of the feature rows and labels read there.
    same_node_ids: int = 0
    same_node_bytes: int = 0


class PartView:
    """Part ``store.part`` held locally, plus access to every other part through ``exchange``.

    Implements the ``NeighborProvider`` protocol (:meth:`sample`) over global ids and fetches
    features and labels of any global ids (:meth:`fetch`).

    One loader at a time reads through a view (its prefetch thread): the traffic counters, the
    cache and a lookahead cache's choices are that loader's. A loader on another thread, such as
    evaluation's while training prefetches, reads through a :meth:`sibling`.
    """

    def __init__(self, store: LocalPart, exchange: Exchange) -> None:
        self.store = store
        self.exchange = exchange
        self.cache = FeatureCache.empty(store.feature_dim, store.feature_dtype)
        self.traffic = _Traffic()
        self.cache_fill_bytes = 0
        self.cache_halo_nodes = 0  # the size cache_fraction refers to (see SamplerConfig)

    @property
    def part(self) -> int:
        return self.store.part

    @property
    def book(self) -> PartitionBook:
        return self.store.book

    @classmethod
    def open(cls, root: str, part: int, servers: ServerGroup, config: SamplerConfig, *,
             verify: bool = False, held: dict[int, LocalPart] | None = None,
             run_dir: str | Path | None = None) -> PartView:
        """Load ``part`` of the partition at ``root``, choose the transport to every other part
        and fill the remote-feature cache (as ``config`` says).

        ``held``: the parts this process holds already (a worker's shard), by id: read straight
        from their arrays, never through their servers, and left out of the cache. ``run_dir``:
        the run directory where the cache's candidates are kept once computed
        (:func:`~gnndist.runtime.halo.ranked_halo`)."""
        manifest = read_manifest(root)
        held = dict(held or {})
        store = held.pop(part, None) or LocalPart.load(root, part, manifest, verify=verify)
        here = ray.get_runtime_context().get_node_id()
        beside = [q for q, node in enumerate(servers.nodes) if q != part and q not in held and node == here]
        if config.same_node_reads:
            held |= {q: LocalPart.load(root, q, manifest, verify=verify) for q in beside}
        transports = {q: choose(q, servers, here, held, shm=shm_available(), dense_rows=not store.sparse)
                      for q in range(servers.num_parts) if q != part}
        view = cls(store, Exchange(part, servers, transports, config.timeout_s))
        if config.cache_mb is None and config.cache_fraction is None:
            return view
        ranked = ranked_halo(store, view, config, run_dir)
        # Rows read from this process's files gain nothing from a copy in the cache.
        ranked = ranked[~np.isin(store.book.owner(ranked), list(held))]
        row_bytes = store.feature_dim * store.feature_dtype.itemsize + 8  # a dense stored row and an int64 label
        size = cache_capacity(ranked.size, row_bytes, cache_mb=config.cache_mb, cache_fraction=config.cache_fraction)
        if size:
            view.cache = FeatureCache.build(ranked[:size], view._fetch_others_rows)
            if config.cache_lookahead:
                rows = view.cache.rows
                view.cache = LookaheadCache(rows.ids, rows.x, rows.y, size, ranked)
        view.cache_halo_nodes = int(ranked.size)
        # Choosing and filling the cache is a one-off cost, reported apart from per-epoch traffic.
        view.cache_fill_bytes, view.traffic = view.traffic.bytes, _Traffic()
        return view

    def sibling(self) -> PartView:
        """A view of the same part for a loader on another thread, safe beside this view's loader.

        It shares what neither changes: the part's arrays and the exchange (the transports,
        each reply buffer behind its lock for a whole call: a buffer of its own per sibling
        would add a file and a mapping the server keeps for as long as it lives, per evaluation,
        and the server answers one call at a time anyway, so the lock costs no waiting it would
        not have). It has traffic counters of its own, and a cache of this one's rows as they are
        now that never changes and counts its own hits (:meth:`FeatureCache.snapshot`): so it
        never moves this view's lookahead cache or its counters.
        """
        view = PartView(self.store, self.exchange)
        view.cache = self.cache.snapshot()
        return view

    def _call(self, held: ExitStack, method: str, requests: dict[int, tuple]) -> dict:
        """``exchange.call``, its requests to servers counted."""
        replies = self.exchange.call(held, method, requests)
        self.traffic.requests += sum(self.exchange.transports[q].remote for q in requests)
        return replies

    def _count(self, q: int, ids: int, nbytes: int, rows: bool) -> None:
        """Count ``ids`` and ``nbytes`` read from part ``q``; ``rows``: feature rows and labels,
        which count in ``same_node_bytes`` when read from its files (samples do not)."""
        if self.exchange.transports[q].remote:
            self.traffic.ids += ids
            self.traffic.bytes += nbytes
        else:
            self.traffic.same_node_ids += ids
            self.traffic.same_node_bytes += nbytes if rows else 0

    # ----------------------------------------------------------------------------- sampling

    def sample(self, ids: np.ndarray, fanout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``NeighborProvider``: sampled in-neighbours of global ``ids`` wherever they live."""
        groups, others = [], {}
        for q, rows in self.book.group(ids).items():
            if q == self.part:
                groups.append((rows, *self.store.sample(ids[rows], fanout, seed)))
                continue
            here, halo_rows = self.store.stored_halo(ids[rows])
            if here.any():
                groups.append((rows[here], *self.store.sample_halo(halo_rows, fanout, seed)))
            if not here.all():
                others[q] = rows[~here]
        with ExitStack() as held:  # replies may be views of reply buffers: merged before they are released
            replies = self._call(held, "sample", {q: (ids[rows], fanout, seed) for q, rows in others.items()})
            for q, (counts, nbrs) in replies.items():
                groups.append((others[q], counts, nbrs))
                self._count(q, int(others[q].size), int(counts.nbytes + nbrs.nbytes), rows=False)
            return merge_segments(ids.size, groups)

    # ----------------------------------------------------------------------------- halo exchange

    def _fetch_others(self, ids: np.ndarray, x: np.ndarray, y: np.ndarray, at: np.ndarray) -> None:
        """Features and labels of ``ids`` (global, none owned here) from their owners, written to
        rows ``at`` of ``x`` and ``y``."""
        groups = self.book.group(ids)
        into = {q: Rows(x, y, at[rows]) for q, rows in groups.items()}
        with ExitStack() as held:
            self._call(held, "fetch", {q: (ids[rows], into[q]) for q, rows in groups.items()})
        for q, rows in groups.items():
            self._count(q, int(rows.size), into[q].nbytes, rows=True)

    def _fetch_others_rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of ``ids`` (global, none owned here), fetched from their owners."""
        x = np.empty((ids.size, self.store.feature_dim), dtype=self.store.feature_dtype)
        y = np.empty(ids.size, dtype=np.int64)
        self._fetch_others(ids, x, y, np.arange(ids.size))
        return x, y

    def fetch(self, ids: np.ndarray, upcoming: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, np.ndarray]:
        """``(x [n, F], y int64 [n])`` of global ``ids``, ``x`` dense in the partition's stored
        dtype (``MiniBatch`` makes it float32): own rows from disk, cached rows from the cache,
        the rest from their owners in one batched request per owner. Each row is copied (or
        densified from CSR) once, straight to its place in ``x``. A :class:`LookaheadCache` then
        chooses what to keep, knowing the global ids of the batches sampled after this one
        (``upcoming``)."""
        x = np.empty((ids.size, self.store.feature_dim), dtype=self.store.feature_dtype)
        y = np.empty(ids.size, dtype=np.int64)
        is_own = self.store.owns(ids)
        own = np.flatnonzero(is_own)
        self.store.gather(ids[own], x, y, own)
        remote = np.flatnonzero(~is_own)
        # Rows are read from the state the ids were looked up in, whatever the cache holds now.
        cached, hit, rows = self.cache.lookup(ids[remote])
        copy_rows(x, remote[hit], cached.x, rows)
        y[remote[hit]] = cached.y[rows]
        missing = remote[~hit]
        if missing.size:
            self._fetch_others(ids[missing], x, y, missing)
            self.cache.retain(ids[missing], x[missing], y[missing], upcoming)
        return x, y

    def seeds(self, split: str) -> np.ndarray:
        """Global ids of this part's nodes in ``split`` (train, val or test), ascending."""
        return self.store.seeds(split)


#: Ends a prefetched stream (a stream may yield ``None``: a step with no seeds of a part).
_END = object()


def prefetched(stream: Iterator, depth: int) -> Iterator:
    """``stream``'s items, each built ``depth`` items ahead in a background thread (the sampling
    kernel releases the GIL and Ray waits do too), so the next ones are ready while the model
    trains on this one. ``depth`` 0: built on demand, in the caller's thread. Closing it (or
    dropping it) cancels what is not being built yet and waits for the item that is, so that
    nothing reads the stream's views after it."""
    if depth == 0:
        yield from stream
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gnndist-prefetch")
    try:
        ahead = deque(pool.submit(next, stream, _END) for _ in range(depth))
        while True:
            ahead.append(pool.submit(next, stream, _END))
            if (item := ahead.popleft().result()) is _END:
                return
            yield item
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class DistributedNeighborLoader:
    """Mini-batches of one part's seeds: shuffled per epoch, prefetched ``config.prefetch`` ahead.

    ``len()`` is known up front (``ceil`` or, with ``drop_last``, ``floor`` of seeds / batch size).
    The order of an epoch's seeds and the kernel seeds of its batches are streams of
    ``(config.seed, part, epoch)`` (:mod:`gnndist.streams`): a part's batches do not depend on
    which process builds them or on what was built before.
    """

    def __init__(self, view: PartView, seeds: np.ndarray, config: SamplerConfig) -> None:
        self.view = view
        self.seeds = seeds
        self.config = config
        self.epoch = 0
        # Seconds spent building batches (in the prefetch thread when prefetching), by phase. Each
        # loader has its own, written by its one building thread; readers see whole floats.
        self.seconds = {"sample": 0.0, "fetch": 0.0}

    @classmethod
    def for_evaluation(cls, view: PartView, split: str, config: SamplerConfig) -> DistributedNeighborLoader:
        """A loader over the part's ``split`` seeds in order (``config``'s fanouts, batch size,
        prefetch and timeout), on a :meth:`PartView.sibling` of ``view``: it may run while
        ``view``'s own loader prefetches, and changes nothing that loader reads or counts."""
        return cls(view.sibling(), view.seeds(split), SamplerConfig(
            fanouts=config.fanouts, batch_size=config.batch_size, shuffle=False, prefetch=config.prefetch,
            timeout_s=config.timeout_s))

    def __len__(self) -> int:
        n, b = self.seeds.size, self.config.batch_size
        return n // b if self.config.drop_last else math.ceil(n / b)

    def set_epoch(self, epoch: int) -> None:
        """Shuffle order and sampling seeds of the next iteration depend on ``(config.seed, part, epoch)``."""
        self.epoch = epoch

    def _order(self, epoch: int) -> np.ndarray:
        if not self.config.shuffle:
            return self.seeds
        return streams.rng(self.config.seed, streams.SHUFFLE, self.view.part, epoch).permutation(self.seeds)

    def _sample(self, seeds: np.ndarray, seed: int) -> SampledSubgraph:
        start = time.perf_counter()
        sub = sample_khop(seeds, self.config.fanouts, self.view, seed)
        self.seconds["sample"] += time.perf_counter() - start
        return sub

    def _assemble(self, sub: SampledSubgraph, upcoming: list[np.ndarray]) -> MiniBatch:
        """The mini-batch of ``sub`` with its features and labels (``upcoming``: see PartView.fetch)."""
        start = time.perf_counter()
        x, y = self.view.fetch(sub.n_id, upcoming)
        x = as_float32(x)  # before the first layer: half-precision rows become float32 here
        self.seconds["fetch"] += time.perf_counter() - start
        return MiniBatch(x=x, y=torch.from_numpy(y), edge_index=torch.from_numpy(sub.edge_index),
                         n_id=torch.from_numpy(sub.n_id), batch_size=sub.batch_size,
                         num_sampled_nodes=sub.num_sampled_nodes, num_sampled_edges=sub.num_sampled_edges)

    def __iter__(self) -> Iterator[MiniBatch]:
        return self.batches([self.epoch])

    def batches(self, epochs: Iterable[int]) -> Iterator[MiniBatch]:
        """The ``len()`` batches of ``config.batch_size`` seeds of each epoch of ``epochs``, one
        epoch after another, prefetched across the epochs' boundaries."""
        cuts = np.minimum(np.arange(len(self) + 1) * self.config.batch_size, self.seeds.size)
        spans = np.stack([cuts[:-1], cuts[1:]], axis=1)
        return prefetched(self.stream([(epoch, spans) for epoch in epochs]), self.config.prefetch)

    def stream(self, plan: Iterable[tuple[int, np.ndarray]], key: tuple[int, ...] = ()) -> Iterator[MiniBatch | None]:
        """For each ``(epoch, spans)`` of ``plan``, one item per step: the batch of positions
        ``spans[s, 0]:spans[s, 1]`` of that epoch's order of the seeds, or ``None`` where that is
        empty. ``key``: the sampling stream's keys after the part's and the epoch's (a piece of a
        part, :class:`gnndist.train.schedule.Piece`). Built on demand (:func:`prefetched` runs it
        ahead); the steps of the epochs run on in one stream, so that prefetching builds an
        epoch's first batches while the last ones of the epoch before train and while it is
        evaluated."""
        # A lookahead cache needs to know the next batches' nodes when it fetches one: those are
        # sampled `prefetch` batches ahead of the fetching.
        window = self.config.prefetch if self.view.cache.looks_ahead else 0
        sampled: deque[SampledSubgraph | None] = deque()

        def ready() -> MiniBatch | None:
            sub = sampled.popleft()
            return None if sub is None else self._assemble(sub, [s.n_id for s in sampled if s is not None])

        for epoch, spans in plan:
            order = self._order(epoch)
            seeds = streams.rng(self.config.seed, streams.SAMPLE, self.view.part, epoch, *key).integers(
                0, 2**62, len(spans))
            for i, (a, b) in enumerate(spans):
                sampled.append(self._sample(order[a:b], int(seeds[i])) if b > a else None)
                if len(sampled) > window:
                    yield ready()
        while sampled:
            yield ready()

    def stats(self) -> dict:
        """Remote traffic so far and the cache's counters."""
        t = self.view.traffic
        return {"remote_requests": t.requests, "remote_ids": t.ids, "remote_bytes": t.bytes,
                "same_node_ids": t.same_node_ids, "same_node_bytes": t.same_node_bytes,
                "cache_fill_bytes": self.view.cache_fill_bytes, "cache_halo_nodes": self.view.cache_halo_nodes,
                **self.view.cache.stats()}
