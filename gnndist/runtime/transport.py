"""How a process reaches the other parts: one transport per part, chosen once, and the exchange
that calls them all in parallel.

Three transports answer the same two requests (neighbour samples, and feature rows with labels,
of global ids the part owns), so the batches are the same whichever is used:

- :class:`Files`: the part is read in this process from its files (a part the worker holds, or
  with ``SamplerConfig.same_node_reads`` one whose server shares this node): no call at all;
- :class:`SharedMemory`: the part's server shares this node; its reply is written into this
  process's :class:`~gnndist.runtime.shm.ReplyBuffer` for it, past the object store;
- :class:`ObjectStore`: a Ray actor call to the part's server, wherever it runs.

:class:`Exchange` starts one call per part, waits for all of them within the timeout, and where a
server died while Ray restarts it (``ServerGroup.max_restarts``) makes the calls again once it is
back: the same arguments give the same reply, so training goes on as if nothing happened.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import ray
from ray.exceptions import ActorUnschedulableError, GetTimeoutError, RayActorError

from gnndist.partition.features import SparseRows
from gnndist.runtime.partition_server import RemoteError, ServerGroup
from gnndist.runtime.rows import put_rows
from gnndist.runtime.shm import ReplyBuffer, fetch_layout, sample_layout
from gnndist.runtime.store import LocalPart


@dataclass
class Rows:
    """Where fetched rows go: rows ``at`` of the features ``x`` [n, F] (dense, the partition's
    stored dtype) and labels ``y`` [n]. ``nbytes``: the bytes of the rows as they came (a CSR
    reply's are its own, fewer than the dense rows it fills)."""

    x: np.ndarray
    y: np.ndarray
    at: np.ndarray
    nbytes: int = 0

    def put(self, xq: np.ndarray | SparseRows, yq: np.ndarray) -> None:
        """Place a reply's rows: dense [n, F] or :class:`SparseRows`, densified here."""
        put_rows(self.x, self.at, xq, np.arange(yq.size))
        self.y[self.at] = yq
        self.nbytes = int(xq.nbytes + yq.nbytes)


@dataclass
class Started:
    """A request under way: the answer to wait for (``None``: it is done already), and what
    turns that answer into the reply (samples' ``[counts, neighbours]``; fetched rows are put
    in their :class:`Rows`, and the reply is ``None``)."""

    ref: ray.ObjectRef | None
    finish: Callable[[object], list[np.ndarray] | None]


class Transport(ABC):
    """The way to one other part. ``remote``: the requests go to its server (their traffic
    counts as remote, and the server may be lost)."""

    remote: bool = True

    @abstractmethod
    def sample(self, held: ExitStack, ids: np.ndarray, fanout: int, seed: int) -> Started:
        """Start sampling neighbours of global ``ids`` the part owns (``sample_neighbors``'s contract)."""

    @abstractmethod
    def fetch(self, held: ExitStack, ids: np.ndarray, rows: Rows) -> Started:
        """Start fetching the features and labels of global ``ids`` the part owns into ``rows``."""

    def reattached(self, handle) -> Transport:
        """This transport to the part's server started again (``handle``)."""
        return self


class Files(Transport):
    """Reads the part in this process (:class:`LocalPart`, memory-mapped): what its server would
    do, on the same arrays."""

    remote = False

    def __init__(self, store: LocalPart) -> None:
        self.store = store

    def sample(self, held: ExitStack, ids: np.ndarray, fanout: int, seed: int) -> Started:
        reply = list(self.store.sample(ids, fanout, seed))
        return Started(None, lambda _: reply)

    def fetch(self, held: ExitStack, ids: np.ndarray, rows: Rows) -> Started:
        self.store.gather(ids, rows.x, rows.y, rows.at)
        rows.nbytes = int(ids.size) * (rows.x.shape[1] * rows.x.itemsize + rows.y.itemsize)  # copied into the batch
        return Started(None, lambda _: None)


class ObjectStore(Transport):
    """Actor calls to the part's server; the reply comes through Ray's object store."""

    def __init__(self, server) -> None:
        self.server = server

    def sample(self, held: ExitStack, ids: np.ndarray, fanout: int, seed: int) -> Started:
        return Started(self.server.sample.remote(ids, fanout, seed), list)

    def fetch(self, held: ExitStack, ids: np.ndarray, rows: Rows) -> Started:
        return Started(self.server.fetch.remote(ids), lambda answer: rows.put(*answer))

    def reattached(self, handle) -> Transport:
        return type(self)(handle)


class SharedMemory(ObjectStore):
    """Actor calls to a server on this node that reads the request from, and writes its reply
    into, this process's reply buffer for it (a message larger than a buffer may be, an
    unbounded sample, or the rows of a CSR partition, ``dense_rows=False``, go through the object
    store instead). The buffer stays locked in ``held`` until the caller is done with the reply,
    which is a view of it."""

    def __init__(self, server, dense_rows: bool = True) -> None:
        super().__init__(server)
        # A CSR reply's size is known only once the server has cut it, and it is small (its rows'
        # non-zero entries: on Coauthor CS a fiftieth of the dense rows), so it takes the object store.
        self.dense_rows = dense_rows
        # A server started again knows none of this process's buffers (their files are unlinked
        # once opened), so every transport has a buffer of its own.
        self.buffer = ReplyBuffer()

    def _lock(self, held: ExitStack, layout) -> bool:
        """Lock the buffer for a message of ``layout`` until ``held`` closes; False if it does not fit."""
        if not self.buffer.fits(layout):
            return False
        held.enter_context(self.buffer.lock)
        held.callback(self.buffer.served)  # the server has the file mapped once it answered (or failed)
        return True

    def sample(self, held: ExitStack, ids: np.ndarray, fanout: int, seed: int) -> Started:
        if fanout < 0:  # the reply's size is not known beforehand
            return super().sample(held, ids, fanout, seed)
        layout = sample_layout(ids.size, fanout)
        if not self._lock(held, layout):
            return super().sample(held, ids, fanout, seed)
        ref = self.server.sample_into.remote(*self.buffer.request(ids, layout), ids.size, fanout, seed)

        def finish(written: int) -> list[np.ndarray]:  # the number of neighbours written
            counts, neighbours = self.buffer.reply(layout)
            return [counts, neighbours[:written]]
        return Started(ref, finish)

    def reattached(self, handle) -> Transport:
        return type(self)(handle, self.dense_rows)

    def fetch(self, held: ExitStack, ids: np.ndarray, rows: Rows) -> Started:
        layout = fetch_layout(ids.size, rows.x.shape[1], rows.x.dtype)
        if not self.dense_rows or not self._lock(held, layout):
            return super().fetch(held, ids, rows)
        ref = self.server.fetch_into.remote(*self.buffer.request(ids, layout), ids.size)

        def finish(_) -> None:
            x, y = self.buffer.reply(layout)
            rows.put(x.reshape(y.size, -1), y)
        return Started(ref, finish)


def choose(part: int, servers: ServerGroup, node: str, files: dict[int, LocalPart], *, shm: bool,
           dense_rows: bool = True) -> Transport:
    """The transport to ``part`` from a process on Ray node ``node``: :class:`Files` for the parts
    it reads itself (``files``), :class:`SharedMemory` to a server on its node where ``shm``
    (its rows through the buffer where ``dense_rows``: not for a CSR partition), else
    :class:`ObjectStore`."""
    if part in files:
        return Files(files[part])
    if shm and servers.nodes[part] == node:
        return SharedMemory(servers.handles[part], dense_rows)
    return ObjectStore(servers.handles[part])


class ServerLost(Exception):
    """Partition servers (of ``parts``) died during a call; Ray may be restarting them."""

    def __init__(self, parts: list[int], cause: Exception) -> None:
        super().__init__(f"partition servers of parts {parts} died")
        self.parts = parts
        self.cause = cause


class Exchange:
    """Part ``part``'s requests to the other parts, through ``transports`` (part -> transport).

    Each call starts one request per part, in part order (so that reply buffers are always locked
    in one order), and waits for all of them together within ``timeout_s``. Views of one part on
    several threads share an exchange: its transports' buffers are locked for a whole call.
    """

    def __init__(self, part: int, servers: ServerGroup, transports: dict[int, Transport], timeout_s: float) -> None:
        self.part = part
        self.servers = servers
        self.transports = transports
        self.timeout_s = timeout_s

    def call(self, held: ExitStack, method: str, requests: dict[int, tuple]) -> dict:
        """Each part ``q``'s reply to ``method`` (``sample`` or ``fetch`` of its transport) with
        the arguments ``requests[q]``; replies that are views of reply buffers stay valid until
        ``held`` closes. A lost server is found again and the whole call made again (see
        :meth:`_lost`)."""
        attempt = 0
        while True:
            with ExitStack() as tries:
                try:
                    started = {q: getattr(self.transports[q], method)(tries, *requests[q]) for q in sorted(requests)}
                    answers = self._get({q: s.ref for q, s in started.items() if s.ref is not None})
                    replies = {q: s.finish(answers.get(q)) for q, s in started.items()}
                except ServerLost as lost:
                    self._lost(lost, attempt)
                    attempt += 1
                    continue
                held.enter_context(tries.pop_all())
                return replies

    def _get(self, calls: dict[int, ray.ObjectRef]) -> dict[int, object]:
        """Wait for one answer per part, all in parallel, within the timeout. A server that died
        is :class:`ServerLost` (its part in ``parts``), to be called again once it is back."""
        if not calls:
            return {}
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
        return dict(zip(calls, results, strict=True))

    def _lost(self, error: ServerLost, attempt: int) -> None:
        """Get ready to call again the servers ``error`` lost, or raise :class:`RemoteError` when
        the run does not restart servers (``ServerGroup.max_restarts``) or they failed as often.
        Each is found again by name: Ray restarted it (the same actor), or the driver started it
        anew where its node left the cluster (``ServerGroup.relaunch_lost``); the others are left
        alone."""
        if attempt >= self.servers.max_restarts:
            dead = ", ".join(f"part {q} ({self.servers.name(q)})" for q in error.parts)
            again = (f"it died more than the {self.servers.max_restarts} times it is restarted"
                     if self.servers.max_restarts else "servers are not restarted without train.max_failures")
            raise RemoteError(f"part {self.part}: a partition server among {dead} died or is unreachable ({again}). "
                              f"Ray said: {error.cause}") from None
        time.sleep(min(2.0, 0.5 * (attempt + 1)))  # the driver looks for lost servers every second
        deadline = time.monotonic() + self.timeout_s
        for q in error.parts:
            self.transports[q] = self.transports[q].reattached(self.servers.find(q, deadline))
