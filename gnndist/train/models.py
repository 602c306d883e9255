"""Built-in GNNs: PyG's basic models, picked by name."""

from __future__ import annotations

import torch

from gnndist.config import TrainConfig


def build_model(config: TrainConfig, in_channels: int, out_channels: int, num_layers: int) -> torch.nn.Module:
    """A ``torch_geometric.nn`` model whose forward takes ``(x, edge_index)``."""
    from torch_geometric.nn import GAT, GCN, GIN, GraphSAGE

    classes = {"sage": GraphSAGE, "gcn": GCN, "gat": GAT, "gin": GIN}
    return classes[config.model](in_channels, config.hidden, num_layers=num_layers, out_channels=out_channels,
                                 dropout=config.dropout)
