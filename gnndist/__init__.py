"""gnndist: distributed GNN training on Ray.

Partition a graph (``partitioners``), serve mini-batches from Ray actors with halo exchange, and
train any PyG-style model with synchronized data parallelism.
"""

from gnndist.config import PartitionConfig, SamplerConfig, SourceConfig, TrainConfig

__version__ = "0.1.0"

__all__ = ["Graph", "GraphError", "PartitionConfig", "SamplerConfig", "SourceConfig", "TrainConfig", "__version__"]


def __getattr__(name: str):
    # The graph type needs torch, which a partition server (a process per part, started for every
    # run) never uses: importing it there cost about 2 s of each server's start.
    if name in ("Graph", "GraphError"):
        from gnndist import graph

        return getattr(graph, name)
    raise AttributeError(f"module 'gnndist' has no attribute {name!r}")
