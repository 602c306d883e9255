"""Workers keep freed memory for reuse (glibc): a step's large buffers are not faulted in anew."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("psutil")

PROGRAM = """
import sys, psutil, torch
from gnndist.train.loop import keep_freed_memory
if sys.argv[1] == "keep":
    keep_freed_memory()
process = psutil.Process()
before = process.memory_info().rss
buffer = torch.ones(64 * 2**20 // 4)  # 64 MiB: above glibc's default mmap threshold
del buffer
print(process.memory_info().rss - before)
"""


def _kept_bytes(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_a_freed_large_buffer_stays_resident_for_the_next_step():
    assert _kept_bytes("default") < 16 * 2**20  # glibc returns an mmap-ed buffer at once
    assert _kept_bytes("keep") >= 60 * 2**20
