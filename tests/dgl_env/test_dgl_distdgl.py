"""DistDGL partitions, made here by ``dgl.distributed.partition_graph``, read back through their
config ``.json`` into the graph they were made from, in its node order."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from gnndist.cli import main
from gnndist.config import SourceConfig
from gnndist.graph import GraphError
from gnndist.sources import load_graph

dgl = pytest.importorskip("dgl")
from dgl.data.utils import load_tensors, save_tensors  # noqa: E402  (after the skip: DGL may be missing)


def _partition(graph, folder, **kwargs):
    """Partition ``graph`` (a DGLGraph) into ``folder``; the config's path and the mapping
    partition_graph returns (int64 [N]: the original id of each partition id)."""
    orig_nids, _ = dgl.distributed.partition_graph(graph, "cora", out_path=str(folder), return_mapping=True,
                                                   **{"num_parts": 2, **kwargs})
    return folder / "cora.json", orig_nids


@pytest.fixture(scope="module")
def made(tmp_path_factory, cora, to_dgl):
    """The bundled Cora in 2 METIS parts, as DGL writes them, without a mapping: copy it to use it."""
    return _partition(to_dgl(cora), tmp_path_factory.mktemp("distdgl") / "parts")


@pytest.fixture
def parts(made, tmp_path):
    """A copy of :func:`made` of this test's own: its config path and mapping."""
    config, orig_nids = made
    folder = shutil.copytree(config.parent, tmp_path / "parts")
    return folder / config.name, orig_nids


@pytest.mark.parametrize("kwargs", [{"part_method": "metis"}, {"part_method": "random", "num_parts": 3,
                                                                "num_hops": 2}])
def test_with_the_returned_mapping_the_graph_reads_back_as_it_was(tmp_path, cora, to_dgl, assert_same_graph, kwargs):
    config, orig_nids = _partition(to_dgl(cora), tmp_path / "parts", **kwargs)
    assert not torch.equal(orig_nids, torch.arange(cora.num_nodes))  # DGL renumbered the nodes
    save_tensors(str(config.parent / "orig_nids.dgl"), {"_N": orig_nids})
    graph = load_graph(SourceConfig(dataset=str(config)))
    assert_same_graph(graph, cora)  # the same edges as a set, features bit for bit, labels, masks
    assert graph.name == "cora"
    assert graph.meta == {"format": "distdgl", "num_parts": kwargs.get("num_parts", 2), "node_order": "original",
                          "split": {"scheme": "default", "used": "own"}}


def test_the_per_part_mappings_of_dgls_pipeline_serve_as_well(parts, cora, assert_same_graph):
    config, orig_nids = parts
    ranges = json.loads(config.read_text())["node_map"]["_N"]  # part i: partition ids lo..hi-1
    for i, (lo, hi) in enumerate(ranges):
        save_tensors(str(config.parent / f"part{i}" / "orig_nids.dgl"), {"_N": orig_nids[lo:hi]})
    assert_same_graph(load_graph(SourceConfig(dataset=str(config))), cora)


def test_without_a_mapping_the_nodes_keep_the_partition_ids_with_a_warning(parts, cora):
    config, orig_nids = parts
    with pytest.warns(UserWarning, match=r"no orig_nids\.dgl .* keep the partition's ids .*save_tensors\("):
        graph = load_graph(SourceConfig(dataset=str(config)))
    assert graph.meta["node_order"] == "partition"
    # Partition id p is the original node orig_nids[p]: the same graph, relabelled.
    assert torch.equal(graph.x, cora.x[orig_nids]) and torch.equal(graph.y, cora.y[orig_nids])
    assert torch.equal(graph.train_mask, cora.train_mask[orig_nids])
    relabelled = {(int(s), int(d)) for s, d in orig_nids[graph.edge_index()].T}
    assert relabelled == {(int(s), int(d)) for s, d in cora.edge_index().T}


def test_gnndist_partition_takes_the_config(parts, tmp_path):
    config, orig_nids = parts
    save_tensors(str(config.parent / "orig_nids.dgl"), {"_N": orig_nids})
    out = tmp_path / "gnndist-parts"
    assert main(["partition", "--dataset", str(config), "--parts", "2", "--out", str(out), "--quiet"]) == 0
    assert main(["inspect", str(out), "--check", "--source", str(config)]) == 0
    assert json.loads((out / "partition.json").read_text())["graph"]["meta"]["node_order"] == "original"


def test_a_missing_part_file_is_named(parts):
    config, _ = parts
    (config.parent / "part1" / "node_feat.dgl").unlink()
    with pytest.raises(GraphError, match=r"part1/node_feat\.dgl: part 1's file, named by cora\.json, is missing"):
        load_graph(SourceConfig(dataset=str(config)))


def test_node_data_that_does_not_fit_its_part_is_refused(parts):
    config, _ = parts
    path = config.parent / "part0" / "node_feat.dgl"
    save_tensors(str(path), {key: value[:-1] for key, value in load_tensors(str(path)).items()})
    with pytest.raises(GraphError, match=r"node_feat\.dgl: \w+ has \d+ rows but part 0 has \d+ inner nodes"):
        load_graph(SourceConfig(dataset=str(config)))


@pytest.mark.parametrize(("mapping", "match"), [
    (lambda ids: {"_N": ids[:-1]}, r"holds torch\.int64 \(2707,\), not 2708 node ids"),
    (lambda ids: {"_N": torch.zeros_like(ids)}, r"the original ids are not the node ids 0\.\.2707, each once"),
    (lambda ids: {"paper": ids, "author": ids}, r"holds \['author', 'paper'\]: .* has one tensor"),
])
def test_a_bad_mapping_is_refused(parts, mapping, match):
    config, orig_nids = parts
    save_tensors(str(config.parent / "orig_nids.dgl"), mapping(orig_nids))
    with pytest.raises(GraphError, match=r"orig_nids\.dgl: " + match):
        load_graph(SourceConfig(dataset=str(config)))


def test_a_mapping_saved_by_torch_says_how_to_save_it(parts):
    config, orig_nids = parts
    torch.save(orig_nids, config.parent / "orig_nids.dgl")
    with pytest.raises(GraphError, match=r"not a DGL tensor file: .*save_tensors\("):
        load_graph(SourceConfig(dataset=str(config)))


def test_a_partition_of_a_heterograph_is_refused(parts):
    config, _ = parts
    meta = json.loads(config.read_text())
    meta["ntypes"] = {"author": 0, "paper": 1}
    config.write_text(json.dumps(meta))
    with pytest.raises(GraphError, match=r"a partition of a heterograph \(node types \['author', 'paper'\]"):
        load_graph(SourceConfig(dataset=str(config)))


def test_a_json_that_is_no_distdgl_config_is_not_recognised(tmp_path):
    path = tmp_path / "partition.json"
    path.write_text(json.dumps({"num_parts": 2}))
    with pytest.raises(GraphError, match=r"not a recognised graph format .*a DistDGL partition config"):
        load_graph(SourceConfig(dataset=str(path)))
