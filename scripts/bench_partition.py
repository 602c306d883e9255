"""Partitioning benchmark: wall time, peak memory and edge cut of every gnndist partitioner, side by
side with pymetis called directly on the same graph, in the same run.

Each measurement runs in a fresh subprocess so that its peak RSS is its own. The graph (a
degree-corrected SBM by default, 1M nodes / 20M edges, 100 features, 16 classes) is generated
once and cached as plain .npy arrays, so every child loads the identical graph.

    python scripts/bench_partition.py --out scripts/results/bench_partition.json
    python scripts/bench_partition.py --nodes 100000 --edges 2000000 --parts 2 --out /tmp/small.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results_io import write_results

# Figures for peers that cannot run in this environment, measured on this machine (2 cores) on a
# degree-corrected SBM graph of 1M nodes / 20M edges, 2 parts; quoted from the project's issue.
PEERS_QUOTED = {
    "pyg_2.8.1_partitioner": {"parts": 2, "wall_s": 25.0, "peak_rss_mb": 3400},
    "dgl_2.1_partition_graph_metis": {"parts": 2, "wall_s": 35.0, "peak_rss_mb": 4900},
    "pymetis_alone": {"parts": 2, "wall_s": 9.5, "peak_rss_mb": 2300, "edge_cut": 0.166},
    "ldg_streaming": {"parts": 2, "edge_cut": 0.30},
    "random": {"parts": 2, "edge_cut": 0.50},
}
_GRAPH_FILES = ("indptr", "indices", "x", "y", "train_mask", "val_mask", "test_mask")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _cache_graph(spec: str, cache: Path) -> dict:
    """Generate the graph through gnndist's synthetic source once; store its arrays as .npy."""
    meta_path = cache / "graph.json"
    if meta_path.is_file() and json.loads(meta_path.read_text())["spec"] == spec:
        return json.loads(meta_path.read_text())
    from gnndist.config import SourceConfig
    from gnndist.sources import load_graph

    cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    graph = load_graph(SourceConfig(dataset=spec))
    generate_s = time.perf_counter() - start
    from partitioners.metis import symmetric_adjacency

    indptr, indices = graph.indptr.numpy(), graph.indices.numpy()
    if symmetric_adjacency(indptr, indices)[1] is not indices:
        raise SystemExit("the benchmark graph is not symmetric, so pymetis cannot take its CSC as its CSR")
    for name in _GRAPH_FILES:
        np.save(cache / f"{name}.npy", getattr(graph, name).numpy())
    meta = {"spec": spec, "generate_s": generate_s, **graph.summary(), "meta": graph.meta}
    meta_path.write_text(json.dumps(meta, default=str))
    return meta


def _load_cached(cache: Path):
    import torch

    from gnndist.graph import Graph

    meta = json.loads((cache / "graph.json").read_text())
    arrays = {name: torch.from_numpy(np.load(cache / f"{name}.npy")) for name in _GRAPH_FILES}
    features = arrays.pop("x").numpy()  # the benchmark graph's features are dense
    return Graph(name=meta["name"], num_classes=meta["num_classes"], origin=meta["spec"], features=features,
                 **arrays)


def _child_gnndist(cache: Path, method: str, parts: int) -> dict:
    """The whole `gnndist partition` pipeline after loading: assign, relabel, halos, write."""
    from gnndist import inspect
    from gnndist.config import PartitionConfig
    from partitioners import make_partitioner
    from partitioners.writer import write_partitions

    baseline = _peak_rss_mb()
    graph = _load_cached(cache)
    loaded_mb = _peak_rss_mb()
    config = PartitionConfig(method=method, num_parts=parts)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        start = time.perf_counter()
        assignment = make_partitioner(config).assign(graph)
        assigned = time.perf_counter()
        out = write_partitions(graph, assignment, config, Path(tmp) / "parts")
        done = time.perf_counter()
        totals = inspect.report(out)["totals"]
    return {"assign_s": assigned - start, "write_s": done - assigned, "wall_s": done - start,
            "baseline_rss_mb": baseline, "graph_loaded_rss_mb": loaded_mb, "peak_rss_mb": _peak_rss_mb(),
            "edge_cut": totals["edge_cut_fraction"], "balance_nodes": totals["balance_nodes"],
            "balance_edges": totals["balance_edges"], "balance_train": totals["balance_train"],
            "replication_factor": totals["replication_factor"]}


def _child_pymetis(cache: Path, parts: int) -> dict:
    """pymetis alone on the graph's symmetric adjacency: the floor for any METIS path."""
    import pymetis  # and nothing of gnndist (torch alone would add ~300 MB to this floor)

    baseline = _peak_rss_mb()
    # The generator child checked that the graph is symmetric, so its CSC is also its CSR.
    indptr = np.load(cache / "indptr.npy")
    indices = np.load(cache / "indices.npy")
    start = time.perf_counter()
    _, membership = pymetis.part_graph(parts, pymetis.CSRAdjacency(indptr, indices))
    wall = time.perf_counter() - start
    membership = np.asarray(membership)
    targets = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    return {"wall_s": wall, "baseline_rss_mb": baseline, "peak_rss_mb": _peak_rss_mb(),
            "edge_cut": float(np.mean(membership[indices] != membership[targets]))}


def _disk_chunks(cache: Path, chunk_edges: int):
    """CSC chunks read from the cached .npy files with plain reads: nothing but one chunk and the
    O(nodes) offsets is ever in memory (no memory map, whose pages would count as resident)."""
    from gnndist.graph import chunk_ranges

    indptr = np.load(cache / "indptr.npy")
    with open(cache / "indices.npy", "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        data_offset = f.tell()
        for start, stop in chunk_ranges(indptr, chunk_edges):
            f.seek(data_offset + 8 * int(indptr[start]))
            sources = np.fromfile(f, dtype=np.int64, count=int(indptr[stop] - indptr[start]))
            yield start, indptr[start:stop + 1] - indptr[start], sources


def _child_stream_from_disk(cache: Path, parts: int) -> dict:
    """The streaming partitioner reading edges in chunks from disk: its own bounded memory."""
    from gnndist.config import PartitionConfig
    from partitioners.streaming import StreamingPartitioner

    baseline = _peak_rss_mb()
    train = np.load(cache / "train_mask.npy")
    config = PartitionConfig(method="streaming", num_parts=parts)
    start = time.perf_counter()
    assignment = StreamingPartitioner(config).assign_stream(train.size, _disk_chunks(cache, config.chunk_edges), train)
    wall = time.perf_counter() - start
    cut = 0
    for first, indptr, sources in _disk_chunks(cache, config.chunk_edges):
        targets = first + np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
        cut += int(np.count_nonzero(assignment[sources] != assignment[targets]))
    num_edges = json.loads((cache / "graph.json").read_text())["num_edges"]
    return {"assign_s": wall, "wall_s": wall, "baseline_rss_mb": baseline, "peak_rss_mb": _peak_rss_mb(),
            "edge_cut": cut / num_edges,
            "balance_nodes": float(np.bincount(assignment).max() / (train.size / parts))}


def _run_child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--edges", type=int, default=20_000_000)
    parser.add_argument("--parts", default="2,4,8")
    parser.add_argument("--methods", default="metis,random,streaming")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gnndist-bench-partition")
    parser.add_argument("--out", type=Path, default=Path("scripts/results/bench_partition.json"))
    parser.add_argument("--child", choices=["generate", "gnndist", "pymetis", "stream-from-disk"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        children = {
            "generate": lambda: _cache_graph(args.spec, args.cache),
            "gnndist": lambda: _child_gnndist(args.cache, args.method, int(args.parts)),
            "pymetis": lambda: _child_pymetis(args.cache, int(args.parts)),
            "stream-from-disk": lambda: _child_stream_from_disk(args.cache, int(args.parts)),
        }
        print(json.dumps(children[args.child](), default=str))
        return

    # The source symmetrises: half as many generated pairs give about --edges directed edges.
    spec = f"synthetic:sbm:nodes={args.nodes},edges={args.edges // 2},features=100,blocks=16,seed=0"
    graph = _run_child(["--child", "generate", "--spec", spec, "--cache", str(args.cache)])
    if "error" in graph:
        sys.exit(f"generating the graph failed: {graph['error']}")
    print(f"graph: {graph['num_nodes']:,} nodes, {graph['num_edges']:,} edges "
          f"(generated in {graph['generate_s']:.1f} s)", flush=True)
    results = []
    for parts in [int(p) for p in args.parts.split(",")]:
        runs = [("pymetis", ["--child", "pymetis"])] + \
               [(m, ["--child", "gnndist", "--method", m]) for m in args.methods.split(",")] + \
               [("streaming-from-disk", ["--child", "stream-from-disk"])]
        for name, child_args in runs:
            row = {"method": name, "parts": parts,
                   **_run_child([*child_args, "--parts", str(parts), "--cache", str(args.cache)])}
            results.append(row)
            print(json.dumps(row), flush=True)
    for row in results:
        floor = next(r for r in results if r["method"] == "pymetis" and r["parts"] == row["parts"])
        if "error" not in row and "error" not in floor:
            row["wall_vs_pymetis"] = row["wall_s"] / floor["wall_s"]
            row["peak_vs_pymetis"] = row["peak_rss_mb"] / floor["peak_rss_mb"]
    write_results(args.out, {
        "benchmark": "partition", "graph": graph, "results": results, "peers_quoted": PEERS_QUOTED,
        "note": "each row is a fresh process. wall_s of gnndist = assign + relabel + halos + write (graph "
                "already in memory); peak_rss_mb = that process's peak including the loaded graph (with "
                "features); baseline_rss_mb = after imports (torch), before any data. pymetis rows import "
                "only numpy and pymetis; streaming-from-disk reads edges in chunks from disk.",
    })


if __name__ == "__main__":
    main()
