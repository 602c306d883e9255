"""Check gnndist's GPU training path and time it, on one machine, without Ray or pymetis.

Each check is an entry of the JSON's ``checks`` (passed, reason, details); a failure is recorded
and the next check runs. The JSON is rewritten after every check, so a run stopped at its time
limit still leaves what it did.

1. ``distributed``: torch.distributed over a TCP store on 127.0.0.1, world size 1, NCCL on a GPU
   (gloo on CPU): gnndist's ``all_reduce_sum``, ``all_gather_object``, ``barrier``, then each
   built-in model's (``TrainConfig``'s defaults) gradients through gnndist's flat gradient
   all-reduce (``all_reduce_gradients``), which must equal the plain model's. It runs in a child
   process with a time limit, since a collective that cannot start hangs rather than fails.
2. ``relu_dropout``: what the fused ReLU + dropout (a numba CPU kernel) does with a tensor on the
   device: which path ran (``details.path``) and whether its output and gradient are right.
3. ``train_steps``: each built-in model trained for a few steps on the device from batches sampled
   on CPU by gnndist's sampler (``sample_khop``, rows gathered by ``copy_rows``) and moved as the
   training loop moves them (``gnndist.train.device``: pinned, then copied without blocking on a
   side stream one step ahead, beside a part without seeds): every batch arrives bit-identical,
   and the losses are finite and lower at the end than at the start.
4. ``checkpoint``: ``save`` / ``load`` round trip on the device: parameters and optimizer state
   restored, and a dropout mask drawn from the part's stream (``gnndist.streams``) after restoring
   equals the one drawn after saving; whether the next step's loss is then bit-identical is recorded.

Then ``timings``: GraphSAGE (hidden 256, fanouts 15, 10, 5, batch 1024 seeds) on synthetic SBM
graphs with 128 float features: one step (forward, backward, Adam) of gnndist's model and of PyG's
stock ``GraphSAGE`` (plain and trimmed) on the same batch, on the device and on the CPU with each
``--cpu-threads``, the host-to-device copy of the batch (``MiniBatch.to``, pageable and pinned) and
its pinning, gnndist's step with its batch's copy (``step_with_copy_ms``: copied before the step from
pageable or from pinned memory, or staged, i.e. copied during the step before, as the training loop
does), and the batch's sampling and gathering on CPU. Medians, in ms, with the ratios in ``ratios``.

GPU machine, from the repository root (about 3 minutes on 16 cores and an H200):

    PYTHONPATH=. python3 scripts/gpu_check.py --out $OUT/gpu_check.json

Here, on CPU, in about a minute:

    PYTHONPATH=. .venv/bin/python scripts/gpu_check.py --device cpu --sizes 5000 --steps 3 --out /tmp/gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from results_io import write_results

try:
    from gnndist.config import SourceConfig, TrainConfig
except ImportError as error:
    sys.exit(f"gpu_check: cannot import gnndist ({error}): run it from the repository root with PYTHONPATH=.")
from gnndist import streams
from gnndist.runtime.rows import copy_rows
from gnndist.sampling import CSCProvider, MiniBatch, sample_khop
from gnndist.sources.synthetic import load_synthetic
from gnndist.testing import random_graph
from gnndist.train import checkpoint
from gnndist.train.device import pinned, staged
from gnndist.train.models import BUILT_IN, build_model
from gnndist.train.relu_dropout import relu_dropout
from gnndist.train.step import ModelInput, all_reduce_gradients, all_reduce_sum, forward

FANOUTS, BATCH, HIDDEN, FEATURES = (15, 10, 5), 1024, 256, 128
CONTENDERS = ("gnndist", "pyg", "pyg_trimmed")  # see _contenders
# Building an SBM graph grows faster than its size: 0.9 s of CPU at 100k nodes, 22.5 s at 1M, measured here.
BUILD_GROWTH = 1.4
DEFAULTS = TrainConfig()  # the checks use the built-in models as `gnndist train` builds them


class CheckFailed(AssertionError):
    """A check ran and found something wrong (the message says what)."""


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise CheckFailed(what)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _graph(nodes: int):
    """A learnable SBM graph of ``nodes`` nodes (about 20 in-edges each), float32 [nodes, 128] features."""
    spec = f"synthetic:sbm:nodes={nodes},edges={10 * nodes},features={FEATURES},blocks=16,seed=0"
    return load_synthetic(spec, SourceConfig(dataset=spec))


def _batch(graph, seeds: np.ndarray, seed: int, fanouts=FANOUTS) -> MiniBatch:
    """The CPU mini-batch of ``seeds`` (int64 global ids) as gnndist's loader builds one: sampled by
    ``sample_khop``, feature rows copied by ``copy_rows``, labels gathered."""
    sub = sample_khop(seeds, fanouts, CSCProvider(graph.indptr.numpy(), graph.indices.numpy()), seed)
    x = np.empty((sub.n_id.size, graph.x.shape[1]), np.float32)
    copy_rows(x, np.arange(sub.n_id.size), graph.x.numpy(), sub.n_id)
    return MiniBatch(x=torch.from_numpy(x), y=graph.y[torch.from_numpy(sub.n_id)],
                     edge_index=torch.from_numpy(sub.edge_index), n_id=torch.from_numpy(sub.n_id),
                     batch_size=sub.batch_size, num_sampled_nodes=sub.num_sampled_nodes,
                     num_sampled_edges=sub.num_sampled_edges)


def _train_seeds(graph, count: int, seed: int) -> np.ndarray:
    """``count`` training nodes (int64 global ids) drawn at random."""
    train = np.flatnonzero(graph.train_mask.numpy())
    return np.sort(np.random.default_rng(seed).choice(train, min(count, train.size), replace=False))


def _model(name: str, graph, device: torch.device, hidden: int = DEFAULTS.hidden) -> torch.nn.Module:
    torch.manual_seed(0)
    config = TrainConfig(model=name, hidden=hidden)
    return build_model(config, graph.x.shape[1], graph.num_classes, len(FANOUTS)).to(device)


def _adam(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=DEFAULTS.lr, weight_decay=DEFAULTS.weight_decay)


def _step(model, optimizer, batch: MiniBatch, model_input: ModelInput) -> float:
    """One training step on ``batch`` (on the model's device); the loss before it."""
    return _train(model, optimizer, batch, model_input).item()


def _train(model, optimizer, batch: MiniBatch, model_input: ModelInput) -> torch.Tensor:
    """One training step on ``batch``; the loss before it, on the device (not waited for)."""
    optimizer.zero_grad()
    loss = F.cross_entropy(forward(model, batch, model_input), batch.y[:batch.batch_size])
    loss.backward()
    optimizer.step()
    return loss.detach()


# ------------------------------------------------------------------------------------ checks


def distributed_check(device: torch.device) -> dict:
    """Check 1 (run in a child process, see ``--child``)."""
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL's object collectives and barrier use the current device
    store = dist.TCPStore("127.0.0.1", 0, 1, is_master=True, timeout=timedelta(seconds=60))
    dist.init_process_group(backend, store=store, rank=0, world_size=1, timeout=timedelta(seconds=60))
    try:
        summed = all_reduce_sum(torch.arange(4, dtype=torch.float64), device)
        _require(summed.tolist() == [0.0, 1.0, 2.0, 3.0], f"all_reduce_sum gave {summed.tolist()}")
        gathered = [None]
        dist.all_gather_object(gathered, {"rank": 0, "node": "here"})
        _require(gathered == [{"rank": 0, "node": "here"}], f"all_gather_object gave {gathered}")
        dist.barrier()
        graph = random_graph(3000, 30000, feature_dim=FEATURES, num_classes=8)
        batch = _batch(graph, _train_seeds(graph, 256, 0), 0).to(device)
        models = {name: _allreduced_matches_plain(name, graph, batch, device) for name in BUILT_IN}
        return {"backend": backend, "models": models}
    finally:
        dist.destroy_process_group()


def _allreduced_matches_plain(name: str, graph, batch: MiniBatch, device: torch.device) -> dict:
    """One backward of ``name`` whose gradients then go through ``all_reduce_gradients``, against
    the plain model's (same parameters, same dropout masks): the largest difference, and the
    all-reduce's time."""
    grads, seconds = [], 0.0
    for reduced in (False, True):
        model = _model(name, graph, device)
        torch.manual_seed(1)  # the same dropout masks in both
        loss = F.cross_entropy(forward(model, batch, ModelInput.of(model)), batch.y[:batch.batch_size])
        loss.backward()
        if reduced:
            _sync(device)
            start = time.perf_counter()
            all_reduce_gradients(model)
            _sync(device)
            seconds = time.perf_counter() - start
        grads.append([p.grad for p in model.parameters()])
    diff = max(float((a - b).abs().max()) for a, b in zip(*grads, strict=True))
    scale = max(float(a.abs().max()) for a in grads[0])
    _require(diff <= 1e-5 * max(scale, 1.0), f"{name}: all-reduced gradients differ from the plain model's by "
                                             f"{diff:.3g}")
    return {"max_grad_diff": diff, "max_grad": scale, "allreduce_s": seconds}


def relu_dropout_check(device: torch.device) -> dict:
    """Check 2: which path the fused ReLU + dropout takes for a tensor on ``device``, and whether
    its output and gradient are those of ``dropout(relu(x))``."""
    torch.manual_seed(0)
    x = torch.randn(4096, 64, device=device, requires_grad=True)
    cpu_rng = torch.get_rng_state()
    out = relu_dropout(x, 0.5, True)
    drew_on_cpu = not torch.equal(cpu_rng, torch.get_rng_state())
    path = "fused numba kernel, masks from the CPU generator" if drew_on_cpu else "torch's F.dropout(F.relu)"
    _require(out.device == x.device, f"output on {out.device}, input on {x.device}")
    positive = x.detach() > 0
    kept = out.detach() != 0
    _require(not bool((kept & ~positive).any()), "an element with a non-positive input came out non-zero")
    _require(torch.allclose(out.detach()[kept], 2 * x.detach()[kept]), "kept elements are not scaled by 1 / (1 - p)")
    kept_share = float(kept.sum()) / max(int(positive.sum()), 1)
    _require(0.45 < kept_share < 0.55, f"kept {kept_share:.3f} of the positive elements, expected about 0.5")
    out.sum().backward()
    _require(torch.equal(x.grad, 2 * kept.to(x.dtype)), "the gradient is not 2 where kept and 0 elsewhere")
    return {"path": path, "on_device": out.device.type, "kept_share_of_positive": round(kept_share, 4)}


def _same_batch(moved: MiniBatch, batch: MiniBatch) -> bool:
    return all(torch.equal(getattr(moved, t).cpu(), getattr(batch, t)) for t in ("x", "y", "edge_index", "n_id"))


def train_steps_check(device: torch.device, graph, steps: int) -> dict:
    """Check 3: each built-in model trained ``steps`` steps on the device from CPU-built batches,
    staged as the training loop stages them."""
    batches = [_batch(graph, _train_seeds(graph, 512, k), k) for k in range(4)]
    results = {}
    for name in BUILT_IN:
        model, model_input = _model(name, graph, device), ModelInput.PYG_HOPS
        optimizer = _adam(model)
        losses = []
        source = ([None, batches[s % len(batches)]] for s in range(steps))  # the first part has no seeds
        for s, (none, batch) in enumerate(staged(pinned(source, device), device)):
            _require(none is None and batch.x.device == device, f"{name}: step {s} came as {none}, {batch.x.device}")
            _require(_same_batch(batch, batches[s % len(batches)]), f"{name}: step {s}'s batch arrived changed")
            losses.append(_step(model, optimizer, batch, model_input))
        _require(len(losses) == steps, f"{name}: {len(losses)} of {steps} steps were staged")
        on = {p.device.type for p in model.parameters()}
        _require(on == {device.type}, f"{name}: parameters on {on}")
        _require(all(math.isfinite(v) for v in losses), f"{name}: losses {losses}")
        k = max(1, steps // 4)
        first, last = float(np.mean(losses[:k])), float(np.mean(losses[-k:]))
        _require(last < first, f"{name}: the loss did not go down ({first:.4f} over the first {k} steps, "
                               f"{last:.4f} over the last {k})")
        results[name] = {"losses": [round(v, 5) for v in losses]}
    return results


def checkpoint_check(device: torch.device, graph) -> dict:
    """Check 4: a checkpoint saved on the device restores parameters, optimizer and RNG states."""
    batch = _batch(graph, _train_seeds(graph, 512, 0), 0).to(device)
    model = _model("sage", graph, device)
    optimizer = _adam(model)
    _step(model, optimizer, batch, True)

    def part_mask() -> torch.Tensor:  # part 0's dropout stream at epoch 1, step 0, as a worker draws it
        torch.manual_seed(streams.torch_seed(DEFAULTS.seed, streams.DROPOUT, 0, 1, 0))
        return relu_dropout(torch.ones(8192, device=device), 0.5, True)

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint.save(Path(tmp), 0, model, optimizer, "gpu-check", [[0]])
        saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
        mask = part_mask()
        loss = _step(model, optimizer, batch, True)
        state = checkpoint.load(Path(tmp), 0, "gpu-check")
    model.load_state_dict(state["model"])  # as loop.train_worker resumes
    optimizer.load_state_dict(state["optimizer"])
    _require(all(torch.equal(saved[k], v) for k, v in model.state_dict().items()), "parameters differ after loading")
    moments = {t.device.type for s in optimizer.state.values() for t in s.values() if t.dim()}
    _require(moments == {device.type}, f"optimizer state on {moments} after loading")
    again = part_mask()
    _require(torch.equal(mask, again), "the dropout mask drawn after restoring differs from the one after saving")
    loss_again = _step(model, optimizer, batch, True)
    return {"keys": sorted(state), "next_step_loss": loss, "next_step_loss_after_restore": loss_again,
            "next_step_bit_identical": loss == loss_again}


# ----------------------------------------------------------------------------------- timings


def _median_ms(fn, device: torch.device, steps: int, warmup: int) -> float:
    """Median wall ms of ``fn()`` over ``steps`` runs after ``warmup``, the device synchronized."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return round(1e3 * float(np.median(times)), 3)


def _contenders(graph, device: torch.device) -> dict:
    """``name -> (model, optimizer, model input)``: gnndist's GraphSAGE and PyG's, plain and trimmed."""
    from torch_geometric.nn import GraphSAGE

    ours = _model("sage", graph, device, HIDDEN)
    torch.manual_seed(0)
    stock = GraphSAGE(graph.x.shape[1], HIDDEN, num_layers=len(FANOUTS), out_channels=graph.num_classes,
                      dropout=DEFAULTS.dropout).to(device)
    stock_opt = _adam(stock)
    return {"gnndist": (ours, _adam(ours), ModelInput.PYG_HOPS), "pyg": (stock, stock_opt, ModelInput.PYG),
            "pyg_trimmed": (stock, stock_opt, ModelInput.PYG_HOPS)}


def _step_times(graph, batch: MiniBatch, device: torch.device, steps: int, warmup: int, names: tuple) -> dict:
    """Median ms of one training step of each contender in ``names`` on ``batch`` (moved to ``device`` once)."""
    on_device = batch.to(device)
    return {name: _median_ms(lambda m=model, o=opt, i=kind: _step(m, o, on_device, i), device, steps, warmup)
            for name, (model, opt, kind) in _contenders(graph, device).items() if name in names}


def _build_times(graph, seeds: np.ndarray, reps: int = 3) -> dict:
    """Median ms of sampling a batch and of gathering its rows, on CPU (one thread: the kernels' own)."""
    sample, gather = [], []
    provider = CSCProvider(graph.indptr.numpy(), graph.indices.numpy())
    for rep in range(reps + 1):
        start = time.perf_counter()
        sub = sample_khop(seeds, FANOUTS, provider, rep)
        mid = time.perf_counter()
        x = np.empty((sub.n_id.size, graph.x.shape[1]), np.float32)
        copy_rows(x, np.arange(sub.n_id.size), graph.x.numpy(), sub.n_id)
        if rep:  # the first compiles or loads the kernels
            sample.append(mid - start)
            gather.append(time.perf_counter() - mid)
    return {"sample_ms": round(1e3 * float(np.median(sample)), 3),
            "gather_ms": round(1e3 * float(np.median(gather)), 3)}


def _copy_times(batch: MiniBatch, device: torch.device, steps: int) -> dict:
    """Median ms of ``MiniBatch.to(device)`` from pageable and from pinned host memory, and of
    ``MiniBatch.pin`` (which the training loop runs in its prefetch thread)."""
    pinned_batch = batch.pin()
    return {"h2d_ms": _median_ms(lambda: batch.to(device), device, steps, 2),
            "h2d_pinned_ms": _median_ms(lambda: pinned_batch.to(device), device, steps, 2),
            "pin_ms": _median_ms(batch.pin, device, steps, 2)}


def _step_with_copy_times(graph, batch: MiniBatch, device: torch.device, steps: int) -> dict:
    """Per-step ms of gnndist's step on a batch still on the host (the median of 3 runs of ``steps``
    steps): copied before the step, from pageable (the training loop before ``gnndist.train.device``)
    or from pinned memory, and staged (pinned, copied one step ahead on a side stream, as the loop
    does now; pinned beforehand, as the loop's prefetch thread does). On CPU the three are one."""
    model, model_input = _model("sage", graph, device, HIDDEN), ModelInput.PYG_HOPS
    optimizer = _adam(model)
    (pinned_batch,), = pinned([[batch]], device)  # the batch itself on CPU

    def copied_before(host: MiniBatch) -> None:
        for _ in range(steps):
            _train(model, optimizer, host.to(device), model_input)

    def staged_steps() -> None:
        for (on_device,) in staged(([pinned_batch] for _ in range(steps)), device):
            _train(model, optimizer, on_device, model_input)

    runs = {"copied_before_pageable": lambda: copied_before(batch),
            "copied_before_pinned": lambda: copied_before(pinned_batch), "staged": staged_steps}
    return {name: round(_median_ms(run, device, 3, 1) / steps, 3) for name, run in runs.items()}


def time_size(nodes: int, device: torch.device, args) -> dict:
    """The timings of one graph size (see the module docstring)."""
    start = time.perf_counter()
    graph = _graph(nodes)
    row = {"nodes": nodes, "edges": int(graph.indices.numel()), "build_s": round(time.perf_counter() - start, 2)}
    seeds = _train_seeds(graph, BATCH, 0)
    batch = _batch(graph, seeds, 0)
    row.update(batch_nodes=batch.num_nodes, batch_edges=int(batch.edge_index.shape[1]),
               batch_mb=round(sum(t.nbytes for t in (batch.x, batch.y, batch.edge_index, batch.n_id)) / 2**20, 2),
               **_build_times(graph, seeds))
    threads = torch.get_num_threads()
    if device.type == "cuda":
        row.update(_copy_times(batch, device, args.steps))
        row[f"step_ms_{device.type}"] = _step_times(graph, batch, device, args.steps, 3, CONTENDERS)
    row["step_with_copy_ms"] = _step_with_copy_times(graph, batch, device, args.steps)
    for t in args.cpu_threads:
        if time.perf_counter() - T0 > args.budget_s:
            row[f"step_ms_cpu_{t}_threads"] = f"skipped: the run passed its budget of {args.budget_s} s"
            continue
        torch.set_num_threads(t)
        # PyG trimmed is left out on CPU: the slowest step there, and the stock model is the peer.
        row[f"step_ms_cpu_{t}_threads"] = _step_times(graph, batch, torch.device("cpu"), args.cpu_steps, 1,
                                                      CONTENDERS[:2])
    torch.set_num_threads(threads)
    row["ratios"] = _ratios(row, device)
    return row


def _ratios(row: dict, device: torch.device) -> dict:
    """How many times faster the device step is than each CPU one, and gnndist than PyG, per setting."""
    steps = {k.removeprefix("step_ms_"): v for k, v in row.items() if k.startswith("step_ms_") and isinstance(v, dict)}
    ratios = {f"pyg_over_gnndist_{where}": round(v["pyg"] / v["gnndist"], 3) for where, v in steps.items()}
    ratios |= {f"pyg_trimmed_over_gnndist_{where}": round(v["pyg_trimmed"] / v["gnndist"], 3)
               for where, v in steps.items() if "pyg_trimmed" in v}
    gpu = steps.get(device.type) if device.type == "cuda" else None
    if gpu:
        for where, v in steps.items():
            if where != device.type:
                ratios[f"{where}_over_{device.type}_gnndist"] = round(v["gnndist"] / gpu["gnndist"], 2)
                ratios[f"{where}_over_{device.type}_pyg"] = round(v["pyg"] / gpu["pyg"], 2)
        ratios["h2d_share_of_gpu_gnndist_step"] = round(row["h2d_ms"] / gpu["gnndist"], 3)
        with_copy = row["step_with_copy_ms"]
        ratios["copied_before_pageable_over_staged_step"] = round(with_copy["copied_before_pageable"]
                                                                  / with_copy["staged"], 3)
        build = row["sample_ms"] + row["gather_ms"]
        ratios["cpu_batch_build_over_gpu_gnndist_step"] = round(build / gpu["gnndist"], 2)
    return ratios


# ------------------------------------------------------------------------------------ driver


T0 = time.perf_counter()


def _run_check(results: dict, name: str, fn, *args) -> None:
    """Run one check into ``results["checks"]``; an error is recorded, not raised."""
    start = time.perf_counter()
    try:
        entry = {"passed": True, "reason": "ok", "details": fn(*args)}
    except Exception as error:  # every failure is a finding to report, then go on
        reason = f"{type(error).__name__}: {error}"
        entry = {"passed": False, "reason": reason[:2000], "traceback": traceback.format_exc()[-4000:]}
    entry["seconds"] = round(time.perf_counter() - start, 2)
    results["checks"][name] = entry
    verdict = "PASS" if entry["passed"] else "FAIL"
    print(f"[{time.perf_counter() - T0:6.1f} s] {name}: {verdict} {entry['reason'][:300]}", flush=True)


def _distributed_in_child(device: torch.device, timeout_s: float) -> dict:
    """Check 1 in a child process (a hung NCCL start must not stop the other checks)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "child.json"
        cmd = [sys.executable, __file__, "--child", str(out), "--device", str(device)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as error:
            raise CheckFailed(f"no result within {timeout_s} s (a collective or the process group's start hung); "
                              f"stderr: {(error.stderr or b'')[-1500:]!r}") from None
        if not out.is_file():
            raise CheckFailed(f"the child exited with {done.returncode} and no result; stderr: {done.stderr[-1500:]}")
        entry = json.loads(out.read_text())
    if not entry["passed"]:
        raise CheckFailed(f"{entry['reason']}\n{entry.get('traceback', '')}")
    return entry["details"]


def _environment(device: torch.device) -> dict:
    import importlib.util

    import numba
    import torch_geometric

    env = {"device": str(device), "torch": torch.__version__, "torch_geometric": torch_geometric.__version__,
           "numba": numba.__version__, "numpy": np.__version__, "torch_threads": torch.get_num_threads(),
           "ray_installed": importlib.util.find_spec("ray") is not None,
           "pymetis_installed": importlib.util.find_spec("pymetis") is not None,
           "float32_matmul_precision": torch.get_float32_matmul_precision()}
    if device.type == "cuda":
        env |= {"gpu": torch.cuda.get_device_name(device), "cuda": torch.version.cuda,
                "nccl": str(torch.cuda.nccl.version())}
    return env


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default: cuda:0) or cpu")
    parser.add_argument("--sizes", default="100000,1000000",
                        help="graph sizes to time, in nodes; a size after the first is skipped when building "
                             "it would take over --max-build-s (estimated from the first's, see BUILD_GROWTH)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps on the device (median), and training steps "
                                                              "per model in the train_steps check (at least 8 there)")
    parser.add_argument("--cpu-steps", type=int, default=3, help="timed steps per CPU setting (median)")
    parser.add_argument("--cpu-threads", default=f"{os.cpu_count()},1", help="torch threads of each CPU timing")
    parser.add_argument("--max-build-s", type=float, default=60.0)
    parser.add_argument("--budget-s", type=float, default=210.0,
                        help="start no size or CPU timing after this many seconds of the run")
    parser.add_argument("--dist-timeout-s", type=float, default=90.0, help="time limit of the distributed check")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.cpu_threads = [int(t) for t in args.cpu_threads.split(",")]
    return args


def _time_sizes(results: dict, device: torch.device, args, save) -> None:
    """``results["timings"]``: one row per size that fits the budget (an error is recorded as the row)."""
    first = None
    for nodes in args.sizes:
        row: dict = {"nodes": nodes}
        estimate = first["build_s"] * (nodes / first["nodes"]) ** BUILD_GROWTH if first and "build_s" in first else 0.0
        if time.perf_counter() - T0 > args.budget_s:
            row["skipped"] = f"the run passed its budget of {args.budget_s} s"
        elif estimate > args.max_build_s:
            row["skipped"] = f"building it would take about {estimate:.0f} s (over --max-build-s {args.max_build_s})"
        else:
            try:
                row = time_size(nodes, device, args)
            except Exception as error:  # recorded, and the next size still runs
                row["error"] = f"{type(error).__name__}: {error}"
                row["traceback"] = traceback.format_exc()[-4000:]
        first = first or row
        results["timings"].append(row)
        save()
        print(f"[{time.perf_counter() - T0:6.1f} s] timings {nodes} nodes: "
              + json.dumps({k: v for k, v in row.items() if k != "traceback"}), flush=True)


def main() -> int:
    args = _parse()
    device = torch.device(args.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", 0)
    if args.child:  # the distributed check, in its own process
        results: dict = {"checks": {}}
        _run_check(results, "distributed", distributed_check, device)
        args.child.write_text(json.dumps(results["checks"]["distributed"]))
        return 0
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: torch sees no CUDA device; use --device cpu to run the checks on CPU")
    results = {"benchmark": "gpu_check", "environment": _environment(device), "checks": {}, "timings": [],
               "settings": {"fanouts": list(FANOUTS), "batch_size": BATCH, "hidden": HIDDEN, "features": FEATURES,
                            "steps": args.steps, "cpu_steps": args.cpu_steps, "cpu_threads": args.cpu_threads,
                            "train": {"lr": DEFAULTS.lr, "weight_decay": DEFAULTS.weight_decay,
                                      "dropout": DEFAULTS.dropout}}}

    def save() -> None:
        results["elapsed_s"] = round(time.perf_counter() - T0, 1)
        write_results(args.out, results)

    check_nodes = min(args.sizes[0], 20_000)
    for name, fn, fn_args in (
            ("distributed", _distributed_in_child, (device, args.dist_timeout_s)),
            ("relu_dropout", relu_dropout_check, (device,)),
            ("train_steps", lambda: train_steps_check(device, _graph(check_nodes), max(args.steps, 8)), ()),
            ("checkpoint", lambda: checkpoint_check(device, _graph(check_nodes)), ())):
        _run_check(results, name, fn, *fn_args)
        save()
    _time_sizes(results, device, args, save)
    failed = [name for name, entry in results["checks"].items() if not entry["passed"]]
    print(f"[{time.perf_counter() - T0:6.1f} s] checks failed: {failed or 'none'}; results in {args.out}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
