"""Partition format, version 2: the only module that knows the on-disk layout.

A partition directory holds ``partition.json`` (the manifest) and one folder per part::

    partition.json
    part-00000/indptr.npy        int64 [n_inner + 1]  CSC offsets of the inner nodes' in-edges
    part-00000/indices.npy       int64 [E_p]          source of each in-edge (global ids)
    part-00000/features.npy      T [n_inner, F]       inner nodes' features (loads memory-mapped)
    part-00000/labels.npy        int64 [n_inner]      class id, -1 for none
    part-00000/split.npy         uint8 [n_inner]      0 none, 1 train, 2 val, 3 test
    part-00000/orig_ids.npy      int64 [n_inner]      each inner node's id in the source graph
    part-00000/halo_ids.npy      int64 [H]            halo nodes (global ids), sorted by (hop, id)
    part-00000/halo_owner.npy    int32 [H]            part that owns each halo node
    part-00000/halo_hop.npy      int8 [H]             hop distance 1..L from the inner nodes
    part-00000/halo_indptr.npy   int64 [H' + 1]       CSC in-edges of the halo nodes with hop < L
    part-00000/halo_indices.npy  int64 [E'_p]         (the first H' halo nodes), global ids

Features are stored as the manifest's ``graph.feature_encoding`` and ``graph.feature_dtype``
say (:class:`FeatureLayout`): ``dense``, the one file ``features.npy`` above, or ``csr``, three
files in its place (:class:`~gnndist.partition.features.SparseRows`)::

    part-00000/features_indptr.npy   int64 [n_inner + 1]  offsets of each inner node's entries
    part-00000/features_indices.npy  int32 [nnz]          column of each non-zero entry
    part-00000/features_data.npy     T [nnz]              its value

with ``T`` float32, float16, or uint16 holding bfloat16 bit patterns. Version 2 differs from
version 1 in these two keys only; a partition of dense float32 features is written as version 1,
which older gnndist releases read, and a version 1 manifest without the keys is dense float32.

Global ids are relabelled so that part ``p`` owns the contiguous range
``offsets[p]:offsets[p + 1]``; inner node ``i`` of part ``p`` has global id ``offsets[p] + i``.

Only safe formats: ``.npy`` loaded with ``allow_pickle=False`` and JSON. Writes go to a temporary
sibling directory, are fsynced, and are renamed into place; an existing directory is replaced
only with ``force=True`` and only if it is itself a partition directory.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gnndist.config import FEATURE_DTYPES
from gnndist.partition.features import CSR, DENSE, SparseRows, stored_dtype

FORMAT_NAME = "gnndist-partition"
#: The newest version, written when the features need it (:attr:`FeatureLayout.version`).
FORMAT_VERSION = 2
#: Versions this gnndist reads.
READ_VERSIONS = (1, 2)
MANIFEST = "partition.json"

#: name -> (dtype, number of dimensions) of every per-part array but the features
#: (:meth:`FeatureLayout.files`).
PART_FILES: dict[str, tuple[str, int]] = {
    "indptr": ("int64", 1),
    "indices": ("int64", 1),
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
_WRITE_BLOCK = 1 << 26
#: errno of a write that failed for lack of room: the disk or the user's quota is full, or the
#: file would pass the process's file size limit (``ulimit -f``).
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class PartitionFormatError(ValueError):
    """A partition directory is missing, malformed, tampered with or from an unknown version."""


@dataclass(frozen=True)
class FeatureLayout:
    """How the parts store their features: ``encoding`` (``dense`` or ``csr``) and the value
    type ``dtype`` (one of ``FEATURE_DTYPES``), recorded as ``graph.feature_encoding`` and
    ``graph.feature_dtype`` in the manifest."""

    encoding: str = DENSE
    dtype: str = "float32"

    @classmethod
    def of(cls, manifest: dict) -> FeatureLayout:
        """The layout a manifest records (version 1: dense float32 unless it says otherwise)."""
        graph = manifest["graph"]
        return cls(graph.get("feature_encoding", DENSE), graph.get("feature_dtype", "float32"))

    @property
    def version(self) -> int:
        """The oldest format version that holds this layout: 1 for dense float32, else 2."""
        return 1 if self == FeatureLayout() else 2

    def files(self) -> dict[str, tuple[str, int]]:
        """name -> (dtype, ndim) of every per-part array, features included."""
        stored = str(stored_dtype(self.dtype))
        features = ({"features_indptr": ("int64", 1), "features_indices": ("int32", 1), "features_data": (stored, 1)}
                    if self.encoding == CSR else {"features": (stored, 2)})
        return {"indptr": PART_FILES["indptr"], "indices": PART_FILES["indices"], **features,
                **{k: v for k, v in PART_FILES.items() if k not in ("indptr", "indices")}}


def _file_arrays(arrays: PartArrays) -> dict[str, np.ndarray]:
    """The array of each file of a part (sparse features: their three CSR files)."""
    files = {name: getattr(arrays, name) for name in PART_FILES}
    f = arrays.features
    if isinstance(f, SparseRows):
        files |= {"features_indptr": f.indptr, "features_indices": f.indices, "features_data": f.data}
    else:
        files["features"] = f
    return files


class PartitionWriteError(OSError):
    """A partition directory could not be written for lack of room (disk full, quota, file size
    limit); the message names the file and the bytes needed. Nothing partial is left behind:
    the temporary directory is removed and the destination is as it was. ``errno`` is the
    failed write's."""


@dataclass(frozen=True)
class PartArrays:
    """The arrays of one part; see the module docstring for dtype, shape and id space of each.
    ``features``: the inner nodes' rows, dense [n_inner, F] or :class:`SparseRows`."""

    indptr: np.ndarray
    indices: np.ndarray
    features: np.ndarray | SparseRows
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

    def __init__(self, out: str | Path, *, force: bool = False, num_parts: int | None = None,
                 features: FeatureLayout = FeatureLayout()) -> None:
        self.out = Path(out)
        self.force = force
        self.num_parts = num_parts  # only to estimate the whole partition's size when the disk fills up
        self.features = features
        self._tmp: Path | None = None
        self._parts: dict[int, dict] = {}
        self._written = 0  # bytes of the arrays of the parts written so far

    def __enter__(self) -> PartitionWriter:
        check_destination(self.out, self.force)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=self.out.parent))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._tmp is not None and self._tmp.exists():
            shutil.rmtree(self._tmp, ignore_errors=True)

    def write_part(self, part: int, arrays: PartArrays, stats: dict) -> None:
        """Write one part's arrays and remember their sizes and checksums for the manifest.

        Raises :class:`PartitionWriteError` (after removing the temporary directory) when the
        disk, the quota or the file size limit runs out."""
        layout, given = self.features.files(), _file_arrays(arrays)
        if set(given) != set(layout):
            raise TypeError(f"part {part}: features given as {sorted(set(given) - set(PART_FILES))}, the "
                            f"partition's layout {self.features} stores {sorted(set(layout) - set(PART_FILES))}")
        for name, (dtype, ndim) in layout.items():
            array = given[name]
            if str(array.dtype) != dtype or array.ndim != ndim:
                raise TypeError(f"part {part} {name}: expected {dtype} with {ndim} dims, "
                                f"got {array.dtype} with {array.ndim}")
        folder = self._tmp / part_dir_name(part)
        part_bytes = sum(int(array.nbytes) for array in given.values())
        files = {}
        path, needed = folder, 0
        try:
            folder.mkdir()
            for name, (dtype, _) in layout.items():
                array = given[name]
                path, needed = folder / f"{name}.npy", int(array.nbytes)
                _write_npy(path, array)
                files[f"{name}.npy"] = {"sha256": _sha256(path), "bytes": path.stat().st_size,
                                        "dtype": dtype, "shape": list(array.shape)}
        except OSError as e:
            self._refuse_if_no_room(e, path, needed, part_bytes)
            raise
        self._written += part_bytes
        self._parts[part] = {"id": part, "dir": part_dir_name(part), **stats, "files": files}

    def _refuse_if_no_room(self, error: OSError, path: Path, needed: int, part_bytes: int = 0) -> None:
        """Turn a write that ran out of room into a :class:`PartitionWriteError` naming the file
        (as it would be in the destination), the bytes it needed and, for a part's file
        (``part_bytes``: that part's arrays), an estimate for the whole partition, once the
        temporary directory is gone. Any other error is left to the caller."""
        if error.errno not in _NO_ROOM:
            return
        tmp, self._tmp = self._tmp, None
        shutil.rmtree(tmp, ignore_errors=True)
        name = self.out / path.relative_to(tmp)
        context = f"the parts' files hold {self._written:,}"
        if part_bytes:
            context = f"its part needs {part_bytes:,}"
            if self.num_parts:  # the parts written so far, and this one, as a sample of the rest
                total = (self._written + part_bytes) * self.num_parts // (len(self._parts) + 1)
                context += f", the whole partition of {self.num_parts} parts about {total:,}"
        kept = f"{self.out} was not created"
        if self.out.exists():
            kept = (f"{self.out} is as it was (it stays in place until the new partition is complete, so both "
                    "need room at once)")
        refusal = PartitionWriteError(
            f"{name}: {os.strerror(error.errno)} while writing it: it needs {needed:,} bytes ({context}). "
            f"Nothing partial was left: the temporary directory {tmp} was removed and {kept}. Free space on "
            f"{self.out.parent} (or raise the quota or `ulimit -f`), or choose another --out")
        refusal.errno = error.errno
        raise refusal from error

    def commit(self, fields: dict) -> Path:
        """Write the manifest and move the directory into place. Returns the final path.
        ``fields["graph"]`` gets the feature layout's keys; the version is the layout's."""
        graph = {**fields.get("graph", {}), "feature_encoding": self.features.encoding,
                 "feature_dtype": self.features.dtype}
        manifest = {"format": FORMAT_NAME, "version": self.features.version, **fields, "graph": graph,
                    "parts": [self._parts[p] for p in sorted(self._parts)]}
        missing = [k for k in _MANIFEST_KEYS if k not in manifest]
        if missing or len(self._parts) != manifest["num_parts"]:
            raise ValueError(f"incomplete partition: missing {missing}, "
                             f"{len(self._parts)} of {manifest['num_parts']} parts written")
        text = json.dumps(manifest, indent=2)
        try:
            with open(self._tmp / MANIFEST, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            self._refuse_if_no_room(e, self._tmp / MANIFEST, len(text))
            raise
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
    """Write ``array`` as ``np.save`` would (format 1.0 header, C order), fsynced.

    The data goes through Python's file object, not ``np.save``: numpy's ``tofile`` reports a
    short write as an OSError without errno, so a full disk could not be told from other
    failures."""
    array = np.ascontiguousarray(array)
    data = array.reshape(-1).view(np.uint8)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(array))
        for start in range(0, data.size, _WRITE_BLOCK):
            f.write(data[start:start + _WRITE_BLOCK])
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
    if version not in READ_VERSIONS:
        raise PartitionFormatError(f"{path}: partition format version {version!r}, this gnndist reads versions "
                                   f"{READ_VERSIONS}; re-partition or use a matching gnndist release")
    missing = [k for k in _MANIFEST_KEYS if k not in manifest]
    if missing:
        raise PartitionFormatError(f"{path}: missing keys {missing}")
    layout = FeatureLayout.of(manifest)
    if layout.encoding not in (DENSE, CSR) or layout.dtype not in FEATURE_DTYPES or layout.version > version:
        raise PartitionFormatError(f"{path}: features stored as {layout.encoding!r} {layout.dtype!r}, which format "
                                   f"version {version} does not hold (version 2 holds {DENSE} or {CSR}, "
                                   f"{'/'.join(FEATURE_DTYPES)})")
    k = manifest["num_parts"]
    offsets = manifest["offsets"]
    if len(manifest["parts"]) != k or len(offsets) != k + 1 or offsets[0] != 0 or \
            any(b < a for a, b in zip(offsets, offsets[1:], strict=False)):
        raise PartitionFormatError(f"{path}: inconsistent part list or id offsets")
    for p, part in enumerate(manifest["parts"]):
        if part.get("id") != p or part.get("dir") != part_dir_name(p) or \
                set(part.get("files", {})) != {f"{n}.npy" for n in layout.files()}:
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


def partition_sha(root: str | Path) -> str:
    """The identity of the partition at ``root`` (what a checkpoint records of the partition it
    was trained on): its manifest's sha256."""
    return hashlib.sha256((Path(root) / MANIFEST).read_bytes()).hexdigest()


def load_part(root: str | Path, part: int, *, manifest: dict | None = None, verify: bool = False) -> PartArrays:
    """Load one part's arrays, memory-mapped read-only: the processes of a node that load a part
    (its server, the workers that read it) share one copy of it, in the page cache.

    Always checks the schema and file sizes; ``verify=True`` also checks every sha256.
    """
    root = Path(root)
    manifest = manifest or read_manifest(root)
    if not 0 <= part < manifest["num_parts"]:
        raise PartitionFormatError(f"{root}: no part {part}; it has parts 0..{manifest['num_parts'] - 1}")
    check_files(root, manifest, verify=verify, parts=[part])
    entry = manifest["parts"][part]
    arrays = {}
    for name in FeatureLayout.of(manifest).files():
        meta = entry["files"][f"{name}.npy"]
        path = root / entry["dir"] / f"{name}.npy"
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise PartitionFormatError(f"{path}: not a plain .npy array ({e})") from None
        if str(array.dtype) != meta["dtype"] or list(array.shape) != meta["shape"]:
            raise PartitionFormatError(f"{path}: holds {array.dtype} {list(array.shape)}, manifest says "
                                       f"{meta['dtype']} {meta['shape']}")
        arrays[name] = array
    if "features" not in arrays:
        arrays["features"] = SparseRows(arrays.pop("features_indptr"), arrays.pop("features_indices"),
                                        arrays.pop("features_data"), manifest["graph"]["feature_dim"])
    loaded = PartArrays(**arrays)
    check_values(loaded, part, manifest, root / entry["dir"])
    return loaded


def check_values(arrays: PartArrays, part: int, manifest: dict, folder: Path) -> None:
    """Refuse rows that do not fit the graph: ids outside its nodes, owners outside its parts,
    labels outside its classes, row counts or offsets that are not a CSC's. A checksum cannot
    vouch for them (a file and the manifest may be rewritten together), and past this point they
    would index arrays unchecked in compiled kernels or fail deep inside a worker. Vectorised: a
    pass over each array. Raises :class:`PartitionFormatError` naming the part, the file, the
    first bad row and its value."""
    n, k, hops = manifest["offsets"][-1], manifest["num_parts"], manifest["halo_hops"]
    classes = manifest["graph"]["num_classes"]
    inner = manifest["offsets"][part + 1] - manifest["offsets"][part]
    halo = arrays.halo_ids.shape[0]

    def refuse(name: str, problem: str) -> None:
        raise PartitionFormatError(f"part {part}: {folder / name}.npy: {problem}; the file is damaged or was "
                                   "edited after partitioning: re-create the partition with `gnndist partition`")

    sparse = isinstance(arrays.features, SparseRows)
    rows = {"indptr": (arrays.num_inner, inner, "nodes"),
            "features_indptr" if sparse else "features": (arrays.features.shape[0], inner, "nodes"),
            **{name: (getattr(arrays, name).shape[0], inner, "nodes") for name in ("labels", "split", "orig_ids")},
            "halo_owner": (arrays.halo_owner.shape[0], halo, "halo nodes"),
            "halo_hop": (arrays.halo_hop.shape[0], halo, "halo nodes")}
    for name, (count, expected, what) in rows.items():
        if count != expected:
            refuse(name, f"{count} rows where part {part} has {expected} {what}")
    ids = f"the graph's {n} global node ids"
    bounds = {"indices": (0, n, ids), "halo_ids": (0, n, ids), "halo_indices": (0, n, ids),
              "halo_owner": (0, k, f"the {k} part ids"), "halo_hop": (1, hops + 1, f"hops of a {hops}-hop halo"),
              "labels": (-1, classes, f"the graph's {classes} class ids, or -1 for unlabelled"),
              "split": (0, SPLIT_TEST + 1, "split codes")}
    width = manifest["graph"]["feature_dim"]
    files = _file_arrays(arrays)
    if sparse:
        bounds["features_indices"] = (0, width, f"the {width} feature columns")
        if files["features_data"].shape[0] != files["features_indices"].shape[0]:
            refuse("features_data", f"{files['features_data'].shape[0]} values for "
                                    f"{files['features_indices'].shape[0]} entries in features_indices.npy")
    elif arrays.features.shape[1] != width:
        refuse("features", f"{arrays.features.shape[1]} columns where the graph has {width} features")
    for name, (low, high, what) in bounds.items():
        values = files[name]
        row = _first_outside(values, low, high)
        if row is not None:
            refuse(name, f"row {row} holds {values[row]}, outside {low}..{high - 1} ({what})")
    stored = int(np.count_nonzero(arrays.halo_hop < hops))  # halo nodes whose in-edges the part keeps
    if arrays.halo_indptr.shape[0] - 1 != stored:
        refuse("halo_indptr", f"{arrays.halo_indptr.shape[0] - 1} rows where part {part} has {stored} halo nodes "
                              f"with hop < {hops}")
    csr = (("features_indptr", "features_indices"),) if sparse else ()
    for offsets, targets in (("indptr", "indices"), ("halo_indptr", "halo_indices"), *csr):
        problem = _csc_offsets_problem(files[offsets], files[targets].shape[0], targets)
        if problem:
            refuse(offsets, problem)


def _first_outside(values: np.ndarray, low: int, high: int) -> int | None:
    """Index of the first entry of the 1-D integer ``values`` outside ``low..high-1``, or None."""
    if values.size == 0 or (low <= int(values.min()) and int(values.max()) < high):
        return None
    wide = np.asarray(values, dtype=np.int64)  # Python bounds may not fit a narrow dtype
    return int(np.flatnonzero((wide < low) | (wide >= high))[0])


def _csc_offsets_problem(indptr: np.ndarray, num_targets: int, targets: str) -> str | None:
    """What makes int64 ``indptr`` not CSC offsets into ``num_targets`` entries of ``targets``."""
    if indptr.size == 0:
        return "empty; CSC offsets have one row more than nodes, starting at 0"
    if indptr[0] != 0:
        return f"row 0 holds {indptr[0]}; CSC offsets start at 0"
    drops = np.flatnonzero(indptr[1:] < indptr[:-1])
    if drops.size:
        row = int(drops[0]) + 1
        return f"row {row} holds {indptr[row]}, less than row {row - 1}'s {indptr[row - 1]}; CSC offsets never decrease"
    if indptr[-1] != num_targets:
        return f"the last row ({indptr.size - 1}) holds {indptr[-1]}, but {targets}.npy has {num_targets} entries"
    return None
