"""Training benchmark: epoch time, seeds per second and test accuracy of 3-layer GraphSAGE (hidden
128, fanouts [15, 10, 5], batch 1024) trained by gnndist with 1 part / 1 worker and 2 parts /
2 workers, one thread each, against PyG's NeighborLoader + GraphSAGE in one process with the same
total threads (1 and 2), in the same run; also one batch's forward + backward (1 thread) of PyG's
GraphSAGE, untrimmed and trimmed, and of gnndist's.

One thread per worker means one core per worker: the lone worker runs in a child process pinned
to one core with its own Ray, its part's server and prefetch thread included, as each of the
2 workers has one of the machine's 2 cores. Scaling efficiency = throughput(2) / (2 x
throughput(1)) compares these. The lone worker is also run unconfined (gnndist_spare_core): then
its server and prefetch thread build the batches on the second core beside its training thread.
The 2 workers run twice: calling each other's partition server, and with same-node reads (each
reads the other part from its files). The machine is shared: gnndist's runs take turns for
--rounds rounds and each reports its least disturbed round (all rounds are recorded).

Needs the benchmark environment (`make bench-env`: PyG's NeighborLoader needs torch-sparse);
without it the PyG rows record the import error and gnndist is still measured.

    .venv-bench/bin/python scripts/bench_train.py --out scripts/results/bench_train.json
    .venv-bench/bin/python scripts/bench_train.py --sizes 100000:2000000 --epochs 3 --rounds 1 --out /tmp/t.json

Accuracy parity has a script of its own, ``scripts/bench_parity.py``.

With --concurrent-steps it times gnndist's 1-thread step on one batch of the first size alone and
with a second one running on the other core at the same time:

    .venv-bench/bin/python scripts/bench_train.py --concurrent-steps --sizes 100000:2000000 \
        --out scripts/results/bench_train_concurrent_steps.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from results_io import write_results

from gnndist.config import PartitionConfig, SamplerConfig, SourceConfig, TrainConfig
from gnndist.runtime.memory import keep_freed_memory
from gnndist.sampling.neighbor import CSCProvider, sample_khop
from gnndist.sources import load_graph
from gnndist.train.models import build_model
from partitioners import make_partitioner
from partitioners.writer import write_partitions

THREADS = 2  # this machine's cores: the 2 workers get one each, PyG the same total
FANOUTS, BATCH, HIDDEN = (15, 10, 5), 1024, 128
TRAIN = TrainConfig(model="sage", hidden=HIDDEN, cpus_per_worker=1)  # dropout, lr, weight decay: the defaults
PEERS_QUOTED = {  # measured on this machine with the same model, fanouts and batch size; from issue 4
    "distdgl_2.1_2_parts": {"graph": "100k", "epoch_s": 1.17, "test_acc": 0.86,
                            "setup": "2 parts, one server and one trainer each, one thread"},
    "pyg_2.8.1": {"graph": "1M", "epoch_s": 219, "compute_s": 194},
    "dgl_2.1": {"graph": "1M", "epoch_s": 41, "compute_s": 32},
}
PYG_TEST_NODES = 20_000
GOAL_EPOCH_S_100K, GOAL_SCALING = 1.17, 0.8  # DistDGL's epoch on the 100k graph; 2 workers vs 1


def _timed_epochs(history: list[dict]) -> list[dict]:
    """The epochs to time: all but the first (which loads numba's kernels and warms caches)."""
    return history[1:] if len(history) > 1 else history


def _partition(graph, parts: int, root: Path) -> None:
    pconfig = PartitionConfig(method="metis", num_parts=parts)
    write_partitions(graph, make_partitioner(pconfig).assign(graph), pconfig, root, force=True)


def _gnndist(graph, label: str, contender: str, root: Path, parts: int, epochs: int, out_dir: Path,
             same_node_reads: bool) -> dict:
    """One training run; epoch_s is the median of its timed epochs (robust to one disturbed epoch)."""
    from gnndist.train.trainer import train

    config = replace(TRAIN, epochs=epochs, eval_every=epochs, checkpoint_every=epochs)
    sampler = SamplerConfig(fanouts=FANOUTS, batch_size=BATCH, prefetch=2, timeout_s=600,
                            same_node_reads=same_node_reads)
    start = time.perf_counter()
    result = train(None, root, config=config, sampler=sampler, out_dir=out_dir)
    wall = time.perf_counter() - start
    timed = _timed_epochs(result.history)
    epoch_s = float(np.median([r["epoch_s"] for r in timed]))
    phases = {p: float(np.median([r["phases"][p] for r in timed])) for p in timed[0]["phases"]}
    seeds = int(graph.train_mask.sum())
    return {"graph": label, "contender": contender, "parts": parts, "workers": parts, "threads_per_worker": 1,
            "epochs": epochs, "epoch_s": epoch_s, "seeds_per_s": seeds / epoch_s, "phases_s": phases,
            "steps_per_epoch": result.history[-1]["steps"], "test_acc": result.test_acc,
            "val_acc": result.history[-1].get("val_acc"), "eval_s": result.history[-1].get("eval_s"),
            "remote_bytes_per_epoch": float(np.median([r["remote_bytes"] for r in timed])),
            "same_node_bytes_per_epoch": float(np.median([r["same_node_bytes"] for r in timed])),
            "run_wall_s": wall, "history": result.history}


def _best_round(rows: list[dict]) -> dict:
    """The round least slowed by whatever else ran on the shared machine, with every round's epoch_s."""
    best = dict(min(rows, key=lambda r: r["epoch_s"]))
    best["rounds_epoch_s"] = [r["epoch_s"] for r in rows]
    return best


# (contender, parts = workers, same_node_reads) in this process's Ray with 2 CPUs: one worker, its
# server and prefetch thread free to use the second core; two calling each other's server; two
# reading each other's part from its files (one machine, so the other part's server shares their node).
RUNS = (("gnndist_spare_core", 1, False), ("gnndist", 2, False), ("gnndist_same_node", 2, True))
ONE_CORE_RUN = ("gnndist", 1, False)  # in a child process pinned to one core


def _log(row: dict) -> None:
    print(json.dumps({k: v for k, v in row.items() if k != "history"}), flush=True)


def _gnndist_runs(graph, label: str, epochs: int, workdir: Path, r: int,
                  runs: tuple[tuple[str, int, bool], ...] = RUNS) -> list[dict]:
    """Round ``r`` of gnndist in each of ``runs``, in this process's Ray."""
    rows = []
    for contender, parts, same_node in runs:
        root = workdir / f"{label}-{parts}"
        if not root.exists():
            _partition(graph, parts, root)
        rows.append(_gnndist(graph, label, contender, root, parts, epochs, workdir / f"run-{label}-{contender}-{r}",
                             same_node))
        _log(rows[-1])
    return rows


def _pyg(graph, label: str, epochs: int, threads: int) -> dict:
    """PyG's own recipe: NeighborLoader over the whole graph, GraphSAGE on the plain batch, Adam.
    (Trimming needs the per-hop counts, which NeighborLoader reports only with pyg-lib; there is
    no pyg-lib build for this torch, so its effect is measured on one batch by _step_ms.)"""
    try:  # without torch-sparse (or pyg-lib), NeighborLoader raises ImportError
        torch.set_num_threads(threads)
        model, data, history = _pyg_fit(graph, FANOUTS, HIDDEN, BATCH, epochs, TRAIN.seed, log=True)
        start = time.perf_counter()
        test_seeds = torch.nonzero(graph.test_mask).flatten()
        if len(test_seeds) > PYG_TEST_NODES:  # untrimmed inference over 90% of a 1M graph would take longer
            test_seeds = test_seeds[torch.randperm(len(test_seeds), generator=torch.Generator().manual_seed(0))
                                    [:PYG_TEST_NODES]]
        test_acc = _pyg_accuracy(model, data, test_seeds, FANOUTS, BATCH)
        timed = _timed_epochs(history)
        epoch_s = float(np.median([r["epoch_s"] for r in timed]))
        return {"graph": label, "contender": "pyg", "parts": 1, "workers": 1, "threads": threads, "epochs": epochs,
                "epoch_s": epoch_s, "seeds_per_s": int(graph.train_mask.sum()) / epoch_s,
                "forward_backward_s": float(np.median([r["forward_backward_s"] for r in timed])),
                "test_acc": test_acc, "test_nodes": len(test_seeds), "eval_s": time.perf_counter() - start,
                "history": history}
    except ImportError as e:
        return {"graph": label, "contender": "pyg", "threads": threads, "error": f"{type(e).__name__}: {e}"}


def _pyg_fit(graph, fanouts: tuple[int, ...], hidden: int, batch_size: int, epochs: int, seed: int,
             log: bool = False, lr: float = TRAIN.lr):
    """PyG's own recipe: NeighborLoader over the whole graph, stock GraphSAGE on the plain batch,
    Adam with the TRAIN settings (``lr`` aside). Returns the model, the PyG ``Data`` and per-epoch times."""
    from torch_geometric.data import Data
    from torch_geometric.loader import NeighborLoader
    from torch_geometric.nn import GraphSAGE

    torch.manual_seed(seed)
    data = Data(x=graph.x, y=graph.y, edge_index=graph.edge_index(), num_nodes=graph.num_nodes)
    loader = NeighborLoader(data, num_neighbors=list(fanouts), batch_size=batch_size, shuffle=True,
                            input_nodes=torch.nonzero(graph.train_mask).flatten())
    model = GraphSAGE(graph.x.size(1), hidden, num_layers=len(fanouts), out_channels=graph.num_classes,
                      dropout=TRAIN.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=TRAIN.weight_decay)
    history = []
    for epoch in range(epochs):
        start, compute = time.perf_counter(), 0.0
        for batch in loader:
            stepped = time.perf_counter()
            optimizer.zero_grad()
            loss = F.cross_entropy(model(batch.x, batch.edge_index)[:batch.batch_size], batch.y[:batch.batch_size])
            loss.backward()
            optimizer.step()
            compute += time.perf_counter() - stepped
        history.append({"epoch": epoch, "epoch_s": time.perf_counter() - start, "forward_backward_s": compute})
        if log:
            print(json.dumps({"contender": "pyg", "threads": torch.get_num_threads(), **history[-1]}), flush=True)
    return model, data, history


def _pyg_accuracy(model, data, seeds: torch.Tensor, fanouts: tuple[int, ...], batch_size: int) -> float:
    from torch_geometric.loader import NeighborLoader

    loader = NeighborLoader(data, num_neighbors=list(fanouts), batch_size=batch_size, input_nodes=seeds)
    model.eval()
    correct = 0
    with torch.no_grad():
        for batch in loader:
            pred = model(batch.x, batch.edge_index)[:batch.batch_size].argmax(-1)
            correct += int((pred == batch.y[:batch.batch_size]).sum())
    return correct / len(seeds)


def _one_batch(graph):
    """``(x, y, edge_index, layout)`` of one sampled batch of the first training seeds."""
    seeds = np.flatnonzero(graph.train_mask.numpy())[:BATCH]
    sub = sample_khop(seeds, FANOUTS, CSCProvider(graph.indptr.numpy(), graph.indices.numpy()), seed=0)
    n_id = torch.from_numpy(sub.n_id)
    layout = {"num_sampled_nodes_per_hop": sub.num_sampled_nodes, "num_sampled_edges_per_hop": sub.num_sampled_edges}
    return graph.x[n_id], graph.y[n_id], torch.from_numpy(sub.edge_index), layout


def _step_times(model, batch, kwargs: dict, steps: int) -> list[float]:
    """Seconds of each of ``steps`` forward + backward passes of ``model`` on ``batch``."""
    x, y, edge_index, _ = batch
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        F.cross_entropy(model(x, edge_index, **kwargs)[:BATCH], y[:BATCH]).backward()
        times.append(time.perf_counter() - start)
    return times


def _step_ms(graph, label: str, rounds: int = 5) -> dict:
    """Forward + backward of one sampled batch at one thread: the best of ``rounds``, in ms."""
    from torch_geometric.nn import GraphSAGE

    torch.set_num_threads(1)
    batch = _one_batch(graph)
    _, y, edge_index, layout = batch
    torch.manual_seed(0)
    ours = build_model(TRAIN, graph.x.size(1), graph.num_classes, len(FANOUTS))
    stock = GraphSAGE(graph.x.size(1), HIDDEN, num_layers=len(FANOUTS), out_channels=graph.num_classes,
                      dropout=TRAIN.dropout)
    variants = {"pyg_untrimmed": (stock, {}), "pyg_trimmed": (stock, layout), "gnndist": (ours, layout)}
    best = {}
    for name, (model, kwargs) in variants.items():
        best[name] = 1e3 * min(_step_times(model, batch, kwargs, rounds + 1)[1:])  # the first round warms up
    row = {"graph": label, "contender": "forward_backward_one_batch", "threads": 1, "batch_nodes": int(y.numel()),
           "batch_edges": int(edge_index.size(1)), "best_ms": best,
           "speedup_vs_pyg_untrimmed": best["pyg_untrimmed"] / best["gnndist"],
           "speedup_vs_pyg_trimmed": best["pyg_trimmed"] / best["gnndist"]}
    print(json.dumps(row), flush=True)
    return row


def _median_step_on_core(batch, num_classes: int, cpu: int, steps: int, out) -> None:
    """gnndist's 1-thread forward + backward of ``batch`` on core ``cpu``, ``steps`` times; puts the
    median ms after 2 warm-up steps on the queue ``out``."""
    os.sched_setaffinity(0, {cpu})
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model(TRAIN, batch[0].size(1), num_classes, len(FANOUTS))
    times = _step_times(model, batch, batch[3], steps + 2)
    out.put((cpu, 1e3 * float(np.median(times[2:]))))


def _concurrent_steps(nodes: int, edges: int, steps: int = 10) -> dict:
    """Does a training step slow down when another runs on the other core at the same time? One
    batch, gnndist's step alone on core 0, then on cores 0 and 1 at once, then alone on core 1:
    if the pair is no slower, 2 workers on 2 cores are bound by CPU time, not by shared caches or
    memory bandwidth."""
    graph, label = _graph(nodes, edges)
    batch = _one_batch(graph)
    ctx = mp.get_context("fork")  # the children share the batch without copying it
    row = {"graph": label, "contender": "concurrent_steps", "threads_per_process": 1, "steps": steps}
    for name, cpus in (("alone_cpu0", (0,)), ("both_at_once", (0, 1)), ("alone_cpu1", (1,))):
        out = ctx.Queue()
        procs = [ctx.Process(target=_median_step_on_core, args=(batch, graph.num_classes, cpu, steps, out))
                 for cpu in cpus]
        for proc in procs:
            proc.start()
        results = dict(out.get() for _ in procs)
        for proc in procs:
            proc.join()
        row[f"{name}_median_ms"] = [results[cpu] for cpu in cpus]
    print(json.dumps(row), flush=True)
    return row


def _graph(nodes: int, edges: int):
    """The synthetic graph of a size, and its label."""
    # The SBM source symmetrises: half as many generated pairs give about `edges` directed edges.
    spec = f"synthetic:sbm:nodes={nodes},edges={edges // 2},features=100,blocks=16,train=0.08,val=0.02,seed=0"
    return load_graph(SourceConfig(dataset=spec)), _label(nodes)


def _label(nodes: int) -> str:
    return f"{nodes // 1000}k" if nodes < 10**6 else f"{nodes // 10**6}M"


def _gnndist_on_one_core(nodes: int, edges: int, epochs: int, r: int) -> dict:
    """Round ``r`` of gnndist with 1 worker on one core, Ray and the part's server included: a child
    process with its own Ray, pinned to CPU 0 (affinity is inherited by every process it starts)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        subprocess.run([sys.executable, __file__, "--sizes", f"{nodes}:{edges}", "--epochs", str(epochs),
                        "--one-core-child", str(r), "--out", str(out)], check=True,
                       preexec_fn=lambda: os.sched_setaffinity(0, {0}))
        return json.loads(out.read_text())  # the child has logged it


def _bench_graph(nodes: int, edges: int, epochs: int, rounds: int, workdir: Path) -> list[dict]:
    """Every contender on one graph; gnndist's runs, the one-core one included, take turns for
    ``rounds`` rounds so that a busy spell on the machine falls on all of them."""
    from gnndist.runtime.cluster import init_ray, shutdown_ray

    graph, label = _graph(nodes, edges)
    print(f"{label}: {graph.num_nodes:,} nodes, {graph.num_edges:,} edges, {int(graph.train_mask.sum()):,} seeds",
          flush=True)
    rows = [_step_ms(graph, label)] + [_pyg(graph, label, epochs, threads) for threads in (1, THREADS)]
    done: dict[tuple[str, int], list[dict]] = {}
    for r in range(rounds):
        # The child runs a Ray of its own: this process's is stopped meanwhile, so it takes no CPU.
        round_rows = [_gnndist_on_one_core(nodes, edges, epochs, r)]
        init_ray(num_cpus=THREADS)
        round_rows += _gnndist_runs(graph, label, epochs, workdir, r)
        shutdown_ray()
        for row in round_rows:
            done.setdefault((row["contender"], row["workers"]), []).append(row)
    return rows + [_best_round(same) for same in done.values()]


def _compare(results: list[dict]) -> dict:
    """Per graph: the scaling from 1 to 2 workers, and gnndist against PyG with the same total threads."""
    summary = {}
    for label in dict.fromkeys(r["graph"] for r in results):
        rows = {(r["contender"], r.get("workers"), r.get("threads")): r for r in results if r["graph"] == label}
        runs = {r["contender"]: r for r in results if r["graph"] == label and r.get("workers") == 2}
        one, spare_core = rows[("gnndist", 1, None)], rows[("gnndist_spare_core", 1, None)]
        entry = {"scaling_efficiency": runs["gnndist"]["seeds_per_s"] / (2 * one["seeds_per_s"]),
                 "scaling_efficiency_same_node_reads": (runs["gnndist_same_node"]["seeds_per_s"]
                                                        / (2 * one["seeds_per_s"])),
                 "scaling_efficiency_vs_lone_worker_with_spare_core": (runs["gnndist"]["seeds_per_s"]
                                                                       / (2 * spare_core["seeds_per_s"]))}
        for threads, mine in ((1, {"1w": one}), (THREADS, {"2w": runs["gnndist"],
                                                           "2w_same_node_reads": runs["gnndist_same_node"]})):
            pyg = rows.get(("pyg", 1, threads), {})
            if "seeds_per_s" in pyg:
                for name, row in mine.items():
                    entry[f"gnndist_{name}_vs_pyg_{threads}_thread{'s' if threads > 1 else ''}"] = (
                        row["seeds_per_s"] / pyg["seeds_per_s"])
        summary[label] = entry
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000:2000000,1000000:20000000", help="nodes:edges,...")
    parser.add_argument("--epochs", help="epochs per size (one value: every size; default 8 below 1M nodes, else 2)")
    parser.add_argument("--rounds", help="gnndist runs per size and worker count, the best one reported (one value: "
                                         "every size; default 3 below 1M nodes, else 1)")
    parser.add_argument("--out", type=Path, default=Path("scripts/results/bench_train.json"))
    parser.add_argument("--concurrent-steps", action="store_true",
                        help="instead: gnndist's 1-thread training step alone and with a second one on the other "
                             "core at the same time (the first size)")
    parser.add_argument("--one-core-child", type=int, metavar="ROUND", help=argparse.SUPPRESS)
    args = parser.parse_args()
    keep_freed_memory()  # PyG and the one-batch steps run here: the malloc settings of gnndist's workers
    sizes = [tuple(int(v) for v in size.split(":")) for size in args.sizes.split(",")]
    per_size = {}
    defaults = {"epochs": (8, 2), "rounds": (3, 1)}  # (below 1M nodes, from 1M): a 1M epoch takes minutes
    for name in ("epochs", "rounds"):
        given = getattr(args, name)
        values = ([int(v) for v in given.split(",")] if given else
                  [defaults[name][0] if nodes < 10**6 else defaults[name][1] for nodes, _ in sizes])
        per_size[name] = values * len(sizes) if len(values) == 1 else values
        if len(per_size[name]) != len(sizes):
            parser.error(f"--{name} gives {len(per_size[name])} values for {len(sizes)} sizes")
    epochs, rounds = per_size["epochs"], per_size["rounds"]
    from gnndist.runtime.cluster import init_ray

    if args.one_core_child is not None:
        init_ray(num_cpus=1)
        (nodes, edges), n = sizes[0], epochs[0]
        graph, label = _graph(nodes, edges)
        with tempfile.TemporaryDirectory() as tmp:
            [row] = _gnndist_runs(graph, label, n, Path(tmp), args.one_core_child, runs=(ONE_CORE_RUN,))
        row["cpus"] = sorted(os.sched_getaffinity(0))
        args.out.write_text(json.dumps(row))
        return
    if args.concurrent_steps:
        write_results(args.out, {"benchmark": "train_concurrent_steps", "batch_size": BATCH, "fanouts": list(FANOUTS),
                                 "results": [_concurrent_steps(*sizes[0])]})
        return
    load = {"start": os.getloadavg()}  # the machine is shared: a busy one slows every contender
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for (nodes, edges), n, r in zip(sizes, epochs, rounds, strict=True):
            results += _bench_graph(nodes, edges, n, r, Path(tmp))
    load["end"] = os.getloadavg()
    summary = _compare(results)
    goals = {f"{name}_{label}": {"value": s[name], "at_least": GOAL_SCALING, "met": s[name] >= GOAL_SCALING}
             for label, s in summary.items()
             for name in ("scaling_efficiency", "scaling_efficiency_same_node_reads")}
    for contender, suffix in (("gnndist", ""), ("gnndist_same_node", "_same_node_reads")):
        two = next((r for r in results if r["graph"] == "100k" and r["contender"] == contender
                    and r["workers"] == 2), None)
        if two:
            goals[f"epoch_s_100k_2_workers{suffix}"] = {"value": two["epoch_s"], "at_most": GOAL_EPOCH_S_100K,
                                                        "met": two["epoch_s"] <= GOAL_EPOCH_S_100K}
    write_results(args.out, {
        "benchmark": "train", "model": "sage", "hidden": HIDDEN, "layers": len(FANOUTS), "fanouts": list(FANOUTS),
        "batch_size": BATCH, "dropout": TRAIN.dropout, "lr": TRAIN.lr, "weight_decay": TRAIN.weight_decay,
        "rounds": {_label(n): r for (n, _), r in zip(sizes, rounds, strict=True)},
        "summary": summary, "goals": goals, "results": results, "peers_quoted": PEERS_QUOTED,
        "load_average_1_5_15_min": load,
        "note": "epoch_s: wall seconds of one epoch's training steps (sampling included, evaluation not), the "
                "median over the epochs after the first; seeds_per_s: training seeds (8% of nodes) / epoch_s. "
                "gnndist: one worker per METIS part, one torch thread and one core each; phases_s from its "
                "metrics log (averaged over workers, median over epochs). gnndist with 1 worker: a child process "
                "pinned to CPU 0 (`cpus`) with a Ray of its own, 1 CPU, the part's server and the prefetch thread "
                "included. gnndist_spare_core: the lone worker in Ray with 2 CPUs, its server and prefetch thread "
                "building batches on the second core. 2 workers: Ray with 2 CPUs; gnndist_same_node with "
                "sampler.same_node_reads, each worker reading the other part from its files instead of calling "
                "its server. The gnndist runs take turns for `rounds` rounds and each row is its fastest round "
                "(rounds_epoch_s: every round), since the machine is shared and a busy spell slows whichever run "
                "it falls on. scaling_efficiency: throughput of 2 workers / (2 x that of the 1-worker run on one "
                "core); scaling_efficiency_vs_lone_worker_with_spare_core: the same against gnndist_spare_core. "
                "PyG: one process, NeighborLoader over the whole graph, 1 and 2 torch threads (`threads`), the "
                "model on the plain batch. Test accuracy (sampled with the training fanouts, after the given "
                "epochs only): gnndist over all test nodes (90% of the graph), PyG over a fixed random 20,000 of "
                "them (test_nodes). forward_backward_one_batch: one batch of gnndist's sampler through PyG's "
                "GraphSAGE, plain and trimmed, and through gnndist's, one thread, best of 5.",
    })


if __name__ == "__main__":
    main()
