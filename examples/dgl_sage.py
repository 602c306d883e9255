"""Train a DGL model with gnndist: GraphSAGE written for DGL's mini-batch API, ``forward(blocks,
x)`` as in DGL's own examples, on the bundled Cora in 2 parts with 2 workers. Run it in DGL's
environment (``make dgl-env``):

    .venv-dgl/bin/python examples/dgl_sage.py --epochs 40

gnndist sees that ``forward``'s first parameter is named ``blocks`` and hands it one ``DGLBlock``
per hop of the sampler (``gnndist.train.step.ModelInput``); a model can also say so itself with
the class attribute ``gnndist_input = "dgl_blocks"``. The command line trains the same model:

    .venv-dgl/bin/gnndist train --model-module examples/dgl_sage.py:SAGE
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import dgl.nn as dglnn
import torch
import torch.nn.functional as F

from gnndist.api import partition
from gnndist.config import PartitionConfig, SamplerConfig, SourceConfig, TrainConfig
from gnndist.train import TrainResult, train
from gnndist.train.hooks import Hooks


class SAGE(torch.nn.Module):
    """``dgl.nn.SAGEConv`` layers, one block each, as DGL's Cora GraphSAGE example has them: the
    ``"gcn"`` aggregator (the mean over a node's in-neighbours and itself), dropout on the input
    and on each ReLU'd hidden layer. Its keyword arguments are those ``--model-module`` passes."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 64, num_layers: int = 2,
                 dropout: float = 0.5, aggregator: str = "gcn") -> None:
        super().__init__()
        sizes = [in_channels] + [hidden] * (num_layers - 1) + [out_channels]
        self.layers = torch.nn.ModuleList([dglnn.SAGEConv(a, b, aggregator) for a, b in itertools.pairwise(sizes)])
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, blocks: list, x: torch.Tensor) -> torch.Tensor:
        """``blocks``: one ``DGLBlock`` per layer, the first layer's first; ``x``: float32
        [blocks[0].num_src_nodes(), F]. Returns float32 [blocks[-1].num_dst_nodes(), classes]."""
        h = self.dropout(x)
        for i, (layer, block) in enumerate(zip(self.layers, blocks, strict=True)):
            h = layer(block, h)
            if i < len(self.layers) - 1:
                h = self.dropout(F.relu(h))
        return h


def main(epochs: int = 40, workdir: Path | None = None, hooks: list[Hooks] = ()) -> TrainResult:
    """Partition Cora into 2 METIS parts under ``workdir`` and train :class:`SAGE` on them for
    ``epochs`` with 2 workers (``hooks``: passed to ``gnndist.train``)."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="gnndist-dgl-example-"))
    parts = partition(SourceConfig(dataset="cora"), PartitionConfig(method="metis", num_parts=2),
                      workdir / "parts", force=True)
    return train(lambda: SAGE(1433, 7), parts, config=TrainConfig(epochs=epochs, workers=2),
                 sampler=SamplerConfig(fanouts=(10, 10)), out_dir=workdir / "run", hooks=hooks)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    result = main(parser.parse_args().epochs)
    print(f"test accuracy {result.test_acc:.4f} (at the best validation epoch, {result.best['epoch']})")
