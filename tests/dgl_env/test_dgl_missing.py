"""Without DGL (the main environment), DGL inputs are still recognised, and refused with how to
get DGL; everything else works as before."""

from __future__ import annotations

import importlib.util
import json

import pytest

from gnndist.cli import main
from gnndist.config import SourceConfig
from gnndist.graph import GraphError
from gnndist.sources import load_graph
from gnndist.sources.dgl import DISTDGL_KEYS, GRAPH_FILE_MAGIC

if importlib.util.find_spec("dgl") is not None:
    pytest.skip("DGL is installed here: these tests are for an environment without it", allow_module_level=True)


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
