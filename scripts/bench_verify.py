"""What verifying a partition costs at start-up: hashing every file against ``partition.json``
(what each partition server does before serving, ``train.verify_partitions``) and the value
checks every load runs, on the synthetic 1M-node graph of the sampler benchmark.

For each part count it records the bytes hashed, the seconds and MB/s of hashing them all in one
process (``format.check_files(verify=True)``, the check of ``gnndist inspect --verify``) and all
parts at once in Ray tasks as the servers hash them, the value checks' seconds per part, and the
wall time of ``launch_servers`` with and without verification (all servers start at once, one
per part), rounds alternating.

    .venv/bin/python scripts/bench_verify.py --out scripts/results/bench_verify.json
    .venv/bin/python scripts/bench_verify.py --size 100000:2000000 --parts 2 --out /tmp/v.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from results_io import write_results

from gnndist.config import PartitionConfig, SourceConfig
from gnndist.partition.format import check_files, check_values, load_part, read_manifest
from gnndist.sources import load_graph
from partitioners import make_partitioner
from partitioners.writer import write_partitions

THREADS = 2  # this machine's cores: Ray gets them all, as in the other benchmarks
ROUNDS = 3


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _value_checks(root: Path, manifest: dict) -> list[float]:
    """Seconds of ``check_values`` alone on each part, loaded as a server loads it."""
    seconds = []
    for p in range(manifest["num_parts"]):
        arrays = load_part(root, p, manifest=manifest)
        seconds.append(_timed(lambda: check_values(arrays, p, manifest, root / manifest["parts"][p]["dir"])))  # noqa: B023
    return seconds


def _parallel_hashes(root: Path, manifest: dict) -> list[float]:
    """Wall seconds of hashing every part at once, one Ray task per part reserving no CPU (as the
    servers do): what verification adds to a start-up, without the actors' start-up noise."""
    import ray

    task = ray.remote(num_cpus=0)(check_files)
    parts = range(manifest["num_parts"])
    ray.get([task.remote(str(root), manifest, parts=[p]) for p in parts])  # start the task workers first
    return [_timed(lambda: ray.get([task.remote(str(root), manifest, verify=True, parts=[p]) for p in parts]))
            for _ in range(ROUNDS)]


def _launches(root: Path) -> dict[str, list[float]]:
    """Wall seconds of ``launch_servers`` until every server has loaded its part, rounds alternating."""
    from gnndist.runtime.partition_server import launch_servers

    walls: dict[str, list[float]] = {"no_verify": [], "verify": []}
    for _ in range(ROUNDS):
        for key, verify in (("no_verify", False), ("verify", True)):
            start = time.perf_counter()
            group = launch_servers(root, verify=verify, timeout_s=600)
            walls[key].append(time.perf_counter() - start)
            group.kill()
    return walls


def _bench_parts(graph, parts: int, workdir: Path) -> dict:
    config = PartitionConfig(method="metis", num_parts=parts)
    root = write_partitions(graph, make_partitioner(config).assign(graph), config, workdir / f"p{parts}", force=True)
    manifest = read_manifest(root)
    hashed = sum(meta["bytes"] for entry in manifest["parts"] for meta in entry["files"].values())
    hash_s = [_timed(lambda: check_files(root, manifest, verify=True)) for _ in range(ROUNDS)]
    size_s = [_timed(lambda: check_files(root, manifest, verify=False)) for _ in range(ROUNDS)]
    parallel_s = _parallel_hashes(root, manifest)
    walls = _launches(root)
    no_verify, verify = statistics.median(walls["no_verify"]), statistics.median(walls["verify"])
    return {"parts": parts, "bytes_hashed": hashed,
            "bytes_per_part": [sum(m["bytes"] for m in e["files"].values()) for e in manifest["parts"]],
            "hash_one_process_s": min(hash_s), "hash_one_process_mb_per_s": hashed / min(hash_s) / 1e6,
            "hash_rounds_s": hash_s, "size_check_s": min(size_s),
            "hash_parallel_s": statistics.median(parallel_s), "hash_parallel_rounds_s": parallel_s,
            "hash_parallel_mb_per_s": hashed / statistics.median(parallel_s) / 1e6,
            "value_check_s_per_part": _value_checks(root, manifest),
            "launch_no_verify_s": no_verify, "launch_verify_s": verify, "verify_extra_s": verify - no_verify,
            "launch_rounds_s": walls, "servers_in_parallel": parts,
            "load_average_after": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1000000:20000000", help="nodes:edges")
    parser.add_argument("--parts", default="2,4")
    parser.add_argument("--out", type=Path, default=Path("scripts/results/bench_verify.json"))
    args = parser.parse_args()
    from gnndist.runtime.cluster import init_ray

    nodes, edges = (int(v) for v in args.size.split(":"))
    # The sampler benchmark's graph: the SBM source symmetrises, so half as many pairs.
    spec = f"synthetic:sbm:nodes={nodes},edges={edges // 2},features=100,blocks=16,train=0.08,val=0.02,seed=0"
    graph = load_graph(SourceConfig(dataset=spec))
    print(f"{graph.num_nodes:,} nodes, {graph.num_edges:,} edges", flush=True)
    init_ray(num_cpus=THREADS)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for parts in (int(p) for p in args.parts.split(",")):
            results.append(_bench_parts(graph, parts, Path(tmp)))
            print(results[-1], flush=True)
    write_results(args.out, {
        "benchmark": "verify", "graph": {"spec": spec, "num_nodes": graph.num_nodes, "num_edges": graph.num_edges},
        "results": results,
        "note": "Files just written, so read from the page cache: a cold disk adds its read time. "
                "hash_one_process: format.check_files(verify=True) over every part in one thread (best of 3). "
                "hash_parallel: the same, one Ray task per part at once, reserving no CPU as the servers do "
                "(median of 3): what verification adds to a start-up. launch_*: wall time of launch_servers until "
                "every server has loaded its part (median of 3, rounds alternating), one server per part started "
                "at once on a 2-CPU Ray; actor start-up dominates it. Other jobs shared this 2-core machine during "
                "the run (load_average_after).",
    })


if __name__ == "__main__":
    main()
