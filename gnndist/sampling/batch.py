"""The mini-batch a loader hands to a model, in PyG's form."""

from __future__ import annotations

import itertools
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

    def to(self, device: torch.device | str, non_blocking: bool = False) -> MiniBatch:
        """The batch with its tensors on ``device`` (itself when they are there already).

        ``non_blocking``: copies from pinned host memory (:meth:`pin`) to a GPU return before they
        are done, queued on the current stream; the tensors may be used only on that stream, or
        after another has waited for it (:func:`gnndist.train.device.staged` does this).
        """
        device = torch.device(device)
        if self.x.device == device:
            return self
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin(self) -> MiniBatch:
        """The batch with its tensors in page-locked (pinned) host memory, from which a GPU copies
        them faster and without blocking the host (``to(..., non_blocking=True)``).

        Raises:
            RuntimeError: CUDA is not available: pinned memory only serves copies to a GPU, so
                pinning without one is a mistake in the caller (the batch is used where it is).
        """
        if not torch.cuda.is_available():
            raise RuntimeError("MiniBatch.pin needs CUDA: pinned memory only speeds copies to a GPU")
        return self._map(torch.Tensor.pin_memory)

    def _map(self, fn) -> MiniBatch:
        return replace(self, x=fn(self.x), y=fn(self.y), edge_index=fn(self.edge_index), n_id=fn(self.n_id))

    def to_pyg(self):
        """A ``torch_geometric.data.Data`` with the same fields (as NeighborLoader yields)."""
        from torch_geometric.data import Data

        return Data(x=self.x, y=self.y, edge_index=self.edge_index, n_id=self.n_id, batch_size=self.batch_size,
                    num_sampled_nodes=self.num_sampled_nodes, num_sampled_edges=self.num_sampled_edges,
                    num_nodes=self.num_nodes)

    def to_dgl_blocks(self) -> list:
        """One ``dgl.DGLBlock`` per hop, the first layer's first, as DGL's ``NeighborSampler``
        yields them for a model's ``forward(blocks, x)``.

        With L hops and ``within[h]`` the nodes within h hops of the seeds (the first ``within[h]``
        local indices: nodes are laid out hop by hop), layer l's block maps the sources
        ``0..within[L - l] - 1`` to the destinations ``0..within[L - 1 - l] - 1`` over every edge
        into those destinations, which are the edges of hops 0..L-1-l: a prefix of
        ``edge_index``, since a node's in-edges are all sampled in the hop after the one that
        reached it. Destination i is source i, as DGL's blocks have it, so ``x`` is the first
        block's source features and the last block's destinations are the seeds. Node ids in
        the blocks are the batch's local indices (``n_id`` maps them to global ids); edges are
        int64, on the batch's device.
        """
        import dgl

        within = list(itertools.accumulate(self.num_sampled_nodes))
        edges_within = list(itertools.accumulate(self.num_sampled_edges))
        src, dst = self.edge_index
        blocks = []
        for hop in reversed(range(len(edges_within))):  # the first layer's block reaches the furthest hop
            e = edges_within[hop]
            blocks.append(dgl.create_block((src[:e], dst[:e]), num_src_nodes=within[hop + 1],
                                           num_dst_nodes=within[hop]))
        return blocks
