"""Train your own GNN with gnndist: any torch.nn.Module whose forward takes (x, edge_index).

    python examples/custom_model.py --epochs 40
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch_geometric.nn import SAGEConv

from gnndist.api import partition
from gnndist.config import PartitionConfig, SamplerConfig, SourceConfig, TrainConfig
from gnndist.train import TrainResult, train


class ResidualSAGE(torch.nn.Module):
    """Two SAGE layers with a linear skip connection: not one of gnndist's built-ins."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = SAGEConv(in_channels, hidden)
        self.conv2 = SAGEConv(hidden, out_channels)
        self.skip = torch.nn.Linear(in_channels, out_channels)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.dropout(self.conv1(x, edge_index).relu(), p=0.5, training=self.training)
        return self.conv2(h, edge_index) + self.skip(x)


def main(epochs: int = 40, workdir: Path | None = None) -> TrainResult:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="gnndist-example-"))
    parts = partition(SourceConfig(dataset="cora"), PartitionConfig(method="metis", num_parts=2),
                      workdir / "parts", force=True)
    return train(lambda: ResidualSAGE(1433, 64, 7), parts, config=TrainConfig(epochs=epochs, eval_every=10),
                 sampler=SamplerConfig(fanouts=(10, 10)), out_dir=workdir / "run")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    result = main(parser.parse_args().epochs)
    print(f"test accuracy {result.test_acc:.4f}")
