"""The run directory (``train --out``): one run's files, held by one process for the run's life.

What a run writes there, and nothing else::

    run.lock              the lock: pid, host and start time of the process holding the directory
    run.json              what the run is: {"format": "gnndist-run", "run_id", partitions, configs,
                          model}; written only once the run is known to be valid
    metrics.jsonl         one line per epoch
    checkpoints/          see :mod:`gnndist.train.checkpoint`
    placement.json        which rank trained which parts where
    halo/                 each part's cache candidates, computed once (see gnndist.runtime.halo)
    tensorboard/, ray/    TensorBoard events, Ray Train's own storage
    parts/                the partition ``gnndist train`` wrote when not given ``--partitions``

**Its own files.** A directory is a run's when its ``run.json`` carries ``"format": "gnndist-run"``
(or has exactly the four keys run.json had before that marker). Then the names above are the run's,
and any other entry (a plot, notes) is the user's, left as it is by every run, ``overwrite``
included. Without such a run.json the directory is not a run's: every entry in it but ``parts/`` (a
partition given with ``--partitions``) and the lock is foreign, a user's own ``metrics.jsonl`` or
``run.json`` included, and refuses every run, ``overwrite`` included, naming it: gnndist never
overwrites or deletes what it did not write. ``parts/`` is rewritten only when run.json says a run
wrote it (``"parts_by_run"``).

**Fresh, resume, overwrite.** A fresh run refuses a directory holding an earlier run's results
(checkpoints, metrics, parameters) unless ``overwrite``, which deletes the run's files (never
``parts/``) so that a later resume cannot pick up the old weights. ``resume`` first checks, reading
only, that the latest complete checkpoint matches the partition (manifest sha256), the model (name,
hidden, layers, classes, features) and every parameter's name and shape, built once here from the
factory; with no checkpoint it says so and starts fresh.

**The lock** is ``flock`` on ``run.lock``: the kernel drops it when the holder dies, however it
dies, so a lock file left behind is known to be stale, taken over with a notice. The file names the
holder for the refusal. It is unlinked (while still held) on release; a process that opened the old
file retries on the new one. On NFS (v3 with lockd, v4) ``flock`` is emulated by byte-range locks
the server sees, so it holds across hosts; a client that dies loses its locks when its lease ends
(about 90 s on NFSv4), and a run started before then is refused. A mount with ``nolock`` keeps locks
local to each host: two hosts could then both run, so use such storage from one host only. Where
the filesystem refuses ``flock`` (e.g. Lustre without ``-o flock``) the lock file alone decides: a
holder on this host that is no longer running is stale; one on another host cannot be checked, and
the refusal says to delete the file if that process is gone.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from gnndist.partition.format import partition_sha
from gnndist.runtime.halo import HALO_DIR
from gnndist.train import checkpoint
from gnndist.train.checkpoint import CheckpointError

RUN_FILE = "run.json"
LOCK_FILE = "run.lock"
METRICS_FILE = "metrics.jsonl"
PARTS = "parts"
FORMAT = "gnndist-run"
_LEGACY_KEYS = {"partitions", "builtin_model", "train", "sampler"}  # run.json before "format"
_OWN = {RUN_FILE, RUN_FILE + ".tmp", LOCK_FILE, METRICS_FILE, "checkpoints", "placement.json", HALO_DIR,
        "tensorboard", "ray", PARTS}
# Each rank's final parameters, written by runs of gnndist before shards (still a run's own files).
_PARAMS = re.compile(r"params-rank\d{5}\.pt")
_RESULTS = ("checkpoints", METRICS_FILE)  # with params-rank*.pt: what an earlier run leaves worth keeping
_MODEL_KEYS = ("name", "hidden", "layers", "classes", "features")
_SHOWN = {"name": "model"}

log = logging.getLogger(__name__)


class RunDirError(RuntimeError):
    """The run directory is held by another run, holds another run, or holds files gnndist did not write."""


@dataclass(frozen=True)
class _Survey:
    """What the directory held when the lock was taken (read once: partitioning adds ``parts/``)."""

    info: dict | None  # run.json, when it is a gnndist run's
    foreign: list[str]  # entries of a directory that is not a run's
    results: list[str]  # entry names holding an earlier run's results
    parts_owned: bool  # parts/ is absent or a run wrote it


class RunDir:
    """A run directory whose lock this process holds (see :func:`hold`)."""

    def __init__(self, path: Path, survey: _Survey, notify: Callable[[str], None]) -> None:
        self.path = path
        self._survey = survey
        self.notify = notify

    def check(self, *, resume: bool, overwrite: bool) -> None:
        """Refuse, before anything is written, what no run may do here."""
        if resume and overwrite:
            raise RunDirError(f"{self.path}: --resume continues the run there and --overwrite replaces it; pass one")
        foreign = self._survey.foreign
        if foreign:
            names = ", ".join(str(self.path / name) for name in foreign[:5])
            raise RunDirError(f"{self.path} is not a gnndist run directory (no run.json of a run) but holds {names}: "
                              "gnndist never overwrites or deletes what it did not write, not even with --overwrite; "
                              "move them away or choose another --out")
        if self._survey.results and not (resume or overwrite):
            raise RunDirError(f"{self.path} holds an earlier run ({', '.join(self._survey.results)}): pass --resume to "
                              "continue it, --overwrite to replace it (its checkpoints, metrics and parameters are "
                              "deleted), or choose another --out")

    def recorded_partitions(self) -> Path | None:
        """The partition directory the run here trained on (``parts/`` if it wrote that), or ``None``."""
        info = self._survey.info
        if info is None:
            return None
        return self.path / PARTS if _parts_by_run(info, self.path) else Path(info["partitions"])

    def parts_to_write(self) -> Path:
        """``parts/``, after checking that it is absent or a run's own, so that writing it loses nothing."""
        if not self._survey.parts_owned:
            raise RunDirError(f"{self.path / PARTS}: a partition directory no gnndist run wrote here; pass it as "
                              "--partitions, or choose another --out")
        return self.path / PARTS

    def start(self, *, resume: bool, overwrite: bool, root: str, factory: Callable[[], torch.nn.Module], model: dict,
              record: dict) -> int | None:
        """Check everything, then make the directory this run's: the epoch to resume from (``None``:
        a fresh run, whose earlier files are deleted). ``model``: :func:`model_description` of this
        run; ``record``: the rest of run.json. Raises before writing anything."""
        self.check(resume=resume, overwrite=overwrite)
        epoch = self._resume_epoch(root, factory, model) if resume else None
        info = self._survey.info
        if epoch is None:
            self._clear()
        else:
            keep_metrics_up_to(self.path / METRICS_FILE, epoch)
        run_id = info.get("run_id") if epoch is not None and info else None
        record = {"format": FORMAT, "run_id": run_id or uuid.uuid4().hex, **record, "model": model,
                  "parts_by_run": self._survey.parts_owned and (self.path / PARTS).is_dir()}
        tmp = self.path / (RUN_FILE + ".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, self.path / RUN_FILE)
        return epoch

    def _resume_epoch(self, root: str, factory: Callable[[], torch.nn.Module],
                      model: dict) -> int | None:
        epoch = checkpoint.latest_epoch(self.path)
        if epoch is None:
            self.notify(f"{self.path}: no complete checkpoint to resume from; starting a fresh run")
            return None
        state = checkpoint.load(self.path, epoch, None)
        sha = partition_sha(root)
        problems = [] if state["partition_sha"] == sha else [
            f"the checkpoint was trained on another partition (run.json: {self._survey.info['partitions']}), not "
            f"{root} (manifest sha256 {state['partition_sha'][:12]}... there, {sha[:12]}... here)"]
        saved = _saved_model(self._survey.info)
        problems += [f"checkpoint has {_SHOWN.get(key, key)} {saved[key]}, this run asks for {model[key]}"
                     for key in _MODEL_KEYS if key in saved and key in model and saved[key] != model[key]]
        problems += checkpoint.state_differences(state["model"], factory().state_dict())
        if problems:
            raise CheckpointError(f"cannot resume {checkpoint.state_file(self.path, epoch).parent}: "
                                  + "; ".join(problems) + ". Resume with the run's own settings "
                                  f"({self.path / RUN_FILE}), or start a new run (another --out, or --overwrite)")
        return epoch

    def _clear(self) -> None:
        """Delete the run's own files before a fresh run: never parts/ (it may be this run's input) or the lock."""
        for entry in self.path.iterdir():
            if entry.name in (PARTS, LOCK_FILE) or not (entry.name in _OWN or _PARAMS.fullmatch(entry.name)):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def model_description(builtin: bool, config, sampler, graph: dict) -> dict:
    """What run.json records of the model, to compare on resume. ``config``/``sampler``: the run's
    TrainConfig/SamplerConfig; ``graph``: the partition manifest's graph entry."""
    described = {"classes": graph["num_classes"], "features": graph["feature_dim"]}
    if not builtin:
        return {"name": "custom", **described}
    return {"name": config.model_module or config.model, "hidden": config.hidden, "layers": len(sampler.fanouts),
            **described}


def read_run_info(run: Path) -> dict:
    """``run``'s run.json, refused unless a gnndist run wrote it."""
    path = run / RUN_FILE
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{run}: not a training run directory (no {RUN_FILE})") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        info = None
    if not _is_run_info(info):
        raise CheckpointError(f"{path}: not the run.json of a gnndist run")
    return info


@contextmanager
def hold(out: str | Path | RunDir | None, notify: Callable[[str], None] = log.warning) -> Iterator[RunDir]:
    """Hold the run directory ``out`` (created if needed; ``None``: a new temporary one) for the
    ``with`` block; a :class:`RunDir` already held is passed through. ``notify`` gets one-line
    notices (a stale lock taken over, a resume with no checkpoint)."""
    if isinstance(out, RunDir):
        yield out
        return
    path = (Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="gnndist-train-"))).resolve()
    if path.exists() and not path.is_dir():
        raise RunDirError(f"{path}: exists and is not a directory; choose another --out")
    path.mkdir(parents=True, exist_ok=True)
    fd = _lock(path / LOCK_FILE, notify)
    try:
        yield RunDir(path, _survey(path), notify)
    finally:
        try:
            os.unlink(path / LOCK_FILE)  # while still held: an opener of this file then retries
        finally:
            os.close(fd)


def _survey(path: Path) -> _Survey:
    info = None
    foreign = []
    if (path / RUN_FILE).exists():
        try:
            info = read_run_info(path)
        except CheckpointError:
            foreign.append(RUN_FILE)
    names = sorted(entry.name for entry in path.iterdir())
    if info is None:  # not a run's directory; in a run's, other names are the user's, never touched
        foreign += [n for n in names if n not in (PARTS, LOCK_FILE, RUN_FILE)]
    results = [n for n in names if n in _RESULTS or _PARAMS.fullmatch(n)]
    parts_owned = not (path / PARTS).exists() or (info is not None and _parts_by_run(info, path))
    return _Survey(info, foreign, results, parts_owned)


def _is_run_info(info) -> bool:
    return isinstance(info, dict) and (info.get("format") == FORMAT or set(info) == _LEGACY_KEYS)


def _parts_by_run(info: dict, path: Path) -> bool:
    # Before "parts_by_run" the CLI always partitioned into OUT/parts unless given --partitions.
    return info.get("parts_by_run", info.get("partitions") == str(path / PARTS))


def _saved_model(info: dict) -> dict:
    """The model run.json describes (a run from before run.json described it: from its configs)."""
    if "model" in info:
        return info["model"]
    if not info["builtin_model"]:
        return {"name": "custom"}
    return {"name": info["train"]["model"], "hidden": info["train"]["hidden"],
            "layers": len(info["sampler"]["fanouts"])}


def keep_metrics_up_to(log_file: Path, epoch: int | None) -> list[dict]:
    """Drop the metrics of epochs after ``epoch`` (``None``: all): the resumed (or restarted) run
    writes them again. The records kept, oldest first."""
    if not log_file.exists():
        return []
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    keep = [r for r in records if epoch is not None and r["epoch"] <= epoch]
    log_file.write_text("".join(json.dumps(r) + "\n" for r in keep))
    return keep


def _holder() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def _describe(holder: dict) -> str:
    since = f" (since {holder['started']})" if "started" in holder else ""
    return f"pid {holder.get('pid')} on {holder.get('host')}{since}"


def _read_holder(fd: int, lock: Path) -> dict | None:
    """The holder a lock file names (``None``: empty), refusing a file that is not a gnndist lock."""
    text = os.pread(fd, 4096, 0).decode(errors="replace")
    if not text:
        return None
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        holder = None
    if not isinstance(holder, dict) or "pid" not in holder:
        raise RunDirError(f"{lock}: not a gnndist lock file; if no gnndist run uses this directory, delete it")
    return holder


def _write_holder(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(_holder()).encode(), 0)
    os.fsync(fd)


def _lock(lock: Path, notify: Callable[[str], None]) -> int:
    """Take the lock file ``lock`` (see the module docstring); returns its open descriptor."""
    while True:
        try:
            fd, created = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            try:
                fd, created = os.open(lock, os.O_RDWR), False
            except FileNotFoundError:  # released meanwhile
                continue
        try:
            if _take(fd, lock, created, notify):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _take(fd: int, lock: Path, created: bool, notify: Callable[[str], None]) -> bool:
    """Lock the open lock file; ``False`` when its holder released it (unlinking it) after our open."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        flocked = True
    except BlockingIOError:
        raise RunDirError(f"run directory {lock.parent} is locked by {_describe(_read_holder(fd, lock) or {})}: "
                          "another gnndist train is using it; wait for it, stop it, or choose another --out") from None
    except OSError as e:
        if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
        flocked = False  # this filesystem has no flock: the holder the file names decides
    if flocked and not _is_file(fd, lock):
        return False
    holder = None if created else _read_holder(fd, lock)
    if not (flocked or created) and (holder is None or holder.get("host") != socket.gethostname()
                                     or _alive(holder.get("pid"))):
        raise RunDirError(f"run directory {lock.parent} is locked by {_describe(holder or {})}: another gnndist "
                          f"train is using it (this filesystem has no file locks: if that process is gone, delete "
                          f"{lock}); or choose another --out")
    if holder is not None:  # a holder is named, yet the lock is free: it died without releasing
        notify(f"{lock.parent}: taking over the lock left by {_describe(holder)}, which is no longer running")
    _write_holder(fd)
    return True


def _is_file(fd: int, path: Path) -> bool:
    """Whether the open ``fd`` is still the file at ``path``."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (found.st_dev, found.st_ino) == (mine.st_dev, mine.st_ino)


def _alive(pid) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
