"""Tiny seeded graphs for gnndist's tests and for users' own tests of their pipelines."""

from __future__ import annotations

import numpy as np

from gnndist.graph import Graph


def random_graph(num_nodes: int, num_edges: int, *, seed: int = 0, feature_dim: int = 3, num_classes: int = 3,
                 name: str = "random") -> Graph:
    """A seeded directed random graph (uniform endpoints) with gaussian float32 features, uniform
    labels and a random 50/25/25 train/val/test split. Duplicates merge and self-loops drop, so
    ``num_edges`` is an upper bound."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, num_nodes, num_edges)
    dst = rng.integers(0, num_nodes, num_edges)
    order = rng.permutation(num_nodes)
    masks = [np.zeros(num_nodes, dtype=bool) for _ in range(3)]
    for mask, (lo, hi) in zip(masks, ((0, num_nodes // 2), (num_nodes // 2, 3 * num_nodes // 4),
                                      (3 * num_nodes // 4, num_nodes)), strict=True):
        mask[order[lo:hi]] = True
    return Graph.from_edges(src, dst, num_nodes=num_nodes, x=rng.normal(size=(num_nodes, feature_dim)),
                            y=rng.integers(0, num_classes, num_nodes), num_classes=num_classes,
                            train_mask=masks[0], val_mask=masks[1], test_mask=masks[2], name=name,
                            origin=f"<{name}>")
