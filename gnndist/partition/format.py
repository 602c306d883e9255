"""Partition format, version 1: the only module that knows the on-disk layout.

A partition directory holds ``partition.json`` (the manifest) and one folder per part::

    partition.json
    part-00000/indptr.npy        int64 [n_inner + 1]  CSC offsets of the inner nodes' in-edges
    part-00000/indices.npy       int64 [E_p]          source of each in-edge (global ids)
    part-00000/features.npy      float32 [n_inner, F] inner nodes' features (loads memory-mapped)
    part-00000/labels.npy        int64 [n_inner]      class id, -1 for none
    part-00000/split.npy         uint8 [n_inner]      0 none, 1 train, 2 val, 3 test
    part-00000/orig_ids.npy      int64 [n_inner]      each inner node's id in the source graph
    part-00000/halo_ids.npy      int64 [H]            halo nodes (global ids), sorted by (hop, id)
    part-00000/halo_owner.npy    int32 [H]            part that owns each halo node
    part-00000/halo_hop.npy      int8 [H]             hop distance 1..L from the inner nodes
    part-00000/halo_indptr.npy   int64 [H' + 1]       CSC in-edges of the halo nodes with hop < L
    part-00000/halo_indices.npy  int64 [E'_p]         (the first H' halo nodes), global ids

Global ids are relabelled so that part ``p`` owns the contiguous range
``offsets[p]:offsets[p + 1]``; inner node ``i`` of part ``p`` has global id ``offsets[p] + i``.

Only safe formats: ``.npy`` loaded with ``allow_pickle=False`` and JSON. Writes go to a temporary
sibling directory, are fsynced, and are renamed into place; an existing directory is replaced
only with ``force=True`` and only if it is itself a partition directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT_NAME = "gnndist-partition"
FORMAT_VERSION = 1
MANIFEST = "partition.json"

#: name -> (dtype, number of dimensions) of every per-part array.
PART_FILES: dict[str, tuple[str, int]] = {
    "indptr": ("int64", 1),
    "indices": ("int64", 1),
    "features": ("float32", 2),
    "labels": ("int64", 1),
    "split": ("uint8", 1),
    "orig_ids": ("int64", 1),
    "halo_ids": ("int64", 1),
    "halo_owner": ("int32", 1),
    "halo_hop": ("int8", 1),
    "halo_indptr": ("int64", 1),
    "halo_indices": ("int64", 1),
}

#: Values of ``split.npy``.
SPLIT_NONE, SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST = 0, 1, 2, 3

_MANIFEST_KEYS = ("format", "version", "graph", "method", "num_parts", "halo_hops", "offsets", "parts")
_HASH_BLOCK = 1 << 22


class PartitionFormatError(ValueError):
    """A partition directory is missing, malformed, tampered with or from an unknown version."""


@dataclass(frozen=True)
class PartArrays:
    """The arrays of one part; see the module docstring for dtype, shape and id space of each."""

    indptr: np.ndarray
    indices: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    orig_ids: np.ndarray
    halo_ids: np.ndarray
    halo_owner: np.ndarray
    halo_hop: np.ndarray
    halo_indptr: np.ndarray
    halo_indices: np.ndarray

    @property
    def num_inner(self) -> int:
        return self.indptr.shape[0] - 1

    @property
    def num_edges(self) -> int:
        return self.indices.shape[0]


def encode_split(train_mask: np.ndarray, val_mask: np.ndarray, test_mask: np.ndarray) -> np.ndarray:
    """uint8 [n] split codes (``SPLIT_*``) from three disjoint bool [n] masks."""
    split = np.zeros(train_mask.shape[0], dtype=np.uint8)
    for value, mask in ((SPLIT_TRAIN, train_mask), (SPLIT_VAL, val_mask), (SPLIT_TEST, test_mask)):
        split[mask] = value
    return split


def part_stats(arrays: PartArrays, lo: int, hi: int) -> dict:
    """Counts the manifest records for the part owning global ids ``lo..hi-1``."""
    cut = (arrays.indices < lo) | (arrays.indices >= hi)
    return {
        "num_inner": arrays.num_inner,
        "num_edges": arrays.num_edges,
        "num_cut_edges": int(cut.sum()),
        "num_halo": int(arrays.halo_ids.size),
        "num_train": int((arrays.split == SPLIT_TRAIN).sum()),
        "num_val": int((arrays.split == SPLIT_VAL).sum()),
        "num_test": int((arrays.split == SPLIT_TEST).sum()),
    }


def part_dir_name(part: int) -> str:
    return f"part-{part:05d}"


# ---------------------------------------------------------------------------------------- writing


class PartitionWriter:
    """Writes a partition directory atomically: parts one at a time, the manifest last.

    Use as a context manager; on an exception the temporary directory is removed and the
    destination is left as it was::

        with PartitionWriter(out, force=False) as w:
            for p, arrays in enumerate(parts):
                w.write_part(p, arrays, stats)
            w.commit(manifest_fields)
    """

    def __init__(self, out: str | Path, *, force: bool = False) -> None:
        self.out = Path(out)
        self.force = force
        self._tmp: Path | None = None
        self._parts: dict[int, dict] = {}

    def __enter__(self) -> PartitionWriter:
        check_destination(self.out, self.force)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=self.out.parent))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._tmp is not None and self._tmp.exists():
            shutil.rmtree(self._tmp, ignore_errors=True)

    def write_part(self, part: int, arrays: PartArrays, stats: dict) -> None:
        """Write one part's arrays and remember their sizes and checksums for the manifest."""
        folder = self._tmp / part_dir_name(part)
        folder.mkdir()
        files = {}
        for name, (dtype, ndim) in PART_FILES.items():
            array = getattr(arrays, name)
            if str(array.dtype) != dtype or array.ndim != ndim:
                raise TypeError(f"part {part} {name}: expected {dtype} with {ndim} dims, "
                                f"got {array.dtype} with {array.ndim}")
            path = folder / f"{name}.npy"
            _write_npy(path, array)
            files[f"{name}.npy"] = {"sha256": _sha256(path), "bytes": path.stat().st_size,
                                    "dtype": dtype, "shape": list(array.shape)}
        self._parts[part] = {"id": part, "dir": part_dir_name(part), **stats, "files": files}

    def commit(self, fields: dict) -> Path:
        """Write the manifest and move the directory into place. Returns the final path."""
        manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **fields,
                    "parts": [self._parts[p] for p in sorted(self._parts)]}
        missing = [k for k in _MANIFEST_KEYS if k not in manifest]
        if missing or len(self._parts) != manifest["num_parts"]:
            raise ValueError(f"incomplete partition: missing {missing}, "
                             f"{len(self._parts)} of {manifest['num_parts']} parts written")
        with open(self._tmp / MANIFEST, "w") as f:
            json.dump(manifest, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(self._tmp)
        _swap_into_place(self._tmp, self.out)
        self._tmp = None
        return self.out


def check_destination(out: Path, force: bool) -> None:
    """Refuse (``FileExistsError``) a partition directory ``out`` that writing would refuse: one
    that exists, unless ``force``, and then only if it is a partition directory. Cheap, so a
    caller runs it before loading and partitioning a graph, not only when writing."""
    if not out.exists():
        return
    if not force:
        raise FileExistsError(f"{out} already exists: choose another --out, or pass --force to replace it")
    if not (out / MANIFEST).is_file():
        raise FileExistsError(f"{out} exists and is not a gnndist partition directory: refusing to replace "
                              "it even with --force; choose another --out")


def _swap_into_place(tmp: Path, out: Path) -> None:
    # The old directory is only deleted after the new one is in place, so a crash in between
    # leaves either the old or the new partition complete on disk.
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / out.name)
    os.rename(tmp, out)
    _fsync_dir(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------- reading


def read_manifest(root: str | Path) -> dict:
    """Load and schema-check ``partition.json``; raises :class:`PartitionFormatError`."""
    root = Path(root)
    path = root / MANIFEST
    if not root.is_dir():
        raise PartitionFormatError(f"{root}: no such partition directory (create one with `gnndist partition`)")
    if not path.is_file():
        raise PartitionFormatError(f"{path}: missing; {root} is not a gnndist partition directory")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PartitionFormatError(f"{path}: not valid JSON ({e}); the file is damaged, "
                                   "re-run `gnndist partition`") from None
    _check_schema(manifest, path)
    return manifest


def _check_schema(manifest: dict, path: Path) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise PartitionFormatError(f"{path}: not a gnndist partition manifest")
    version = manifest.get("version")
    if version != FORMAT_VERSION:
        raise PartitionFormatError(f"{path}: partition format version {version!r}, this gnndist reads version "
                                   f"{FORMAT_VERSION}; re-partition or use a matching gnndist release")
    missing = [k for k in _MANIFEST_KEYS if k not in manifest]
    if missing:
        raise PartitionFormatError(f"{path}: missing keys {missing}")
    k = manifest["num_parts"]
    offsets = manifest["offsets"]
    if len(manifest["parts"]) != k or len(offsets) != k + 1 or offsets[0] != 0 or \
            any(b < a for a, b in zip(offsets, offsets[1:], strict=False)):
        raise PartitionFormatError(f"{path}: inconsistent part list or id offsets")
    for p, part in enumerate(manifest["parts"]):
        if part.get("id") != p or part.get("dir") != part_dir_name(p) or \
                set(part.get("files", {})) != {f"{n}.npy" for n in PART_FILES}:
            raise PartitionFormatError(f"{path}: entry of part {p} is malformed")


def check_files(root: str | Path, manifest: dict, *, verify: bool = False,
                parts: Iterable[int] | None = None) -> None:
    """Check every file of the given parts exists with the recorded size; with ``verify`` also
    its sha256. Raises :class:`PartitionFormatError` naming the first bad file."""
    root = Path(root)
    for p in range(manifest["num_parts"]) if parts is None else parts:
        entry = manifest["parts"][p]
        for name, meta in entry["files"].items():
            path = root / entry["dir"] / name
            if not path.is_file():
                raise PartitionFormatError(f"{path}: missing; the partition is incomplete, re-run `gnndist partition`")
            size = path.stat().st_size
            if size != meta["bytes"]:
                raise PartitionFormatError(f"{path}: {size} bytes, manifest says {meta['bytes']} "
                                           "(truncated or replaced); re-run `gnndist partition`")
            if verify and _sha256(path) != meta["sha256"]:
                raise PartitionFormatError(f"{path}: checksum mismatch (the file was modified after "
                                           "partitioning); re-run `gnndist partition`")


def load_part(root: str | Path, part: int, *, manifest: dict | None = None, verify: bool = False,
              mmap_all: bool = False) -> PartArrays:
    """Load one part's arrays: the features memory-mapped read-only, the rest read into memory
    (or, with ``mmap_all``, memory-mapped too).

    Always checks the schema and file sizes; ``verify=True`` also checks every sha256.
    """
    root = Path(root)
    manifest = manifest or read_manifest(root)
    if not 0 <= part < manifest["num_parts"]:
        raise PartitionFormatError(f"{root}: no part {part}; it has parts 0..{manifest['num_parts'] - 1}")
    check_files(root, manifest, verify=verify, parts=[part])
    entry = manifest["parts"][part]
    arrays = {}
    for name in PART_FILES:
        meta = entry["files"][f"{name}.npy"]
        path = root / entry["dir"] / f"{name}.npy"
        mode = "r" if (name == "features" or mmap_all) else None
        try:
            array = np.load(path, mmap_mode=mode, allow_pickle=False)
        except ValueError as e:
            raise PartitionFormatError(f"{path}: not a plain .npy array ({e})") from None
        if str(array.dtype) != meta["dtype"] or list(array.shape) != meta["shape"]:
            raise PartitionFormatError(f"{path}: holds {array.dtype} {list(array.shape)}, manifest says "
                                       f"{meta['dtype']} {meta['shape']}")
        arrays[name] = array
    return PartArrays(**arrays)
