"""Graphs from an in-memory ``networkx`` graph."""

from __future__ import annotations

import numpy as np

from gnndist.graph import UNLABELLED, Graph, GraphError
from gnndist.sources._io import labels_from_array


def from_networkx(G, *, feature_attr: str = "x", label_attr: str = "y", name: str = "networkx",
                  num_classes: int | None = None) -> Graph:
    """A Graph from a networkx (Di)Graph.

    Nodes are numbered 0..N-1 in ``G.nodes`` order; if the original names are not already
    0..N-1 they are kept in ``Graph.meta["node_names"]`` (a list, index = new global id).
    Directed graphs keep edge direction; undirected ones get both directions. Node attribute
    ``feature_attr`` (a number or a 1-d sequence, the same length on every node) becomes the
    float32 [N, F] features, ``label_attr`` (an int) the labels; a node without a label is
    ``UNLABELLED``. The splits are empty: use ``gnndist.sources.splits.with_split`` to add one.
    ``num_classes``: the class count if the labels do not show it (default: the largest label + 1,
    see :func:`gnndist.graph.class_count`).
    """
    import networkx as nx

    origin = f"<networkx {type(G).__name__} {name!r}>"
    nodes = list(G.nodes)
    if not nodes:
        raise GraphError(origin, "the graph has no nodes")
    n = len(nodes)
    # CSR sums the duplicate entries networkx writes for undirected self-loops (data +1, +1, -1).
    adj = nx.to_scipy_sparse_array(G, nodelist=nodes, weight=None, format="csr")
    adj.eliminate_zeros()
    adj = adj.tocoo()
    x = _features(G, nodes, feature_attr, origin)
    labels = [G.nodes[v].get(label_attr, UNLABELLED) for v in nodes]
    try:
        values = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise GraphError(origin, f"node attribute {label_attr!r} must be an integer class id: {e}") from None
    y = labels_from_array(values, origin)
    meta = {"format": "networkx"}
    if nodes != list(range(n)):
        meta["node_names"] = nodes
    empty = np.zeros(n, dtype=bool)
    return Graph.from_edges(adj.row, adj.col, num_nodes=n, x=x, y=y, num_classes=num_classes,
                            train_mask=empty, val_mask=empty, test_mask=empty, name=name, origin=origin, meta=meta)


def _features(G, nodes: list, attr: str, origin: str) -> np.ndarray | None:
    """float32 [N, F] from node attribute ``attr``; None if no node has it."""
    values = [G.nodes[v].get(attr) for v in nodes]
    if all(v is None for v in values):
        return None
    missing = next((v for v, val in zip(nodes, values, strict=True) if val is None), None)
    if missing is not None:
        raise GraphError(origin, f"node {missing!r} has no {attr!r} attribute", "give every node features")
    try:
        x = np.asarray([np.atleast_1d(np.asarray(v, dtype=np.float32)) for v in values])
    except ValueError as e:
        raise GraphError(origin, f"node attribute {attr!r} differs in length between nodes: {e}") from e
    if x.ndim != 2:
        raise GraphError(origin, f"node attribute {attr!r} must be a number or a 1-d sequence per node")
    return x
