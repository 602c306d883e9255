"""gnndist: distributed GNN training on Ray.

Partition a graph (``partitioners``), serve mini-batches from Ray actors with halo exchange, and
train any PyG-style model with synchronized data parallelism.
"""

from gnndist.config import PartitionConfig, SamplerConfig, SourceConfig, TrainConfig
from gnndist.graph import Graph, GraphError

__version__ = "0.1.0"

__all__ = ["Graph", "GraphError", "PartitionConfig", "SamplerConfig", "SourceConfig", "TrainConfig", "__version__"]
