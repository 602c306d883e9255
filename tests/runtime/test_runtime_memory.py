"""keep_freed_memory: after it, a process reuses the memory it freed instead of faulting in
fresh pages for every large allocation."""

from __future__ import annotations

import subprocess
import sys

import pytest

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
