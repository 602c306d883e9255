"""Turn a node-to-part assignment into a partition directory.

Relabels nodes so each part owns a contiguous global id range (nodes ordered by part, then by
source id), extracts each part's CSC in-edges and L-hop halo, and writes everything through
``gnndist.partition.format`` (the only module that knows the layout). The stored features are
:meth:`Graph.input_features`: the graph's own, or for a graph without features two structural
columns computed once from the whole graph (recorded as ``graph.features`` in the manifest).
The manifest's ``split`` says which split the masks are (``gnndist.sources.splits.split_record``).
Features are stored dense or as CSR, in float32 or half precision (``PartitionConfig``'s
``feature_storage`` and ``feature_dtype``; :mod:`gnndist.partition.features`), one part's rows
at a time: sparse features are never densified whole.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import gnndist
from gnndist.config import PartitionConfig, to_dict
from gnndist.graph import Graph, GraphError
from gnndist.partition import features as stored
from gnndist.partition.book import PartitionBook
from gnndist.partition.csc import gather_rows
from gnndist.partition.format import FeatureLayout, PartArrays, PartitionWriter, encode_split, part_stats
from gnndist.progress import QuietReporter, Reporter
from gnndist.sources import splits


@dataclass(frozen=True)
class Relabelling:
    """Source ids <-> partitioned global ids.

    ``new_to_old``: int64 [N], source id of each new global id (nodes sorted by part, then id).
    ``old_to_new``: int64 [N], the inverse. ``book``: who owns which new id range.
    """

    new_to_old: np.ndarray
    old_to_new: np.ndarray
    book: PartitionBook

    @classmethod
    def from_assignment(cls, assignment: np.ndarray, num_parts: int) -> Relabelling:
        """``assignment``: int [N], part of each source node id."""
        # A stable sort keeps source order inside each part, so the relabelling is deterministic.
        new_to_old = np.argsort(assignment, kind="stable").astype(np.int64)
        old_to_new = np.empty_like(new_to_old)
        old_to_new[new_to_old] = np.arange(new_to_old.size, dtype=np.int64)
        offsets = np.zeros(num_parts + 1, dtype=np.int64)
        np.cumsum(np.bincount(assignment, minlength=num_parts), out=offsets[1:])
        return cls(new_to_old, old_to_new, PartitionBook(offsets))


def in_edges(graph: Graph, relabel: Relabelling, new_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSC in-edges of ``new_ids`` (int64 [n], new global ids) in the new id space.

    Returns ``(indptr int64 [n + 1], sources int64 [E_n])``, sources sorted within each node.
    """
    indptr, old_sources = gather_rows(graph.indptr.numpy(), graph.indices.numpy(), relabel.new_to_old[new_ids])
    sources = relabel.old_to_new[old_sources]
    del old_sources
    # Relabelling scrambles the order inside each node; one sort of (node, source) keys restores it.
    n = np.int64(relabel.book.num_nodes)
    key = np.repeat(np.arange(new_ids.size, dtype=np.int64), np.diff(indptr))
    key *= n
    key += sources
    key.sort()
    np.remainder(key, n, out=sources)
    return indptr, sources


def _halo(graph: Graph, relabel: Relabelling, part: int, inner_sources: np.ndarray, hops: int):
    """L-hop halo of ``part``: ids (int64, global, sorted by hop then id), hop of each (int8), and
    the CSC in-edges (indptr, sources) of the halo nodes with hop < L, in halo order."""
    lo, hi = relabel.book.part_range(part)
    seen = np.empty(0, dtype=np.int64)
    ids, hop_of, degrees, csc_sources = [], [], [], []
    frontier_sources = inner_sources
    for hop in range(1, hops + 1):
        candidates = np.unique(frontier_sources[(frontier_sources < lo) | (frontier_sources >= hi)])
        frontier = np.setdiff1d(candidates, seen, assume_unique=True)
        ids.append(frontier)
        hop_of.append(np.full(frontier.size, hop, dtype=np.int8))
        seen = np.union1d(seen, frontier)
        if hop < hops:
            indptr, frontier_sources = in_edges(graph, relabel, frontier)
            degrees.append(np.diff(indptr))
            csc_sources.append(frontier_sources)
    csc_indptr = np.zeros(sum(d.size for d in degrees) + 1, dtype=np.int64)
    if degrees:
        np.cumsum(np.concatenate(degrees), out=csc_indptr[1:])
    return (np.concatenate(ids) if ids else np.empty(0, dtype=np.int64),
            np.concatenate(hop_of) if hop_of else np.empty(0, dtype=np.int8),
            csc_indptr,
            np.concatenate(csc_sources) if csc_sources else np.empty(0, dtype=np.int64))


def build_part(graph: Graph, relabel: Relabelling, part: int, hops: int, features,
               layout: FeatureLayout) -> tuple[PartArrays, dict]:
    """The arrays of one part and its summary counts for the manifest; ``features`` float32
    [N, F] (ndarray or SciPy CSR) are the input features of every node (source ids, see
    :meth:`Graph.input_features`), stored as ``layout`` says."""
    lo, hi = relabel.book.part_range(part)
    inner = np.arange(lo, hi, dtype=np.int64)
    indptr, sources = in_edges(graph, relabel, inner)
    halo_ids, halo_hop, halo_indptr, halo_indices = _halo(graph, relabel, part, sources, hops)
    orig = relabel.new_to_old[lo:hi]
    split = encode_split(graph.train_mask.numpy()[orig], graph.val_mask.numpy()[orig], graph.test_mask.numpy()[orig])
    arrays = PartArrays(
        indptr=indptr, indices=sources,
        features=stored.part_features(features, orig, layout.encoding, layout.dtype),
        labels=graph.y.numpy()[orig].astype(np.int64),
        split=split, orig_ids=orig,
        halo_ids=halo_ids, halo_owner=relabel.book.owner(halo_ids), halo_hop=halo_hop,
        halo_indptr=halo_indptr, halo_indices=halo_indices,
    )
    return arrays, part_stats(arrays, lo, hi)


def write_partitions(graph: Graph, assignment: np.ndarray, config: PartitionConfig, out: str | Path, *,
                     force: bool = False, reporter: Reporter | None = None) -> Path:
    """Write ``graph`` split by ``assignment`` (int [N], part per source id) to ``out``.

    Returns the directory. Refuses to replace an existing directory unless ``force``.
    """
    reporter = reporter or QuietReporter()
    relabel = Relabelling.from_assignment(np.asarray(assignment), config.num_parts)
    features, feature_kind = graph.input_features()
    share = stored.density(features)
    layout = FeatureLayout(stored.choose_encoding(config.feature_storage, share), config.feature_dtype)
    _check_range(graph, features, layout)
    with PartitionWriter(out, force=force, num_parts=config.num_parts, features=layout) as writer:
        with reporter.step("writing parts", total=config.num_parts) as step:
            for part in range(config.num_parts):
                arrays, stats = build_part(graph, relabel, part, config.halo_hops, features, layout)
                writer.write_part(part, arrays, stats)
                del arrays
                step.advance()
        with reporter.step("hashing source graph"):
            graph_sha = graph.sha256()
        return writer.commit({
            "graph": {**graph.summary(), "sha256": graph_sha, "feature_density": share,
                      "feature_dim": features.shape[1], "features": feature_kind,
                      "origin": graph.origin, "meta": _scalar_items(graph.meta)},
            "method": {"name": config.method, "config": to_dict(config)},
            "split": graph.meta.get("split", splits.GIVEN),
            "num_parts": config.num_parts,
            "halo_hops": config.halo_hops,
            "offsets": relabel.book.offsets.tolist(),
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "gnndist_version": gnndist.__version__,
        })


def _check_range(graph: Graph, features, layout: FeatureLayout) -> None:
    """Refuse float16 storage of features beyond its range, which would be stored as inf."""
    if layout.dtype != "float16":
        return
    top = stored.largest_magnitude(features)
    if top > stored.FLOAT16_MAX:
        raise GraphError(graph.origin, f"features reach {top:g}, beyond float16's largest value "
                         f"{stored.FLOAT16_MAX:g}", "store them with --feature-dtype bfloat16 (float32's range) "
                         "or float32, or scale them first")


def _scalar_items(meta: dict) -> dict:
    """The JSON-scalar entries of ``meta`` (generator parameters and the like); bulky entries
    such as node-name maps stay out of the manifest."""
    return {k: v for k, v in meta.items() if isinstance(v, str | int | float | bool)}
