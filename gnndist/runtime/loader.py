"""A trainer's view of the partitioned graph: neighbour sampling across parts, halo exchange,
the remote-feature cache, and the prefetching mini-batch iterator.

The trainer of part ``p`` reads its own part from disk (features memory-mapped) and samples the
nodes whose in-edges it stores (inner nodes, and halo nodes within L-1 hops) locally. Everything
else goes to the owning part's :class:`~gnndist.runtime.partition_server.PartitionServer`: one
batched call per owner per hop for sampling, and one per owner for the features of the batch
(the halo exchange), all owners in parallel. Every wait has a timeout. With
``SamplerConfig.same_node_reads`` the parts whose servers share the trainer's Ray node are read
straight from their memory-mapped files instead, by the same kernels, so the batches are the same.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import ray
import torch
from ray.exceptions import ActorUnschedulableError, GetTimeoutError, RayActorError

from gnndist import streams
from gnndist.config import SamplerConfig
from gnndist.partition.book import PartitionBook
from gnndist.partition.csc import merge_segments
from gnndist.partition.format import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL, PartArrays, load_part, read_manifest
from gnndist.runtime.partition_server import RemoteError, ServerGroup
from gnndist.runtime.rows import copy_rows
from gnndist.runtime.shm import ReplyBuffer, fetch_layout, sample_layout, shm_available
from gnndist.sampling import sample_khop, sample_neighbors
from gnndist.sampling.batch import MiniBatch
from gnndist.sampling.cache import (
    AccessCounter,
    FeatureCache,
    LookaheadCache,
    cache_capacity,
    hottest_halo_nodes,
    sampling_halo,
)
from gnndist.sampling.neighbor import SampledSubgraph

SPLITS = {"train": SPLIT_TRAIN, "val": SPLIT_VAL, "test": SPLIT_TEST}


@dataclass
class _Traffic:
    requests: int = 0
    ids: int = 0
    bytes: int = 0
    # Ids of other parts sampled or fetched straight from their files (same_node_reads), and
    # the bytes of the feature rows and labels read there.
    same_node_ids: int = 0
    same_node_bytes: int = 0


class ServerLost(Exception):
    """Partition servers (of ``parts``) died during a call; Ray may be restarting them."""

    def __init__(self, parts: list[int], cause: Exception) -> None:
        super().__init__(f"partition servers of parts {parts} died")
        self.parts = parts
        self.cause = cause


class PartView:
    """Part ``part`` held locally, plus access to every other part through its server.

    Implements the ``NeighborProvider`` protocol (:meth:`sample`) over global ids and fetches
    features and labels of any global ids (:meth:`fetch`).

    One loader at a time reads through a view (its prefetch thread): the traffic counters, the
    cache and a lookahead cache's choices are that loader's. A loader on another thread, such as
    evaluation's while training prefetches, reads through a :meth:`sibling`.
    """

    def __init__(self, part: int, arrays: PartArrays, book: PartitionBook, servers: ServerGroup,
                 timeout_s: float) -> None:
        self.part = part
        self.arrays = arrays
        self.book = book
        self.servers = servers
        self.timeout_s = timeout_s
        self.cache = FeatureCache.empty(arrays.features.shape[1])
        self.traffic = _Traffic()
        self.cache_fill_bytes = 0
        self.cache_halo_nodes = 0  # the size cache_fraction refers to (see SamplerConfig)
        # Other parts read from their arrays in this process, never through their servers: the
        # worker's other parts, and with same_node_reads every part whose server shares this node.
        self.same_node: dict[int, PartArrays] = {}
        # Shared-memory reply buffers for the servers on this node that are called (see runtime/shm.py);
        # shared with siblings, each buffer locked for a whole call (see sibling).
        self.replies: dict[int, ReplyBuffer] = {}
        # Halo nodes whose in-edges this part stores (hop < L), sorted for lookups.
        n_csc = arrays.halo_indptr.size - 1
        self._halo_order = np.argsort(arrays.halo_ids[:n_csc], kind="stable")
        self._halo_sorted = arrays.halo_ids[:n_csc][self._halo_order]

    @classmethod
    def open(cls, root: str, part: int, servers: ServerGroup, config: SamplerConfig, *,
             verify: bool = False, held: dict[int, PartArrays] | None = None) -> PartView:
        """Load ``part`` of the partition at ``root`` and fill the remote-feature cache.

        ``held``: the other parts this process holds already (a worker's shard), by id: read
        straight from their arrays, never through their servers, and left out of the cache."""
        manifest = read_manifest(root)
        book = PartitionBook(manifest["offsets"])
        held = {q: arrays for q, arrays in (held or {}).items() if q != part}
        arrays = load_part(root, part, manifest=manifest, verify=verify)
        view = cls(part, arrays, book, servers, config.timeout_s)
        here = ray.get_runtime_context().get_node_id()
        beside = [q for q, node in enumerate(servers.nodes) if q != part and q not in held and node == here]
        if config.same_node_reads:
            held |= {q: load_part(root, q, manifest=manifest, verify=verify, mmap_all=True) for q in beside}
        elif shm_available():
            view.replies = {q: ReplyBuffer() for q in beside}
        view.same_node = held
        if config.cache_mb is None and config.cache_fraction is None:
            return view
        lo, hi = book.part_range(part)
        halo = sampling_halo(view.seeds("train"), config.fanouts, view, book.num_nodes, lo, hi)
        # Rows read from this node's files gain nothing from a copy in the cache.
        halo = halo[~np.isin(book.owner(halo), list(view.same_node))]
        row_bytes = view.arrays.features.shape[1] * 4 + 8  # a float32 feature row and an int64 label
        size = cache_capacity(halo.size, row_bytes, cache_mb=config.cache_mb, cache_fraction=config.cache_fraction)
        if size:
            ranked = view._cache_candidates(config, halo)
            view.cache = FeatureCache.build(ranked[:size], view._fetch_remote_rows)
            if config.cache_lookahead:
                rows = view.cache.rows
                view.cache = LookaheadCache(rows.ids, rows.x, rows.y, size, ranked)
        view.cache_halo_nodes = int(halo.size)
        # Choosing and filling the cache is a one-off cost, reported apart from per-epoch traffic.
        view.cache_fill_bytes, view.traffic = view.traffic.bytes, _Traffic()
        return view

    def sibling(self) -> PartView:
        """A view of the same part for a loader on another thread, safe beside this view's loader.

        It shares what neither changes: the part's arrays, the other parts' files, the servers.
        It has traffic counters of its own, and a cache of this one's rows as they are now that
        never changes and counts its own hits (:meth:`FeatureCache.snapshot`): so it never moves
        this view's lookahead cache or its counters. The reply buffers are shared, each behind
        its lock for a whole call (request, reply, copy out): a buffer of its own per sibling
        would add a file and a mapping the server keeps for as long as it lives, per evaluation,
        and the server answers one call at a time anyway, so the lock costs no waiting it would
        not have.
        """
        view = PartView(self.part, self.arrays, self.book, self.servers, self.timeout_s)
        view.cache = self.cache.snapshot()
        view.same_node = self.same_node
        view.replies = self.replies
        return view

    def _cache_candidates(self, config: SamplerConfig, halo: np.ndarray) -> np.ndarray:
        """All nodes of ``halo`` (global ids, int64), hottest first: by draws in warm-up batches
        (policy "access"), then by in-edges into the part, then the rest by id."""
        lo, hi = self.book.part_range(self.part)
        ranked = [hottest_halo_nodes(self.arrays, lo, hi), halo]
        if config.cache_policy == "access":
            # Most nodes a batch fetches lie 2 or more hops out, beyond the 1-hop halo that the
            # degree ranking sees, so count which remote nodes sampled batches really draw. Kernel
            # seeds 0, 1, ... are not the loader's (random 62-bit ones): the warm-up batches are
            # fresh samples, never the batches the cache then serves.
            counter = AccessCounter(lo, hi)
            for i, seeds in enumerate(self._warmup_batches(config)):
                counter.add(sample_khop(seeds, config.fanouts, self, seed=i))
            ranked.insert(0, counter.ranked())
        order = np.concatenate(ranked)
        _, first = np.unique(order, return_index=True)
        order = order[np.sort(first)]  # each node where it first appears
        return order[np.isin(order, halo)]

    def _warmup_batches(self, config: SamplerConfig) -> list[np.ndarray]:
        """Batches of this part's training seeds (global ids) for ``config.cache_warmup_epochs``
        passes over them, each pass a fresh shuffle; at least one batch."""
        seeds, b = self.seeds("train"), config.batch_size
        count = max(1, math.ceil(config.cache_warmup_epochs * math.ceil(seeds.size / b)))
        rng = streams.rng(config.seed, streams.WARMUP, self.part)
        batches = []
        while seeds.size and len(batches) < count:
            order = rng.permutation(seeds)
            batches += [order[i:i + b] for i in range(0, order.size, b)]
        return batches[:count]

    # ----------------------------------------------------------------------------- remote calls

    def _get(self, calls: dict[int, ray.ObjectRef]) -> dict[int, object]:
        """Wait for one call per owner part, all in parallel, within the timeout. A server that
        died is :class:`ServerLost` (its part in ``lost``), to be called again once Ray has
        restarted it."""
        try:
            results = ray.get(list(calls.values()), timeout=self.timeout_s)
        except GetTimeoutError:
            pending = ", ".join(self.servers.name(q) for q in calls)
            raise RemoteError(f"part {self.part}: no answer within {self.timeout_s:.0f} s from partition "
                              f"server(s) {pending}; check that they are alive (`ray list actors`) or raise "
                              "sampler.timeout_s") from None
        except (RayActorError, ActorUnschedulableError) as e:
            lost = []
            for q, ref in calls.items():  # which of them: each answer is there or failed by now
                try:
                    ray.get(ref, timeout=self.timeout_s)
                except (RayActorError, ActorUnschedulableError, GetTimeoutError):
                    lost.append(q)
            raise ServerLost(lost, e) from None
        self.traffic.requests += len(calls)
        return dict(zip(calls, results, strict=True))

    def _lost(self, error: ServerLost, attempt: int) -> None:
        """Get ready to call again the servers ``error`` lost, or raise :class:`RemoteError` when
        the run does not restart servers (``ServerGroup.max_restarts``) or they failed as often.
        Each is found again by name: Ray restarted it (the same actor), or the driver started it
        anew where its node left the cluster (``ServerGroup.relaunch_lost``); the others are left
        alone. Either way it knows none of this view's reply buffers (and their files are unlinked
        once opened): those get new ones."""
        if attempt >= self.servers.max_restarts:
            dead = ", ".join(f"part {q} ({self.servers.name(q)})" for q in error.parts)
            again = (f"it died more than the {self.servers.max_restarts} times it is restarted"
                     if self.servers.max_restarts else "servers are not restarted without --max-failures")
            raise RemoteError(f"part {self.part}: a partition server among {dead} died or is unreachable ({again}). "
                              f"Ray said: {error.cause}") from None
        time.sleep(min(2.0, 0.5 * (attempt + 1)))  # the driver looks for lost servers every second
        deadline = time.monotonic() + self.timeout_s
        for q in error.parts:
            self.servers.handles[q] = self.servers.find(q, deadline)
            if q in self.replies:
                self.replies[q] = ReplyBuffer()

    def _call(self, held: ExitStack, requests: dict[int, np.ndarray], method: str, layout: Callable | None,
              *args) -> dict[int, list[np.ndarray]]:
        """Call ``method(ids, *args)`` of each owner part ``q`` in ``requests`` (``q -> ids``),
        all in parallel, and return their replies' arrays. An owner on this node with a reply
        buffer gets ``method_into`` instead, its messages laid out by ``layout(n)`` (if it
        ``fits``); its reply arrays are views of the buffer, which stays locked in ``held``.
        Where a server died and Ray restarts it (``ServerGroup.max_restarts``), the call is made
        again once it is back: the same arguments give the same reply, so training goes on as if
        nothing happened."""
        attempt = 0
        while True:
            try:
                return self._call_once(held, requests, method, layout, *args)
            except ServerLost as lost:
                self._lost(lost, attempt)
                attempt += 1

    def _call_once(self, held: ExitStack, requests: dict[int, np.ndarray], method: str, layout: Callable | None,
                   *args) -> dict[int, list[np.ndarray]]:
        calls, layouts = {}, {}
        try:
            for q, ids_q in sorted(requests.items()):  # buffers are always locked in one order
                server, buffer = self.servers.handles[q], self.replies.get(q) if layout else None
                message = layout(ids_q.size) if buffer is not None else None
                if message is None or not buffer.fits(message):
                    calls[q] = getattr(server, method).remote(ids_q, *args)
                    continue
                held.enter_context(buffer.lock)
                layouts[q] = message
                calls[q] = getattr(server, f"{method}_into").remote(*buffer.request(ids_q, layouts[q]), ids_q.size,
                                                                    *args)
            answers = self._get(calls)
        finally:
            for q in layouts:
                self.replies[q].served()
        replies = {}
        for q, answer in answers.items():
            if q in layouts:  # an ``_into`` call answers how many elements of its last section it wrote
                *head, last = self.replies[q].reply(layouts[q])
                replies[q] = [*head, last[:answer]]
            else:
                replies[q] = list(answer)
        return replies

    def _by_owner(self, ids: np.ndarray) -> dict[int, np.ndarray]:
        """Positions in ``ids`` grouped by owner part (owners with no ids left out)."""
        owners = self.book.owner(ids)
        order = np.argsort(owners, kind="stable")
        bounds = np.searchsorted(owners[order], np.arange(self.book.num_parts + 1))
        return {q: order[bounds[q]:bounds[q + 1]] for q in range(self.book.num_parts) if bounds[q + 1] > bounds[q]}

    # ----------------------------------------------------------------------------- sampling

    def sample(self, ids: np.ndarray, fanout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``NeighborProvider``: sampled in-neighbours of global ``ids`` wherever they live."""
        lo, _ = self.book.part_range(self.part)
        groups, remote = [], {}
        for q, rows in self._by_owner(ids).items():
            if q == self.part:
                counts, nbrs = sample_neighbors(self.arrays.indptr, self.arrays.indices, ids[rows] - lo, fanout, seed)
                groups.append((rows, counts, nbrs))
                continue
            pos = np.minimum(np.searchsorted(self._halo_sorted, ids[rows]), max(self._halo_sorted.size - 1, 0))
            here = self._halo_sorted[pos] == ids[rows] if self._halo_sorted.size else np.zeros(rows.size, bool)
            if here.any():
                counts, nbrs = sample_neighbors(self.arrays.halo_indptr, self.arrays.halo_indices,
                                                self._halo_order[pos[here]], fanout, seed)
                groups.append((rows[here], counts, nbrs))
            if here.all():
                continue
            rest = rows[~here]
            if q in self.same_node:  # what the server would do, on the same arrays
                counts, nbrs = sample_neighbors(self.same_node[q].indptr, self.same_node[q].indices,
                                                ids[rest] - self.book.part_range(q)[0], fanout, seed)
                groups.append((rest, counts, nbrs))
                self.traffic.same_node_ids += int(rest.size)
            else:
                remote[q] = rest
        if not remote:
            return merge_segments(ids.size, groups)
        with ExitStack() as held:  # the replies may be views of reply buffers: merged before they are released
            layout = (lambda n: sample_layout(n, fanout)) if fanout >= 0 else None
            replies = self._call(held, {q: ids[rows] for q, rows in remote.items()}, "sample", layout, fanout, seed)
            for q, (counts, nbrs) in replies.items():
                groups.append((remote[q], counts, nbrs))
                self.traffic.ids += int(remote[q].size)
                self.traffic.bytes += int(counts.nbytes + nbrs.nbytes)
            return merge_segments(ids.size, groups)

    # ----------------------------------------------------------------------------- halo exchange

    def _fetch_remote(self, ids: np.ndarray, x: np.ndarray, y: np.ndarray, at: np.ndarray) -> None:
        """Features and labels of ``ids`` (global, none owned here) from their owners (or their
        files, for parts in ``same_node``), written to rows ``at`` of ``x`` and ``y``."""
        groups = self._by_owner(ids)
        for q in self.same_node.keys() & groups.keys():
            rows = groups.pop(q)
            local = ids[rows] - self.book.part_range(q)[0]
            copy_rows(x, at[rows], self.same_node[q].features, local)
            y[at[rows]] = self.same_node[q].labels[local]
            self.traffic.same_node_ids += int(rows.size)
            self.traffic.same_node_bytes += int(rows.size) * (x.shape[1] * x.itemsize + y.itemsize)
        if not groups:
            return
        dim = x.shape[1]
        with ExitStack() as held:
            replies = self._call(held, {q: ids[rows] for q, rows in groups.items()}, "fetch",
                                 lambda n: fetch_layout(n, dim))
            for q, (xq, yq) in replies.items():
                copy_rows(x, at[groups[q]], xq.reshape(-1, dim), np.arange(yq.size))
                y[at[groups[q]]] = yq
                self.traffic.ids += int(groups[q].size)
                self.traffic.bytes += int(xq.nbytes + yq.nbytes)

    def _fetch_remote_rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of ``ids`` (global, none owned here), fetched from their owners."""
        x = np.empty((ids.size, self.arrays.features.shape[1]), dtype=np.float32)
        y = np.empty(ids.size, dtype=np.int64)
        self._fetch_remote(ids, x, y, np.arange(ids.size))
        return x, y

    def fetch(self, ids: np.ndarray, upcoming: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, np.ndarray]:
        """``(x float32 [n, F], y int64 [n])`` of global ``ids``: own rows from disk, cached rows
        from the cache, the rest from their owners in one batched call per owner. Each row is
        copied once, straight to its place in ``x``. A :class:`LookaheadCache` then chooses what
        to keep, knowing the global ids of the batches sampled after this one (``upcoming``)."""
        lo, hi = self.book.part_range(self.part)
        x = np.empty((ids.size, self.arrays.features.shape[1]), dtype=np.float32)
        y = np.empty(ids.size, dtype=np.int64)
        is_own = (ids >= lo) & (ids < hi)
        own = np.flatnonzero(is_own)
        copy_rows(x, own, self.arrays.features, ids[own] - lo)
        y[own] = self.arrays.labels[ids[own] - lo]
        remote = np.flatnonzero(~is_own)
        # Rows are read from the state the ids were looked up in, whatever the cache holds now.
        cached, hit, rows = self.cache.lookup(ids[remote])
        copy_rows(x, remote[hit], cached.x, rows)
        y[remote[hit]] = cached.y[rows]
        missing = remote[~hit]
        if missing.size:
            self._fetch_remote(ids[missing], x, y, missing)
            self.cache.retain(ids[missing], x[missing], y[missing], upcoming)
        return x, y

    def seeds(self, split: str) -> np.ndarray:
        """Global ids of this part's nodes in ``split`` (train, val or test), ascending."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: choose one of {sorted(SPLITS)}")
        lo, _ = self.book.part_range(self.part)
        return lo + np.flatnonzero(self.arrays.split == SPLITS[split]).astype(np.int64)


#: Ends a prefetched stream (a stream may yield ``None``: a step with no seeds of a part).
_END = object()


def prefetched(stream: Iterator, depth: int) -> Iterator:
    """``stream``'s items, each built ``depth`` items ahead in a background thread (the sampling
    kernel releases the GIL and Ray waits do too), so the next ones are ready while the model
    trains on this one. ``depth`` 0: built on demand, in the caller's thread."""
    if depth == 0:
        yield from stream
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gnndist-prefetch") as pool:
        ahead = deque(pool.submit(next, stream, _END) for _ in range(depth))
        while True:
            ahead.append(pool.submit(next, stream, _END))
            if (item := ahead.popleft().result()) is _END:
                return
            yield item


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
        self.seconds["fetch"] += time.perf_counter() - start
        return MiniBatch(x=torch.from_numpy(x), y=torch.from_numpy(y), edge_index=torch.from_numpy(sub.edge_index),
                         n_id=torch.from_numpy(sub.n_id), batch_size=sub.batch_size,
                         num_sampled_nodes=sub.num_sampled_nodes, num_sampled_edges=sub.num_sampled_edges)

    def __iter__(self) -> Iterator[MiniBatch]:
        return self.batches([self.epoch])

    def batches(self, epochs: Iterable[int]) -> Iterator[MiniBatch]:
        """The ``len()`` batches of ``config.batch_size`` seeds of each epoch of ``epochs``, one
        epoch after another, prefetched across the epochs' boundaries."""
        cuts = np.minimum(np.arange(len(self) + 1) * self.config.batch_size, self.seeds.size)
        return prefetched(self.stream([(epoch, cuts) for epoch in epochs]), self.config.prefetch)

    def stream(self, plan: Iterable[tuple[int, np.ndarray]]) -> Iterator[MiniBatch | None]:
        """For each ``(epoch, cuts)`` of ``plan``, one item per step: the batch of positions
        ``cuts[s]:cuts[s + 1]`` of that epoch's order of the seeds, or ``None`` where that is
        empty. Built on demand (:func:`prefetched` runs it ahead); the steps of the epochs run on
        in one stream, so that prefetching builds an epoch's first batches while the last ones of
        the epoch before train and while it is evaluated."""
        # A lookahead cache needs to know the next batches' nodes when it fetches one: those are
        # sampled `prefetch` batches ahead of the fetching.
        window = self.config.prefetch if self.view.cache.looks_ahead else 0
        sampled: deque[SampledSubgraph | None] = deque()

        def ready() -> MiniBatch | None:
            sub = sampled.popleft()
            return None if sub is None else self._assemble(sub, [s.n_id for s in sampled if s is not None])

        for epoch, cuts in plan:
            order = self._order(epoch)
            seeds = streams.rng(self.config.seed, streams.SAMPLE, self.view.part, epoch).integers(
                0, 2**62, len(cuts) - 1)
            for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
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
