"""Graphs from an in-memory ``torch_geometric.data.Data`` object."""

from __future__ import annotations

import numpy as np
import torch

from gnndist.graph import UNLABELLED, Graph, GraphError
from gnndist.sources._io import labels_from_array

_MASKS = ("train_mask", "val_mask", "test_mask")


def from_pyg(data, *, name: str = "pyg", split_index: int = 0, num_classes: int | None = None) -> Graph:
    """A Graph from a PyG ``Data`` object.

    Reads ``data.edge_index`` (int64 [2, E], row 0 source, row 1 target; kept as is, since PyG
    stores undirected graphs with both directions), ``data.x`` (float [N, F], optional; a
    torch sparse tensor stays sparse),
    ``data.y`` (int [N] or [N, 1]; optional, missing means ``UNLABELLED``; [N, C>1] multi-label
    is refused) and the ``train_mask``/``val_mask``/``test_mask`` bool [N] masks if present
    (column ``split_index`` of [N, S] masks that hold S splits, as PyG's heterophilous sets do).
    Node ids are PyG's node indices. ``num_classes``: the class count if the labels do not show
    it (default: the largest label + 1, see :func:`gnndist.graph.class_count`).
    """
    origin = f"<PyG {type(data).__name__} {name!r}>"
    n = data.num_nodes
    if not n:
        raise GraphError(origin, "the graph has no nodes")
    edge_index = data.edge_index
    if edge_index is None or edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise GraphError(origin, "edge_index must be an int tensor of shape [2, E]")
    y = data.y
    labels = labels_from_array(y.numpy(), origin) if y is not None else np.full(n, UNLABELLED, dtype=np.int64)
    masks = [split_mask(getattr(data, key, None), key, n, split_index, origin) for key in _MASKS]
    return Graph.from_edges(edge_index[0], edge_index[1], num_nodes=n, x=data.x, y=labels, num_classes=num_classes,
                            train_mask=masks[0], val_mask=masks[1], test_mask=masks[2], name=name, origin=origin,
                            meta={"format": "pyg"})


def split_mask(mask: torch.Tensor | None, key: str, n: int, split_index: int, origin: str) -> torch.Tensor:
    """bool [N]: the split mask named ``key`` (bool or 0/1 [N], or [N, S] holding S splits, of
    which column ``split_index`` is taken), or all False when ``mask`` is None."""
    if mask is None:
        return torch.zeros(n, dtype=torch.bool)
    if mask.dim() == 2:
        if not 0 <= split_index < mask.size(1):
            raise GraphError(origin, f"{key} holds {mask.size(1)} splits; split_index {split_index} is out of range")
        mask = mask[:, split_index]
    return mask.to(torch.bool)
