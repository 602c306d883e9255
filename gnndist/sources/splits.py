"""Train/val/test masks from a ``SourceConfig.split`` string.

Accepted strings:
- ``"default"``: the source's own split if it has one (a file's first split when it holds
  several), else ``per_class:20,30``;
- ``"<int>"``: index into the source's list of splits (Tolokers' 10, Planetoid's geom-gcn 10,
  an OGB folder's split schemes in name order);
- ``"per_class:TRAIN,VAL"``: per class, TRAIN training and VAL validation nodes chosen at
  random, every other labelled node in test (Shchur et al., "Pitfalls of GNN evaluation");
  a class with fewer nodes fills train first, then val;
- ``"random:TRAIN_FRAC,VAL_FRAC"``: those fractions of the labelled nodes, the rest in test.

Random choices use ``numpy.random.default_rng(seed)`` and only ever see labelled nodes, so the
same labels and seed give the same masks. Masks are bool [N] over global ids.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gnndist.config import ConfigError
from gnndist.graph import UNLABELLED, Graph, GraphError

#: (train, val, test) bool [N] masks over global ids.
Masks = tuple[np.ndarray, np.ndarray, np.ndarray]

#: The split used when a source brings none of its own.
FALLBACK = "per_class:20,30"

_FORMS = '"default", "<int>", "per_class:TRAIN,VAL" (counts) or "random:TRAIN_FRAC,VAL_FRAC"'


@dataclass(frozen=True)
class SplitSpec:
    """A parsed split string. ``train``/``val`` are counts per class or fractions, by ``kind``."""

    kind: str  # "default" | "index" | "per_class" | "random"
    index: int = 0
    train: float = 0.0
    val: float = 0.0


def parse_split(text: str) -> SplitSpec:
    """Parse a split string (see the module docstring); ConfigError if it is malformed."""
    text = text.strip()
    if text == "default":
        return SplitSpec("default")
    if text.isdigit():
        return SplitSpec("index", index=int(text))
    kind, _, args = text.partition(":")
    if kind not in ("per_class", "random"):
        raise ConfigError(f"source.split {text!r} is not understood: use {_FORMS}")
    parts = args.split(",")
    try:
        train, val = (int(p) if kind == "per_class" else float(p) for p in parts)
    except ValueError as e:
        want = "two non-negative integers" if kind == "per_class" else "two fractions"
        raise ConfigError(f"source.split {text!r}: {kind} takes {want}, e.g. "
                          f"{'per_class:20,30' if kind == 'per_class' else 'random:0.6,0.2'}") from e
    if train < 0 or val < 0 or (kind == "random" and train + val > 1):
        raise ConfigError(f"source.split {text!r}: values must be non-negative"
                          + (" and the fractions sum to at most 1" if kind == "random" else ""))
    return SplitSpec(kind, train=train, val=val)


def choose_split(spec: SplitSpec | str, y: np.ndarray, *, seed: int, origin: str,
                 default: Masks | None = None, indexed: Sequence[Masks] = ()) -> Masks:
    """The masks ``spec`` asks for, given labels ``y`` (int64 [N], ``UNLABELLED`` = -1).

    ``default`` is the source's own split, ``indexed`` its numbered splits (``default`` falls
    back to ``indexed[0]``). A GraphError naming ``origin`` if an index is out of range or a
    computed split finds no labelled node.
    """
    if isinstance(spec, str):
        spec = parse_split(spec)
    y = np.asarray(y)
    if spec.kind == "default":
        if default is None and indexed:
            default = indexed[0]
        if default is not None:
            return default
        if not np.any(y != UNLABELLED):
            return _empty(len(y))  # an unlabelled graph (e.g. an edge list without labels) has no split
        spec = parse_split(FALLBACK)
    if spec.kind == "index":
        if spec.index >= len(indexed):
            have = f"splits 0..{len(indexed) - 1}" if indexed else "no numbered splits"
            raise GraphError(origin, f"split {spec.index} was asked for but the source has {have}",
                             'use "default", per_class:TRAIN,VAL or random:TRAIN_FRAC,VAL_FRAC')
        return indexed[spec.index]
    labelled = np.flatnonzero(y != UNLABELLED)
    if labelled.size == 0:
        raise GraphError(origin, f"split {spec.kind} needs labels but no node has one", "give a labels file")
    rng = np.random.default_rng(seed)
    if spec.kind == "per_class":
        return per_class_split(y, int(spec.train), int(spec.val), rng)
    return random_split(y, spec.train, spec.val, rng)


def per_class_split(y: np.ndarray, train: int, val: int, rng: np.random.Generator) -> Masks:
    """Per class: ``train`` random training nodes, ``val`` validation nodes, the rest test."""
    masks = _empty(len(y))
    for c in np.unique(y[y != UNLABELLED]):
        nodes = rng.permutation(np.flatnonzero(y == c))
        masks[0][nodes[:train]] = True
        masks[1][nodes[train:train + val]] = True
        masks[2][nodes[train + val:]] = True
    return masks


def random_split(y: np.ndarray, train: float, val: float, rng: np.random.Generator) -> Masks:
    """``train``/``val`` fractions of the labelled nodes (rounded down), the rest test."""
    nodes = rng.permutation(np.flatnonzero(y != UNLABELLED))
    n_train, n_val = int(train * nodes.size), int(val * nodes.size)
    masks = _empty(len(y))
    masks[0][nodes[:n_train]] = True
    masks[1][nodes[n_train:n_train + n_val]] = True
    masks[2][nodes[n_train + n_val:]] = True
    return masks


def with_split(graph: Graph, split: str, seed: int = 0) -> Graph:
    """A copy of ``graph`` with masks from ``split`` (``"default"`` keeps the graph's own), which
    its ``meta["split"]`` records (see :func:`split_record`)."""
    y = graph.y.numpy()
    own = (graph.train_mask.numpy(), graph.val_mask.numpy(), graph.test_mask.numpy())
    has_own = any(m.any() for m in own)
    train, val, test = choose_split(split, y, seed=seed, origin=graph.origin, default=own if has_own else None)
    # A meta dict of its own: replace() would share the original's, which keeps its own record.
    chosen = dataclasses.replace(graph, train_mask=_tensor(train), val_mask=_tensor(val), test_mask=_tensor(test),
                                 meta=dict(graph.meta))
    chosen.meta["split"] = split_record(split, seed, chosen)
    return chosen


#: ``meta["split"]`` of a graph whose masks were given with it (an in-memory graph).
GIVEN = {"scheme": "given"}


def split_record(split: str, seed: int, graph: Graph) -> dict:
    """What ``graph``'s masks are, as the partition manifest records it: ``{"scheme": split}``
    with the ``"seed"`` of a random scheme, and for ``"default"`` what it ``"used"``: ``"own"``
    (the source's split), :data:`FALLBACK` (and its seed) or ``"none"`` (no node has a label)."""
    try:
        spec = parse_split(split)
    except ConfigError:  # the graph loaded, so the source knows it: a name of its own (an OGB scheme)
        return {"scheme": split.strip()}
    if spec.kind in ("per_class", "random"):
        return {"scheme": split.strip(), "seed": seed}
    if spec.kind == "index":
        return {"scheme": split.strip()}
    masks = (graph.train_mask.numpy(), graph.val_mask.numpy(), graph.test_mask.numpy())
    if not any(m.any() for m in masks):
        return {"scheme": "default", "used": "none"}
    # The same labels and seed give the same masks, so drawing the fallback again tells whether the
    # source had a split of its own, without every source having to report which it used.
    fallback = choose_split(FALLBACK, graph.y.numpy(), seed=seed, origin=graph.origin)
    if all(np.array_equal(m, f) for m, f in zip(masks, fallback, strict=True)):
        return {"scheme": "default", "used": FALLBACK, "seed": seed}
    return {"scheme": "default", "used": "own"}


def describe_split(record: dict | None) -> str:
    """A :func:`split_record` (or :data:`GIVEN`; ``None`` where nothing was recorded) in words."""
    if record is None:
        return "not recorded (partitioned by an older gnndist)"
    seed = f", seed {record['seed']}" if "seed" in record else ""
    scheme, used = record["scheme"], record.get("used")
    if scheme == "given":
        return "the masks the graph came with (an in-memory graph)"
    if scheme == "default":
        return {"own": "default: the source's own split", "none": "default: none (no node has a label)"}.get(
            used, f"default: {used}{seed} (the source has no split of its own)")
    return scheme + seed if seed else f"the source's split {scheme}"  # drawn at random, or one of its own


def _empty(n: int) -> Masks:
    return tuple(np.zeros(n, dtype=bool) for _ in range(3))


def _tensor(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=bool))
