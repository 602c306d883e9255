"""One Ray actor per part: it owns the part's arrays and answers batched requests."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import ray
from ray.exceptions import ActorUnschedulableError, GetTimeoutError, RayActorError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from gnndist.partition.features import SparseRows
from gnndist.partition.format import PartitionFormatError, read_manifest
from gnndist.runtime.memory import WORKER_ENV
from gnndist.runtime.shm import ReplyMaps, fetch_layout, sample_layout
from gnndist.runtime.store import LocalPart


class RemoteError(RuntimeError):
    """A partition server died, failed or did not answer in time; the message names it."""


def server_name(group: str, part: int) -> str:
    """Ray actor name of the server of ``part`` in server group ``group`` (shown in errors)."""
    return f"gnndist-{group}-part-{part:05d}"


class PartitionServer:
    """Serves one part: features and labels of the global ids it owns, and neighbour samples.

    The constructor only records where the part is; :meth:`start` loads it (memory-mapped:
    :class:`~gnndist.runtime.store.LocalPart`) so that a failing load is reported by the launcher with the part's name.
    ``verify``: check every file's sha256 against the manifest when loading
    (``format.check_files``, as ``gnndist inspect --verify`` does).
    """

    def __init__(self, root: str, part: int, name: str, verify: bool = True) -> None:
        self.root = root
        self.part = part
        self.name = name
        self.verify = verify
        self._store: LocalPart | None = None
        self._counters = {"requests": 0, "ids": 0, "bytes": 0}
        self._replies = ReplyMaps()

    def start(self) -> dict:
        """Load the part (a server Ray restarted after a crash loads it again on its first call)."""
        self._store = LocalPart.load(self.root, self.part, read_manifest(self.root), verify=self.verify)
        return {"part": self.part, "first": self._store.lo, "end": self._store.hi,
                "node": ray.get_runtime_context().get_node_id()}

    def _loaded(self) -> LocalPart:
        if self._store is None:  # restarted by Ray after a crash: only the constructor ran again
            self.start()
        return self._store

    def _owned(self, ids: np.ndarray) -> np.ndarray:
        """``ids`` as int64, refused unless this part owns them all."""
        ids = np.asarray(ids, dtype=np.int64)
        store = self._loaded()
        if ids.size and not store.owns(ids).all():
            bad = int(ids[~store.owns(ids)][0])
            raise ValueError(f"part {self.part} ({self.name}) does not own global id {bad}; "
                             f"it owns {store.lo}..{store.hi - 1}")
        return ids

    def _count(self, ids: np.ndarray, *arrays: np.ndarray) -> None:
        self._counters["requests"] += 1
        self._counters["ids"] += int(ids.size)
        self._counters["bytes"] += sum(int(a.nbytes) for a in arrays)

    def fetch(self, ids: np.ndarray) -> tuple[np.ndarray | SparseRows, np.ndarray]:
        """``(x, y int64 [n])`` of global ids this part owns: ``x`` in the part's stored dtype,
        dense [n, F], or :class:`SparseRows` for a CSR part (the worker densifies them).

        Why CSR rows are sent as CSR: on Coauthor CS (0.9% non-zero, scripts/bench_features.py)
        a halo reply of CSR rows is about 1/50 of the bytes of the same rows densified, and
        densifying costs the same wherever it happens, so it happens on the worker."""
        ids = self._owned(ids)
        x, y = self._loaded().take(ids)
        self._count(ids, x, y)
        return x, y

    def fetch_into(self, client: str, path: str, capacity: int, n: int) -> int:
        """:meth:`fetch` through the shared-memory buffer ``path`` of a trainer on this node (see
        ``gnndist.runtime.shm``): reads the ``n`` requested ids there and writes the reply after
        them (``fetch_layout``); returns ``n``."""
        store = self._loaded()
        dim = store.feature_dim
        ids, x, y = self._replies.sections(client, path, capacity, fetch_layout(n, dim, store.feature_dtype))
        ids = self._owned(ids)
        store.gather(ids, x.reshape(n, dim), y, np.arange(n))
        self._count(ids, x, y)
        return n

    def sample(self, ids: np.ndarray, fanout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour samples of global ids this part owns (contract of ``sample_neighbors``)."""
        ids = self._owned(ids)
        counts, neighbors = self._loaded().sample(ids, fanout, seed)
        self._count(ids, counts, neighbors)
        return counts, neighbors

    def sample_into(self, client: str, path: str, capacity: int, n: int, fanout: int, seed: int) -> int:
        """:meth:`sample` (``fanout >= 0``) through a trainer's shared-memory buffer, as
        :meth:`fetch_into` (``sample_layout``); returns the number of neighbours written."""
        ids, counts_out, neighbors_out = self._replies.sections(client, path, capacity, sample_layout(n, fanout))
        counts, neighbors = self.sample(ids, fanout, seed)
        counts_out[:] = counts
        neighbors_out[:neighbors.size] = neighbors
        return int(neighbors.size)

    def node(self) -> str:
        """The Ray node this server runs on."""
        return ray.get_runtime_context().get_node_id()

    def stats(self) -> dict:
        """Requests, ids and bytes served so far."""
        return {"part": self.part, **self._counters}


@dataclass
class ServerGroup:
    """Handles of the servers of every part of one partition directory."""

    root: str
    group: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    handles: list = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)  # the Ray node id each part's server runs on
    max_restarts: int = 0  # how often Ray restarts a server that dies (the same handle then reaches it)
    verify: bool = True
    num_cpus: float = 0.0

    def name(self, part: int) -> str:
        return server_name(self.group, part)

    @property
    def num_parts(self) -> int:
        return len(self.handles)

    def stats(self, timeout_s: float = 60.0) -> list[dict]:
        return ray.get([h.stats.remote() for h in self.handles], timeout=timeout_s)

    def kill(self) -> None:
        for handle in self.handles:
            ray.kill(handle)

    def launch(self, part: int, node: str | None) -> None:
        """Start the server of ``part`` on ``node`` (``None``: where Ray likes), under its name."""
        where = NodeAffinitySchedulingStrategy(node, soft=False) if node else "DEFAULT"
        # WORKER_ENV: every reply allocates its arrays afresh, and reuses the memory of the last.
        handle = (ray.remote(PartitionServer)
                  .options(name=self.name(part), num_cpus=self.num_cpus, scheduling_strategy=where,
                           max_restarts=self.max_restarts, runtime_env={"env_vars": WORKER_ENV})
                  .remote(self.root, part, self.name(part), self.verify))
        if part < len(self.handles):
            self.handles[part] = handle
        else:
            self.handles.append(handle)

    def relaunch_lost(self, timeout_s: float = 1.0) -> list[int]:
        """Start again the servers that are gone for good (Ray restarts them no more, or their
        node left the cluster, where a server bound to it waits forever), on the alive node with
        the fewest servers; the parts relaunched. Workers find them by name
        (:meth:`reattached`)."""
        pings = {h.stats.remote(): part for part, h in enumerate(self.handles)}
        ready, pending = ray.wait(list(pings), num_returns=len(pings), timeout=timeout_s)
        alive_nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0}
        lost = [pings[ref] for ref in pending if self.nodes[pings[ref]] not in alive_nodes]
        for ref in ready:
            try:
                ray.get(ref)
            except (RayActorError, ActorUnschedulableError):  # dead, or bound to a node that left
                lost.append(pings[ref])
        for part in sorted(lost):
            ray.kill(self.handles[part], no_restart=True)
            load = {node: sum(n == node for n in self.nodes) for node in alive_nodes}
            self.nodes[part] = min(sorted(load), key=load.get) if load else None
            self._relaunch(part)
        return sorted(lost)

    def _relaunch(self, part: int, attempts: int = 50) -> None:
        """:meth:`launch` once Ray has released the dead server's name."""
        for _ in range(attempts):
            try:
                self.launch(part, self.nodes[part])
                return
            except ValueError:  # the name is still taken: the kill takes a moment
                time.sleep(0.1)
        raise RuntimeError(f"partition server {self.name(part)} could not be started again: its name stays taken")

    def reattached(self, timeout_s: float) -> ServerGroup:
        """This group with fresh handles, found by name: in a worker Ray Train started after the
        driver launched the group, some servers may have been started again since (elsewhere)."""
        deadline = time.monotonic() + timeout_s
        handles = [self.find(part, deadline) for part in range(self.num_parts)]
        nodes = ray.get([h.node.remote() for h in handles], timeout=max(deadline - time.monotonic(), 1.0))
        return ServerGroup(self.root, self.group, handles, nodes, self.max_restarts, self.verify, self.num_cpus)

    def find(self, part: int, deadline: float):
        """The live server of ``part``, by name, waiting until ``deadline`` (``time.monotonic``)
        for one to appear (the driver may be starting it again) and to answer: a server Ray is
        restarting keeps its name, but calls to it fail until it has loaded its part again."""
        while True:
            try:
                handle = ray.get_actor(self.name(part))
                ray.get(handle.node.remote(), timeout=max(deadline - time.monotonic(), 0.1))
                return handle
            except (ValueError, RayActorError, GetTimeoutError):  # not there, restarting or dead: wait
                if time.monotonic() > deadline:
                    raise RemoteError(f"no partition server named {self.name(part)} is running and answering "
                                      "within the timeout") from None
                time.sleep(0.2)


#: The slowest rate, in bytes a second, at which the servers are expected to read and hash their
#: files all together (a cold disk, every server on one core). Verifying takes the start-up
#: wait this much longer, so that hashing a large partition never ends in a spurious timeout.
#: scripts/bench_verify.py, from the page cache on a shared 2-core machine: the 1M-node graph's
#: 0.6 GB hashed at 0.9-1.3 GB/s in one process and 440-510 MB/s by all servers at once, but at
#: 63 MB/s once under a load average of 26, hence a floor well below that.
VERIFY_BYTES_PER_S = 20e6


def launch_servers(root: str | Path, *, verify: bool = True, timeout_s: float = 120.0,
                   num_cpus: float = 0.0, groups: list[int] | None = None, max_restarts: int = 0) -> ServerGroup:
    """Start one :class:`PartitionServer` per part and wait until each has loaded its part.

    ``verify``: each server checks its files' sizes and sha256 against ``partition.json`` before
    serving (the check of ``gnndist inspect --verify``); the wait then allows for hashing every
    file at ``VERIFY_BYTES_PER_S`` on top of ``timeout_s``. ``num_cpus``: CPUs each server
    reserves from Ray (0: servers share the node's CPUs with the trainers instead of holding some
    idle). On a cluster the servers spread over the nodes, so that each trainer can sit beside its
    own parts' servers: ``groups`` (default: each part its own) gives each part a group, the
    servers of one group share a node, and groups go round-robin over the nodes. ``max_restarts``:
    how many times Ray restarts a server that dies (it reloads its part on its next call; its
    actor handle and name stay the same). Raises the first
    server's :class:`PartitionFormatError` as it was raised
    (its message names the file), and ``TimeoutError`` naming any server that did not load in time.
    """
    root = str(Path(root).resolve())
    manifest = read_manifest(root)  # fail fast, in the caller, on a bad directory
    group = ServerGroup(root, max_restarts=max_restarts, verify=verify, num_cpus=num_cpus)
    # Round-robin over the nodes: Ray's "SPREAD" does not spread actors that reserve no CPU, and
    # a soft affinity falls back to the head node while the others' worker pools start. A node
    # that dies before its server starts ends in the start timeout below, naming the server.
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0)
    groups = list(range(manifest["num_parts"])) if groups is None else groups
    for part in range(manifest["num_parts"]):
        group.launch(part, nodes[groups[part] % len(nodes)] if nodes else None)
    hashed = sum(meta["bytes"] for entry in manifest["parts"] for meta in entry["files"].values()) if verify else 0
    try:
        started = _await_started(group, timeout_s + hashed / VERIFY_BYTES_PER_S)
    except BaseException:
        group.kill()
        raise
    group.nodes = [info["node"] for info in sorted(started, key=lambda info: info["part"])]
    return group


def _await_started(group: ServerGroup, timeout_s: float) -> list[dict]:
    """Each server's :meth:`PartitionServer.start` result, failing at the first that fails."""
    pending = {h.start.remote(): part for part, h in enumerate(group.handles)}
    deadline = time.monotonic() + timeout_s
    started = []
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=max(deadline - time.monotonic(), 0.0))
        if not ready:
            names = ", ".join(group.name(part) for part in sorted(pending.values()))
            raise TimeoutError(f"partition servers {names} did not load their parts within {timeout_s:.0f} s")
        pending.pop(ready[0])
        try:
            started.append(ray.get(ready[0]))
        except RayTaskError as e:
            # The file's name and what to do, without Ray's traceback around it.
            if isinstance(e.cause, PartitionFormatError):
                raise e.cause from None
            raise
    return started
