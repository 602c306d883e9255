"""Planetoid raw folders (Cora, CiteSeer, PubMed): ``raw/ind.{name}.{x,tx,allx,y,ty,ally,graph,test.index}``.

Read exactly as ``torch_geometric.datasets.Planetoid`` reads them (``torch_geometric.io.planetoid``):
same node order, features, labels, edges (self-loops dropped, duplicates merged, direction as
stored) and the public split: train = the first ``len(y)`` nodes, val = the next 500, test =
``test.index``. CiteSeer's test indices have gaps (isolated nodes without features); as in PyG,
those nodes get zero features and label 0 and sit in no split.

The ``ind.*`` files are Python 2 pickles. They are read with :class:`SafeUnpickler`, which only
resolves an explicit allowlist of array and container constructors, so a crafted file cannot
run code. Split ``"<int>"`` reads geom-gcn's ``{name}_split_0.6_0.2_<int>.npz`` from ``raw/`` or
``geom-gcn/raw/``.
"""

from __future__ import annotations

import codecs
import collections
import pickle
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from gnndist.config import SourceConfig
from gnndist.graph import Graph, GraphError
from gnndist.sources._io import ids_to_mask, load_npz, load_table, require_file, require_keys
from gnndist.sources.splits import Masks, choose_split, parse_split

#: The globals a Planetoid pickle may name, by (module, name) as written in the file; the value
#: is what the name resolves to. Python 2 pickles say ``__builtin__``; numpy 1 and 2 and scipy
#: moved their internal modules over time, so each class appears under every module it was saved from.
_ALLOWED = {
    **{(m, "_reconstruct"): np.array(0).__reduce__()[0]
       for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "scalar"): np.array(0).flat[0].__reduce__()[0] for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(f"scipy.sparse{sub}", cls.__name__): cls
       for cls, subs in ((sp.csr_matrix, (".csr", "._csr")), (sp.csc_matrix, (".csc", "._csc")),
                         (sp.lil_matrix, (".lil", "._lil")))
       for sub in ("", *subs)},
    ("collections", "defaultdict"): collections.defaultdict,
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(text, "latin1").
    ("_codecs", "encode"): codecs.encode,
    **{(m, t.__name__): t for m in ("__builtin__", "builtins") for t in (list, dict, int, set, tuple)},
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in :data:`_ALLOWED` (GraphError otherwise)."""

    def __init__(self, file, origin: str):
        super().__init__(file, encoding="latin1")
        self._origin = origin

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise GraphError(self._origin, f"the pickle asks for {module}.{name}, which is not an array "
                             "or container type", "refusing to load it; Planetoid files hold only "
                             "numpy/scipy arrays and dicts of lists") from None


def safe_unpickle(path: Path):
    """The object in pickle file ``path``, built through :class:`SafeUnpickler`."""
    require_file(path, "Planetoid")
    with path.open("rb") as f:
        try:
            return SafeUnpickler(f, str(path)).load()
        except GraphError:
            raise
        except Exception as e:  # a corrupt pickle can fail in many ways; report them all the same
            raise GraphError(str(path), f"not a readable Planetoid pickle: {e}") from e


def planetoid_name(folder: Path) -> str | None:
    """The dataset prefix of a Planetoid folder (``cora`` for ``raw/ind.cora.x``), else None."""
    for raw in (folder / "raw", folder):
        found = sorted(raw.glob("ind.*.x")) if raw.is_dir() else []
        if found:
            return found[0].name[len("ind."):-len(".x")]
    return None


def load_planetoid(folder: Path, config: SourceConfig) -> Graph:
    """The Planetoid graph in ``folder`` (holding ``raw/ind.*`` or the ``ind.*`` files themselves)."""
    name = planetoid_name(folder)
    if name is None:
        raise GraphError(str(folder), "no raw/ind.<name>.x file: not a Planetoid folder")
    raw = folder / "raw" if (folder / "raw" / f"ind.{name}.x").is_file() else folder
    x, y, n_train, test_index = _features_and_labels(raw, name)
    n = y.shape[0]
    src, dst = _edges(raw / f"ind.{name}.graph")
    origin = str(raw / f"ind.{name}.x")
    public = (ids_to_mask(np.arange(n_train), n, origin), ids_to_mask(np.arange(n_train, n_train + 500), n, origin),
              ids_to_mask(test_index, n, origin))
    spec = parse_split(config.split)
    indexed = _geom_gcn_splits(folder, name, n) if spec.kind == "index" else ()
    train, val, test = choose_split(spec, y, seed=config.seed, origin=origin, default=public, indexed=indexed)
    return Graph.from_edges(src, dst, num_nodes=n, x=x, y=y, num_classes=config.num_classes, train_mask=train,
                            val_mask=val, test_mask=test, name=name, origin=origin, meta={"format": "planetoid"})


def _features_and_labels(raw: Path, name: str) -> tuple[sp.csr_matrix, np.ndarray, int, np.ndarray]:
    """float32 [N, F] features (CSR: bag-of-words, about 1% non-zero), int64 [N] labels, the
    number of training nodes (rows of ``y``) and int64 test node ids, in PyG's node order."""
    tx, allx = (sp.csr_matrix(safe_unpickle(raw / f"ind.{name}.{k}"), dtype=np.float32) for k in ("tx", "allx"))
    y_train, ty, ally = (_dense(safe_unpickle(raw / f"ind.{name}.{k}")) for k in ("y", "ty", "ally"))
    test_index = load_table(raw / f"ind.{name}.test.index", np.int64)[:, 0]
    if tx.shape[0] != test_index.size or ty.shape[0] != test_index.size:
        raise GraphError(str(raw / f"ind.{name}.tx"), f"{tx.shape[0]} test feature rows and {ty.shape[0]} "
                         f"test label rows for {test_index.size} test indices")
    sorted_test = np.sort(test_index)
    span = int(test_index.max() - test_index.min()) + 1
    if span != test_index.size:
        # CiteSeer: test ids skip isolated nodes; PyG gives those zero features and label rows.
        at = sorted_test - test_index.min()
        coo = tx.tocoo()
        tx = sp.csr_matrix((coo.data, (at[coo.row], coo.col)), shape=(span, tx.shape[1]))
        ty_full = np.zeros((span, ty.shape[1]), dtype=ty.dtype)
        ty_full[at] = ty
        ty = ty_full
    # The test rows come in test_index order: node test_index[i] takes row sorted_test[i].
    order = np.arange(allx.shape[0] + span)
    order[test_index] = sorted_test
    x = sp.vstack([allx, tx], format="csr")[order]
    y = np.concatenate([ally, ty]).argmax(axis=1).astype(np.int64)[order]
    return x, y, y_train.shape[0], test_index


def _edges(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Edge arrays ``key -> neighbour`` from the pickled adjacency dict (int64 [E] each)."""
    graph = safe_unpickle(path)
    if not isinstance(graph, dict):
        raise GraphError(str(path), f"expected a dict of adjacency lists, found {type(graph).__name__}")
    counts = np.fromiter((len(v) for v in graph.values()), dtype=np.int64, count=len(graph))
    src = np.repeat(np.fromiter(graph.keys(), dtype=np.int64, count=len(graph)), counts)
    dst = np.fromiter((u for v in graph.values() for u in v), dtype=np.int64, count=int(counts.sum()))
    return src, dst


def _dense(a) -> np.ndarray:
    return np.asarray(a.todense()) if sp.issparse(a) else np.asarray(a)


def _geom_gcn_splits(folder: Path, name: str, n: int) -> list[Masks]:
    """geom-gcn's numbered 60/20/20 splits, from ``raw/`` or ``geom-gcn/raw/`` beside the data."""
    for raw in (folder / "raw", folder / "geom-gcn" / "raw", folder):
        files = sorted(raw.glob(f"{name}_split_0.6_0.2_*.npz"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
        if files:
            return [_split_file(p, n) for p in files]
    return []


def _split_file(path: Path, n: int) -> Masks:
    arrays = load_npz(path)
    require_keys(arrays, ("train_mask", "val_mask", "test_mask"), path)
    masks = tuple(arrays[k].astype(bool) for k in ("train_mask", "val_mask", "test_mask"))
    if any(m.shape != (n,) for m in masks):
        raise GraphError(str(path), f"split masks must have shape ({n},)")
    return masks
