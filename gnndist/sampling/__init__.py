"""Which nodes a mini-batch needs: neighbour sampling over global ids (no data, no Ray)."""

from gnndist.sampling.neighbor import (
    CSCProvider,
    NeighborProvider,
    SampledSubgraph,
    sample_khop,
    sample_neighbors,
)

__all__ = ["CSCProvider", "MiniBatch", "NeighborProvider", "SampledSubgraph", "sample_khop", "sample_neighbors"]


def __getattr__(name: str):
    # MiniBatch holds torch tensors; the partition servers sample with numpy alone and skip torch.
    if name == "MiniBatch":
        from gnndist.sampling.batch import MiniBatch

        return MiniBatch
    raise AttributeError(f"module 'gnndist.sampling' has no attribute {name!r}")
