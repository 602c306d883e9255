"""A model's contract (how it takes a batch) is picked once, by ModelInput.of: its own
``gnndist_input`` where it sets one, else its forward's parameters."""

from __future__ import annotations

import pytest
import torch

from gnndist.config import TrainConfig
from gnndist.train.models import build_model
from gnndist.train.step import ModelInput, ModelInputError


class EdgeIndex(torch.nn.Module):
    def forward(self, x, edge_index):
        return x


class Hops(torch.nn.Module):
    def forward(self, x, edge_index, num_sampled_nodes_per_hop=None, num_sampled_edges_per_hop=None):
        return x


def test_the_forward_s_parameters_pick_the_contract():
    assert ModelInput.of(EdgeIndex()) is ModelInput.PYG
    assert ModelInput.of(Hops()) is ModelInput.PYG_HOPS
    for name in ("sage", "gcn", "gat", "gin"):  # the built-ins run each layer on the hops it needs
        assert ModelInput.of(build_model(TrainConfig(model=name), 4, 3, 2)) is ModelInput.PYG_HOPS


def test_a_declared_contract_wins_over_the_signature():
    class Plain(Hops):  # takes the counts, but wants to be called without them
        gnndist_input = "pyg"

    assert ModelInput.of(Plain()) is ModelInput.PYG
    instance = EdgeIndex()
    instance.gnndist_input = "pyg_hops"  # on the instance as well as on the class
    assert ModelInput.of(instance) is ModelInput.PYG_HOPS


def test_an_unknown_declared_contract_is_refused_with_the_choices():
    class Typo(EdgeIndex):
        gnndist_input = "dgl"

    with pytest.raises(ModelInputError, match=r"Typo.gnndist_input is 'dgl'; expected one of "
                                              r"\['pyg', 'pyg_hops', 'dgl_blocks'\]"):
        ModelInput.of(Typo())
