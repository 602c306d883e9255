"""``gnndist`` command line: parse flags, merge them over a job file, call the API. No logic here."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from pathlib import Path

from gnndist.config import (
    BALANCE_TARGETS,
    FEATURE_DTYPES,
    FEATURE_STORAGES,
    MODELS,
    PARTITION_METHODS,
    AdaptConfig,
    ConfigError,
    PartitionConfig,
    SamplerConfig,
    SourceConfig,
    TrainConfig,
    as_flags,
    from_dict,
    load_job,
)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 1,1,2,4, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


_NUM_CLASSES_HELP = "class count, when the labels do not show it (default: largest label + 1)"
_SPLIT_FORMS = "default | INDEX | per_class:TRAIN,VAL | random:TRAIN_FRAC,VAL_FRAC"

# flag destination -> (config class, field). Flags left unset (None) keep the job file's value.
# The flags of how a dataset's files are read and its features stored: `partition` and
# `train --dataset` both take them (_add_source_flags).
_SOURCE_FLAGS = {
    "dataset": (SourceConfig, "dataset"), "features": (SourceConfig, "features"),
    "labels": (SourceConfig, "labels"), "split": (SourceConfig, "split"),
    "undirected": (SourceConfig, "undirected"), "split_seed": (SourceConfig, "seed"),
    "num_classes": (SourceConfig, "num_classes"), "label_column": (SourceConfig, "label_column"),
    "id_column": (SourceConfig, "id_column"), "normalize_features": (SourceConfig, "normalize_features"),
    "method": (PartitionConfig, "method"), "parts": (PartitionConfig, "num_parts"),
    "feature_storage": (PartitionConfig, "feature_storage"), "feature_dtype": (PartitionConfig, "feature_dtype"),
}
_PARTITION_FLAGS = {
    **_SOURCE_FLAGS,
    "weights": (PartitionConfig, "weights"), "balance": (PartitionConfig, "balance"),
    "halo_hops": (PartitionConfig, "halo_hops"), "seed": (PartitionConfig, "seed"),
    "chunk_edges": (PartitionConfig, "chunk_edges"), "imbalance": (PartitionConfig, "imbalance"),
}


def _features_file(text: str) -> str:
    """``--features``: a features file; the words of ``--feature-storage`` are refused with a pointer to it."""
    if text in FEATURE_STORAGES and not Path(text).exists():
        raise argparse.ArgumentTypeError(f"names a features file, and there is no file {text!r}; to store the "
                                         f"features {text}, pass --feature-storage {text}")
    return text


def _add_source_flags(p: argparse.ArgumentParser, when: str) -> None:
    """The flags of :data:`_SOURCE_FLAGS` (``when``: what the help adds, e.g. " when partitioning here")."""
    p.add_argument("--dataset", help="cora | amazon-photo | PATH | synthetic:sbm|rmat:key=value,... "
                                     f"to partition{when} (default cora)")
    p.add_argument("--features", type=_features_file,
                   help="features file (.npy/.csv, or a SciPy sparse .npz) for an edge-list dataset")
    p.add_argument("--labels", help="labels file (.npy/.csv/.txt) for an edge-list dataset")
    p.add_argument("--label-column", metavar="NAME|INDEX",
                   help="the labels table's column of classes (default: its only column besides the id column)")
    p.add_argument("--id-column", metavar="NAME|INDEX",
                   help="the labels and features tables' column of node ids, whose rows may then come in any "
                        "order (default: a header column named id, node or node_id; else row i is node i)")
    p.add_argument("--split", help=f"split{when}: {_SPLIT_FORMS} (default: the dataset's own, else per_class:20,30)")
    p.add_argument("--split-seed", type=int, help="seed of generated splits and synthetic graphs (default 0)")
    p.add_argument("--undirected", action=argparse.BooleanOptionalAction, default=None,
                   help="add each edge's reverse (edge lists, OGB folders; default on)")
    p.add_argument("--num-classes", type=int, help=_NUM_CLASSES_HELP)
    p.add_argument("--normalize-features", action="store_true", default=None,
                   help="divide each node's features by their sum, as PyG's NormalizeFeatures (bag-of-words "
                        "counts become frequencies; default off)")
    p.add_argument("--method", choices=PARTITION_METHODS, help=f"partitioner{when} (default metis)")
    p.add_argument("--parts", type=int, help=f"number of parts{when} (default 2)")
    p.add_argument("--feature-storage", choices=FEATURE_STORAGES,
                   help="store features dense or sparse (CSR); auto: sparse when under 10%% are non-zero (default)")
    p.add_argument("--feature-dtype", choices=FEATURE_DTYPES,
                   help="stored features' type: float16/bfloat16 halve disk, memory and halo bytes; workers "
                        "compute in float32 (default float32)")


def _add_partition(sub) -> None:
    p = sub.add_parser("partition", help="split a graph into parts and write a partition directory",
                       description="Partition a graph: gnndist partition --dataset cora --parts 2 --out parts/")
    p.add_argument("--config", help="job file (.yaml/.yml/.toml) with [source] and [partition] tables")
    _add_source_flags(p, "")
    p.add_argument("--weights", type=_floats, help="relative capacity per part, e.g. 1,1,2,4")
    p.add_argument("--balance", type=_names, help=f"what METIS balances, subset of {','.join(BALANCE_TARGETS)}")
    p.add_argument("--halo-hops", type=int, help="halo depth L (default 1)")
    p.add_argument("--seed", type=int, help="partitioner seed (default 0)")
    p.add_argument("--chunk-edges", type=int, help="edges per chunk for --method streaming")
    p.add_argument("--imbalance", type=float, help="allowed load imbalance for METIS (default 0.03)")
    p.add_argument("--out", required=True, help="partition directory to create")
    p.add_argument("--force", action="store_true", help="replace --out if it is an existing partition directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars or report")


_TRAIN_FLAGS = {
    **_SOURCE_FLAGS,
    "model": (TrainConfig, "model"), "model_module": (TrainConfig, "model_module"),
    "hidden": (TrainConfig, "hidden"), "epochs": (TrainConfig, "epochs"),
    "lr": (TrainConfig, "lr"), "dropout": (TrainConfig, "dropout"), "weight_decay": (TrainConfig, "weight_decay"),
    "eval_every": (TrainConfig, "eval_every"), "seed": (TrainConfig, "seed"),
    "select": (TrainConfig, "select"), "select_mode": (TrainConfig, "select_mode"),
    "patience": (TrainConfig, "patience"), "warmup_steps": (TrainConfig, "warmup_steps"),
    "checkpoint_every": (TrainConfig, "checkpoint_every"), "cpus_per_worker": (TrainConfig, "cpus_per_worker"),
    "gpus_per_worker": (TrainConfig, "gpus_per_worker"), "workers": (TrainConfig, "workers"),
    "min_workers": (TrainConfig, "min_workers"),
    "max_failures": (TrainConfig, "max_failures"),
    "worker_weights": (TrainConfig, "worker_weights"),
    "fanouts": (SamplerConfig, "fanouts"), "batch_size": (SamplerConfig, "batch_size"),
    "cache_fraction": (SamplerConfig, "cache_fraction"), "cache_lookahead": (SamplerConfig, "cache_lookahead"),
    "prefetch": (SamplerConfig, "prefetch"),
    "same_node_reads": (SamplerConfig, "same_node_reads"),
    "verify_partitions": (TrainConfig, "verify_partitions"),
    "policy": (AdaptConfig, "policies"), "monitor_every": (TrainConfig, "monitor_every"),
}


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 15,10,5, got {text!r}") from None


class _WorkerRange(argparse.Action):
    """``--workers N`` or ``MIN-MAX``: sets ``workers`` (and ``min_workers``, for an elastic run)."""

    def __call__(self, parser, namespace, text, option_string=None) -> None:
        low, _, high = text.partition("-")
        try:
            namespace.min_workers, namespace.workers = (int(low), int(high)) if high else (None, int(low))
        except ValueError:
            parser.error(f"{option_string}: expected a number of workers like 4, or a range like 2-4, got {text!r}")
        if high and not 1 <= namespace.min_workers <= namespace.workers:
            parser.error(f"{option_string} {text}: a range MIN-MAX needs 1 <= MIN <= MAX")


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a GNN with data-parallel workers, each holding a shard of parts",
                       description="With no arguments: GraphSAGE on the bundled Cora, 2 parts, 2 workers.")
    p.add_argument("--config", help="job file (.yaml/.yml/.toml) with [source] [partition] [sampler] [train] [adapt]")
    p.add_argument("--partitions", help="an existing partition directory (else --dataset is partitioned)")
    _add_source_flags(p, " when --partitions is not given")
    p.set_defaults(min_workers=None)
    p.add_argument("--workers", action=_WorkerRange,
                   help="data-parallel workers, each training a shard of parts (default: one per part, as many "
                        "as the cluster has room for), or MIN-MAX for an elastic run that shrinks when a node "
                        "leaves and grows back; the result does not depend on it")
    p.add_argument("--worker-weights", type=_floats,
                   help="each worker's capacity, e.g. 1,3: shards get training seeds in proportion")
    p.add_argument("--model", choices=MODELS, help="built-in model (default sage)")
    p.add_argument("--model-module", metavar="FILE.py:NAME",
                   help="your own model instead: NAME(in_channels=, out_channels=, hidden=, num_layers=, dropout=) "
                        "in FILE.py (or package.module:NAME) builds it; its forward takes (x, edge_index), or "
                        "DGL's (blocks, x), e.g. examples/dgl_sage.py:SAGE in .venv-dgl")
    p.add_argument("--hidden", type=int, help="hidden channels (default 64)")
    p.add_argument("--epochs", type=int, help="epochs (default 40)")
    p.add_argument("--lr", type=float, help="learning rate (default 0.01)")
    p.add_argument("--dropout", type=float, help="dropout (default 0.5)")
    p.add_argument("--weight-decay", type=float, help="weight decay (default 5e-4)")
    p.add_argument("--eval-every", type=int, help="validate every N epochs (default 1)")
    p.add_argument("--select", metavar="val_METRIC",
                   help="the validation score that picks the best epoch, whose model is kept and whose test "
                        "score is the run's result (default val_acc)")
    p.add_argument("--select-mode", choices=("max", "min"), help="whether larger --select is better (default max)")
    p.add_argument("--warmup-steps", type=int,
                   help="ramp the learning rate up linearly over the first N optimizer steps (default: 100, at "
                        "most a tenth of the run's steps; 0: none)")
    p.add_argument("--patience", type=int,
                   help="stop once N validations in a row have not improved --select (default: never)")
    p.add_argument("--seed", type=int, help="training seed (default 0)")
    p.add_argument("--checkpoint-every", type=int, help="save a checkpoint every N epochs (default 5)")
    p.add_argument("--cpus-per-worker", type=float, help="CPUs each worker reserves from Ray (default 1)")
    p.add_argument("--same-node-reads", action="store_true", default=None,
                   help="read parts whose servers share a worker's node straight from their files")
    p.add_argument("--gpus-per-worker", type=float,
                   help="GPUs each worker reserves (default 0: CPU and gloo; more: the GPU and NCCL)")
    p.add_argument("--fanouts", type=_ints, help="neighbours per hop (default 10,10; also sets the layer count)")
    p.add_argument("--batch-size", type=int, help="seeds per step over all parts (default 32; large graphs: 512-1024)")
    p.add_argument("--cache-fraction", type=float,
                   help="remote-feature cache size as a fraction of the part's sampling halo "
                        "(remote nodes within len(fanouts) hops of its training seeds)")
    p.add_argument("--cache-lookahead", action="store_true", default=None,
                   help="let the cache's contents follow the batches: keep the rows the batches sampled ahead "
                        "use soonest, then the hottest")
    p.add_argument("--prefetch", type=int, help="batches prepared ahead (default 2)")
    p.add_argument("--address", help="join this Ray cluster (default: start a local one)")
    p.add_argument("--max-failures", type=int,
                   help="failures of workers or partition servers to recover from by restarting from the last "
                        "checkpoint (default: 3 with --address, else 0)")
    p.add_argument("--policy", action="append",
                   help="an adaptation policy, NAME[:key=value,...], e.g. schedule:lr@10=0.005,batch_size@20=2048; "
                        "repeat for several (they run in the order given; replaces the job file's [adapt] policies)")
    p.add_argument("--monitor-every", type=int,
                   help="measure the gradient noise scale every N steps (default: every step when a policy reads "
                        "it, else never)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the earlier run in --out (its checkpoints, metrics and parameters are deleted)")
    p.add_argument("--no-verify", dest="verify_partitions", action="store_false", default=None,
                   help="skip checking every partition file's sha256 against partition.json at start-up "
                        "(the check reads every file once)")
    p.add_argument("--out", default="out/train", help="run directory: partitions, metrics.jsonl (default out/train)")
    p.add_argument("--plot", metavar="FILE.png", help="draw the training curves and per-phase times")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy of a saved checkpoint over every part")
    p.add_argument("checkpoint", help="a run directory (the model of its best validation epoch), "
                                      "RUN/checkpoints/best or RUN/checkpoints/epoch-NNNNN")
    p.add_argument("--latest", action="store_true", help="of a run directory, its latest checkpoint, not its best")
    p.add_argument("--partitions", help="the run's partition directory, if it has moved since training")
    p.add_argument("--splits", type=_names, default=("val", "test"), help="splits to evaluate (default val,test)")
    p.add_argument("--address", help="join this Ray cluster (default: start a local one)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.add_argument("--no-verify", dest="verify_partitions", action="store_false",
                   help="skip checking every partition file's sha256 against partition.json at start-up "
                        "(the check reads every file once)")


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="statistics, plots and integrity check of a partition directory")
    p.add_argument("dir", help="partition directory")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="draw part sizes and the communication matrix")
    p.add_argument("--check", action="store_true",
                   help="verify integrity (checksums, CSC, id maps, halos); exit 1 on any violation")
    p.add_argument("--verify", action="store_true",
                   help="check every file's size and sha256 against the manifest; an error (exit 2) on a mismatch")
    p.add_argument("--source", metavar="DATASET",
                   help="with --check: also compare every edge, feature and label with this source graph")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gnndist", description="Distributed GNN training on Ray.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_partition(sub)
    _add_inspect(sub)
    _add_train(sub)
    _add_evaluate(sub)
    for command in sub.choices.values():  # each destination's option, for _flag_names (argparse lists none)
        command.set_defaults(_options={a.dest: a.option_strings[0] for a in command._actions if a.option_strings})
    return parser


#: The flags of each command that set config fields.
_COMMAND_FLAGS = {"partition": _PARTITION_FLAGS, "train": _TRAIN_FLAGS}


def _flag_names(args) -> dict[str, str]:
    """Config key (``section.field``) -> the option that sets it, for every field of
    ``args.command`` that an error should name by its flag: one set by a flag, or by neither a
    flag nor the job file. A value from the job file is named by its key, as the file spells it."""
    try:
        job = load_job(args.config) if getattr(args, "config", None) else {}
    except ConfigError:  # the error being reported, perhaps
        job = {}
    names = {}
    for dest, (cls, field) in _COMMAND_FLAGS.get(args.command, {}).items():
        from_job = getattr(args, dest) is None and field in job.get(cls.SECTION, {})
        if dest in args._options and not from_job:
            names[f"{cls.SECTION}.{field}"] = args._options[dest]
    return names


def _configs(args, flags: dict, classes: tuple) -> list:
    """One config per class: the job file's section, then the flags that were given on top."""
    job = load_job(args.config) if args.config else {}
    values = {cls: dict(job.get(cls.SECTION, {})) for cls in classes}
    for flag, (cls, field) in flags.items():
        if getattr(args, flag) is not None:
            values[cls][field] = getattr(args, flag)
    return [from_dict(cls, values[cls]) for cls in classes]


def _partition_configs(args) -> tuple[SourceConfig, PartitionConfig]:
    return tuple(_configs(args, _PARTITION_FLAGS, (SourceConfig, PartitionConfig)))


def _run_partition(args, console) -> int:
    from gnndist import inspect
    from gnndist.api import partition
    from gnndist.progress import QuietReporter, RichReporter

    source, config = _partition_configs(args)
    reporter = QuietReporter() if args.quiet else RichReporter(console)
    out = partition(source, config, args.out, force=args.force, reporter=reporter)
    if not args.quiet:
        totals = inspect.report(out)["totals"]
        console.print(f"wrote {out}: {config.num_parts} parts by {config.method}, edge cut "
                      f"{totals['edge_cut_fraction']:.2%}, node balance {totals['balance_nodes']:.3f}; "
                      f"details: gnndist inspect {out}", soft_wrap=True)
    return 0


def _run_train(args, console) -> int:
    from gnndist.api import partition
    from gnndist.progress import QuietReporter, RichReporter
    from gnndist.train import rundir
    from gnndist.train.report import decision_line, epoch_line, phase_table, plot_history
    from gnndist.train.trainer import train

    source, part_config, sampler, config, adapt = _configs(
        args, _TRAIN_FLAGS, (SourceConfig, PartitionConfig, SamplerConfig, TrainConfig, AdaptConfig))
    reporter = QuietReporter() if args.quiet else RichReporter(console)

    def show(record: dict) -> None:
        if not args.quiet:
            console.print(epoch_line(record, config.epochs), soft_wrap=True)
            for decision in record.get("decisions", []):
                console.print(decision_line(decision), style="cyan", markup=False, soft_wrap=True)

    def notice(line: str) -> None:
        console.print(line, style="yellow", markup=False, soft_wrap=True)

    # The lock covers partitioning into OUT/parts too, and the refusals come before it.
    with rundir.hold(args.out, notify=notice) as run:
        run.check(resume=args.resume, overwrite=args.overwrite)
        root = args.partitions or (run.recorded_partitions() if args.resume else None)
        if root is None:
            root = partition(source, part_config, run.parts_to_write(), force=True, reporter=reporter)
        with reporter.step("training", total=config.epochs) as step:
            result = train(None, root, config=config, sampler=sampler, out_dir=run, address=args.address,
                           on_epoch=lambda record: (show(record), step.advance()), resume=args.resume,
                           overwrite=args.overwrite, policies=adapt.build())
    if not args.quiet:
        console.print(phase_table(result.history))
    if args.plot:
        console.print(f"training curves written to {plot_history(result.history, args.plot)}")
    best = result.best
    stopped = result.history[-1].get("stopped")
    if stopped:
        console.print(f"stopped early: {stopped}")
    where = (f"at the best validation epoch, {best['epoch'] + 1} ({best['metric']} {best[best['metric']]:.4f}); "
             f"last epoch's {result.last_test_acc:.4f}" if best["epoch"] is not None
             else "of the last epoch (validation gave no score to select by)")
    console.print(f"[bold]test accuracy {result.test_acc:.4f}[/] {where}; metrics in "
                  f"{result.out_dir / 'metrics.jsonl'}")
    return 0


def _run_evaluate(args, console) -> int:
    from gnndist.train.evaluate import evaluate

    scores = evaluate(None, args.checkpoint, partitions=args.partitions, splits=args.splits, address=args.address,
                      verify_partitions=args.verify_partitions, latest=args.latest)
    if args.json:
        print(json.dumps(scores, indent=2))
    else:
        console.print(f"checkpoint of epoch {scores['epoch'] + 1}: "
                      + ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if k != "epoch"))
    return 0


def _run_inspect(args, console) -> int:
    from gnndist import inspect
    from gnndist.partition.format import check_files, read_manifest

    if args.verify:
        check_files(args.dir, read_manifest(args.dir), verify=True)  # raises naming the bad file
    source = None
    if args.check or args.source:  # first: the report refuses a part that fails its checks
        if args.source:
            from gnndist.api import load

            source = load(SourceConfig(dataset=args.source))
        problems = inspect.check(args.dir, verify=True, source=source)
        for problem in problems:
            console.print(f"[red]integrity violation:[/] {problem}", soft_wrap=True)
        if problems:
            return 1
    rep = inspect.report(args.dir)
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        inspect.render(rep, console)
    if args.plot:
        console.print(f"plot written to {inspect.plot(rep, args.plot)}")
    if args.check or args.source:
        console.print("[green]integrity check passed[/]: checksums, CSC, id maps, halos"
                      + (", edges/features/labels against the source" if source is not None else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from gnndist.graph import GraphError
    from gnndist.partition.format import PartitionFormatError, PartitionWriteError
    from gnndist.train.checkpoint import CheckpointError
    from gnndist.train.rundir import RunDirError
    from gnndist.train.stopping import RunError, interruptible
    from partitioners import PartitionError

    args = build_parser().parse_args(argv)
    # Reports go to stdout unless --json claims it; progress and errors always go to stderr.
    # Tables need about 100 columns; rich falls back to 80 when writing to a pipe or file.
    console = Console(stderr=bool(getattr(args, "json", False)), width=None if sys.stdout.isatty() else 110)
    runners = {"partition": _run_partition, "inspect": _run_inspect, "train": _run_train, "evaluate": _run_evaluate}
    try:
        with interruptible():  # SIGTERM too ends in the except below, not in a kill that skips the cleanup
            return runners[args.command](args, console)
    except (GraphError, ConfigError, PartitionError, PartitionFormatError, PartitionWriteError, FileExistsError,
            CheckpointError, RunDirError, RunError) as e:
        # Messages name config fields by their job-file keys; a user who typed flags sees flags.
        print(f"gnndist {args.command}: error: {as_flags(str(e), _flag_names(args))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        return _interrupted(args, sys.argv[1:] if argv is None else argv, e)


def _interrupted(args, argv: list[str], error: KeyboardInterrupt) -> int:
    """Say that Ctrl-C or SIGTERM stopped the command, and for a run how to continue it; returns
    the shell's exit code for the signal (130 for SIGINT, 143 for SIGTERM)."""
    from gnndist.train.stopping import resume_hint

    signum = getattr(error, "signum", signal.SIGINT)  # a plain KeyboardInterrupt is Ctrl-C's
    print(f"gnndist {args.command}: stopped by {signal.Signals(signum).name}", file=sys.stderr)
    if args.command == "train":
        print(resume_hint(Path(args.out), _resume_command(argv, args.out)), file=sys.stderr)
    return 128 + signum


def _resume_command(argv: list[str], out: str) -> str:
    """The command line that continues an interrupted ``gnndist train ARGV``: the same flags, with
    ``--resume`` and without ``--overwrite`` (which would discard the checkpoint to resume from)."""
    kept, skip = [], False
    for arg in argv:
        if skip or arg in ("--resume", "--overwrite") or arg.startswith("--out="):
            skip = False
            continue
        skip = arg == "--out"  # its value follows
        if not skip:
            kept.append(arg)
    return shlex.join(["gnndist", *kept, "--resume", "--out", out])


if __name__ == "__main__":
    sys.exit(main())
