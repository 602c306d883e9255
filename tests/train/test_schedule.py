"""The global batch cut from every part (``train/schedule.py``), shards of parts, and their placement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gnndist.config import ConfigError
from gnndist.train.loop import place_shards
from gnndist.train.schedule import Piece, Schedule, assign_shards


def test_every_part_gives_every_step_its_share_and_its_seeds_once_an_epoch():
    s = Schedule((130, 100, 0), 64)
    assert s.steps == 4  # ceil(230 / 64): the parts' number does not enter
    assert s.sizes().tolist() == [[32, 33, 32, 33], [25, 25, 25, 25], [0, 0, 0, 0]]
    assert s.step_seeds().tolist() == [57, 58, 57, 58]
    assert s.bounds(0).tolist() == [0, 32, 65, 97, 130]
    assert Schedule((130, 100, 0), 64, drop_last=True).steps == 3  # floor: larger steps, no seed left out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=12).filter(sum), st.integers(1, 400), st.booleans())
def test_the_schedule_is_balanced_for_any_parts(counts, batch_size, drop_last):
    total = sum(counts)
    if drop_last and total < batch_size:
        with pytest.raises(ConfigError, match="drop_last"):
            Schedule(tuple(counts), batch_size, drop_last)
        return
    s = Schedule(tuple(counts), batch_size, drop_last)
    steps = total // batch_size if drop_last else -(-total // batch_size)
    assert s.steps == steps
    sizes = s.sizes()
    assert sizes.sum(axis=1).tolist() == counts  # each part's seeds exactly once an epoch
    assert (sizes >= 0).all()
    # every step equally large, within one; a part's share off its proportion by less than a
    # seed for each part (each other part's evenly spaced seeds shift the cuts by at most one)
    assert s.step_seeds().max() - s.step_seeds().min() <= 1 and s.step_seeds().min() >= 1
    share = np.asarray(counts)[:, None] / steps
    assert (np.abs(sizes - share) < len(counts) + 1).all()
    for part in range(len(counts)):
        assert s.bounds(part)[0] == 0 and s.bounds(part)[-1] == counts[part]


def test_weighted_mean_losses_add_up_to_the_mean_over_every_seed_of_the_step():
    s = Schedule((130, 100, 7, 0), 64)
    gen = torch.Generator().manual_seed(0)
    for step in range(s.steps):
        losses = [torch.rand(int(n), generator=gen, dtype=torch.float64) for n in s.sizes()[:, step]]
        summed = sum(s.weights(Piece(p))[step] * losses[p].mean() for p in range(4) if losses[p].numel())
        assert torch.isclose(summed, torch.cat(losses).mean())


def test_a_schedule_without_training_seeds_is_refused():
    with pytest.raises(ConfigError, match="no training nodes"):
        Schedule((0, 0), 32)


def test_shards_are_contiguous_balanced_and_weighted():
    assert assign_shards([10] * 4, 1) == [[0, 1, 2, 3]]
    assert assign_shards([10] * 4, 2) == [[0, 1], [2, 3]]
    assert assign_shards([10] * 4, 4) == [[0], [1], [2], [3]]
    assert assign_shards([40, 10, 10, 10, 10], 2) == [[0], [1, 2, 3, 4]]  # balanced by seeds
    assert assign_shards([10] * 8, 2, [1, 3]) == [[0, 1], [2, 3, 4, 5, 6, 7]]  # a 3x faster worker
    assert assign_shards([0, 0, 50], 3) == [[0], [1], [2]]  # none empty, even when seeds are not there
    with pytest.raises(ConfigError, match="3 workers for 2 parts"):
        assign_shards([1, 1], 3)
    with pytest.raises(ConfigError, match="one per worker"):
        assign_shards([1, 1], 2, [1])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 100), min_size=1, max_size=16), st.data())
def test_shards_cover_every_part_once_in_order(counts, data):
    workers = data.draw(st.integers(1, len(counts)))
    shards = assign_shards(counts, workers)
    assert len(shards) == workers and all(shards)
    assert [p for shard in shards for p in shard] == list(range(len(counts)))


def test_workers_take_the_shard_whose_servers_share_their_node():
    assert place_shards(["a", "a"], ["a", "a"]) == [0, 1]  # one node: shard = rank
    assert place_shards(["b", "a"], ["a", "b"]) == [1, 0]
    assert place_shards(["b", "a", "a"], ["a", "a", "c"]) == [2, 0, 1]  # shard 2's node has no worker


def test_pieces_of_a_part_share_each_steps_batch_exactly():
    s = Schedule((130, 70, 0, 45), 48)
    cuts = [0.0, 0.25, 0.6, 1.0]
    pieces = [Piece(0, a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    spans = [s.spans(p) for p in pieces]
    bounds = s.bounds(0)
    # Adjacent pieces meet: together they take each step's batch of the part, no seed twice.
    assert np.array_equal(spans[0][:, 0], bounds[:-1]) and np.array_equal(spans[-1][:, 1], bounds[1:])
    for left, right in zip(spans[:-1], spans[1:], strict=True):
        assert np.array_equal(left[:, 1], right[:, 0])
    assert np.array_equal(sum(s.piece_sizes(p) for p in pieces), s.sizes()[0])
    # Their weights add up to the part's: the step's gradient stays the mean over every seed.
    np.testing.assert_allclose(sum(s.weights(p) for p in pieces), s.weights(Piece(0)))
    assert np.array_equal(s.spans(Piece(1)), np.stack([s.bounds(1)[:-1], s.bounds(1)[1:]], axis=1))
    # Only a piece that does not start the part's batch draws other random streams.
    assert [p.key for p in pieces] == [(), (round(0.25 * 2**20),), (round(0.6 * 2**20),)]
    assert [p.evaluates for p in pieces] == [True, False, False]


def test_split_shards_follow_the_weights_to_a_tenth_of_a_part():
    from gnndist.train.schedule import shard_seeds, split_shards

    counts = (100,) * 8
    shards = split_shards(counts, 3, [1.0, 1.0, 1.0])
    assert [shard_seeds(counts, shard) for shard in shards] == pytest.approx([800 / 3] * 3)
    assert shards[0] == [Piece(0), Piece(1), Piece(2, 0.0, pytest.approx(2 / 3))]
    assert [p.part for p in shards[1]] == [2, 3, 4, 5] and shards[1][-1].hi == pytest.approx(1 / 3)
    # A boundary within a tenth of a part's edge moves to the edge: no sliver sampled on its own.
    assert split_shards(counts, 2, [1.0, 0.96]) == [[Piece(p) for p in range(4)], [Piece(p) for p in range(4, 8)]]
    # Parts without training seeds stay whole, with the shard before the boundary.
    assert split_shards((100, 0, 100), 2, [1.0, 1.0]) == [[Piece(0), Piece(1)], [Piece(2)]]
    with pytest.raises(ConfigError, match="leave a worker with less than 0.1 of a part"):
        split_shards((100, 100), 2, [1.0, 0.01])
    with pytest.raises(ConfigError, match="1 to 2 workers"):
        split_shards((100, 100), 3, [1.0, 1.0, 1.0])
