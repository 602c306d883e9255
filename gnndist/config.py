"""Frozen, keyword-only configuration per component, validated on construction.

Every CLI flag maps to one field here. A job file (YAML or TOML) holds one table per component,
named by ``SECTION`` (e.g. ``[source]``, ``[partition]``); configs round-trip through
:func:`to_dict` / :func:`from_dict` and :func:`dump_job` / :func:`load_job`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

#: Partitioning methods known to ``partitioners.REGISTRY``.
PARTITION_METHODS = ("metis", "random", "streaming")
#: Quantities METIS can balance across parts at once (multi-constraint partitioning).
BALANCE_TARGETS = ("nodes", "edges", "train")
#: Built-in models (``torch_geometric.nn`` basic GNNs).
MODELS = ("sage", "gcn", "gat", "gin")
#: How partitions store features (``PartitionConfig.feature_storage``): ``auto`` stores them
#: sparse (CSR) when few are non-zero (``gnndist.partition.features.SPARSE_BELOW``).
FEATURE_STORAGES = ("auto", "dense", "sparse")
#: Value types of stored features (``PartitionConfig.feature_dtype``); bfloat16 as uint16 bits.
FEATURE_DTYPES = ("float32", "float16", "bfloat16")
#: How the remote-feature cache picks its nodes.
CACHE_POLICIES = ("access", "degree")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and what is allowed.

    Messages name fields as their job-file keys, ``section.field`` (a suggested value as
    :func:`setting` writes it): the command line shows them as the flags that set those fields
    (:func:`as_flags`), since a user who typed flags knows no keys.
    """


def setting(key: str, value: Any) -> str:
    """How a message suggests a value for the field ``key`` (``section.field``): ``train.lr = 0.1``,
    which :func:`as_flags` writes ``--lr 0.1``."""
    return f"{key} = {value}"


def as_flags(text: str, flags: dict[str, str]) -> str:
    """``text`` with every key of ``flags`` (``section.field`` -> its option, e.g. ``--lr``) written
    as that option, and a :func:`setting` of it as ``--option VALUE``. Only whole keys are
    replaced: not inside a path, a longer name or a quoted value (``train.lr_decay``,
    ``runs/train.lr``, ``'train.lr'``)."""
    for key, flag in flags.items():
        text = re.sub(rf"(?<![\w./'\"-]){re.escape(key)}(?: = ([^\s,;)]+))?(?![\w])",
                      lambda m, flag=flag: flag + (f" {m[1]}" if m[1] else ""), text)
    return text


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    """Where the graph comes from.

    ``dataset``: a bundled name (``cora``), a path (Planetoid raw folder, ``.npz``, edge list
    ``.csv``/``.tsv``/``.parquet``, OGB node-property folder), or ``synthetic:KIND:key=value,...``
    with KIND ``sbm`` or ``rmat``. ``features``/``labels``: files that go with an edge list.
    ``undirected``: add each edge's reverse (edge lists, OGB folders, npz and synthetic graphs). ``split``: which split
    to use, e.g. ``"0"`` (index into a file's splits), ``"per_class:20,30"`` or ``"random:0.6,0.2"``.
    ``num_classes``: the class count when the labels do not show it (``None``: the largest label
    + 1, refused when the labels make it implausible; see ``gnndist.graph.class_count``).
    ``label_column``: the column of a text labels table that holds the classes, by header name or
    index (0 first); ``None``: the table's only column besides the id column.
    ``id_column``: the column of a text labels or features table that holds each row's node id,
    by header name or index; ``None``: a header column named ``id``, ``node`` or ``node_id``, if
    any. With an id column rows may come in any order, and every node needs exactly one row;
    without one, row i is node i. ``.npy`` files are always in node order.
    ``normalize_features``: divide each node's features by their sum, as PyG's
    ``NormalizeFeatures`` (see :func:`gnndist.graph.normalized_rows`).
    """

    SECTION = "source"

    dataset: str = "cora"
    features: str | None = None
    labels: str | None = None
    undirected: bool = True
    split: str = "default"
    seed: int = 0
    num_classes: int | None = None
    label_column: str | int | None = None
    id_column: str | int | None = None
    normalize_features: bool = False

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ConfigError("source.dataset is empty: give a dataset name, a path or synthetic:KIND:...")
        for name in ("label_column", "id_column"):
            column = getattr(self, name)
            if column is not None and (str(column).strip() == "" or isinstance(column, int) and column < 0):
                raise ConfigError(f"source.{name} must be a column name or an index from 0, got {column!r}")
        if self.num_classes is not None and self.num_classes < 1:
            raise ConfigError(f"source.num_classes must be at least 1, got {self.num_classes}")


@dataclass(frozen=True, kw_only=True)
class PartitionConfig:
    """How to split the graph.

    ``weights``: relative capacity of each part (length ``num_parts``), e.g. ``(1, 1, 2, 4)``
    for heterogeneous workers; ``None`` means equal parts. ``balance``: what METIS keeps balanced.
    ``halo_hops``: depth L of the halo each part records. ``chunk_edges``: edges per chunk read
    by the streaming partitioner. ``imbalance``: allowed load imbalance (METIS ufactor / 1000).
    ``feature_storage``: features stored ``dense``, ``sparse`` (CSR), or ``auto``: sparse when
    under 10% of them are non-zero. ``feature_dtype``: ``float32``, or ``float16``/``bfloat16``,
    which halve the features' disk, memory and halo bytes (workers compute in float32).
    """

    SECTION = "partition"

    method: str = "metis"
    num_parts: int = 2
    weights: tuple[float, ...] | None = None
    balance: tuple[str, ...] = BALANCE_TARGETS
    halo_hops: int = 1
    seed: int = 0
    chunk_edges: int = 1 << 20
    imbalance: float = 0.03
    feature_storage: str = "auto"
    feature_dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.feature_storage not in FEATURE_STORAGES:
            raise ConfigError(f"partition.feature_storage {self.feature_storage!r} is unknown: choose one of "
                              f"{FEATURE_STORAGES}")
        if self.feature_dtype not in FEATURE_DTYPES:
            raise ConfigError(f"partition.feature_dtype {self.feature_dtype!r} is unknown: choose one of "
                              f"{FEATURE_DTYPES}")
        if self.method not in PARTITION_METHODS:
            raise ConfigError(f"partition.method {self.method!r} is unknown: choose one of {PARTITION_METHODS}")
        if self.num_parts < 1:
            raise ConfigError(f"partition.num_parts must be at least 1, got {self.num_parts}")
        if self.weights is not None:
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
            if len(self.weights) != self.num_parts:
                raise ConfigError(f"partition.weights has {len(self.weights)} entries for "
                                  f"{self.num_parts} parts: give one weight per part")
            if any(not w > 0 for w in self.weights):
                raise ConfigError(f"partition.weights must all be positive, got {self.weights}")
        object.__setattr__(self, "balance", tuple(self.balance))
        unknown = set(self.balance) - set(BALANCE_TARGETS)
        if unknown or not self.balance:
            raise ConfigError(f"partition.balance must be a non-empty subset of {BALANCE_TARGETS}, "
                              f"got {self.balance}")
        if self.halo_hops < 0:
            raise ConfigError(f"partition.halo_hops must be 0 or more, got {self.halo_hops}")
        if self.chunk_edges < 1:
            raise ConfigError(f"partition.chunk_edges must be positive, got {self.chunk_edges}")
        if not 0 < self.imbalance < 1:
            raise ConfigError(f"partition.imbalance must be in (0, 1), got {self.imbalance}")

    def part_shares(self) -> list[float]:
        """Target fraction of the graph for each part; sums to 1."""
        w = self.weights or (1.0,) * self.num_parts
        total = sum(w)
        return [v / total for v in w]


@dataclass(frozen=True, kw_only=True)
class SamplerConfig:
    """How each trainer draws mini-batches from its part.

    ``fanouts``: in-neighbours sampled per node at each hop (-1: all, 0: none). ``prefetch``:
    batches prepared ahead of the one being consumed. The remote-feature cache holds the hottest
    nodes of the part's sampling halo: the nodes of other parts within ``len(fanouts)`` in-hops
    (up to the first fanout of 0) of the part's training seeds, i.e. every remote node a training
    batch can fetch, found by a search over the graph at start-up. It is the L-hop halo of an
    L-hop sampler, whatever depth the partition stores (``PartitionConfig.halo_hops``). The
    cache's size is ``cache_mb`` megabytes or ``cache_fraction`` times the number of
    sampling-halo nodes (at most one of the two). ``cache_policy`` ``"access"`` ranks the nodes
    by how many times sampled batches of ``cache_warmup_epochs`` passes over the part's training
    seeds draw them (any hop; a fraction samples that share of an epoch's batches), ``"degree"``
    by their in-edges into the part. ``cache_lookahead``: the cache starts so, then after each
    batch keeps, of its rows and those just fetched, first the ones that the ``prefetch`` batches
    sampled ahead use soonest, then the hottest (the same batches; fewer remote rows than any
    fixed set when a batch needs many more rows than the cache holds).
    ``timeout_s``: the longest any remote call may take before a clear error.
    ``same_node_reads``: read the other parts whose servers run on the trainer's own Ray node
    straight from their partition files (memory-mapped, so the node's processes share one copy
    through the page cache) instead of calling those servers: the same batches, without the
    calls' serialization, copies and server time. Parts on other nodes still go to their servers.
    ``batch_size``: seeds per training step over all parts (the global batch; each part gives a
    step a share in proportion to its training seeds, see ``gnndist.train.schedule``), and seeds
    per batch when a loader iterates one part's seeds (evaluation). The default suits the bundled small graphs:
    with Cora's 140 training nodes a batch of 1024 makes each epoch one full-batch step, and
    GraphSAGE then overfits to a test accuracy of 0.778 to 0.795 by seed, where 32 gives 0.799
    to 0.803. Large graphs train faster per epoch with the 512 to 1024 that DistDGL's and PyG's
    examples use.
    """

    SECTION = "sampler"

    fanouts: tuple[int, ...] = (10, 10)
    batch_size: int = 32
    shuffle: bool = True
    drop_last: bool = False
    seed: int = 0
    prefetch: int = 2
    cache_mb: float | None = None
    cache_fraction: float | None = None
    cache_policy: str = "access"
    cache_warmup_epochs: float = 1.0
    cache_lookahead: bool = False
    timeout_s: float = 60.0
    same_node_reads: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "fanouts", tuple(int(f) for f in self.fanouts))
        if not self.fanouts or any(f < -1 for f in self.fanouts):
            raise ConfigError(f"sampler.fanouts must be a non-empty list of ints >= -1, got {self.fanouts}")
        if self.batch_size < 1:
            raise ConfigError(f"sampler.batch_size must be positive, got {self.batch_size}")
        if self.prefetch < 0:
            raise ConfigError(f"sampler.prefetch must be 0 or more, got {self.prefetch}")
        if self.cache_mb is not None and self.cache_fraction is not None:
            raise ConfigError("give sampler.cache_mb or sampler.cache_fraction, not both")
        if self.cache_mb is not None and self.cache_mb < 0:
            raise ConfigError(f"sampler.cache_mb must be 0 or more, got {self.cache_mb}")
        if self.cache_fraction is not None and not 0 <= self.cache_fraction <= 1:
            raise ConfigError(f"sampler.cache_fraction must be in [0, 1], got {self.cache_fraction}")
        if self.cache_policy not in CACHE_POLICIES:
            raise ConfigError(f"sampler.cache_policy {self.cache_policy!r} is unknown: choose one of {CACHE_POLICIES}")
        if not self.cache_warmup_epochs > 0:
            raise ConfigError(f"sampler.cache_warmup_epochs must be positive, got {self.cache_warmup_epochs}")
        if not self.timeout_s > 0:
            raise ConfigError(f"sampler.timeout_s must be positive, got {self.timeout_s}")


#: Steps between the noise scale's measurements when a policy reads it and ``monitor_every`` is 0.
NOISE_EVERY = 4


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Synchronized data-parallel training: each worker trains a shard of parts.

    ``workers``: how many workers (default: one per part, as many as the cluster has room for);
    between 1 and the number of parts. ``min_workers``: make the run elastic: Ray Train runs it
    with between ``min_workers`` and ``workers`` workers, as the cluster has room for, going on
    from the last checkpoint with fewer when a node leaves and checking every
    ``rescale_check_s`` seconds whether it can grow again; the trajectory stays the same.
    ``worker_weights``: each worker's capacity (e.g. its GPU's
    speed), one positive number per worker: shards are then balanced so that each worker's share
    of the training seeds is closest to its share of the capacity (default: equal).
    ``max_failures``: how many failures the run recovers from by itself: a worker that dies or
    fails (Ray Train restarts the workers from the last checkpoint, which then end where an
    uninterrupted run ends) or a partition server that dies (Ray restarts it). Default: 3 on a
    cluster (``address``), 0 on a local instance, where a failure is more often a bug than a
    lost machine.

    ``model``: a built-in (``sage``, ``gcn``, ``gat``, ``gin``) used when no model factory is
    given; it has ``len(sampler.fanouts)`` layers. ``model_module``: a model of your own instead,
    ``FILE.py:NAME`` or ``package.module:NAME``: ``NAME(in_channels=, out_channels=, hidden=,
    num_layers=, dropout=)`` (the graph's feature width and class count, ``hidden``, the number of
    fanouts, ``dropout``) returns the ``torch.nn.Module``, whose forward takes a batch as one of
    :class:`gnndist.train.step.ModelInput`'s contracts say (PyG's ``(x, edge_index)``, DGL's
    ``(blocks, x)``); see :mod:`gnndist.train.model_module`.
    ``eval_every``: validate every N epochs (and after the last). Every epoch by default: a
    forward pass over the validation nodes, cheap against an epoch's training on the graphs
    measured (each record's ``eval_s`` says what it cost), and a schedule fixed in advance, so
    that the best epoch is a function of the seeds.
    ``checkpoint_every``: save a checkpoint every N epochs (and after the last). ``select``: the
    validation score that picks the best epoch (``val_acc``, or ``val_<name>`` of a metric given
    to ``train``), larger being better unless ``select_mode`` is ``"min"``: the run keeps that
    epoch's model beside the latest and reports its test score (:mod:`gnndist.train.selection`).
    ``patience``: stop once that many validations in a row have not improved it (default: never).
    ``warmup_steps``: ramp the learning rate up linearly over the run's first N optimizer steps
    (default: 100, at most a tenth of the run's steps; 0: none); see
    :func:`gnndist.train.step.warmup_length` for why.
    ``cpus_per_worker``: CPUs each worker reserves from Ray (fractions allowed, to run more parts
    than the machine has cores). ``gpus_per_worker``: GPUs each worker reserves; 0 trains on CPU
    with gradients all-reduced over gloo, 1 (or more) puts the model and its batches on the worker's
    GPU with the all-reduce over NCCL. Fractions are refused: NCCL needs a GPU of its own for every
    rank (two ranks on one GPU fail when the communicator is created).
    ``verify_partitions``: each partition server checks its part's files against the sha256 and
    sizes in ``partition.json`` before any worker starts, and the run is refused naming a file
    that fails (hashing reads every file once at start-up; ``--no-verify`` skips it).
    ``monitor_every``: measure the gradient noise scale every N steps (0: only when a policy reads
    it, as ``gns-batch`` does, and then every :data:`NOISE_EVERY` steps). Each measurement costs
    one more backward pass per part (of half its batch's loss) and adds a number per part to the
    gradients' all-reduce (:mod:`gnndist.adapt.monitors`): about 30% of a 100k-node epoch when
    every step is measured, about 3% at every 4th.
    """

    SECTION = "train"

    model: str = "sage"
    model_module: str | None = None
    hidden: int = 64
    dropout: float = 0.5
    lr: float = 0.01
    weight_decay: float = 5e-4
    epochs: int = 40
    eval_every: int = 1
    select: str = "val_acc"
    select_mode: str = "max"
    patience: int | None = None
    warmup_steps: int | None = None
    checkpoint_every: int = 5
    seed: int = 0
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    verify_partitions: bool = True
    workers: int | None = None
    min_workers: int | None = None
    rescale_check_s: float = 30.0
    worker_weights: tuple[float, ...] | None = None
    max_failures: int | None = None
    monitor_every: int = 0

    def __post_init__(self) -> None:
        if self.monitor_every < 0:
            raise ConfigError(f"train.monitor_every must be 0 (off) or a number of steps, got {self.monitor_every}")
        if self.worker_weights is not None:
            object.__setattr__(self, "worker_weights", tuple(float(w) for w in self.worker_weights))
            if not all(w > 0 for w in self.worker_weights):
                raise ConfigError(f"train.worker_weights must be positive numbers, got {list(self.worker_weights)}")
            if self.workers is not None and len(self.worker_weights) != self.workers:
                raise ConfigError(f"train.worker_weights has {len(self.worker_weights)} numbers for "
                                  f"{self.workers} workers: give one per worker")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ConfigError(f"train.warmup_steps must be 0 (none) or more, got {self.warmup_steps}")
        if self.max_failures is not None and self.max_failures < 0:
            raise ConfigError(f"train.max_failures must be 0 or more, got {self.max_failures}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"train.workers must be positive, got {self.workers}")
        if self.min_workers is not None and not 1 <= self.min_workers <= (self.workers or self.min_workers):
            raise ConfigError(f"train.min_workers must be between 1 and train.workers ({self.workers}), got "
                              f"{self.min_workers}")
        if self.min_workers is not None and self.workers is None:
            raise ConfigError("train.min_workers needs train.workers, the most workers (e.g. --workers 2-4)")
        if not self.rescale_check_s > 0:
            raise ConfigError(f"train.rescale_check_s must be positive, got {self.rescale_check_s}")
        if self.model not in MODELS:
            raise ConfigError(f"train.model {self.model!r} is unknown: choose one of {MODELS}")
        if self.model_module is not None:
            source, _, name = self.model_module.rpartition(":")
            if not source or not name.isidentifier():
                raise ConfigError(f"train.model_module must be FILE.py:NAME or package.module:NAME (the callable "
                                  f"that builds the model), got {self.model_module!r}")
        for name in ("hidden", "epochs", "eval_every", "checkpoint_every", "patience"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be positive, got {getattr(self, name)}")
        if not self.select.startswith("val_"):
            raise ConfigError(f"train.select must name a validation score such as val_acc, got {self.select!r}")
        if self.select_mode not in ("max", "min"):
            raise ConfigError(f"train.select_mode must be max or min, got {self.select_mode!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"train.dropout must be in [0, 1), got {self.dropout}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be positive, got {self.lr}")
        if not self.cpus_per_worker > 0:
            raise ConfigError(f"train.cpus_per_worker must be positive, got {self.cpus_per_worker}")
        if self.gpus_per_worker < 0 or self.gpus_per_worker != int(self.gpus_per_worker):
            raise ConfigError(f"train.gpus_per_worker must be 0 (CPU) or a whole number of GPUs, got "
                              f"{self.gpus_per_worker}: NCCL needs one GPU of its own per worker, so use fewer "
                              "workers (parts) than GPUs, or 0 to train on CPU")


@dataclass(frozen=True, kw_only=True)
class AdaptConfig:
    """How the run adapts while it trains (``[adapt]``). ``policies``: the adaptation policies in
    the order they run, each ``NAME[:key=value,...]`` as ``--policy`` takes it, e.g.
    ``schedule:lr@10=0.005`` (see :mod:`gnndist.adapt.policies`)."""

    SECTION = "adapt"

    policies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from gnndist.adapt.policies import from_spec
        from gnndist.adapt.policy import PolicyError

        if isinstance(self.policies, str):
            raise ConfigError(f"adapt.policies must be a list of policies, got the string {self.policies!r}")
        object.__setattr__(self, "policies", tuple(self.policies))
        for spec in self.policies:
            try:
                from_spec(spec)
            except PolicyError as e:
                raise ConfigError(f"adapt.policies: {e}") from None

    def build(self) -> list:
        """The policies, as objects (new ones each call: a policy keeps the state of its run)."""
        from gnndist.adapt.policies import from_spec

        return [from_spec(spec) for spec in self.policies]


C = TypeVar("C")


def to_dict(config: Any) -> dict[str, Any]:
    """Plain dict (lists for tuples) suitable for JSON, YAML and TOML (``None`` fields left out)."""
    out = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if value is None:
            continue
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Build ``cls`` from a dict, refusing unknown keys by name."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"[{cls.SECTION}] has unknown keys {unknown}: known keys are {sorted(names)}")
    return cls(**data)


def load_job(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) job file into its sections."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    text = path.read_text()
    if path.suffix == ".toml":
        data = tomllib.loads(text)
    elif path.suffix in (".yaml", ".yml"):
        data = yaml.safe_load(text) or {}
    else:
        raise ConfigError(f"{path}: config files must end in .yaml, .yml or .toml")
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{path}: expected one table per component, e.g. [source] and [partition]")
    return data


def dump_job(configs: list[Any], path: str | Path) -> None:
    """Write configs as a YAML or JSON job file, one section per config."""
    path = Path(path)
    data = {c.SECTION: to_dict(c) for c in configs}
    if path.suffix in (".yaml", ".yml"):
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    elif path.suffix == ".json":
        path.write_text(json.dumps(data, indent=2))
    else:
        raise ConfigError(f"{path}: can write .yaml, .yml or .json job files")


def replace(config: C, **changes: Any) -> C:
    """A copy of ``config`` with ``changes`` applied (and validated), ignoring ``None`` values."""
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
