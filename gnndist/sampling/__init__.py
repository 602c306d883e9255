"""Which nodes a mini-batch needs: neighbour sampling over global ids (no data, no Ray)."""

from gnndist.sampling.batch import MiniBatch
from gnndist.sampling.neighbor import (
    CSCProvider,
    NeighborProvider,
    SampledSubgraph,
    sample_khop,
    sample_neighbors,
)

__all__ = ["CSCProvider", "MiniBatch", "NeighborProvider", "SampledSubgraph", "sample_khop", "sample_neighbors"]
