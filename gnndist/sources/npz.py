"""Graphs stored as plain-array ``.npz`` files (always read with ``allow_pickle=False``).

Two layouts:
- gnn-benchmark (Shchur et al.; Amazon Photo/Computers, Coauthor CS/Physics, the bundled Cora):
  CSR adjacency ``adj_data/adj_indices/adj_indptr/adj_shape``, CSR features
  ``attr_data/attr_indices/attr_indptr/attr_shape``, ``labels`` [N]; optionally the masks
  ``train_mask/val_mask/test_mask`` [N] as the file's own split, and ``class_names``. Built as PyG's
  ``read_npz`` builds ``Amazon``/``Coauthor``: features binarised (every positive entry
  becomes 1), self-loops dropped, edges symmetrised (``SourceConfig.undirected``, default on).
  The features stay a CSR matrix (the graph's sparse features), never densified.
- heterophilous (Platonov et al.; Tolokers, Roman-empire, ...): ``node_features`` [N, F],
  ``node_labels`` [N], ``edges`` [E, 2] and ``train_masks/val_masks/test_masks`` [S, N]
  holding S numbered splits; symmetrised as PyG's ``HeterophilousGraphDataset`` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from gnndist.config import SourceConfig
from gnndist.graph import Graph, GraphError, class_count
from gnndist.sources._io import check_rows, labels_from_array, load_npz, require_keys
from gnndist.sources.splits import Masks, choose_split

GNN_BENCHMARK_KEYS = ("adj_data", "adj_indices", "adj_indptr", "adj_shape",
                      "attr_data", "attr_indices", "attr_indptr", "attr_shape", "labels")
HETEROPHILOUS_KEYS = ("node_features", "node_labels", "edges", "train_masks", "val_masks", "test_masks")
MASK_KEYS = ("train_mask", "val_mask", "test_mask")


def load_gnn_benchmark(path: Path, config: SourceConfig, *, name: str | None = None) -> Graph:
    """A gnn-benchmark ``.npz`` graph; node ids are the CSR row order."""
    arrays = load_npz(path)
    origin = str(path)
    if "labels_data" in arrays:
        raise GraphError(origin, "labels are stored as a sparse matrix: multi-label targets are not supported")
    require_keys(arrays, GNN_BENCHMARK_KEYS, path)
    adj = _csr(arrays, "adj", origin)
    n = adj.shape[0]
    if adj.shape[1] != n:
        raise GraphError(origin, f"the adjacency matrix is {adj.shape[0]}x{adj.shape[1]}, not square")
    attr = _csr(arrays, "attr", origin)
    check_rows(attr, n, "features", origin)
    x = sp.csr_matrix(attr, dtype=np.float32, copy=True)
    x.sum_duplicates()  # as densifying would add them, before binarising
    x.data[x.data > 0] = 1  # PyG's read_npz binarises the bag-of-words counts
    y = labels_from_array(arrays["labels"], origin)
    check_rows(y, n, "labels", origin)
    num_classes = class_count(y, origin, config.num_classes)
    own = _own_masks(arrays, n, origin)
    train, val, test = choose_split(config.split, y, seed=config.seed, origin=origin, default=own)
    coo = adj.tocoo()
    return Graph.from_edges(coo.row, coo.col, num_nodes=n, x=x, y=y, num_classes=num_classes, train_mask=train,
                            val_mask=val, test_mask=test, name=name or path.stem, origin=origin,
                            undirected=config.undirected, meta={"format": "gnn-benchmark"},
                            class_names=_class_names(arrays, num_classes))


def _class_names(arrays: dict[str, np.ndarray], num_classes: int) -> tuple[str, ...] | None:
    """A gnn-benchmark file's ``class_names`` (one per class id), if it has a usable one:
    names are a description, so a file whose list does not fit its classes loads without them."""
    names = arrays.get("class_names")
    if names is None or names.dtype.kind not in "US" or names.shape != (num_classes,):
        return None
    return tuple(str(name) for name in names)


def load_heterophilous(path: Path, config: SourceConfig) -> Graph:
    """A heterophilous-benchmark ``.npz`` graph; ``config.split`` ``"<int>"`` picks one of its splits."""
    arrays = load_npz(path)
    origin = str(path)
    require_keys(arrays, HETEROPHILOUS_KEYS, path)
    x = arrays["node_features"]
    n = x.shape[0]
    y = labels_from_array(arrays["node_labels"], origin)
    check_rows(y, n, "labels", origin)
    num_classes = class_count(y, origin, config.num_classes)
    edges = arrays["edges"]
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise GraphError(origin, f"edges must have shape [E, 2], got {edges.shape}")
    splits = _numbered_masks(arrays, n, origin)
    train, val, test = choose_split(config.split, y, seed=config.seed, origin=origin, indexed=splits)
    return Graph.from_edges(edges[:, 0], edges[:, 1], num_nodes=n, x=x, y=y, num_classes=num_classes,
                            train_mask=train, val_mask=val, test_mask=test, name=path.stem, origin=origin,
                            undirected=config.undirected, meta={"format": "heterophilous"})


def _csr(arrays: dict[str, np.ndarray], prefix: str, origin: str) -> sp.csr_matrix:
    shape = tuple(int(v) for v in arrays[f"{prefix}_shape"])
    try:
        return sp.csr_matrix((arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
                             shape=shape)
    except ValueError as e:
        raise GraphError(origin, f"{prefix}_* arrays do not form a CSR matrix of shape {shape}: {e}") from e


def _own_masks(arrays: dict[str, np.ndarray], n: int, origin: str) -> Masks | None:
    """The file's ``train_mask/val_mask/test_mask`` (bool [N]) if it has all three, else None."""
    if not all(k in arrays for k in MASK_KEYS):
        return None
    masks = tuple(arrays[k].astype(bool) for k in MASK_KEYS)
    for key, mask in zip(MASK_KEYS, masks, strict=True):
        if mask.shape != (n,):
            raise GraphError(origin, f"{key} has shape {mask.shape}, expected ({n},)")
    return masks


def _numbered_masks(arrays: dict[str, np.ndarray], n: int, origin: str) -> list[Masks]:
    """The S numbered splits of ``train_masks/val_masks/test_masks`` [S, N] as a list of masks."""
    stacks = [np.atleast_2d(arrays[f"{k}s"]).astype(bool) for k in MASK_KEYS]
    if any(s.shape != stacks[0].shape or s.shape[1] != n for s in stacks):
        raise GraphError(origin, f"split masks have shapes {[s.shape for s in stacks]}, expected [S, {n}] each")
    return [tuple(s[i] for s in stacks) for i in range(stacks[0].shape[0])]
