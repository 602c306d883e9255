"""Batches onto the device (gnndist.train.device, MiniBatch.to / pin): the CPU path, and the GPU
path's structure; the copies themselves where CUDA is available."""

from __future__ import annotations

import pytest
import torch

from gnndist.sampling.batch import MiniBatch
from gnndist.train.device import pinned, staged

CPU = torch.device("cpu")
no_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _batch(seed: int, n: int = 6) -> MiniBatch:
    g = torch.Generator().manual_seed(seed)
    return MiniBatch(x=torch.randn(n, 3, generator=g), y=torch.randint(0, 4, (n,), generator=g),
                     edge_index=torch.randint(0, n, (2, 2 * n), generator=g), n_id=torch.randperm(n, generator=g),
                     batch_size=2, num_sampled_nodes=[2, n - 2], num_sampled_edges=[2 * n])


def _steps(count: int = 5) -> list[list[MiniBatch | None]]:
    """``count`` steps of two parts, the first part without seeds in every third step."""
    return [[None if k % 3 == 1 else _batch(2 * k), _batch(2 * k + 1)] for k in range(count)]


class Counting:
    """An iterator over ``items`` that counts how many it has handed out."""

    def __init__(self, items: list) -> None:
        self.items = iter(items)
        self.drawn = 0

    def __iter__(self) -> Counting:
        return self

    def __next__(self):
        item = next(self.items)
        self.drawn += 1
        return item


def _same(a: MiniBatch | None, b: MiniBatch | None) -> bool:
    if a is None or b is None:
        return a is b
    return all(torch.equal(getattr(a, t), getattr(b, t)) for t in ("x", "y", "edge_index", "n_id")) and \
        (a.batch_size, a.num_sampled_nodes, a.num_sampled_edges) == (b.batch_size, b.num_sampled_nodes,
                                                                     b.num_sampled_edges)


def _as_they_went_in(out: list, steps: list) -> bool:
    """Whether ``out`` holds ``steps``' own lists and batches, in order (so no copies)."""
    return len(out) == len(steps) and all(got is given and all(b is a for a, b in zip(given, got, strict=True))
                                          for given, got in zip(steps, out, strict=True))


def test_on_cpu_the_steps_come_out_in_order_as_they_went_in():
    steps = _steps()
    assert _as_they_went_in(list(staged(pinned(iter(steps), CPU), CPU)), steps)


def test_on_cpu_nothing_is_pinned_or_copied(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a batch was pinned or copied on CPU")

    monkeypatch.setattr(MiniBatch, "pin", refuse)
    monkeypatch.setattr(MiniBatch, "to", refuse)
    steps = iter(_steps())
    assert pinned(steps, CPU) is steps
    assert len(list(staged(steps, CPU))) == 5


def test_for_a_gpu_each_batch_is_pinned_when_its_step_is_drawn(monkeypatch):
    # The GPU branch of `pinned`, run on CPU with a stand-in for MiniBatch.pin: it is lazy, so the
    # pinning runs in whichever thread draws the step (the training loop's prefetch thread).
    pins = {}  # id of the batch pinned -> its pinned stand-in
    monkeypatch.setattr(MiniBatch, "pin", lambda b: pins.setdefault(id(b), _batch(100 + len(pins))))
    steps = _steps(3)  # step 1's first part has no seeds
    out = pinned(iter(steps), torch.device("cuda"))
    assert pins == {}
    for k, step in enumerate(out):
        assert len(pins) == sum(b is not None for s in steps[:k + 1] for b in s)
        assert all(got is (None if b is None else pins[id(b)]) for b, got in zip(steps[k], step, strict=True))


def test_staged_draws_exactly_one_step_ahead_of_the_one_handed_out():
    source = Counting(_steps(4))
    out = staged(source, CPU)
    assert source.drawn == 0  # lazy: nothing drawn before the first step is asked for
    for k in range(4):
        next(out)
        # Step k is handed out with step k + 1 drawn (and its copies issued); the last with the end.
        assert source.drawn == min(k + 2, 4)
    assert next(out, "end") == "end"


@pytest.mark.parametrize("count", [0, 1, 2])
def test_short_streams_end_with_every_step_handed_out(count):
    steps = _steps(count)
    assert _as_they_went_in(list(staged(iter(steps), CPU)), steps)


def test_steps_of_parts_without_seeds_pass_through():
    steps = [[None, None], [None, _batch(0)], [_batch(1), None]]
    assert _as_they_went_in(list(staged(iter(steps), CPU)), steps)


def test_staged_refuses_a_device_it_cannot_stage_to():
    with pytest.raises(ValueError, match="CPU or a CUDA device, not meta"):
        staged(iter(_steps()), torch.device("meta"))


def test_to_the_batch_device_is_the_batch_and_to_another_moves_every_tensor():
    batch = _batch(0)
    assert batch.to("cpu") is batch and batch.to(CPU, non_blocking=True) is batch
    moved = batch.to("meta", non_blocking=True)  # a device every machine has, standing in for a GPU
    for name in ("x", "y", "edge_index", "n_id"):
        t, m = getattr(batch, name), getattr(moved, name)
        assert m.device.type == "meta" and (m.shape, m.dtype) == (t.shape, t.dtype)
    assert (moved.batch_size, moved.num_sampled_nodes, moved.num_sampled_edges) == \
        (batch.batch_size, batch.num_sampled_nodes, batch.num_sampled_edges)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_pin_without_cuda_is_refused():
    with pytest.raises(RuntimeError, match="needs CUDA"):
        _batch(0).pin()


@no_cuda
def test_pin_copies_every_tensor_into_pinned_memory():
    batch = _batch(0)
    pinned_batch = batch.pin()
    assert all(getattr(pinned_batch, t).is_pinned() for t in ("x", "y", "edge_index", "n_id"))
    assert _same(pinned_batch, batch)


@no_cuda
def test_on_a_gpu_the_steps_arrive_there_intact_and_one_step_ahead():
    device = torch.device("cuda", torch.cuda.current_device())
    steps = _steps(6)
    source = Counting(steps)
    out = staged(pinned(source, device), device)
    for k, given in enumerate(steps):
        got = next(out)
        assert source.drawn == min(k + 2, len(steps))
        assert all(b is None or b.x.device == device for b in got)
        assert all(_same(a, None if b is None else b.to(CPU)) for a, b in zip(given, got, strict=True))
    assert next(out, "end") == "end"
