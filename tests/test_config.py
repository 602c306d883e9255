from __future__ import annotations

import pytest

from gnndist.config import ConfigError, TrainConfig


@pytest.mark.parametrize("gpus", [0.5, 1.5, -1])
def test_gpus_per_worker_must_be_whole_gpus_for_nccl(gpus):
    with pytest.raises(ConfigError, match="one GPU of its own per worker"):
        TrainConfig(gpus_per_worker=gpus)


@pytest.mark.parametrize("gpus", [0, 1, 2.0])
def test_whole_gpus_per_worker_are_accepted(gpus):
    assert TrainConfig(gpus_per_worker=gpus).gpus_per_worker == gpus


@pytest.mark.parametrize(("changes", "message"), [
    ({"workers": 0}, "train.workers must be positive"),
    ({"workers": 2, "min_workers": 3}, "between 1 and train.workers"),
    ({"min_workers": 1}, "needs train.workers"),
    ({"workers": 2, "worker_weights": (1, 2, 3)}, "3 numbers for 2 workers"),
    ({"worker_weights": (1, -1)}, "must be positive numbers"),
    ({"max_failures": -1}, "0 or more"),
    ({"rescale_check_s": 0}, "must be positive"),
])
def test_worker_settings_are_checked(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)


def test_the_workers_flag_takes_a_count_or_an_elastic_range():
    from gnndist.cli import build_parser

    parser = build_parser()
    fixed, elastic, default = (parser.parse_args(["train", *flags]) for flags in (["--workers", "4"],
                                                                                 ["--workers", "2-4"], []))
    assert (fixed.min_workers, fixed.workers) == (None, 4)
    assert (elastic.min_workers, elastic.workers) == (2, 4)
    assert (default.min_workers, default.workers) == (None, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--workers", "two"])


def test_policies_come_from_the_job_file_and_the_flags_replace_them(tmp_path):
    from gnndist.adapt.policies import EpochSchedule
    from gnndist.cli import _TRAIN_FLAGS, _configs, build_parser
    from gnndist.config import AdaptConfig, SamplerConfig

    job = tmp_path / "job.toml"
    job.write_text('[adapt]\npolicies = ["schedule:lr@3=0.005"]\n[sampler]\nbatch_size = 64\n')
    parser = build_parser()
    for flags, want in (([], {3: {"lr": 0.005}}),
                        (["--policy", "schedule:batch_size@1=128", "--policy", "schedule:lr@2=0.1"],
                         {1: {"batch_size": 128}})):
        args = parser.parse_args(["train", "--config", str(job), *flags])
        _, adapt = _configs(args, _TRAIN_FLAGS, (SamplerConfig, AdaptConfig))
        policies = adapt.build()
        assert isinstance(policies[0], EpochSchedule) and policies[0].at == want
        assert len(policies) == max(1, len(flags) // 2)


@pytest.mark.parametrize("policies, message", [(["fastest"], "unknown policy 'fastest'"),
                                               ("schedule:lr@1=0.1", "a list of policies"),
                                               (["schedule:lr@x=1"], "SETTING@EPOCH")])
def test_a_bad_policy_is_refused_before_the_run(policies, message):
    from gnndist.config import AdaptConfig

    with pytest.raises(ConfigError, match=message):
        AdaptConfig(policies=policies)
