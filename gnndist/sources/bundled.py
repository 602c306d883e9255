"""Datasets shipped with the repository under ``datasets/`` (gnn-benchmark ``.npz`` layout).

``datasets/`` sits beside the ``gnndist`` package in the source tree and is found through this
file's location, which holds for the editable installs the project uses. Cora keeps its public
split as ``train_mask/val_mask/test_mask``; Amazon Photo has none, so the source's split applies
(by default 20 training and 30 validation nodes per class).
"""

from __future__ import annotations

from pathlib import Path

from gnndist.config import SourceConfig
from gnndist.graph import Graph, GraphError
from gnndist.sources.npz import load_gnn_benchmark

#: Bundled name -> file under ``datasets/``.
BUNDLED = {"cora": "cora/cora.npz", "amazon-photo": "amazon-photo/amazon_electronics_photo.npz"}


def datasets_dir() -> Path:
    """The repository's ``datasets/`` folder."""
    return Path(__file__).resolve().parents[2] / "datasets"


def load_bundled(name: str, config: SourceConfig) -> Graph:
    """The bundled dataset ``name`` (one of :data:`BUNDLED`)."""
    if name not in BUNDLED:
        raise GraphError(f"bundled:{name}", "no such bundled dataset", f"bundled datasets: {sorted(BUNDLED)}")
    path = datasets_dir() / BUNDLED[name]
    if not path.is_file():
        raise GraphError(str(path), f"the bundled {name} file is missing",
                         "use a source checkout with an editable install (pip install -e .), "
                         f"or regenerate it with datasets/{name}/convert.py")
    return load_gnn_benchmark(path, config, name=name)
