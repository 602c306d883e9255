"""Partition servers verify their files before serving: tampered data is refused naming the
file, before any worker starts, as one line."""

from __future__ import annotations

import numpy as np
import pytest

from gnndist.cli import _TRAIN_FLAGS, _configs, build_parser, main
from gnndist.config import PartitionConfig, SamplerConfig, SourceConfig, TrainConfig
from gnndist.partition import PartitionFormatError, load_part
from gnndist.runtime.partition_server import PartitionServer
from partitioners.writer import write_partitions


@pytest.fixture
def parts(tmp_path, small_graph):
    assignment = np.random.default_rng(0).permutation(np.arange(small_graph.num_nodes) % 2)
    return write_partitions(small_graph, assignment, PartitionConfig(method="random", num_parts=2), tmp_path / "p")


def test_a_server_refuses_a_flipped_byte_in_the_features_naming_the_file(parts):
    victim = parts / "part-00001" / "features.npy"
    data = bytearray(victim.read_bytes())
    data[-5] ^= 0x10
    victim.write_bytes(bytes(data))
    # What each server runs first when launch_servers starts it (the launch itself is below).
    with pytest.raises(PartitionFormatError) as refused:
        PartitionServer(str(parts), 1, "server-1").start()
    assert str(refused.value) == f"{victim}: checksum mismatch (the file was modified after partitioning); " \
                                 "re-run `gnndist partition`"


def test_train_refuses_labels_rewritten_with_wrong_classes_before_any_worker_starts(ray_session, parts, tmp_path,
                                                                                    capsys):
    victim = parts / "part-00000" / "labels.npy"
    labels = load_part(parts, 0).labels
    np.save(victim, np.where(labels >= 0, (labels + 1) % 3, labels), allow_pickle=False)  # valid classes, same size
    run = tmp_path / "run"
    # launch_servers hands the server's own error on, one line, without Ray's remote traceback.
    assert main(["train", "--partitions", str(parts), "--out", str(run), "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"gnndist train: error: {victim}: checksum mismatch (the file was modified after partitioning); " \
                  "re-run `gnndist partition`"
    assert not (run / "checkpoints").exists()


def test_a_server_refuses_an_out_of_range_label_even_without_checksums(parts):
    victim = parts / "part-00001" / "labels.npy"
    labels = load_part(parts, 1).labels.copy()
    labels[11] = 7
    np.save(victim, labels, allow_pickle=False)
    with pytest.raises(PartitionFormatError, match=rf"^part 1: {victim}: row 11 holds 7, outside -1..2 "):
        PartitionServer(str(parts), 1, "server-1", verify=False).start()


def test_no_verify_is_the_only_way_to_skip_the_checksums():
    configs = (SourceConfig, PartitionConfig, SamplerConfig, TrainConfig)
    assert _configs(build_parser().parse_args(["train"]), _TRAIN_FLAGS, configs)[3].verify_partitions
    skipped = _configs(build_parser().parse_args(["train", "--no-verify"]), _TRAIN_FLAGS, configs)[3]
    assert not skipped.verify_partitions
    assert build_parser().parse_args(["evaluate", "run", "--no-verify"]).verify_partitions is False
    assert build_parser().parse_args(["evaluate", "run"]).verify_partitions is True
