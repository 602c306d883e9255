"""Sampler benchmark: seeds per second of complete mini-batches (structure, features, labels) from
gnndist's distributed loader, against PyG's NeighborLoader over the whole graph in one process
with the same total threads, in the same run; remote bytes per epoch with and without the cache;
and the loader with same-node reads (each trainer reads the other parts from their files).

For the cached runs it also records what any static cache of the same size could do on the very
batches of the timed epochs: the bound C/R (cached rows over distinct remote rows per batch, reached
only if every cached row were in every batch) and the best static cache (the C nodes in the most
batches, chosen knowing them), with the smallest cache fraction at which even that cuts 40%. The
lookahead cache (sampler.cache_lookahead) has the same size, but its contents follow the batches.

Needs the benchmark environment (`make bench-env`: PyG's NeighborLoader needs torch-sparse);
without it the PyG rows record the import error and gnndist is still measured.

    .venv-bench/bin/python scripts/bench_sampler.py --out scripts/results/bench_sampler.json
    .venv-bench/bin/python scripts/bench_sampler.py --sizes 100000:2000000 --parts 2 --out /tmp/s.json
    .venv/bin/python scripts/bench_sampler.py --no-pyg --sizes 1000000:20000000 --parts 2 --out /tmp/s.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import torch
from results_io import write_results

from gnndist.config import PartitionConfig, SamplerConfig, SourceConfig
from gnndist.runtime.memory import WORKER_ENV, keep_freed_memory
from gnndist.sources import load_graph
from partitioners import make_partitioner
from partitioners.writer import write_partitions

THREADS = 2  # this machine's cores: every contender gets the same total
CACHE_FRACTION = 0.1  # the goal: a cache of 10% of the halo cuts remote bytes by 40% or more
GOAL_CUT = 0.4
CACHED = ("gnndist_cache10", "gnndist_lookahead10")  # the contenders with a cache of that size
TIMED_BATCHES = 40  # per part, at the least: whole epochs, as many as that takes
PEERS_QUOTED = {  # measured on this machine (2 cores, 2 threads) on the same kind of graph; from the issue
    "pyg_2.8.1_neighborloader_pyg_lib": {"100k": 16100, "1M": 3800},
    "dgl_2.1_neighbor_sampler": {"100k": 22100, "1M": 8200},
}


def _batches_holding(n_ids: list[np.ndarray], lo: int, hi: int) -> np.ndarray:
    """For each remote node (outside ``lo..hi-1``) in the batches ``n_ids``, how many of them hold
    it: int64, largest first. The C largest sum to the rows the best static cache of C rows saves."""
    remote = np.concatenate([n[(n < lo) | (n >= hi)] for n in n_ids]) if n_ids else np.empty(0, np.int64)
    return -np.sort(-np.unique(remote, return_counts=True)[1])


@ray.remote(num_cpus=0, runtime_env={"env_vars": WORKER_ENV})  # the malloc settings of a training worker
class _Trainer:
    """Stands where a training worker will: opens its part's loader, warms it up, then drains it
    for the timed epochs when told to, so that all parts time the same span."""

    def open(self, root: str, part: int, servers, config: SamplerConfig) -> int:
        """Open the part's view and run a first epoch (numba loads its compiled kernels once per
        process); returns the batches in an epoch."""
        from gnndist.runtime.loader import DistributedNeighborLoader, PartView

        torch.set_num_threads(1)
        start = time.perf_counter()
        self.view = PartView.open(root, part, servers, config)
        self.open_s = time.perf_counter() - start
        self.part = part
        self.loader = DistributedNeighborLoader(self.view, self.view.seeds("train"), config)
        for _ in self.loader:
            pass
        return len(self.loader)

    def timed(self, epochs: int) -> dict:
        """Epochs 1..``epochs``, timed; traffic, cache counters and phase seconds of those alone."""
        loader, view = self.loader, self.view
        warm, warm_s = loader.stats(), dict(loader.seconds)
        n_ids, seeds, start = [], 0, time.perf_counter()
        for epoch in range(1, epochs + 1):
            loader.set_epoch(epoch)
            for batch in loader:
                seeds += batch.batch_size
                n_ids.append(batch.n_id.numpy())
        wall = time.perf_counter() - start
        stats = loader.stats()
        # Counters are cumulative: report the timed epochs alone.
        timed = {k: stats[k] - warm[k] for k in ("remote_requests", "remote_ids", "remote_bytes", "hits", "misses",
                                                 "bytes_saved", "same_node_ids", "same_node_bytes")}
        timed["hit_rate"] = timed["hits"] / max(timed["hits"] + timed["misses"], 1)
        timed.update({f"{phase}_s": loader.seconds[phase] - warm_s[phase] for phase in warm_s})
        return {"part": self.part, "seeds": seeds, "batches": len(n_ids), "wall_s": wall, "open_s": self.open_s,
                **stats, **timed, "halo_1hop_nodes": int(view.store.arrays.halo_ids.size),
                "in_batches": _batches_holding(n_ids, *view.book.part_range(self.part))}


def _gnndist(root: Path, parts: int, config: SamplerConfig) -> dict:
    from gnndist.runtime.partition_server import launch_servers

    servers = launch_servers(root)
    try:
        trainers = [_Trainer.remote() for _ in range(parts)]
        per_epoch = ray.get([t.open.remote(str(root), p, servers, config) for p, t in enumerate(trainers)])
        # Every part starts its timed epochs once all have warmed up, and draws at least
        # TIMED_BATCHES batches: at 100k an epoch is 2-4 batches a part, a fraction of a second.
        epochs = max(1, -(-TIMED_BATCHES // max(min(per_epoch), 1)))
        rows = ray.get([t.timed.remote(epochs) for t in trainers])
    finally:
        servers.kill()
    # The parts' timed epochs run at the same time: the slowest one ends them.
    wall = max(r["wall_s"] for r in rows)
    seeds = sum(r["seeds"] for r in rows)
    hits = sum(r["hits"] for r in rows)
    lookups = hits + sum(r["misses"] for r in rows)  # distinct remote rows, summed over the batches
    result = {"seeds_per_s": seeds / wall, "timed_epochs": epochs, "epoch_wall_s": wall / epochs, "seeds": seeds,
              "remote_bytes_per_epoch": sum(r["remote_bytes"] for r in rows) / epochs,
              "same_node_bytes_per_epoch": sum(r["same_node_bytes"] for r in rows) / epochs,
              "remote_rows_per_batch": lookups / sum(r["batches"] for r in rows),
              "open_s": max(r["open_s"] for r in rows),
              "cache_fill_bytes": sum(r["cache_fill_bytes"] for r in rows),
              "cache_hit_rate": hits / lookups if lookups else 0.0}
    if any(r["cache_halo_nodes"] for r in rows):
        result.update(_static_cache_reach(rows, lookups))
    for r in rows:
        del r["in_batches"]
    return {**result, "per_part": rows}


def _static_cache_reach(rows: list[dict], lookups: int) -> dict:
    """What a static cache of each part's size could save of the remote rows of the timed epochs
    (``lookups`` in all): the bound C/R and the best static cache, and the smallest fraction of
    each part's sampling halo at which the best static cache meets the goal."""
    saved = [np.concatenate([[0], np.cumsum(r["in_batches"])]) for r in rows]

    def best(sizes: list[int]) -> float:
        return sum(int(cum[min(c, cum.size - 1)]) for cum, c in zip(saved, sizes, strict=True)) / lookups

    enough = [f for f in np.arange(1, 101) / 100 if best([round(f * r["cache_halo_nodes"]) for r in rows]) >= GOAL_CUT]
    return {"cache_rows": sum(r["cached_nodes"] for r in rows),
            "cache_halo_nodes": sum(r["cache_halo_nodes"] for r in rows),
            "halo_1hop_nodes": sum(r["halo_1hop_nodes"] for r in rows),
            "cache_bound_c_over_r": min(1.0, sum(r["cached_nodes"] * r["batches"] for r in rows) / lookups),
            "best_static_hit_rate": best([r["cached_nodes"] for r in rows]),
            "best_static_fraction_for_goal": float(enough[0]) if enough else None}


def _pyg(graph, config: SamplerConfig, max_batches: int) -> dict:
    try:
        from torch_geometric.data import Data
        from torch_geometric.loader import NeighborLoader

        torch.set_num_threads(THREADS)
        data = Data(x=graph.x, y=graph.y, edge_index=graph.edge_index(), num_nodes=graph.num_nodes)
        seeds = torch.nonzero(graph.train_mask).flatten()
        loader = NeighborLoader(data, num_neighbors=list(config.fanouts), batch_size=config.batch_size,
                                input_nodes=seeds, shuffle=True)
        start = time.perf_counter()
        done = 0
        for i, batch in enumerate(loader):
            done += batch.batch_size
            if i + 1 >= max_batches:
                break
        wall = time.perf_counter() - start
        return {"seeds_per_s": done / wall, "seeds": done, "wall_s": wall}
    except ImportError as e:
        return {"error": f"{type(e).__name__}: {e}"}


def _bench_graph(nodes: int, edges: int, parts_list: list[int], workdir: Path, pyg: bool) -> list[dict]:
    # The SBM source symmetrises: half as many generated pairs give about `edges` directed edges.
    spec = f"synthetic:sbm:nodes={nodes},edges={edges // 2},features=100,blocks=16,train=0.08,val=0.02,seed=0"
    graph = load_graph(SourceConfig(dataset=spec))
    label = f"{nodes // 1000}k" if nodes < 10**6 else f"{nodes // 10**6}M"
    print(f"{label}: {graph.num_nodes:,} nodes, {graph.num_edges:,} edges, {int(graph.train_mask.sum()):,} seeds",
          flush=True)
    config = SamplerConfig(fanouts=(15, 10, 5), batch_size=1024, prefetch=2, timeout_s=600)
    rows = []
    if pyg:
        rows.append({"graph": label, "contender": "pyg_neighborloader", "parts": 1, "threads": THREADS,
                     **_pyg(graph, config, max_batches=40)})
        print(json.dumps(rows[-1]), flush=True)
    for parts in parts_list:
        pconfig = PartitionConfig(method="metis", num_parts=parts)
        root = workdir / f"{label}-{parts}"
        write_partitions(graph, make_partitioner(pconfig).assign(graph), pconfig, root, force=True)
        for name, cfg in (("gnndist", config),
                          ("gnndist_cache10", dataclasses.replace(config, cache_fraction=CACHE_FRACTION)),
                          ("gnndist_lookahead10", dataclasses.replace(config, cache_fraction=CACHE_FRACTION,
                                                                       cache_lookahead=True)),
                          ("gnndist_same_node", dataclasses.replace(config, same_node_reads=True))):
            row = {"graph": label, "contender": name, "parts": parts, "threads": THREADS, **_gnndist(root, parts, cfg)}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "per_part"}), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000:2000000,1000000:20000000", help="nodes:edges,...")
    parser.add_argument("--parts", default="2,4")
    parser.add_argument("--out", type=Path, default=Path("scripts/results/bench_sampler.json"))
    parser.add_argument("--no-pyg", action="store_true", help="measure gnndist alone (no PyG rows, no vs_pyg)")
    args = parser.parse_args()
    from gnndist.runtime.cluster import init_ray

    keep_freed_memory()  # PyG's loader runs here: the same malloc settings as gnndist's trainers
    init_ray(num_cpus=THREADS)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            nodes, edges = (int(v) for v in size.split(":"))
            results += _bench_graph(nodes, edges, [int(p) for p in args.parts.split(",")], Path(tmp), not args.no_pyg)
    for row in results:
        peer = next((r for r in results if r["graph"] == row["graph"] and r["contender"] == "pyg_neighborloader"), {})
        if "seeds_per_s" in row and "seeds_per_s" in peer:
            row["vs_pyg"] = row["seeds_per_s"] / peer["seeds_per_s"]
        base = next((r for r in results if r["graph"] == row["graph"] and r["parts"] == row["parts"]
                     and r["contender"] == "gnndist"), None)
        if row["contender"] in CACHED and base and base["remote_bytes_per_epoch"]:
            row["remote_bytes_cut"] = 1 - row["remote_bytes_per_epoch"] / base["remote_bytes_per_epoch"]
            row["goal_met"] = row["remote_bytes_cut"] >= GOAL_CUT
    write_results(args.out, {
        "benchmark": "sampler", "fanouts": [15, 10, 5], "batch_size": 1024, "results": results,
        "peers_quoted_seeds_per_s": PEERS_QUOTED,
        "note": "gnndist: one trainer process per part, all parts at once, timed_epochs full epochs of the part's "
                "training seeds (8% of nodes; as many epochs as make 40 batches a part), all parts starting them "
                "together after a warm-up epoch, Ray with 2 CPUs in all; epoch_wall_s and the byte counts are per "
                "epoch; PyG: NeighborLoader over the whole graph in one "
                "process with 2 torch threads, first 40 batches. remote_bytes_per_epoch excludes the one-off "
                "traffic of choosing and filling the cache (cache_fill_bytes: the sampling-halo search, the "
                "warm-up batches' sampling and the fill). Other jobs shared this 2-core machine during the run: "
                "timings vary up to 2x between runs, byte counts and hit rates do not. gnndist_same_node: "
                "sampler.same_node_reads, each trainer reading the other parts from their files (every server "
                "shares the one node) instead of calling their servers; same_node_bytes_per_epoch: the feature "
                "rows and labels it read there.",
        "cache": f"gnndist_cache10 caches {CACHE_FRACTION:.0%} of each part's sampling halo (cache_halo_nodes: the "
                 "remote nodes within len(fanouts) in-hops of the part's training seeds, every node a batch can "
                 "fetch; halo_1hop_nodes is the partition's 1-hop halo), ranked by draws in warm-up batches "
                 "(one pass over the part's training seeds, sampled apart from the timed epochs). "
                 "remote_rows_per_batch (R): mean distinct remote feature rows a batch needs; the cache serves "
                 "cache_hit_rate of them. cache_bound_c_over_r: cached rows over R, what a cache saves only if "
                 "every cached row is in every batch. best_static_hit_rate: the best any static cache of the same "
                 "size does on the timed epochs' batches (the nodes in the most of them, chosen knowing them); "
                 "best_static_fraction_for_goal: the smallest fraction of the sampling halo at which that best "
                 f"cache serves {GOAL_CUT:.0%} of the rows. gnndist_lookahead10: sampler.cache_lookahead, a cache "
                 "of the same size and first fill that after each batch keeps, of the rows it holds or has just "
                 "fetched, those used soonest by the `prefetch` (2) batches sampled ahead, then the hottest (no "
                 "traffic of its own). remote_bytes_cut also counts sampling traffic, which no "
                 "feature cache saves. open_s: the slowest part's start-up (load, sampling halo, warm-up, "
                 "fill); per part, sample_s and fetch_s: the timed epochs' batch-building seconds by phase (in the "
                 "prefetch thread).",
    })


if __name__ == "__main__":
    main()
