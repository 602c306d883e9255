"""A graph without features trains on the structural input partitioning gives it."""

from __future__ import annotations

import numpy as np

from gnndist.api import partition
from gnndist.config import PartitionConfig, SamplerConfig, TrainConfig
from gnndist.graph import Graph
from gnndist.partition.format import read_manifest
from gnndist.train.trainer import train


def _degree_labelled_graph(n: int = 400, seed: int = 0) -> Graph:
    """Two classes told apart by degree only: class 1 nodes draw 12 edges to uniform random
    targets, class 0 nodes one (undirected); no features, a random 50/25/25 split."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    src = np.repeat(np.arange(n), np.where(y == 1, 12, 1))
    dst = rng.integers(0, n, src.size)
    split = rng.permutation(np.arange(n) % 4)  # 0, 1: train; 2: val; 3: test
    return Graph.from_edges(src, dst, num_nodes=n, x=None, y=y, train_mask=split <= 1, val_mask=split == 2,
                            test_mask=split == 3, name="degree-classes", origin="<degree-classes>",
                            undirected=True)


def test_a_graph_without_features_trains_on_its_degrees(ray_session, tmp_path):
    graph = _degree_labelled_graph()
    assert graph.feature_dim == 0
    parts = partition(graph, PartitionConfig(method="metis", num_parts=2), tmp_path / "parts")
    assert read_manifest(parts)["graph"]["feature_dim"] == 2
    result = train(None, parts, config=TrainConfig(epochs=3, eval_every=3, hidden=16, lr=0.05, dropout=0.0),
                   sampler=SamplerConfig(fanouts=(5, 5), batch_size=16), out_dir=tmp_path / "run")
    assert len(result.history) == 3
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.test_acc >= 0.9  # chance is 0.5; the degrees carry the class (0.97 measured)
