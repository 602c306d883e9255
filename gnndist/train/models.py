"""Built-in GNNs: PyG's basic models (GraphSAGE, GCN, GAT, GIN), picked by name, with a forward
that runs each layer on the bipartite block of a sampled batch that later layers still need.

A batch from ``sample_khop`` (or PyG's ``NeighborLoader``) lays its nodes out hop by hop, the
seeds first, and its edges hop by hop, each edge pointing from a node of hop h + 1 (or earlier)
to a node of hop h. With L layers, the seeds' outputs only need layer l's outputs for the nodes
within L - 1 - l hops of the seeds, computed from layer l's inputs within L - l hops over the
edges into those nodes. The models below compute exactly that, DGL-style: layer l maps
``x_src`` (the first ``num_src`` nodes) to ``x_dst`` (the first ``num_dst``), a shorter prefix
than PyG's ``trim_to_layer`` keeps (it still computes every node of the untrimmed hops).

The edges reach the layers as a sparse CSR adjacency (``adj_t``, rows = targets) rather than an
``edge_index``: SAGEConv, GCNConv and GINConv then aggregate with one fused sparse-dense product
(``torch.sparse.mm``) instead of gathering a message per edge and scattering it back, which is
what makes PyG's step slow on CPU. Parameters and their names are those of the PyG models, so a
state dict loads into either.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import torch
import torch_geometric.nn as pyg
from torch import Tensor
from torch_geometric.nn import MessagePassing

from gnndist.config import TrainConfig
from gnndist.train.relu_dropout import relu_dropout


@dataclass(frozen=True)
class Block:
    """One layer's share of a batch: outputs for local nodes ``0..num_dst-1`` from inputs of
    ``0..num_src-1`` (``num_dst <= num_src``; local index i is the same node on both sides).

    ``adj_t``: float32 sparse CSR [num_dst, num_src], row i holds node i's in-neighbours;
    ``src`` / ``dst``: int64 [e] the same edges (source, target), sorted by target.
    """

    adj_t: Tensor
    src: Tensor
    dst: Tensor
    num_src: int
    num_dst: int

    @property
    def edge_index(self) -> Tensor:
        """int64 [2, e]: the block's edges, source row 0, target row 1."""
        return torch.stack([self.src, self.dst])


def sparse_blocks(edge_index: Tensor, num_nodes: int, num_layers: int, nodes_per_hop: list[int] | None = None,
                  edges_per_hop: list[int] | None = None, *, values: str = "ones") -> list[Block]:
    """One :class:`Block` per layer (first layer first) of a batch.

    Args:
        edge_index: int64 [2, E] local node indices (source, target).
        num_nodes: N, the number of local nodes.
        nodes_per_hop / edges_per_hop: the batch's hop layout (``MiniBatch.num_sampled_nodes`` /
            ``num_sampled_edges``; nodes hop by hop, hop 0 first); ``None`` for a plain graph,
            where every block is the whole graph.
        values: ``"ones"`` (plain adjacency) or ``"gcn"``: GCN's symmetric normalisation
            ``1 / sqrt(deg_i deg_j)`` with a self-loop on every node (existing self-loops dropped
            first), ``deg`` counting in-edges in the whole batch plus the self-loop, as PyG's
            ``gcn_norm`` does on the untrimmed batch.

    Raises:
        ValueError: the layout does not add up to the batch, or an edge into a node of hop h comes
            from beyond hop h + 1 (the blocks would then miss it).
    """
    sizes = _block_sizes(edge_index, num_nodes, num_layers, nodes_per_hop, edges_per_hop)
    src, dst = edge_index[0], edge_index[1]
    if dst.numel() > 1 and not bool((dst[1:] >= dst[:-1]).all()):
        # Sampled batches come grouped by target; a plain edge_index may not. Sorting by target
        # keeps every block a prefix of the rows.
        order = torch.sort(dst, stable=True).indices
        src, dst = src[order], dst[order]
    if src.numel() and (int(src.min()) < 0 or int(dst[0]) < 0 or int(src.max()) >= num_nodes
                        or int(dst[-1]) >= num_nodes):
        raise ValueError(f"edge_index holds node indices outside 0..{num_nodes - 1}")
    if values == "gcn":
        src, dst, weight = _gcn_edges(src, dst, num_nodes)
    else:
        weight = torch.ones(src.numel(), device=src.device)
    crow = torch.searchsorted(dst, torch.arange(num_nodes + 1, dtype=dst.dtype, device=dst.device))
    blocks = []
    for num_src, num_dst in sizes:
        e = int(crow[num_dst])
        if e and int(src[:e].max()) >= num_src:
            raise ValueError(f"an edge into one of the first {num_dst} nodes comes from node "
                             f"{int(src[:e].max())}, beyond the next hop (nodes < {num_src})")
        with warnings.catch_warnings():  # torch warns once that sparse CSR is "in beta state"
            warnings.simplefilter("ignore", UserWarning)
            adj_t = torch.sparse_csr_tensor(crow[:num_dst + 1], src[:e], weight[:e], (num_dst, num_src),
                                            check_invariants=False)
        blocks.append(Block(adj_t, src[:e], dst[:e], num_src, num_dst))
    return blocks


def _block_sizes(edge_index: Tensor, num_nodes: int, num_layers: int, nodes_per_hop: list[int] | None,
                 edges_per_hop: list[int] | None) -> list[tuple[int, int]]:
    """``(num_src, num_dst)`` of each layer's block, checking the layout against the batch."""
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {list(edge_index.shape)}")
    if (nodes_per_hop is None) != (edges_per_hop is None):
        raise ValueError("give both num_sampled_nodes_per_hop and num_sampled_edges_per_hop, or neither")
    if nodes_per_hop is None:
        return [(num_nodes, num_nodes)] * num_layers
    if len(nodes_per_hop) != len(edges_per_hop) + 1:
        raise ValueError(f"expected one more hop of nodes than of edges, got {len(nodes_per_hop)} and "
                         f"{len(edges_per_hop)}")
    if sum(nodes_per_hop) != num_nodes or sum(edges_per_hop) != edge_index.size(1):
        raise ValueError(f"the hops hold {sum(nodes_per_hop)} nodes and {sum(edges_per_hop)} edges, the batch "
                         f"{num_nodes} and {edge_index.size(1)}")
    within = list(itertools.accumulate(nodes_per_hop))  # within[h]: nodes within h hops of the seeds
    hops = len(within) - 1
    # Layer l (of L) computes the nodes within L - 1 - l hops from those within L - l; with fewer
    # hops than layers, the first layers take the whole batch.
    return [(within[min(num_layers - layer, hops)], within[min(num_layers - 1 - layer, hops)])
            for layer in range(num_layers)]


def _gcn_edges(src: Tensor, dst: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    """Edges sorted by target with a self-loop first in each row, and their GCN weights."""
    keep = src != dst
    if not bool(keep.all()):
        src, dst = src[keep], dst[keep]
    deg = torch.bincount(dst, minlength=num_nodes) + 1
    dinv = deg.to(torch.float32).rsqrt()
    # Row i grows by one entry (its self-loop, placed first): edge k moves down by dst[k] + 1.
    nodes = torch.arange(num_nodes, device=src.device)
    self_at = torch.cumsum(deg, 0) - deg
    at = torch.arange(src.numel(), device=src.device) + dst + 1
    new_src = torch.empty(src.numel() + num_nodes, dtype=src.dtype, device=src.device)
    new_src[self_at], new_src[at] = nodes, src
    new_dst = torch.empty_like(new_src)
    new_dst[self_at], new_dst[at] = nodes, dst
    return new_src, new_dst, dinv[new_src] * dinv[new_dst]


class _BlockForward:
    """Forward of a PyG ``BasicGNN`` (ReLU, dropout, no norm, no jumping knowledge): the same convs,
    each on its :class:`Block`. Mixed in before the PyG model class it overrides."""

    values = "ones"  # the adjacency's values, see sparse_blocks

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int, out_channels: int,
                 dropout: float = 0.0):
        # Only the options forward() honours: a norm or jumping knowledge would be silently dropped.
        super().__init__(in_channels, hidden_channels, num_layers=num_layers, out_channels=out_channels,
                         dropout=dropout)

    def forward(self, x: Tensor, edge_index: Tensor, num_sampled_nodes_per_hop: list[int] | None = None,
                num_sampled_edges_per_hop: list[int] | None = None) -> Tensor:
        """``x``: float32 [N, F]; ``edge_index``: int64 [2, E] local indices. With the hop layout
        returns float32 [seeds, out], the seeds' logits; without, float32 [N, out]."""
        blocks = sparse_blocks(edge_index, x.size(0), self.num_layers, num_sampled_nodes_per_hop,
                               num_sampled_edges_per_hop, values=self.values)
        for i, (conv, block) in enumerate(zip(self.convs, blocks, strict=True)):
            x = self.layer(conv, _prefix(x, block.num_src), block)
            if i < self.num_layers - 1:
                x = relu_dropout(x, self.dropout.p, self.training)  # act is ReLU: __init__ takes no other
        return x

    def layer(self, conv: MessagePassing, x: Tensor, block: Block) -> Tensor:
        """One conv from ``x`` float32 [num_src, C] to float32 [num_dst, C']."""
        return conv((x, _prefix(x, block.num_dst)), block.adj_t)


def _prefix(x: Tensor, n: int) -> Tensor:
    """The first ``n`` rows of ``x``; ``x`` itself when that is all of it (the backward of even a
    whole-tensor slice fills a zero tensor of x's size and copies the gradient into it)."""
    return x if x.size(0) == n else x[:n]


class GraphSAGE(_BlockForward, pyg.GraphSAGE):
    """GraphSAGE (mean aggregation, root weight); SAGEConv aggregates by ``spmm(adj_t, x, "mean")``."""

    def layer(self, conv: MessagePassing, x: Tensor, block: Block) -> Tensor:
        # SAGEConv's forward (no projection, no normalisation: pyg.GraphSAGE's convs), except that
        # the root term's matrix product accumulates into the output (addmm_) rather than making
        # a second [num_dst, C'] tensor and a pass to add the two.
        out = conv.lin_l(conv.propagate(block.adj_t, x=(x, None)))
        return out.addmm_(_prefix(x, block.num_dst), conv.lin_r.weight.t())


class GIN(_BlockForward, pyg.GIN):
    """GIN (sum aggregation, eps = 0, two-layer MLPs); GINConv aggregates by ``spmm(adj_t, x, "sum")``."""


class GCN(_BlockForward, pyg.GCN):
    """GCN: self-loops and symmetric normalisation by the degrees in the whole batch (those of
    PyG's GCN on the untrimmed batch), built into the adjacency by :func:`sparse_blocks`."""

    values = "gcn"

    def init_conv(self, in_channels: int, out_channels: int, **kwargs) -> MessagePassing:
        return super().init_conv(in_channels, out_channels, normalize=False, **kwargs)

    def layer(self, conv: MessagePassing, x: Tensor, block: Block) -> Tensor:
        # A (X W) = (A X) W: aggregate at the narrower width, as DGL's GraphConv does. GCNConv's own
        # forward always multiplies first, so a first layer (100 -> 128) would aggregate, and
        # backpropagate through, hidden-width rows of every source node.
        if conv.in_channels <= conv.out_channels:
            out = conv.lin(conv.propagate(block.adj_t, x=x, edge_weight=None))
        else:
            out = conv.propagate(block.adj_t, x=conv.lin(x), edge_weight=None)
        return out + conv.bias


class GAT(_BlockForward, pyg.GAT):
    """GAT (one head, self-loops, attention dropout = ``dropout``). Attention needs a score per
    edge, so GATConv gets the block's ``edge_index`` rather than a sparse adjacency."""

    def layer(self, conv: MessagePassing, x: Tensor, block: Block) -> Tensor:
        return conv((x, _prefix(x, block.num_dst)), block.edge_index)


BUILT_IN = {"sage": GraphSAGE, "gcn": GCN, "gat": GAT, "gin": GIN}


def build_model(config: TrainConfig, in_channels: int, out_channels: int, num_layers: int) -> torch.nn.Module:
    """A built-in model (``config.model``) whose forward takes ``(x, edge_index)`` and, optionally,
    the batch's hop layout (``num_sampled_nodes_per_hop``, ``num_sampled_edges_per_hop``)."""
    return BUILT_IN[config.model](in_channels, config.hidden, num_layers, out_channels, dropout=config.dropout)
