"""Split strings: parsing, determinism, per-class and random protocols."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnndist.config import ConfigError
from gnndist.graph import UNLABELLED, GraphError
from gnndist.sources.splits import SplitSpec, choose_split, parse_split

Y = np.repeat(np.arange(3), 50)


def test_parse():
    assert parse_split("default") == SplitSpec("default")
    assert parse_split("7") == SplitSpec("index", index=7)
    assert parse_split("per_class:20,30") == SplitSpec("per_class", train=20, val=30)
    assert parse_split("random:0.6,0.2") == SplitSpec("random", train=0.6, val=0.2)


@pytest.mark.parametrize("bad", ["", "-1", "public", "per_class:20", "per_class:0.5,1", "random:a,b",
                                 "random:0.8,0.3", "per_class:-1,3", "random:0.5,0.1,0.1"])
def test_malformed_strings_raise_config_error(bad):
    with pytest.raises(ConfigError, match="source.split"):
        parse_split(bad)


def test_per_class_counts_and_rest_in_test():
    train, val, test = choose_split("per_class:20,30", Y, seed=0, origin="t")
    for c in range(3):
        assert train[Y == c].sum() == 20 and val[Y == c].sum() == 30 and test[Y == c].sum() == 0
    train, val, test = choose_split("per_class:5,5", Y, seed=0, origin="t")
    assert test.sum() == 150 - 30


def test_default_without_own_split_is_per_class_20_30():
    a = choose_split("default", Y, seed=1, origin="t")
    b = choose_split("per_class:20,30", Y, seed=1, origin="t")
    assert all(np.array_equal(m, n) for m, n in zip(a, b, strict=True))


def test_default_prefers_own_then_first_indexed():
    own = tuple(np.eye(3, len(Y), k=i, dtype=bool)[0] for i in range(3))
    other = tuple(np.eye(3, len(Y), k=i + 3, dtype=bool)[0] for i in range(3))
    assert choose_split("default", Y, seed=0, origin="t", default=own) is own
    assert choose_split("default", Y, seed=0, origin="t", indexed=[other, own]) is other
    assert choose_split("1", Y, seed=0, origin="t", indexed=[other, own]) is own
    with pytest.raises(GraphError, match="file.npz: split 2.*splits 0..1"):
        choose_split("2", Y, seed=0, origin="file.npz", indexed=[other, own])
    with pytest.raises(GraphError, match="no numbered splits"):
        choose_split("0", Y, seed=0, origin="t")


def test_unlabelled_nodes_stay_out_of_splits():
    y = Y.copy()
    y[::2] = UNLABELLED
    for split in ("per_class:3,3", "random:0.5,0.3", "default"):
        masks = choose_split(split, y, seed=0, origin="t")
        assert not any(m[y == UNLABELLED].any() for m in masks)
    assert not any(m.any() for m in choose_split("default", np.full(5, UNLABELLED), seed=0, origin="t"))
    with pytest.raises(GraphError, match="needs labels"):
        choose_split("random:0.5,0.5", np.full(5, UNLABELLED), seed=0, origin="t")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), train=st.floats(0, 1), val=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_random_split_is_a_seeded_partition(n, train, val, seed):
    val = min(val, 1 - train)
    y = np.arange(n) % 4
    masks = choose_split(SplitSpec("random", train=train, val=val), y, seed=seed, origin="t")
    again = choose_split(SplitSpec("random", train=train, val=val), y, seed=seed, origin="t")
    assert all(np.array_equal(m, a) for m, a in zip(masks, again, strict=True))
    total = sum(m.astype(int) for m in masks)
    assert (total == 1).all()
    assert masks[0].sum() == int(train * n) and masks[1].sum() == int(val * n)
