"""Ray stays out of the core: only runtime/, train/ and cli.py may import it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = ("gnndist/runtime/", "gnndist/train/", "gnndist/cli.py")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_ray_is_imported_only_where_allowed():
    offenders = []
    for path in [*ROOT.glob("gnndist/**/*.py"), *ROOT.glob("partitioners/**/*.py")]:
        rel = path.relative_to(ROOT).as_posix()
        if "ray" in _imports(path) and not rel.startswith(ALLOWED):
            offenders.append(rel)
    assert offenders == []


def test_importing_gnndist_needs_neither_ray_nor_dgl():
    import subprocess
    import sys

    code = "import sys, gnndist, gnndist.graph, gnndist.sources, partitioners; " \
           "print('ray' in sys.modules, 'dgl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_training_step_imports_without_ray():
    # A machine without Ray (a GPU box checking the step, scripts/gpu_check.py) builds the models,
    # stages the batches, runs the step and checkpoints with these; the package's train/evaluate
    # still load on use, and `evaluate` stays the function even after its submodule of the same
    # name is imported.
    import subprocess
    import sys

    code = "import sys, gnndist.train.models, gnndist.train.step, gnndist.train.checkpoint, gnndist.train.device; " \
           "print('ray' in sys.modules); import gnndist.train.evaluate; " \
           "from gnndist.train import evaluate, train; print(callable(evaluate), callable(train))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "True"]


def test_a_partition_server_starts_without_torch():
    # One server process per part starts with every run and evaluation; torch's import was about
    # 2 s of each. The package's Graph and MiniBatch still load on use.
    import subprocess
    import sys

    code = "import sys, gnndist.runtime.partition_server; print('torch' in sys.modules); " \
           "import gnndist, gnndist.sampling; print(gnndist.Graph.__name__, gnndist.sampling.MiniBatch.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "Graph", "MiniBatch"]
