"""Message buffers in shared memory: how a trainer and a partition server on the same node
exchange a request's ids and its reply without Ray's object store.

Through the object store, every array over Ray's inline limit (100 KB) is written into freshly
mapped pages: measured on this project's 2-core VM, putting a 12 MB reply took 13-15 ms, almost
all of it in the page faults of its 3,000 pages, and the reader faulted again. A
:class:`ReplyBuffer` is one file in ``/dev/shm`` per trainer and owner part, mapped once by both
processes and reused for every message, so after the first call neither side faults. The call
itself, with a few small arguments and a small answer, still goes through the server's Ray
actor. Servers on other nodes answer through the object store.

A message is a list of sections (:data:`Layout`: dtype and element count each), the first
holding the request's ids; :func:`fetch_layout` and :func:`sample_layout` are the two kinds.
"""

from __future__ import annotations

import mmap
import os
import tempfile
import threading
import uuid
from pathlib import Path

import numpy as np

SHM_DIR = Path("/dev/shm")
PREFIX = "gnndist-reply-"
_ALIGN = 64  # each section starts on a cache line
# Larger messages (a big cache fill, say) go through the object store, so that a buffer, which
# keeps its largest size, stays bounded. A 1024-seed batch at 1M nodes / 2 parts needs about 35 MB.
MAX_MESSAGE_BYTES = 256 << 20

Layout = list[tuple[type, int]]


def shm_available() -> bool:
    """Whether this machine has a POSIX shared-memory file system (Linux)."""
    return os.name == "posix" and SHM_DIR.is_dir() and os.access(SHM_DIR, os.W_OK)


def fetch_layout(n: int, dim: int, dtype=np.float32) -> Layout:
    """Fetching ``n`` dense rows: the int64 ids, then the reply's features ``[n * dim]`` (the
    part's stored ``dtype``) and int64 labels."""
    return [(np.int64, n), (dtype, n * dim), (np.int64, n)]


def sample_layout(n: int, fanout: int) -> Layout:
    """Sampling ``n`` nodes (``fanout >= 0``): the int64 ids, then the reply's per-node counts
    and up to ``n * fanout`` neighbours."""
    return [(np.int64, n), (np.int64, n), (np.int64, n * fanout)]


def _offsets(layout: Layout) -> list[int]:
    """Start of each section, and the end of the last."""
    at = [0]
    for dtype, count in layout:
        at.append(-(-(at[-1] + np.dtype(dtype).itemsize * count) // _ALIGN) * _ALIGN)
    return at


def message_bytes(layout: Layout) -> int:
    return _offsets(layout)[-1]


def sections(buf: mmap.mmap, layout: Layout) -> list[np.ndarray]:
    """Views of ``buf``, one 1-d array per section of ``layout``."""
    at = _offsets(layout)
    return [np.frombuffer(buf, dtype=dtype, count=count, offset=at[i]) for i, (dtype, count) in enumerate(layout)]


class ReplyBuffer:
    """A trainer's shared-memory buffer for its messages to one partition server on its node.

    :meth:`request` writes a request's ids into the buffer (growing it first if needed: a new
    file, at least doubled, so growth is rare) and returns the first arguments of the server's
    ``*_into`` methods, which read them there and write their reply after them. The file is
    unlinked as soon as the server has opened it (:meth:`served`): both mappings stay valid,
    and nothing is left in ``/dev/shm`` if either process dies later. Callers hold :attr:`lock`
    from the request until they have copied the reply out.
    """

    def __init__(self) -> None:
        self.client = uuid.uuid4().hex  # the server keeps one mapping per client
        self.lock = threading.Lock()
        self.path: str | None = None
        self._buf: mmap.mmap | None = None
        self._linked = False

    @property
    def capacity(self) -> int:
        return len(self._buf) if self._buf is not None else 0

    @staticmethod
    def fits(layout: Layout) -> bool:
        """Whether a message of ``layout`` may go through a buffer (at most :data:`MAX_MESSAGE_BYTES`)."""
        return message_bytes(layout) <= MAX_MESSAGE_BYTES

    def request(self, ids: np.ndarray, layout: Layout) -> tuple[str, str, int]:
        """Write ``ids`` (int64, the first section of ``layout``); ``(client, path, capacity)``."""
        need = message_bytes(layout)
        if need > self.capacity:
            self._grow(max(need, 2 * self.capacity, 1 << 20))
        sections(self._buf, layout[:1])[0][:] = ids
        return self.client, self.path, self.capacity

    def _grow(self, size: int) -> None:
        self.close()
        size = -(-size // mmap.PAGESIZE) * mmap.PAGESIZE
        fd, self.path = tempfile.mkstemp(prefix=f"{PREFIX}{os.getpid()}-", dir=SHM_DIR)
        try:
            os.ftruncate(fd, size)
            self._buf = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._linked = True

    def served(self) -> None:
        """After the first call on a new file: the server has it mapped (or has failed), so unlink it."""
        if self._linked:
            self._linked = False
            Path(self.path).unlink(missing_ok=True)

    def reply(self, layout: Layout) -> list[np.ndarray]:
        """The reply sections of the last request (views, valid until the next request)."""
        return sections(self._buf, layout)[1:]

    def close(self) -> None:
        """Drop the buffer (its mapping goes when the last view of it does)."""
        self.served()
        self._buf = None


class ReplyMaps:
    """A server's mappings of its clients' buffers, one per client (its latest file)."""

    def __init__(self) -> None:
        self._maps: dict[str, tuple[str, mmap.mmap]] = {}

    def sections(self, client: str, path: str, capacity: int, layout: Layout) -> list[np.ndarray]:
        """The sections of ``layout`` in the buffer ``path`` (opened on first use; the client's
        older file is dropped)."""
        known = self._maps.get(client)
        if known is None or known[0] != path:
            resolved = Path(path).resolve()
            if resolved.parent != SHM_DIR or not resolved.name.startswith(PREFIX):
                raise ValueError(f"reply buffer {path!r} is not a gnndist buffer in {SHM_DIR}")
            with open(resolved, "r+b") as f:
                known = self._maps[client] = (path, mmap.mmap(f.fileno(), capacity))
        if message_bytes(layout) > len(known[1]):
            raise ValueError(f"a message of {message_bytes(layout)} bytes does not fit reply buffer {path!r} "
                             f"of {len(known[1])}")
        return sections(known[1], layout)
