"""The mini-batch a loader hands to a model, in PyG's form."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class MiniBatch:
    """A sampled subgraph with its data.

    ``x``: float32 [n, F] features of ``n_id``; ``y``: int64 [n] labels of ``n_id``;
    ``edge_index``: int64 [2, E], row 0 source and row 1 target, local indices into ``n_id``;
    ``n_id``: int64 [n] global (partitioned) ids, the ``batch_size`` seeds first;
    ``num_sampled_nodes`` / ``num_sampled_edges``: nodes first reached in each hop (hop 0: the
    seeds) and edges sampled in each hop, as PyG's ``NeighborLoader`` reports them (nodes and
    edges are laid out hop by hop, so a model may trim each layer to the hops it still needs).
    """

    x: torch.Tensor
    y: torch.Tensor
    edge_index: torch.Tensor
    n_id: torch.Tensor
    batch_size: int
    num_sampled_nodes: list[int]
    num_sampled_edges: list[int]

    @property
    def num_nodes(self) -> int:
        return self.n_id.numel()

    def to(self, device: torch.device | str) -> MiniBatch:
        """The batch with its tensors on ``device`` (itself when they are there already)."""
        device = torch.device(device)
        if self.x.device == device:
            return self
        return replace(self, x=self.x.to(device), y=self.y.to(device), edge_index=self.edge_index.to(device),
                       n_id=self.n_id.to(device))

    def to_pyg(self):
        """A ``torch_geometric.data.Data`` with the same fields (as NeighborLoader yields)."""
        from torch_geometric.data import Data

        return Data(x=self.x, y=self.y, edge_index=self.edge_index, n_id=self.n_id, batch_size=self.batch_size,
                    num_sampled_nodes=self.num_sampled_nodes, num_sampled_edges=self.num_sampled_edges,
                    num_nodes=self.num_nodes)
