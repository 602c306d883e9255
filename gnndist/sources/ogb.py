"""OGB node-property folders (the layout ``ogb.nodeproppred`` downloads, e.g. ``ogbn_arxiv/``).

- ``raw/edge.csv.gz``: one ``src,dst`` row per edge, no header (global ids from 0);
- ``raw/node-feat.csv.gz`` (optional): one row of floats per node;
- ``raw/node-label.csv.gz`` (optional): one number per node; NaN means unlabelled;
- ``raw/num-node-list.csv.gz`` (optional): the node count (else the feature/label rows, else the
  largest edge id + 1);
- ``split/<scheme>/{train,valid,test}.csv.gz``: node ids of each split. ``config.split`` may name
  a scheme; ``"default"`` takes the only one, ``"<int>"`` indexes the schemes in name order.

Edges are symmetrised when ``SourceConfig.undirected`` (OGB's own loaders keep arxiv directed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gnndist.config import SourceConfig
from gnndist.graph import UNLABELLED, Graph, GraphError, check_finite, class_count
from gnndist.sources._io import check_rows, ids_to_mask, labels_from_array, load_table
from gnndist.sources.splits import Masks, choose_split, parse_split

EDGE_FILE = Path("raw") / "edge.csv.gz"


def is_ogb_folder(path: Path) -> bool:
    """Whether ``path`` holds ``raw/edge.csv.gz``."""
    return (path / EDGE_FILE).is_file()


def load_ogb(folder: Path, config: SourceConfig) -> Graph:
    """The graph in OGB node-property folder ``folder``."""
    raw = folder / "raw"
    edges = load_table(folder / EDGE_FILE, np.int64)
    origin = str(folder / EDGE_FILE)
    if edges.shape[0] == 0 or edges.shape[1] != 2:
        raise GraphError(origin, f"expected src,dst rows, got an array of shape {edges.shape}")
    x = _optional(raw / "node-feat.csv.gz", np.float32)
    if x is not None:
        check_finite(x, str(raw / "node-feat.csv.gz"))
    labels_origin = str(raw / "node-label.csv.gz")
    labels = _optional(raw / "node-label.csv.gz", np.float64)
    y = labels_from_array(labels, labels_origin) if labels is not None else None
    n = _num_nodes(raw, edges, x, y)
    if y is None:
        y = np.full(n, UNLABELLED, dtype=np.int64)
    num_classes = class_count(y, labels_origin, config.num_classes)
    train, val, test = _split(folder, config, y, n)
    return Graph.from_edges(edges[:, 0], edges[:, 1], num_nodes=n, x=x, y=y, num_classes=num_classes,
                            labels_origin=labels_origin, train_mask=train, val_mask=val, test_mask=test,
                            name=folder.name, origin=origin, undirected=config.undirected, meta={"format": "ogb"})


def _optional(path: Path, dtype) -> np.ndarray | None:
    return load_table(path, dtype) if path.is_file() else None


def _num_nodes(raw: Path, edges: np.ndarray, x: np.ndarray | None, y: np.ndarray | None) -> int:
    """The declared node count, else the feature/label rows, else the largest edge id + 1;
    every per-node file must agree with it."""
    count_file = raw / "num-node-list.csv.gz"
    if count_file.is_file():
        n = int(load_table(count_file, np.int64).sum())
    elif x is not None:
        n = x.shape[0]
    elif y is not None:
        n = y.shape[0]
    else:
        n = int(edges.max()) + 1
    if x is not None:
        check_rows(x, n, "features", str(raw / "node-feat.csv.gz"))
    if y is not None:
        check_rows(y, n, "labels", str(raw / "node-label.csv.gz"))
    return n


def _split(folder: Path, config: SourceConfig, y: np.ndarray, n: int) -> Masks:
    """Masks from a named scheme folder, or from the generic split rules over all schemes."""
    split_dir = folder / "split"
    schemes = sorted(p for p in split_dir.iterdir() if p.is_dir()) if split_dir.is_dir() else []
    named = [p for p in schemes if p.name == config.split]
    if named:
        return _scheme_masks(named[0], n)
    spec = parse_split(config.split)
    if spec.kind == "default" and len(schemes) > 1:
        raise GraphError(str(split_dir), f"holds several split schemes {[p.name for p in schemes]}",
                         "name one as the split")
    indexed = [_scheme_masks(p, n) for p in schemes] if spec.kind in ("default", "index") else []
    return choose_split(spec, y, seed=config.seed, origin=str(split_dir), indexed=indexed)


def _scheme_masks(scheme: Path, n: int) -> Masks:
    """bool [N] masks from ``{train,valid,test}.csv.gz`` node-id files."""
    masks = []
    for part in ("train", "valid", "test"):
        path = scheme / f"{part}.csv.gz"
        masks.append(ids_to_mask(load_table(path, np.int64), n, str(path)))
    return tuple(masks)
