"""Seeded synthetic graphs with learnable labels: ``synthetic:KIND:key=value,...``.

KIND ``sbm``: a degree-corrected stochastic block model. Every node gets a block (= class),
balanced and shuffled so that no block is a contiguous id range, and a power-law propensity
``theta`` (tail exponent ``exponent``). Each of ``edges`` directed edges picks its source with
probability proportional to ``theta``, stays inside the source's block with probability
``p_in`` (else goes to another block, uniformly), and picks its target in that block
proportionally to ``theta``.

KIND ``rmat``: R-MAT (Chakrabarti et al. 2004) with quadrant probabilities ``a, b, c`` and
``d = 1 - a - b - c``, each level's probabilities jittered by ``noise`` (noisy R-MAT, as
Graph500 and Seshadhri et al. do, which smooths the degree distribution). The label of a node
is the high-order part of its R-MAT id (``id * classes // nodes``, its top bits when both are
powers of two); since plain R-MAT bits are almost independent between the ends of an edge, a
fraction ``homophily`` of the edges copies the source's top bits into the target, so that
neighbours tend to share a class. Ids are then relabelled by a random permutation: hubs and
classes are not id ranges. Edges are generated in chunks (``chunk`` edges each) to bound memory.

Both: ``edges`` counts the generated directed edges before symmetrising (``SourceConfig.undirected``),
self-loop removal and merging of duplicates. Features are float32 [N, ``features``]: a random
gaussian centroid per class plus unit gaussian noise, the centroids ``signal`` * sqrt(2) apart
on average, so a classifier on features alone does well above chance but far from perfect. The
graph's own split is a random ``train``/``val``/rest split. Same parameters and seed give the
same graph bit for bit. ``Graph.meta`` records the generator and all its parameters. With
``features=0`` the graph has no features, and partitioning stores structural ones
(:meth:`gnndist.graph.Graph.input_features`).
"""

from __future__ import annotations

import math
import typing
from dataclasses import asdict, dataclass, fields

import numpy as np

from gnndist.config import ConfigError, SourceConfig
from gnndist.graph import Graph
from gnndist.sources.splits import choose_split, random_split

PREFIX = "synthetic:"


@dataclass(frozen=True, kw_only=True)
class _Common:
    """Parameters every generator takes (see the module docstring)."""

    nodes: int = 10_000
    edges: int = 0  # 0: the generator's default multiple of ``nodes``
    features: int = 100
    signal: float = 1.5
    train: float = 0.6
    val: float = 0.2
    seed: int = 0

    def _check(self) -> None:
        _require(self.nodes >= 2, "nodes", self.nodes, "at least 2")
        _require(self.edges >= 0, "edges", self.edges, "a positive count (0 for the default)")
        _require(self.features >= 0, "features", self.features, "0 or more")
        _require(self.signal >= 0, "signal", self.signal, "0 or more")
        _require(0 <= self.train and 0 <= self.val and self.train + self.val <= 1, "train/val",
                 (self.train, self.val), "fractions summing to at most 1")


@dataclass(frozen=True, kw_only=True)
class SbmParams(_Common):
    """Degree-corrected SBM parameters; ``edges`` defaults to 10 * nodes."""

    blocks: int = 8
    p_in: float = 0.8
    exponent: float = 2.5

    def __post_init__(self) -> None:
        self._check()
        _require(1 <= self.blocks <= self.nodes, "blocks", self.blocks, "between 1 and nodes")
        _require(0 <= self.p_in <= 1, "p_in", self.p_in, "a probability in [0, 1]")
        _require(self.exponent > 1, "exponent", self.exponent, "greater than 1")


@dataclass(frozen=True, kw_only=True)
class RmatParams(_Common):
    """R-MAT parameters; ``edges`` defaults to 20 * nodes."""

    classes: int = 4
    a: float = 0.57
    b: float = 0.19
    c: float = 0.19
    noise: float = 0.1
    homophily: float = 0.5
    chunk: int = 1 << 21

    def __post_init__(self) -> None:
        self._check()
        _require(1 <= self.classes <= self.nodes, "classes", self.classes, "between 1 and nodes")
        _require(min(self.a, self.b, self.c) >= 0 and self.a + self.b + self.c <= 1, "a/b/c",
                 (self.a, self.b, self.c), "non-negative with a + b + c <= 1")
        _require(0 <= self.noise < 1, "noise", self.noise, "in [0, 1)")
        _require(0 <= self.homophily <= 1, "homophily", self.homophily, "a probability in [0, 1]")
        _require(self.chunk >= 1, "chunk", self.chunk, "positive")


def _require(ok: bool, key: str, value, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"synthetic parameter {key}={value!r} is invalid: must be {allowed}")


# ---------------------------------------------------------------------------------------- parsing


def parse_spec(spec: str, default_seed: int = 0) -> tuple[str, SbmParams | RmatParams]:
    """``synthetic:KIND:key=value,...`` -> (kind, parameters); ConfigError on unknown keys/bad values.

    ``seed`` defaults to ``default_seed`` (``SourceConfig.seed``).
    """
    body = spec[len(PREFIX):] if spec.startswith(PREFIX) else spec
    kind, _, args = body.partition(":")
    if kind not in GENERATORS:
        raise ConfigError(f"synthetic kind {kind!r} in {spec!r} is unknown: choose one of {sorted(GENERATORS)}")
    cls = GENERATORS[kind][0]
    hints = typing.get_type_hints(cls)
    known = sorted(f.name for f in fields(cls))
    values: dict[str, object] = {"seed": default_seed}
    for item in filter(None, (a.strip() for a in args.split(","))):
        key, eq, text = (s.strip() for s in item.partition("="))
        if key not in hints or not eq:
            raise ConfigError(f"synthetic:{kind} parameter {item!r} is unknown or has no value: "
                              f"use key=value with keys {known}")
        values[key] = _convert(kind, key, text, hints[key])
    return kind, cls(**values)


def _convert(kind: str, key: str, text: str, kind_of: type):
    try:
        if kind_of is int:
            number = float(text)  # accept 1e6 and 1_000_000 as well as 1000000
            if not number.is_integer():
                raise ValueError(text)
            return int(number)
        return float(text)
    except ValueError:
        raise ConfigError(f"synthetic:{kind} parameter {key}={text!r} is not "
                          f"{'an integer' if kind_of is int else 'a number'}") from None


def load_synthetic(spec: str, config: SourceConfig) -> Graph:
    """Generate the graph ``spec`` names; the split comes from the spec's fractions unless
    ``config.split`` asks for another."""
    kind, params = parse_spec(spec, config.seed)
    rng = np.random.default_rng(params.seed)
    src, dst, y, num_classes = GENERATORS[kind][1](params, rng)
    x = class_features(y, num_classes, params.features, params.signal, rng)
    own = random_split(y, params.train, params.val, rng)
    train, val, test = choose_split(config.split, y, seed=config.seed, origin=spec, default=own)
    return Graph.from_edges(src, dst, num_nodes=params.nodes, x=x, y=y, num_classes=config.num_classes or num_classes,
                            train_mask=train, val_mask=val, test_mask=test, name=kind, origin=spec,
                            undirected=config.undirected,
                            meta={"format": "synthetic", "generator": kind, "params": asdict(params)})


# ---------------------------------------------------------------------------------------- features


def class_features(y: np.ndarray, num_classes: int, dim: int, signal: float, rng: np.random.Generator) -> np.ndarray:
    """float32 [N, dim]: the class centroid of each node plus standard gaussian noise.

    Centroid entries have standard deviation ``signal / sqrt(dim)``, so two centroids lie about
    ``signal * sqrt(2)`` noise standard deviations apart whatever ``dim`` is.
    """
    centroids = rng.standard_normal((num_classes, dim), dtype=np.float32) * np.float32(signal / math.sqrt(max(dim, 1)))
    x = rng.standard_normal((y.size, dim), dtype=np.float32)
    x += centroids[y]
    return x


# ---------------------------------------------------------------------------------------- SBM


def generate_sbm(p: SbmParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """int64 [E] sources and targets, int64 [N] block labels, number of blocks."""
    n, k = p.nodes, p.blocks
    e = p.edges or 10 * n
    block = rng.permutation(np.arange(n) % k)
    theta = rng.pareto(p.exponent - 1, n) + 1  # Pareto(>=1) propensities: degrees ~ k^-exponent
    order = np.argsort(block, kind="stable")  # nodes grouped by block, so each block is a slice
    cum = np.cumsum(theta[order])
    block_end = np.cumsum(np.bincount(block, minlength=k))
    block_start = block_end - np.bincount(block, minlength=k)
    mass_before = np.concatenate([[0.0], cum[block_end[:-1] - 1]])
    mass = cum[block_end - 1] - mass_before
    src = order[np.minimum(np.searchsorted(cum, rng.random(e) * cum[-1], side="right"), n - 1)]
    target_block = block[src]
    if k > 1:
        outside = rng.random(e) >= p.p_in
        target_block[outside] = (target_block[outside] + rng.integers(1, k, int(outside.sum()))) % k
    pos = np.searchsorted(cum, mass_before[target_block] + rng.random(e) * mass[target_block], side="right")
    dst = order[np.clip(pos, block_start[target_block], block_end[target_block] - 1)]
    return src, dst, block.astype(np.int64), k


# ---------------------------------------------------------------------------------------- R-MAT


def generate_rmat(p: RmatParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """int64 [E] sources and targets (relabelled), int64 [N] labels, number of classes."""
    e = p.edges or 20 * p.nodes
    scale = max(1, math.ceil(math.log2(p.nodes)))
    thresholds = _level_thresholds(p, scale, rng)
    top_bits = min(scale, math.ceil(math.log2(p.classes))) if p.classes > 1 else 0
    src = np.empty(e, dtype=np.int64)
    dst = np.empty(e, dtype=np.int64)
    seeds = np.random.SeedSequence(int(rng.integers(2**63))).spawn(math.ceil(e / p.chunk))
    for i, seed in enumerate(seeds):
        lo, hi = i * p.chunk, min(e, (i + 1) * p.chunk)
        _rmat_chunk(src[lo:hi], dst[lo:hi], thresholds, scale, top_bits, p.homophily, np.random.default_rng(seed))
    # Map the 2**scale R-MAT ids onto 0..nodes-1 keeping their order (and so their class).
    np.multiply(src, p.nodes, out=src)
    np.right_shift(src, scale, out=src)
    np.multiply(dst, p.nodes, out=dst)
    np.right_shift(dst, scale, out=dst)
    perm = rng.permutation(p.nodes)
    y = np.empty(p.nodes, dtype=np.int64)
    y[perm] = np.arange(p.nodes, dtype=np.int64) * p.classes // p.nodes
    return perm[src], perm[dst], y, p.classes


def _level_thresholds(p: RmatParams, scale: int, rng: np.random.Generator) -> np.ndarray:
    """int64 [scale, 3]: cumulative a, a+b, a+b+c per level, jittered by ``noise``, scaled to 2**16."""
    probs = np.array([p.a, p.b, p.c, 1.0 - p.a - p.b - p.c])
    jitter = 1 + p.noise * rng.uniform(-1, 1, size=(scale, 4))
    level = probs * jitter
    level /= level.sum(axis=1, keepdims=True)
    return np.round(np.cumsum(level, axis=1)[:, :3] * 65536).astype(np.int64)


def _rmat_chunk(src: np.ndarray, dst: np.ndarray, thresholds: np.ndarray, scale: int, top_bits: int,
                homophily: float, rng: np.random.Generator) -> None:
    """Fill int64 ``src``/``dst`` (views of one chunk) with R-MAT ids in 0..2**scale-1.

    One 16-bit random draw per edge and level picks the quadrant: source bit set for quadrants
    c, d (draw >= a+b), target bit set for b, d.
    """
    m = src.size
    draws = rng.bit_generator.random_raw(math.ceil(m * scale / 4)).view(np.uint16)[:m * scale].reshape(scale, m)
    src[:] = 0
    dst[:] = 0
    for level in range(scale):
        u = draws[level]
        t_a, t_ab, t_abc = (int(t) for t in thresholds[level])  # python ints keep the compare in uint16
        bit = np.int64(1) << np.int64(scale - 1 - level)
        src |= (u >= t_ab) * bit
        dst |= (((u >= t_a) & (u < t_ab)) | (u >= t_abc)) * bit
    if top_bits and homophily > 0:
        high = np.int64(((1 << top_bits) - 1) << (scale - top_bits))
        same = rng.random(m) < homophily
        dst[same] = (dst[same] & ~high) | (src[same] & high)


#: kind -> (parameter class, generator(params, rng) -> (src, dst, y, num_classes)).
GENERATORS = {"sbm": (SbmParams, generate_sbm), "rmat": (RmatParams, generate_rmat)}
