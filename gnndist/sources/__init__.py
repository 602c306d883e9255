"""Graph sources: every supported input becomes a :class:`gnndist.graph.Graph`.

``load_graph(SourceConfig(dataset=...))`` accepts:

- a bundled name: ``cora`` (or ``bundled:cora``);
- ``synthetic:KIND:key=value,...`` with KIND ``sbm`` or ``rmat`` (see :mod:`.synthetic`);
- a path, recognised by :data:`FORMATS` in order: a Planetoid folder (``raw/ind.<name>.x``), an
  OGB node-property folder (``raw/edge.csv.gz``), a gnn-benchmark ``.npz`` (``adj_indptr``
  key), a heterophilous ``.npz`` (``node_features`` and ``edges`` keys), an edge list
  (``.csv``/``.tsv``/``.txt``/``.parquet``), a file written by ``dgl.save_graphs`` (its first
  graph), a DistDGL partition config ``.json`` (see :mod:`.dgl`; both need DGL).

In-memory graphs: :func:`from_pyg`, :func:`from_dgl` and :func:`from_networkx`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from gnndist.config import SourceConfig
from gnndist.graph import Graph, GraphError, normalized_rows
from gnndist.progress import QuietReporter, Reporter
from gnndist.sources._io import npz_keys
from gnndist.sources.bundled import BUNDLED, load_bundled
from gnndist.sources.dgl import from_dgl, is_distdgl_config, is_graph_file, load_distdgl, load_graph_file
from gnndist.sources.edgelist import SUFFIXES as EDGELIST_SUFFIXES
from gnndist.sources.edgelist import load_edgelist
from gnndist.sources.networkx import from_networkx
from gnndist.sources.npz import load_gnn_benchmark, load_heterophilous
from gnndist.sources.ogb import is_ogb_folder, load_ogb
from gnndist.sources.planetoid import load_planetoid, planetoid_name
from gnndist.sources.pyg import from_pyg
from gnndist.sources.splits import split_record, with_split
from gnndist.sources.synthetic import PREFIX as SYNTHETIC_PREFIX
from gnndist.sources.synthetic import load_synthetic

__all__ = ["FORMATS", "Format", "detect_format", "from_dgl", "from_networkx", "from_pyg", "load_graph", "with_split"]

BUNDLED_PREFIX = "bundled:"
#: ``meta["features_normalized"]`` of a graph whose features :func:`load_graph` normalised.
NORMALIZED_BY = "row_sum"


@dataclass(frozen=True)
class Format:
    """One on-disk input format: how to recognise a path and how to load it."""

    description: str
    matches: Callable[[Path], bool]
    load: Callable[[Path, SourceConfig], Graph]


def _npz_with(*keys: str) -> Callable[[Path], bool]:
    return lambda p: p.is_file() and p.suffix == ".npz" and set(keys) <= npz_keys(p)


#: Path formats, tried in order; the first whose ``matches`` accepts the path loads it.
FORMATS: dict[str, Format] = {
    "planetoid": Format("a Planetoid folder holding raw/ind.<name>.x ...",
                        lambda p: p.is_dir() and planetoid_name(p) is not None, load_planetoid),
    "ogb": Format("an OGB node-property folder holding raw/edge.csv.gz", lambda p: p.is_dir() and is_ogb_folder(p),
                  load_ogb),
    "gnn-benchmark": Format("a gnn-benchmark .npz (adj_indptr, attr_*, labels keys)", _npz_with("adj_indptr"),
                            load_gnn_benchmark),
    "heterophilous": Format("a heterophilous .npz (node_features, node_labels, edges, *_masks keys)",
                            _npz_with("node_features", "edges"), load_heterophilous),
    "edgelist": Format("an edge list " + "/".join(EDGELIST_SUFFIXES),
                       lambda p: p.is_file() and p.suffix.lower() in EDGELIST_SUFFIXES, load_edgelist),
    "dgl": Format("a DGL graph file written by dgl.save_graphs (its first graph)", is_graph_file, load_graph_file),
    "distdgl": Format("a DistDGL partition config <name>.json written by dgl.distributed.partition_graph",
                      is_distdgl_config, load_distdgl),
}


def detect_format(path: Path) -> str:
    """The name of the first format in :data:`FORMATS` that recognises ``path``; GraphError if none."""
    if not path.exists():
        raise GraphError(str(path), "no such file or directory", _accepted())
    for name, fmt in FORMATS.items():
        if fmt.matches(path):
            return name
    raise GraphError(str(path), "not a recognised graph format", _accepted())


def load_graph(config: SourceConfig, reporter: Reporter | None = None) -> Graph:
    """The graph ``config.dataset`` names (see the module docstring), with the split it was given
    recorded as ``meta["split"]`` (see :func:`gnndist.sources.splits.split_record`), and
    ``meta["features_normalized"]`` when ``config.normalize_features`` normalised them."""
    graph = _load(config, reporter or QuietReporter())
    if config.normalize_features:
        graph = replace(graph, features=normalized_rows(graph.features, graph.origin))
        graph.meta["features_normalized"] = NORMALIZED_BY
    # The graph was just built, so its meta dict is nobody else's.
    graph.meta["split"] = split_record(config.split, config.seed, graph)
    return graph


def _load(config: SourceConfig, reporter: Reporter) -> Graph:
    dataset = config.dataset
    if dataset in BUNDLED or dataset.startswith(BUNDLED_PREFIX):
        name = dataset.removeprefix(BUNDLED_PREFIX)
        with reporter.step(f"loading {name}"):
            return load_bundled(name, config)
    if dataset.startswith(SYNTHETIC_PREFIX):
        with reporter.step(f"generating {dataset.split(':')[1]}"):
            return load_synthetic(dataset, config)
    path = Path(dataset).expanduser()
    fmt = detect_format(path)
    with reporter.step(f"loading {path.name} ({fmt})"):
        return FORMATS[fmt].load(path, config)


def _accepted() -> str:
    return ("accepted: a bundled name " + ", ".join(sorted(BUNDLED)) + f"; {SYNTHETIC_PREFIX}sbm|rmat:key=value,...; "
            + "; ".join(f.description for f in FORMATS.values()))
