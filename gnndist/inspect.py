"""Partition statistics, integrity check and plots (``gnndist inspect``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gnndist.graph import DEGREE_FEATURES, GIVEN_FEATURES, Graph
from gnndist.partition.book import PartitionBook
from gnndist.partition.csc import gather_rows, merge_segments
from gnndist.partition.features import part_features, same_rows
from gnndist.partition.format import (
    FeatureLayout,
    PartArrays,
    PartitionFormatError,
    check_files,
    encode_split,
    load_part,
    part_stats,
    read_manifest,
)
from gnndist.sources.splits import describe_split

_STAT_KEYS = ("num_inner", "num_edges", "num_cut_edges", "num_halo", "num_train", "num_val", "num_test")


def report(root: str | Path) -> dict:
    """Statistics of a partition directory as plain JSON-ready data.

    ``parts``: per part inner nodes, in-edges, cut in-edges, halo nodes, split sizes, halo ratio
    and the part's share of all cut edges. ``totals``: edge-cut fraction, replication factor
    (inner + halo) / inner, and balance (max / mean) of nodes, edges and training nodes.
    ``halo_matrix[p][q]``: halo nodes of part p owned by part q (what p fetches from q).
    """
    root = Path(root)
    manifest = read_manifest(root)
    k = manifest["num_parts"]
    parts = [{k_: part[k_] for k_ in _STAT_KEYS} for part in manifest["parts"]]
    total_cut = sum(p["num_cut_edges"] for p in parts)
    for p in parts:
        p["halo_ratio"] = p["num_halo"] / max(p["num_inner"], 1)
        p["cut_share"] = p["num_cut_edges"] / total_cut if total_cut else 0.0
    matrix = np.zeros((k, k), dtype=np.int64)
    for p in range(k):
        owners = load_part(root, p, manifest=manifest).halo_owner
        matrix[p] = np.bincount(owners, minlength=k)
    graph = manifest["graph"]
    return {
        "path": str(root),
        "graph": {**{key: graph[key] for key in ("name", "num_nodes", "num_edges", "feature_dim", "num_classes")},
                  # partitions written before featureless graphs were accepted always hold given ones
                  "features": graph.get("features", GIVEN_FEATURES),
                  "feature_encoding": FeatureLayout.of(manifest).encoding,
                  "feature_dtype": FeatureLayout.of(manifest).dtype,
                  "class_names": graph.get("class_names")},  # None: the source named no classes
        "method": manifest["method"]["name"],
        "split": manifest.get("split"),  # None: written before the split was recorded
        "num_parts": k,
        "halo_hops": manifest["halo_hops"],
        "parts": parts,
        "totals": {
            "edge_cut_fraction": total_cut / max(graph["num_edges"], 1),
            "cut_edges": total_cut,
            "replication_factor": (graph["num_nodes"] + sum(p["num_halo"] for p in parts)) / graph["num_nodes"],
            "balance_nodes": _balance([p["num_inner"] for p in parts]),
            "balance_edges": _balance([p["num_edges"] for p in parts]),
            "balance_train": _balance([p["num_train"] for p in parts]),
        },
        "halo_matrix": matrix.tolist(),
    }


def _balance(values: list[int]) -> float:
    mean = sum(values) / len(values)
    return max(values) / mean if mean else 1.0


# ------------------------------------------------------------------------------------ integrity


def check(root: str | Path, *, verify: bool = True, source: Graph | None = None) -> list[str]:
    """Every violation found in a partition directory, as messages (empty list: all good).

    Checks checksums (with ``verify``), per-part CSC well-formedness, value ranges (those two as
    every load does: ``format.check_values``) and recorded counts, that the id maps form a
    bijection onto the source ids, that every halo is exactly the set of out-of-part
    in-neighbours up to L hops with the right owners, and that halo in-edges equal their
    owners' copies. With ``source`` it also checks that every source edge is in exactly one
    part's CSC and that features, labels and splits equal the source's bit for bit.
    """
    root = Path(root)
    try:
        manifest = read_manifest(root)
        check_files(root, manifest, verify=verify)
        parts = [load_part(root, p, manifest=manifest) for p in range(manifest["num_parts"])]
    except PartitionFormatError as e:
        return [str(e)]
    book = PartitionBook(manifest["offsets"])
    problems = []
    for p, arrays in enumerate(parts):
        problems += [f"part {p}: {m}" for m in _check_part(arrays, book, p, manifest)]
    if problems:  # later checks assume well-formed parts
        return problems
    problems += _check_id_map(parts, manifest)
    problems += _check_halos(parts, book, manifest["halo_hops"])
    if source is not None and not problems:
        problems += _check_against_source(parts, source, FeatureLayout.of(manifest))
    return problems


def _check_part(a: PartArrays, book: PartitionBook, p: int, manifest: dict) -> list[str]:
    # Row counts, CSC offsets and the range of every id, owner, hop, label and split code were
    # checked by load_part (format.check_values), which refuses a part with the first bad row.
    lo, hi = book.part_range(p)
    problems = []
    if not _sorted_unique_segments(a.indptr, a.indices):
        problems.append("in-edges of some node are unsorted or duplicated")
    recorded = {k: manifest["parts"][p][k] for k in _STAT_KEYS}
    actual = part_stats(a, lo, hi)
    for key in _STAT_KEYS:
        if recorded[key] != actual[key]:
            problems.append(f"{key} is {actual[key]} but the manifest records {recorded[key]}")
    return problems


def _sorted_unique_segments(indptr: np.ndarray, indices: np.ndarray) -> bool:
    if indices.size < 2:
        return True
    increasing = np.diff(indices) > 0
    # A decrease is allowed only where a new node's segment starts.
    boundary = np.zeros(indices.size - 1, dtype=bool)
    starts = indptr[1:-1]
    boundary[starts[(starts > 0) & (starts < indices.size)] - 1] = True
    return bool(np.all(increasing | boundary))


def _check_id_map(parts: list[PartArrays], manifest: dict) -> list[str]:
    orig = np.concatenate([a.orig_ids for a in parts])
    n = manifest["graph"]["num_nodes"]
    if orig.size != n or not np.array_equal(np.sort(orig), np.arange(n)):
        return ["the map back to source ids is not a bijection onto 0..N-1"]
    if sum(a.num_edges for a in parts) != manifest["graph"]["num_edges"]:
        return ["the parts' in-edges do not add up to the graph's edge count"]
    return []


def _check_halos(parts: list[PartArrays], book: PartitionBook, hops: int) -> list[str]:
    problems = []
    for p, a in enumerate(parts):
        lo, hi = book.part_range(p)
        known = np.empty(0, dtype=np.int64)
        sources = a.indices
        for hop in range(1, hops + 1):
            expected = np.setdiff1d(np.unique(sources[(sources < lo) | (sources >= hi)]), known)
            got = a.halo_ids[a.halo_hop == hop]
            if not np.array_equal(expected, got):
                problems.append(f"part {p}: hop-{hop} halo differs from the out-of-part in-neighbours "
                                f"({got.size} recorded, {expected.size} expected)")
                break
            known = np.union1d(known, got)
            if hop < hops:
                sources = _owner_sources(parts, book, got)
        if not np.array_equal(a.halo_owner, book.owner(a.halo_ids)):
            problems.append(f"part {p}: a halo node's recorded owner is wrong")
        n_csc = int((a.halo_hop < hops).sum())
        if not problems and not np.array_equal(a.halo_indices, _owner_sources(parts, book, a.halo_ids[:n_csc])):
            problems.append(f"part {p}: halo in-edges differ from their owners' in-edges")
    return problems


def _owner_sources(parts: list[PartArrays], book: PartitionBook, ids: np.ndarray) -> np.ndarray:
    """In-neighbours of ``ids`` (int64, global) read from their owners' CSC, concatenated in order."""
    owners = book.owner(ids)
    groups = []
    for q in np.unique(owners).tolist():
        rows = np.flatnonzero(owners == q)
        indptr, values = gather_rows(parts[q].indptr, parts[q].indices, book.to_local(ids[rows], q))
        groups.append((rows, np.diff(indptr), values))
    return merge_segments(ids.size, groups)[1]


def _check_against_source(parts: list[PartArrays], source: Graph, layout: FeatureLayout) -> list[str]:
    new_to_old = np.concatenate([a.orig_ids for a in parts])
    if new_to_old.size != source.num_nodes:
        return [f"the partition has {new_to_old.size} nodes, the source graph {source.num_nodes}"]
    problems = []
    n = np.int64(source.num_nodes)
    keys = []
    for a in parts:
        dst = np.repeat(a.orig_ids, np.diff(a.indptr))
        keys.append(dst * n + new_to_old[a.indices])
    got = np.sort(np.concatenate(keys))
    src_ei = source.edge_index().numpy()
    expected = np.sort(src_ei[1] * n + src_ei[0])
    if not np.array_equal(got, expected):
        problems.append("the parts' edges differ from the source graph's (each source edge must be in "
                        "exactly one part's CSC)")
    # Each part's rows as the writer stores them (encoding, rounding), compared bit for bit: one
    # part's rows are dense at a time at most, never the whole of sparse features.
    features = source.input_features()[0]
    if not all(same_rows(a.features, part_features(features, a.orig_ids, layout.encoding, layout.dtype))
               for a in parts):
        problems.append("features differ from the source graph's")
    if not np.array_equal(np.concatenate([a.labels for a in parts]), source.y.numpy()[new_to_old]):
        problems.append("labels differ from the source graph's")
    expected_split = encode_split(source.train_mask.numpy(), source.val_mask.numpy(), source.test_mask.numpy())
    if not np.array_equal(np.concatenate([a.split for a in parts]), expected_split[new_to_old]):
        problems.append("split masks differ from the source graph's")
    return problems


# ------------------------------------------------------------------------------------ rendering


def render(rep: dict, console) -> None:
    """Print ``report(...)`` as rich tables on ``console``."""
    from rich import box
    from rich.table import Table

    g = rep["graph"]
    features = f"{g['feature_dim']} features" + (
        " (the graph has none: a constant and log(1 + in-degree))" if g["features"] == DEGREE_FEATURES else "")
    features += f" stored {g['feature_encoding']} {g['feature_dtype']}"
    console.print(f"[bold]{rep['path']}[/]: {g['name']}, {g['num_nodes']:,} nodes, {g['num_edges']:,} edges, "
                  f"{features}, {rep['num_parts']} parts by {rep['method']}, {rep['halo_hops']}-hop halo")
    console.print(f"split: {describe_split(rep['split'])}", soft_wrap=True)
    if g["class_names"]:
        console.print(f"classes: {', '.join(f'{i} {name}' for i, name in enumerate(g['class_names']))}",
                      soft_wrap=True, markup=False)
    table = Table(title="parts", box=box.SIMPLE_HEAD)
    for col in ("part", "nodes", "in-edges", "train", "val", "test", "halo", "halo/nodes", "cut in-edges",
                "cut share"):
        table.add_column(col, justify="right")
    for i, p in enumerate(rep["parts"]):
        table.add_row(str(i), f"{p['num_inner']:,}", f"{p['num_edges']:,}", f"{p['num_train']:,}",
                      f"{p['num_val']:,}", f"{p['num_test']:,}", f"{p['num_halo']:,}", f"{p['halo_ratio']:.3f}",
                      f"{p['num_cut_edges']:,}", f"{p['cut_share']:.1%}")
    console.print(table)
    t = rep["totals"]
    console.print(f"edge cut {t['edge_cut_fraction']:.2%} ({t['cut_edges']:,} edges), "
                  f"replication factor {t['replication_factor']:.3f}, balance (max/mean) nodes "
                  f"{t['balance_nodes']:.3f}, edges {t['balance_edges']:.3f}, train {t['balance_train']:.3f}")
    console.print("halo nodes that each part (row) fetches from each owner (column):")
    matrix = Table(box=box.SIMPLE_HEAD)
    matrix.add_column("")
    for q in range(rep["num_parts"]):
        matrix.add_column(str(q), justify="right")
    for p, row in enumerate(rep["halo_matrix"]):
        matrix.add_row(str(p), *(f"{v:,}" for v in row))
    console.print(matrix)


def plot(rep: dict, path: str | Path) -> Path:
    """Draw part sizes and the communication matrix to a PNG; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = rep["num_parts"]
    parts = rep["parts"]
    x = np.arange(k)
    fig, (ax_nodes, ax_edges, ax_comm) = plt.subplots(1, 3, figsize=(15, 4.5))
    inner = [p["num_inner"] for p in parts]
    ax_nodes.bar(x, inner, label="inner")
    ax_nodes.bar(x, [p["num_halo"] for p in parts], bottom=inner, label="halo", alpha=0.6)
    ax_nodes.set(title="nodes per part", xlabel="part", ylabel="nodes", xticks=x)
    ax_nodes.legend()
    local = [p["num_edges"] - p["num_cut_edges"] for p in parts]
    ax_edges.bar(x, local, label="from own part")
    ax_edges.bar(x, [p["num_cut_edges"] for p in parts], bottom=local, label="from other parts", alpha=0.6)
    ax_edges.set(title=f"in-edges per part (cut {rep['totals']['edge_cut_fraction']:.1%})", xlabel="part",
                 ylabel="in-edges", xticks=x)
    ax_edges.legend()
    matrix = np.asarray(rep["halo_matrix"])
    im = ax_comm.imshow(matrix, cmap="viridis")
    ax_comm.set(title="halo nodes fetched: row from column", xlabel="owner part", ylabel="part", xticks=x, yticks=x)
    if k <= 16:
        for (i, j), v in np.ndenumerate(matrix):
            ax_comm.text(j, i, f"{v:,}", ha="center", va="center", color="w" if v < matrix.max() / 2 else "k",
                         fontsize=8)
    fig.colorbar(im, ax=ax_comm)
    fig.suptitle(f"{rep['graph']['name']}: {k} parts by {rep['method']}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
