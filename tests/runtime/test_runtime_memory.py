"""keep_freed_memory and WORKER_ENV: after them, a process reuses the memory it freed instead of
faulting in fresh pages for every large allocation; with WORKER_ENV, in every thread."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import ray

from gnndist.runtime.memory import WORKER_ENV

_PROGRAM = """
import resource, sys
import numpy as np
from gnndist.runtime.memory import keep_freed_memory
took = keep_freed_memory() if sys.argv[1] == "keep" else None
np.ones(64 << 18, dtype=np.float32)  # 64 MiB, above glibc's largest mmap threshold
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    np.ones(64 << 18, dtype=np.float32)
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _PROGRAM, mode], capture_output=True, text=True, check=True)
    took, faults = out.stdout.split()
    return took, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_freed_blocks_are_reused_without_page_faults():
    # At least one fault per page fresh from the kernel, and pages may be 2 MiB huge pages.
    huge_pages = 4 * (64 << 20) // (2 << 20)
    took, default_faults = _faults("default")
    assert default_faults >= huge_pages  # glibc maps and unmaps each one: the test can tell
    took, kept_faults = _faults("keep")
    assert took == "True"
    assert kept_faults < huge_pages // 8


def _thread_faults(_actor=None, mib: int = 100) -> int:
    """Page faults of a new thread that allocates, fills and frees ``mib`` MiB four times, after
    a first round (above a malloc arena's 64 MiB heap: glibc maps such a block on its own)."""
    import resource
    import threading

    import numpy as np

    faults = []

    def work():
        np.ones(mib << 18, dtype=np.float32)
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        for _ in range(4):
            np.ones(mib << 18, dtype=np.float32)
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return faults[0]


# Ray workers cannot import this test module: send its functions by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@ray.remote(num_cpus=0)
class _Plain:
    def faults(self) -> int:
        return _thread_faults()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_partition_servers_reuse_freed_memory_in_every_thread(partitioned):
    _, servers, _ = partitioned
    huge_pages = 4 * (100 << 20) // (2 << 20)
    plain = _Plain.remote()
    assert ray.get(plain.faults.remote()) >= huge_pages  # a Ray worker's thread as it comes: the test can tell
    ray.kill(plain)
    for server in servers.handles:
        assert ray.get(server.__ray_call__.remote(_thread_faults)) < huge_pages // 8
        tunables = ray.get(server.__ray_call__.remote(lambda _: os.environ["GLIBC_TUNABLES"]))
        assert tunables == WORKER_ENV["GLIBC_TUNABLES"]
