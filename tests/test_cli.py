"""The `gnndist` command line end to end on the bundled Cora and tiny synthetic graphs."""

from __future__ import annotations

import json

import pytest
import yaml

from gnndist.cli import main
from gnndist.config import PartitionConfig, SourceConfig, dump_job, from_dict, load_job, to_dict
from gnndist.partition import read_manifest


def test_partition_then_inspect_cora(tmp_path, capsys):
    out = tmp_path / "cora"
    assert main(["partition", "--dataset", "cora", "--parts", "3", "--out", str(out), "--quiet"]) == 0
    assert main(["inspect", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["graph"]["num_nodes"] == 2708 and rep["num_parts"] == 3
    assert sum(p["num_inner"] for p in rep["parts"]) == 2708
    assert sum(p["num_train"] for p in rep["parts"]) == 140
    assert rep["totals"]["edge_cut_fraction"] < 0.15  # METIS on a citation graph cuts little
    assert rep["totals"]["balance_nodes"] <= 1.05
    assert main(["inspect", str(out), "--check", "--source", "cora", "--plot", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 10_000
    assert "integrity check passed" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["metis", "random", "streaming"])
def test_every_method_with_weights_and_deep_halo(tmp_path, method):
    out = tmp_path / method
    args = ["partition", "--dataset", "synthetic:sbm:nodes=3000,edges=20000,features=8,seed=2", "--method", method,
            "--parts", "3", "--weights", "1,1,2", "--halo-hops", "2", "--out", str(out), "--quiet"]
    assert main(args) == 0
    manifest = read_manifest(out)
    sizes = [p["num_inner"] for p in manifest["parts"]]
    assert abs(sizes[2] / 3000 - 0.5) < 0.05
    assert manifest["method"]["config"]["weights"] == [1.0, 1.0, 2.0]
    assert main(["inspect", str(out), "--check"]) == 0


def test_check_fails_on_tampering(tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["partition", "--dataset", "cora", "--out", str(out), "--quiet"]) == 0
    victim = out / "part-00000" / "indices.npy"
    data = bytearray(victim.read_bytes())
    data[-3] ^= 0x01
    victim.write_bytes(bytes(data))
    assert main(["inspect", str(out), "--check"]) == 1
    assert "part-00000/indices.npy: checksum mismatch" in capsys.readouterr().out
    assert main(["inspect", str(out), "--verify"]) == 2
    assert "part-00000/indices.npy: checksum mismatch" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--parts", "3000"], "cannot make 3000 parts"),
    (["--parts", "0"], "--parts must be at least 1"),
    (["--parts", "2", "--weights", "1,2,3"], "3 entries for 2 parts"),
    (["--parts", "2", "--weights", "1,-1"], "must all be positive"),
    (["--dataset", "/nonexistent/graph.csv"], "/nonexistent/graph.csv"),
    (["--balance", "nodes,colour"], "subset of"),
])
def test_bad_input_is_a_clear_error(tmp_path, capsys, args, message):
    out = tmp_path / "p"
    assert main(["partition", "--out", str(out), "--quiet", *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_existing_output_needs_force(tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["partition", "--out", str(out), "--quiet"]) == 0
    assert main(["partition", "--out", str(out), "--parts", "3", "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
    assert read_manifest(out)["num_parts"] == 2
    assert main(["partition", "--out", str(out), "--parts", "3", "--force", "--quiet"]) == 0
    assert read_manifest(out)["num_parts"] == 3


def test_inspect_a_missing_directory(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope")]) == 2
    assert "no such partition directory" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".yaml", ".toml"])
def test_job_file_with_flag_overrides(tmp_path, suffix):
    job = tmp_path / f"job{suffix}"
    if suffix == ".yaml":
        job.write_text(yaml.safe_dump({"source": {"dataset": "cora"},
                                       "partition": {"method": "random", "num_parts": 4, "seed": 3}}))
    else:
        job.write_text('[source]\ndataset = "cora"\n[partition]\nmethod = "random"\nnum_parts = 4\nseed = 3\n')
    out = tmp_path / "p"
    assert main(["partition", "--config", str(job), "--parts", "2", "--out", str(out), "--quiet"]) == 0
    config = read_manifest(out)["method"]["config"]
    assert (config["method"], config["num_parts"], config["seed"]) == ("random", 2, 3)


def test_unknown_job_key_is_refused(tmp_path, capsys):
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"partition": {"num_partz": 4}}))
    assert main(["partition", "--config", str(job), "--out", str(tmp_path / "p"), "--quiet"]) == 2
    assert "unknown keys ['num_partz']" in capsys.readouterr().err


def test_configs_round_trip(tmp_path):
    configs = [SourceConfig(dataset="synthetic:rmat:nodes=100", split="random:0.5,0.2", seed=4),
               PartitionConfig(method="streaming", num_parts=4, weights=(1, 1, 2, 4), halo_hops=2)]
    path = tmp_path / "job.yaml"
    dump_job(configs, path)
    sections = load_job(path)
    assert [from_dict(type(c), sections[c.SECTION]) for c in configs] == configs
    assert to_dict(configs[1])["weights"] == [1.0, 1.0, 2.0, 4.0]
