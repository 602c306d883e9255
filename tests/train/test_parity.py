"""Parts are not workers: a step's gradient is the seed-weighted mean over all K parts' batches,
so the trajectory depends on the partition and the seeds only, not on how many workers hold the
parts (the semantics in DESIGN.md).

- On real batches of uneven parts, the parts' weighted batch losses have exactly the gradient of
  one process's mean loss over the union of the step's seeds.
- 4 parts trained (with dropout) on 1 worker, and on 2 (whose parts a policy moves between them
  after the first epoch), then 4, then 1 workers, resuming from the last checkpoint at each
  change, end where one process replaying the parts' batches ends: bit for bit with 1 worker, to
  float summation tolerance with more. The gradient noise scale, measured every step, agrees.

The statistical check (test accuracy of 1, 2 and 4 parts over 3 seeds on Cora and Amazon Photo)
is a benchmark: ``scripts/bench_train.py --parity``, results in
``scripts/results/bench_train_parity.json``.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import replace

import pytest
import ray
import torch
import torch.nn.functional as F

from gnndist import streams
from gnndist.adapt.policy import Context, Policy
from gnndist.config import PartitionConfig, SamplerConfig, SourceConfig, TrainConfig
from gnndist.partition.format import read_manifest
from gnndist.runtime.loader import DistributedNeighborLoader
from gnndist.runtime.partition_server import launch_servers
from gnndist.testing import SaveParameters, saved_parameters
from gnndist.train.loop import _open_shard
from gnndist.train.models import build_model
from gnndist.train.schedule import Piece, Schedule, assign_shards
from gnndist.train.step import ModelInput, forward, warmup_factor, warmup_length
from gnndist.train.trainer import train

# The workers cannot import this test module: its policy class travels by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Reshape(Policy):
    """Asks for more workers than parts after epoch 0 (refused), gives the second shard three times
    the first's share in epoch 1, and goes on with 4 workers after it."""

    name = "reshape"

    def before_epoch(self, ctx: Context) -> None:
        if ctx.epoch == 1:
            ctx.rebalance([1.0, 3.0], "the test moves parts")

    def after_epoch(self, ctx: Context) -> None:
        if ctx.epoch in (0, 1):
            ctx.resize(5 if ctx.epoch == 0 else 4, "the test resizes")


@contextmanager
def _one_thread():
    """Torch on one thread, as the workers run (cpus_per_worker 1): the same kernels then sum in the same order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cora4(tmp_path_factory, ray_session):
    """Cora in 4 METIS parts of capacities 1:1:2:4 (uneven shares of every step), servers running."""
    from gnndist.api import partition

    root = partition(SourceConfig(dataset="cora"),
                     PartitionConfig(method="metis", num_parts=4, weights=(1, 1, 2, 4)),
                     tmp_path_factory.mktemp("cora4") / "parts")
    servers = launch_servers(root)
    yield root, servers
    servers.kill()


def _schedule(root, sampler: SamplerConfig) -> Schedule:
    counts = [entry["num_train"] for entry in read_manifest(root)["parts"]]
    return Schedule(tuple(counts), sampler.batch_size, sampler.drop_last)


def _fresh_model(root, config: TrainConfig, sampler: SamplerConfig) -> torch.nn.Module:
    graph = read_manifest(root)["graph"]
    torch.manual_seed(config.seed)  # the workers' initial parameters
    return build_model(config, graph["feature_dim"], graph["num_classes"], len(sampler.fanouts))


def _part_batches(root, servers, sampler: SamplerConfig, schedule: Schedule, epochs: range) -> list:
    """Each part's stream of step batches (``None``: no seeds of it in a step), built in this process."""
    views = _open_shard(str(root), list(range(len(schedule.counts))), servers, sampler)
    return [DistributedNeighborLoader(v, v.seeds("train"), sampler).stream(
        [(epoch, schedule.spans(Piece(v.part))) for epoch in epochs]) for v in views]


def test_the_weighted_part_losses_have_the_gradient_of_the_mean_over_all_seeds(cora4):
    root, servers = cora4
    config, sampler = TrainConfig(hidden=16, dropout=0.0), SamplerConfig(fanouts=(5, 5), batch_size=32)
    schedule = _schedule(root, sampler)
    assert len(set(schedule.counts)) == 4  # uneven parts: the weights differ part by part
    model = _fresh_model(root, config, sampler)
    params = list(model.parameters())
    batches = _part_batches(root, servers, sampler, schedule, range(1))
    with _one_thread():
        for step in range(schedule.steps):
            step_batches = [next(stream) for stream in batches]
            model.zero_grad()
            for part, b in enumerate(step_batches):
                if b is not None:
                    loss = F.cross_entropy(forward(model, b, ModelInput.PYG_HOPS), b.y[:b.batch_size])
                    (loss * float(schedule.weights(Piece(part))[step])).backward()
            weighted = [p.grad.clone() for p in params]
            model.zero_grad()
            present = [b for b in step_batches if b is not None]
            union = sum(F.cross_entropy(forward(model, b, ModelInput.PYG_HOPS), b.y[:b.batch_size], reduction="sum")
                        for b in present)
            (union / sum(b.batch_size for b in present)).backward()
            for got, want in zip(weighted, (p.grad for p in params), strict=True):
                # The same terms summed in another order: float32 rounding, a few ulps of the largest entry.
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


def _replay(root, servers, config: TrainConfig, sampler: SamplerConfig) -> dict[str, torch.Tensor]:
    """The parameters one process reaches training every part itself: per step, each part's batch
    with that part's dropout stream, weighted by its share of the step, then Adam."""
    schedule = _schedule(root, sampler)
    model = _fresh_model(root, config, sampler)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    batches = _part_batches(root, servers, sampler, schedule, range(config.epochs))
    warmup = warmup_length(config.warmup_steps, schedule.steps * config.epochs)
    assert warmup > 1  # the run's learning rate ramps up
    for epoch in range(config.epochs):
        for step in range(schedule.steps):
            optimizer.param_groups[0]["lr"] = config.lr * warmup_factor(epoch * schedule.steps + step, warmup)
            optimizer.zero_grad(set_to_none=False)
            for part, stream in enumerate(batches):
                b = next(stream)
                if b is None:
                    continue
                torch.manual_seed(streams.torch_seed(config.seed, streams.DROPOUT, part, epoch, step))
                loss = F.cross_entropy(forward(model, b, ModelInput.PYG_HOPS), b.y[:b.batch_size])
                (loss * float(schedule.weights(Piece(part))[step])).backward()
            optimizer.step()
    return model.state_dict()


def _run(root, tmp, name: str, config: TrainConfig, sampler: SamplerConfig,
         **kwargs) -> tuple[dict[str, torch.Tensor], list[dict]]:
    result = train(None, root, config=config, sampler=sampler, out_dir=tmp / name,
                   hooks=[SaveParameters(tmp / f"{name}-params")], **kwargs)
    shards = [w["parts"] for w in result.history[-1]["workers"]]
    workers = len(shards)
    assert sum(shards, []) == [0, 1, 2, 3]
    ranks = [saved_parameters(tmp / f"{name}-params", r) for r in range(workers)]
    for other in ranks[1:]:  # every worker holds the same parameters
        assert all(torch.equal(ranks[0][k], other[k]) for k in ranks[0])
    return ranks[0], result.history


def test_the_trajectory_does_not_depend_on_the_number_of_workers(cora4, tmp_path):
    root, servers = cora4
    # dropout 0.5: the parts' own streams matter. Half a CPU each: 4 workers fit the session's 2 CPUs
    # (one torch thread each, whatever the share). The noise scale is measured every step: measuring
    # must not move the trajectory, and its estimate must not depend on the workers either.
    # The learning rate warms up over the first 4 steps, whichever workers take them.
    config = TrainConfig(epochs=6, hidden=16, lr=0.01, checkpoint_every=2, cpus_per_worker=0.5, monitor_every=1,
                         warmup_steps=4)
    sampler = SamplerConfig(fanouts=(5, 5), batch_size=32)
    with _one_thread():
        replayed = _replay(root, servers, config, sampler)
    one, one_history = _run(root, tmp_path, "w1", replace(config, workers=1), sampler)
    # 2 workers (whose parts a policy moves in epoch 1), resized by the policy to 4 after epoch 1,
    # then resumed with 1 from the checkpoint of epoch 3: the trajectory is the same throughout.
    _, first = _run(root, tmp_path, "resized", replace(config, workers=2, epochs=4), sampler, policies=[Reshape()])
    counts = _schedule(root, sampler).counts
    shards = [[w["parts"] for w in r["workers"]] for r in first]
    assert shards[:2] == [assign_shards(counts, 2), assign_shards(counts, 2, [1.0, 3.0])] != [shards[0]] * 2
    assert shards[2:] == [[[0], [1], [2], [3]]] * 2
    refused = first[0]["decisions"][0]
    assert refused["action"] == "resize" and "5 workers for 4 parts" in refused["refused"]
    assert first[2]["workers_changed"] == {"from": 2, "to": 4, "reason": "resized by policy reshape: the test resizes"}
    resized, resized_history = _run(root, tmp_path, "resized", replace(config, workers=1), sampler, resume=True)
    assert [len(r["workers"]) for r in resized_history] == [2, 2, 4, 4, 1, 1]
    start = _fresh_model(root, config, sampler).state_dict()
    for name, want in replayed.items():
        # One worker adds its parts' gradients in the order the replay does: bit for bit.
        assert torch.equal(one[name], want), (name, (one[name] - want).abs().max())
        # More workers add per-worker sums, then sum those: the same terms in another order, a few
        # float32 ulps (1e-7 relative) a step, which 30 Adam steps carry on (seen: up to 2e-7).
        # 1e-5 is far below what training moves (the last check) and any change of the math.
        torch.testing.assert_close(resized[name], want, rtol=0, atol=1e-5)
        assert (want - start[name]).abs().max() > 1e-2  # training moved it far beyond the tolerance
    # The estimate goes on across the resumes (its state is checkpointed) and sums the parts' batches
    # whichever worker trained them: the float rounding of the gradients only.
    got, want = ([r["noise"] for r in h] for h in (resized_history, one_history))
    assert len(got) == len(want) == config.epochs
    for g, w in zip(got, want, strict=True):
        # Small parts' batches (8 seeds) at dropout 0.5: the noise hides |G|^2, whose estimate can be
        # below 0 here; both estimates agree to the gradients' float rounding all the same.
        assert g["trace_sigma"] == pytest.approx(w["trace_sigma"], rel=1e-5) and w["trace_sigma"] > 0
        assert abs(g["gradient_sq"] - w["gradient_sq"]) <= 1e-5 * w["trace_sigma"]
    # The parts' gradient variance, measured on the same steps, sums the same parts' figures too.
    got, want = ([r["part_variance"] for r in h] for h in (resized_history, one_history))
    for g, w in zip(got, want, strict=True):
        assert g["variance"] == pytest.approx(w["variance"], rel=1e-5) and w["variance"] > 0
        assert g["relative"] == pytest.approx(w["relative"], rel=1e-4)
