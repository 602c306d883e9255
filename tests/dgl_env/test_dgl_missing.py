"""Without DGL (the main environment), DGL inputs and DGL models are still recognised, and refused
with how to get DGL; everything else works as before."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import ray
import torch

from gnndist.cli import main
from gnndist.config import ConfigError, SourceConfig, TrainConfig
from gnndist.graph import GraphError
from gnndist.sources import load_graph
from gnndist.sources.dgl import DISTDGL_KEYS, GRAPH_FILE_MAGIC
from gnndist.train.loop import model_factory
from gnndist.train.step import ModelInput, ModelInputError
from gnndist.train.stopping import RunError
from gnndist.train.trainer import train

if importlib.util.find_spec("dgl") is not None:
    pytest.skip("DGL is installed here: these tests are for an environment without it", allow_module_level=True)

# The workers cannot import this test module: its model class travels by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_a_dgl_graph_file_says_how_to_get_dgl(tmp_path, capsys):
    path = tmp_path / "graph.bin"
    path.write_bytes(GRAPH_FILE_MAGIC + bytes(64))
    assert main(["partition", "--dataset", str(path), "--out", str(tmp_path / "parts"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "graph.bin: reading DGL data needs DGL, which cannot be imported here" in error
    assert "make dgl-env" in error and ".venv-dgl/bin/gnndist" in error


def test_a_distdgl_config_says_how_to_get_dgl(tmp_path):
    path = tmp_path / "cora.json"
    part = {"node_feats": "part0/node_feat.dgl", "edge_feats": "part0/edge_feat.dgl", "part_graph": "part0/graph.dgl"}
    config = {"graph_name": "cora", "num_nodes": 2, "num_parts": 1, "node_map": {"_N": [[0, 2]]},
              "ntypes": {"_N": 0}, "etypes": {"_N:_E:_N": 0}, "part-0": part}
    assert set(DISTDGL_KEYS) < config.keys()
    path.write_text(json.dumps(config))
    with pytest.raises(GraphError, match=r"cora\.json: reading DGL data needs DGL.*make dgl-env"):
        load_graph(SourceConfig(dataset=str(path)))


class Blocks(torch.nn.Module):
    """A model for DGL's mini-batch API that builds without DGL (its layers are plain torch)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1433, 7))  # Cora's features to its classes

    def forward(self, blocks, x):
        return x @ self.weight


def test_a_dgl_model_says_how_to_get_dgl():
    with pytest.raises(ModelInputError, match=r"Blocks takes DGL blocks, but DGL cannot be imported here.*dgl-env"):
        ModelInput.of(Blocks())


def test_training_a_dgl_model_stops_before_its_first_batch_with_how_to_get_dgl(cora_parts, ray_session, tmp_path):
    with pytest.raises(RunError, match=r"rank 0 stopped the run: Blocks takes DGL blocks.*make dgl-env"):
        train(Blocks, cora_parts, config=TrainConfig(epochs=1, workers=1), out_dir=tmp_path / "run")


def test_the_dgl_example_as_a_model_module_says_how_to_get_dgl():
    example = Path(__file__).resolve().parents[2] / "examples" / "dgl_sage.py"
    with pytest.raises(ConfigError, match=r"dgl_sage.py:SAGE': importing it failed: No module named 'dgl' .*dgl-env"):
        model_factory(TrainConfig(model_module=f"{example}:SAGE"), 1433, 7, 2)
