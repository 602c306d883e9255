"""Keep freed memory in the process for the next batch instead of handing it back to the OS.

Every training step and every server reply allocates the same large arrays again (a batch's
features, a hidden layer of 46,928 x 128 floats). glibc serves allocations above its mmap
threshold (at most 32 MiB, lower until a first free raises it) with fresh ``mmap`` pages and
unmaps them on free, and it trims the top of its heap once enough is free: either way the next
step touches new pages, and each page costs a fault that zero-fills it. Measured on the 100k
benchmark's step: 6,000-20,000 faults and up to 58 ms of system time in a 200-310 ms step,
sometimes none, as glibc's dynamic threshold moved. With mmap off and trimming off, freed blocks
go back to malloc's free lists and the next step reuses them: no faults after the first step. The
process then keeps its peak footprint, as PyTorch's CUDA caching allocator does on a GPU.

That holds for the main thread only. Any other thread gets a malloc arena of its own, made of
64 MiB heaps that glibc unmaps as soon as one is wholly free, whatever the trim threshold, and a
block too large for one heap is mapped and unmapped on its own even with mmap off. Ray Train runs
the training loop in such a thread and the loader builds batches in another: measured at 100k,
each training worker still took up to 43,000 faults and 0.5 s of system time a second, until
``arena_max=1`` sent every thread to the main arena. The arena count is fixed once threads have
started, so gnndist's own Ray processes (partition servers and training workers) get all three
settings at start from :data:`WORKER_ENV`. A user's process is left as it is;
:func:`keep_freed_memory` gives a running process (a benchmark's peer) what can still be set.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt parameters, from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER = 2**31 - 1  # the largest value mallopt's int takes: bytes free at the top of the heap before a trim

# Environment variables of the Ray processes gnndist starts (``runtime_env={"env_vars": ...}``):
# one malloc arena for all threads, no mmap allocations, no trimming. Other C libraries ignore it.
WORKER_ENV = {"GLIBC_TUNABLES": ":".join(["glibc.malloc.arena_max=1", "glibc.malloc.mmap_max=0",
                                          f"glibc.malloc.trim_threshold={_NEVER}"])}


def keep_freed_memory() -> bool:
    """Turn off glibc malloc's mmap allocations and heap trimming for this process (the arenas
    of threads other than the main one keep their own behaviour; see the module's docstring).

    Returns True when both settings took, False where the C library is not glibc (macOS,
    Windows, musl), which keeps its own behaviour.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success and 0 on error.
    return mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, _NEVER) == 1
