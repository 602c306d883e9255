"""What every benchmark script writes: its results plus the machine they were measured on."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def write_results(out: Path, payload: dict) -> None:
    """Write ``payload`` as JSON to ``out``, with the machine's CPUs, platform and versions added."""
    import numpy
    import torch

    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
               "numpy": numpy.__version__, "torch": torch.__version__}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**payload, "machine": machine}, indent=2))
    print(f"results written to {out}")
