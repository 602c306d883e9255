"""Graphs from DGL: an in-memory ``DGLGraph``, a file written by ``dgl.save_graphs``, and the
partitions that ``dgl.distributed.partition_graph`` writes for DistDGL.

DGL is imported inside the functions, never at module level: ``import gnndist`` and every other
source work without it. DGL's last release on PyPI for Python 3.11, 2.1.0, needs torch 2.0 to
2.2.1, so it lives in an environment of its own beside the main one (``make dgl-env`` builds
``.venv-dgl``).

The node data names are DGL's datasets' (``feat``, ``label``, ``train_mask``, ``val_mask``,
``test_mask``); :func:`from_dgl` takes others by argument, the files always use these. Edges are
taken as the graph stores them (DGL, like PyG, stores an undirected graph with both directions),
so ``SourceConfig.undirected`` does not apply; edge data is not read. Both files are DGL's own
binary formats, which its C++ serializer reads without pickle.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from gnndist.config import SourceConfig
from gnndist.graph import UNLABELLED, Graph, GraphError
from gnndist.sources._io import labels_from_array
from gnndist.sources.pyg import split_mask
from gnndist.sources.splits import with_split

MASK_KEYS = ("train_mask", "val_mask", "test_mask")

#: The first 8 bytes of a ``dgl.save_graphs`` file: DGL's serializer magic number (little-endian).
GRAPH_FILE_MAGIC = (0xDD2E4FF046B4A13F).to_bytes(8, "little")

#: The original ids of the nodes, as DGL's distributed partitioning pipeline writes them into each
#: part folder and as a user saves the mapping ``partition_graph(..., return_mapping=True)`` returns
#: beside the config: a ``dgl.data.utils.save_tensors`` dict holding one int64 tensor.
ORIG_NIDS = "orig_nids.dgl"

#: Keys that every DistDGL partition config holds, besides one ``part-<i>`` entry per part.
DISTDGL_KEYS = ("graph_name", "num_nodes", "num_parts", "node_map", "ntypes", "etypes")

#: How to get DGL, for the errors of everything that needs it (here, and training a DGL model).
NEEDS_DGL_ENV = ("DGL 2.1 needs torch 2.0 to 2.2.1, so it has an environment of its own: build it with "
                 "`make dgl-env` and run .venv-dgl/bin/gnndist (or .venv-dgl/bin/python)")


def from_dgl(g, *, feature_key: str = "feat", label_key: str = "label", mask_keys: tuple[str, str, str] = MASK_KEYS,
             ntype: str | None = None, etype: str | tuple[str, str, str] | None = None, name: str = "dgl",
             split_index: int = 0, num_classes: int | None = None, origin: str | None = None) -> Graph:
    """A Graph from a homogeneous ``dgl.DGLGraph``; node ids are DGL's.

    Reads the edges ``g.edges()`` (source -> destination, kept as they are) and the node data
    ``g.ndata[feature_key]`` (float [N, F] or [N]; optional), ``g.ndata[label_key]`` (int [N] or
    [N, 1]; optional, missing means ``UNLABELLED``) and the train/val/test masks named by
    ``mask_keys`` (bool [N], or column ``split_index`` of [N, S] masks holding S splits; a missing
    one is empty). ``num_classes``: the class count if the labels do not show it (default: the
    largest label + 1, see :func:`gnndist.graph.class_count`).

    A heterograph is refused unless ``ntype`` and ``etype`` (a relation name or a canonical
    ``(src_type, relation, dst_type)``) pick one node type and one edge type between its nodes;
    ``ntype`` alone does when exactly one edge type joins its nodes. ``origin``: where ``g`` came
    from, for error messages (default: a description of ``g``).
    """
    origin = origin or f"<DGL {type(g).__name__} {name!r}>"
    ntype, canonical = _homogeneous_types(g, ntype, etype, origin)
    ndata = g.nodes[ntype].data
    if "inner_node" in ndata:
        raise GraphError(origin, "this is one part of a DistDGL partition (its nodes have inner_node data), "
                         "not a whole graph", "read the partition through its config .json, which names every part")
    src, dst = g.edges(etype=canonical)
    meta = {"format": "dgl"}
    if not g.is_homogeneous:
        meta.update(ntype=ntype, etype=":".join(canonical))
    return _graph(src, dst, g.num_nodes(ntype), ndata, feature_key=feature_key, label_key=label_key,
                  mask_keys=mask_keys, split_index=split_index, num_classes=num_classes, name=name, origin=origin,
                  meta=meta)


def is_graph_file(path: Path) -> bool:
    """Whether ``path`` is a file that starts as ``dgl.save_graphs`` files do (reads 8 bytes)."""
    try:
        with path.open("rb") as f:
            return f.read(len(GRAPH_FILE_MAGIC)) == GRAPH_FILE_MAGIC
    except OSError:
        return False


def is_distdgl_config(path: Path) -> bool:
    """Whether ``path`` is a ``.json`` file holding the keys of a DistDGL partition config."""
    if not (path.is_file() and path.suffix.lower() == ".json"):
        return False
    meta = _json(path)
    return isinstance(meta, dict) and all(key in meta for key in (*DISTDGL_KEYS, "part-0"))


def load_graph_file(path: Path, config: SourceConfig) -> Graph:
    """The first graph of a file written by ``dgl.save_graphs``, with ``config``'s split and class
    count (the graph's own masks are its ``default`` split)."""
    dgl = _import_dgl(str(path))
    try:
        graphs, _ = dgl.load_graphs(str(path), [0])
    except dgl.DGLError as e:
        raise GraphError(str(path), f"not a readable DGL graph file: {_message(e)}",
                         "a file cut short (an interrupted copy) reads like this: write it again with "
                         "dgl.save_graphs") from e
    graph = from_dgl(graphs[0], name=path.stem, num_classes=config.num_classes, origin=str(path))
    return with_split(graph, config.split, config.seed)


def load_distdgl(path: Path, config: SourceConfig) -> Graph:
    """The whole graph of a DistDGL partition, read back from its parts through the config
    ``path`` (``<graph_name>.json``, written by ``dgl.distributed.partition_graph``).

    Node ids are the original graph's when an :data:`ORIG_NIDS` mapping sits beside the config
    or in every part folder; else they are the partition's own (DistDGL's reshuffled ids, which
    DistDGL's training uses), with a warning. Each part contributes its inner nodes' node data
    and its inner edges, so every node and edge is read once.
    """
    meta = _read_config(path)
    parts = [_read_part(path, meta, i) for i in range(meta["num_parts"])]
    n = meta["num_nodes"]
    inner = torch.cat([part.inner for part in parts])
    _check_permutation(inner, n, str(path), "the parts' inner nodes")
    original = _original_ids(path, parts, inner)
    new_ids = inner if original is None else original  # the id each inner node gets, in the order of `inner`
    to_new = torch.empty(n, dtype=torch.int64)
    to_new[inner] = new_ids
    if len({frozenset(part.data) for part in parts}) > 1:
        raise GraphError(str(path), "the parts hold different node data: "
                         + "; ".join(f"part {i} {sorted(part.data)}" for i, part in enumerate(parts)),
                         "the parts come from different runs, or the partition is damaged: write it again")
    ndata = {}
    for key in parts[0].data:
        rows = torch.cat([part.data[key] for part in parts])
        ndata[key] = torch.empty_like(rows)
        ndata[key][new_ids] = rows
    src = to_new[torch.cat([part.src for part in parts])]
    dst = to_new[torch.cat([part.dst for part in parts])]
    node_order = "partition" if original is None else "original"
    graph = _graph(src, dst, n, ndata, feature_key="feat", label_key="label", mask_keys=MASK_KEYS, split_index=0,
                   num_classes=config.num_classes, name=meta["graph_name"], origin=str(path),
                   meta={"format": "distdgl", "num_parts": meta["num_parts"], "node_order": node_order})
    return with_split(graph, config.split, config.seed)


def _graph(src: torch.Tensor, dst: torch.Tensor, n: int, ndata: Mapping[str, torch.Tensor], *, feature_key: str,
           label_key: str, mask_keys: tuple[str, ...], split_index: int, num_classes: int | None, name: str,
           origin: str, meta: dict) -> Graph:
    """The Graph of edges ``src -> dst`` (int64 [E], node ids) over ``n`` nodes with node data
    ``ndata`` (name -> tensor [N, ...]), as :func:`from_dgl` documents it."""
    if len(mask_keys) != 3:
        raise GraphError(origin, f"mask_keys must name the train, val and test masks, got {mask_keys!r}")
    if not n:
        raise GraphError(origin, "the graph has no nodes")
    x, y = ndata.get(feature_key), ndata.get(label_key)
    labels = labels_from_array(y.cpu().numpy(), origin) if y is not None else np.full(n, UNLABELLED, np.int64)
    masks = [split_mask(_cpu(ndata.get(key)), key, n, split_index, origin) for key in mask_keys]
    return Graph.from_edges(src.cpu(), dst.cpu(), num_nodes=n, x=_cpu(x), y=labels, num_classes=num_classes,
                            train_mask=masks[0], val_mask=masks[1], test_mask=masks[2], name=name, origin=origin,
                            meta=meta)


def _homogeneous_types(g, ntype: str | None, etype, origin: str) -> tuple[str, tuple[str, str, str]]:
    """The node type and canonical edge type of ``g`` to read (see :func:`from_dgl`)."""
    import dgl

    canonical_etypes = list(g.canonical_etypes)
    if ntype is not None and ntype not in g.ntypes:
        raise GraphError(origin, f"no node type {ntype!r}", f"node types: {g.ntypes}")
    if etype is None:
        if ntype is None and len(g.ntypes) == 1 and len(canonical_etypes) == 1:
            return g.ntypes[0], canonical_etypes[0]
        between = [c for c in canonical_etypes if c[0] == c[2] == ntype]
        if len(between) == 1:
            return ntype, between[0]
        raise GraphError(origin, f"a heterograph (node types {g.ntypes}, edge types {canonical_etypes}) is not one "
                         "homogeneous graph", "pick a node type and an edge type between its nodes: "
                         "from_dgl(g, ntype=..., etype=...); for gnndist partition, save that relation alone, "
                         "dgl.save_graphs(path, [g.edge_type_subgraph([etype])])")
    try:
        canonical = g.to_canonical_etype(etype)
    except dgl.DGLError as e:
        raise GraphError(origin, f"edge type {etype!r}: {_message(e)}", f"edge types: {canonical_etypes}") from None
    if canonical[0] != canonical[2]:
        raise GraphError(origin, f"edge type {canonical} joins {canonical[0]!r} nodes to {canonical[2]!r} nodes",
                         "gnndist reads the edges between nodes of one type: pick an edge type (T, relation, T)")
    if ntype not in (None, canonical[0]):
        raise GraphError(origin, f"edge type {canonical} joins {canonical[0]!r} nodes, not {ntype!r} ones",
                         f"edge types: {canonical_etypes}")
    return canonical[0], canonical


def _read_config(path: Path) -> dict:
    """The DistDGL partition config ``path`` (as :func:`is_distdgl_config` recognised it), checked to
    describe a homogeneous graph."""
    meta = json.loads(path.read_text())
    if len(meta["ntypes"]) != 1 or len(meta["etypes"]) != 1:
        raise GraphError(str(path), f"a partition of a heterograph (node types {sorted(meta['ntypes'])}, edge types "
                         f"{sorted(meta['etypes'])}) is not supported", "gnndist reads one node and one edge type: "
                         "partition a homogeneous graph")
    return meta


class _Part(NamedTuple):
    """One part of a DistDGL partition, in the partition's ids (DistDGL's reshuffled ones)."""

    inner: torch.Tensor  # int64 [n_i]: the part's inner nodes, in the part's order
    src: torch.Tensor  # int64 [e_i]: sources of the part's inner edges
    dst: torch.Tensor  # int64 [e_i]: their destinations
    data: dict[str, torch.Tensor]  # the inner nodes' data, name (without DGL's "<ntype>/") -> [n_i, ...]
    folder: Path


def _read_part(path: Path, meta: dict, i: int) -> _Part:
    """Part ``i`` of the partition whose config ``meta`` was read from ``path``."""
    dgl = _import_dgl(str(path))
    from dgl.data.utils import load_tensors

    files = meta.get(f"part-{i}", {})
    if "part_graph" not in files or "node_feats" not in files:
        raise GraphError(str(path), f"part-{i} names no part_graph and node_feats files",
                         "write the partition again with dgl.distributed.partition_graph")
    graph_file, feats_file = (path.parent / files[key] for key in ("part_graph", "node_feats"))
    for file in (graph_file, feats_file):
        if not file.is_file():
            raise GraphError(str(file), f"part {i}'s file, named by {path.name}, is missing",
                             "copy the whole partition folder, every part included")
    try:
        part = dgl.load_graphs(str(graph_file))[0][0]
        feats = load_tensors(str(feats_file))
    except dgl.DGLError as e:
        raise GraphError(str(path), f"part {i}: cannot read {graph_file.name} or {feats_file.name}: {_message(e)}",
                         "the partition is damaged: write it again") from e
    ids = part.ndata[dgl.NID]
    inner = ids[part.ndata["inner_node"].bool()]
    src, dst = part.edges()
    kept = part.edata["inner_edge"].bool()
    data = {key.split("/", 1)[-1]: value for key, value in feats.items()}
    for key, value in data.items():
        if value.shape[0] != inner.numel():
            raise GraphError(str(feats_file), f"{key} has {value.shape[0]} rows but part {i} has {inner.numel()} "
                             "inner nodes", "the partition is damaged: write it again")
    return _Part(inner, ids[src[kept]], ids[dst[kept]], data, graph_file.parent)


def _original_ids(path: Path, parts: list[_Part], inner: torch.Tensor) -> torch.Tensor | None:
    """int64 [N]: the original id of each of the parts' ``inner`` nodes (partition ids, int64
    [N]); None, with a warning, where the partition holds no :data:`ORIG_NIDS` mapping."""
    whole = path.parent / ORIG_NIDS
    if whole.is_file():
        original, origin = _read_ids(whole, inner.numel())[inner], str(whole)
    elif all((part.folder / ORIG_NIDS).is_file() for part in parts):
        original = torch.cat([_read_ids(part.folder / ORIG_NIDS, part.inner.numel()) for part in parts])
        origin = f"{path} (the {ORIG_NIDS} files of its parts)"
    else:
        warnings.warn(f"{path}: no {ORIG_NIDS} beside it or in its part folders, so the nodes keep the partition's "
                      "ids (DistDGL's reshuffled order), not the original graph's; to keep the original order, save "
                      "the mapping partition_graph(..., return_mapping=True) returns: "
                      f"dgl.data.utils.save_tensors('{whole}', {{'_N': orig_nids}})", stacklevel=3)
        return None
    _check_permutation(original, inner.numel(), origin, "the original ids")
    return original


def _read_ids(path: Path, n: int) -> torch.Tensor:
    """The one int64 [n] tensor of an :data:`ORIG_NIDS` file."""
    dgl = _import_dgl(str(path))
    from dgl.data.utils import load_tensors

    hint = f"save it with dgl.data.utils.save_tensors('{path}', {{'_N': orig_nids}})"
    try:
        tensors = load_tensors(str(path))
    except dgl.DGLError as e:
        raise GraphError(str(path), f"not a DGL tensor file: {_message(e)}", hint) from e
    if len(tensors) != 1:
        raise GraphError(str(path), f"holds {sorted(tensors)}: the mapping of a graph of one node type has one "
                         "tensor", hint)
    (ids,) = tensors.values()
    if ids.dtype not in (torch.int32, torch.int64) or ids.shape != (n,):
        raise GraphError(str(path), f"holds {ids.dtype} {tuple(ids.shape)}, not {n} node ids", hint)
    return ids.to(torch.int64)


def _check_permutation(ids: torch.Tensor, n: int, origin: str, what: str) -> None:
    """GraphError unless ``ids`` (int64) holds each of 0..n-1 exactly once."""
    if ids.numel() == n and (n == 0 or (int(ids.min()) >= 0 and int(ids.max()) < n)):
        if bool((torch.bincount(ids, minlength=n) == 1).all()):
            return
    raise GraphError(origin, f"{what} are not the node ids 0..{n - 1}, each once ({ids.numel()} ids)",
                     "the parts or the mapping come from different runs, or the partition is damaged: write it again")


def _json(path: Path):
    """The JSON value in ``path``; None if it cannot be read or parsed."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None


def _message(error: Exception) -> str:
    """A DGLError's message without the C++ stack trace and the "[time] source.cc:line: " prefix
    that DGL's C++ checks add to it."""
    first = str(error).strip().split("\n", 1)[0]
    return re.sub(r"^\[[\d:]+\] \S+:\d+: ", "", first)


def _cpu(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.cpu()


def _import_dgl(origin: str):
    """The ``dgl`` module; a GraphError naming ``origin`` and how to get DGL where it is missing."""
    try:
        import dgl
    except (ImportError, OSError) as e:  # OSError: DGL installed but without the C++ library for this torch
        raise GraphError(origin, f"reading DGL data needs DGL, which cannot be imported here ({e})",
                         NEEDS_DGL_ENV) from None
    return dgl
