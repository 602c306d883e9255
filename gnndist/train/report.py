"""What a training run shows: the per-phase time table and the training curves."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from gnndist.train.loop import PHASES

PHASE_LABELS = {"sample": "sample", "fetch": "fetch (halo)", "wait": "waiting for batches",
                "forward_backward": "forward + backward + step", "allreduce": "all-reduce"}


def epoch_line(record: dict, epochs: int) -> str:
    """One line per epoch: loss, accuracies when evaluated, and where the epoch's time went."""
    scores = "".join(f", {k} {v:.4f}" for k, v in record.items() if k.startswith(("val_", "test_")))
    phases = record["phases"]
    split = ", ".join(f"{p} {phases[p]:.2f}" for p in PHASES)
    if record.get("best", {}).get("epoch") == record["epoch"]:
        scores += " (best)"
    line = (f"epoch {record['epoch'] + 1}/{epochs}: loss {record['loss']:.4f}{scores} | "
            f"{record['epoch_s']:.2f} s ({split})")
    if "workers_changed" in record:
        change = record["workers_changed"]
        line = f"workers {change['from']} -> {change['to']} ({change['reason']}) | " + line
    workers = record.get("workers", [])
    if len(workers) > 1:
        slow, fast = min(workers, key=_rate), max(workers, key=_rate)
        line += f" | slowest {_worker(slow)}, fastest {_worker(fast)}"
    return line


def decision_line(decision: dict) -> str:
    """One line for a policy's decision (as the epoch record keeps it)."""
    where = f"epoch {decision['epoch'] + 1}" + (f" step {decision['step']}" if decision["step"] is not None else "")
    value = "" if decision["value"] is None else f" {decision['value']}"
    used = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in decision["used"].items())
    line = f"policy {decision['policy']}: {decision['action']}{value} at {where} ({decision['reason']}"
    line += f"; {used})" if used else ")"
    return line + (f" REFUSED: {decision['refused']}" if decision["refused"] else "")


def _rate(worker: dict) -> float:
    return worker["seeds_per_s"]


def _worker(worker: dict) -> str:
    parts = worker["parts"]
    held = f"part {parts[0]}" if len(parts) == 1 else f"parts {parts[0]}-{parts[-1]}"
    shares = worker.get("shares") or [(0.0, 1.0)] * len(parts)  # only where a part is split
    split = [f"{lo:.2g}-{hi:.2g} of {p}" for p, (lo, hi) in zip(parts, shares, strict=True) if (lo, hi) != (0.0, 1.0)]
    if split:
        held += f": {', '.join(split)}"
    return f"rank {worker['rank']} ({held}) {worker['seeds_per_s']:.0f} seeds/s"


def phase_table(history: list[dict]) -> Table:
    """Seconds per phase over the run, averaged over workers. Sampling and fetching run in the
    prefetch thread, overlapped with training: "waiting for batches" is what they cost the step."""
    table = Table(title="time per phase (mean over workers)")
    for column in ("phase", "seconds", "per epoch", "share of epoch time"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    epochs = len(history) or 1
    wall = sum(r["epoch_s"] for r in history) or 1.0
    for phase in PHASES:
        total = sum(r["phases"][phase] for r in history)
        table.add_row(PHASE_LABELS[phase], f"{total:.2f}", f"{total / epochs:.3f}", f"{total / wall:.0%}")
    table.add_row("epoch wall time", f"{wall:.2f}", f"{wall / epochs:.3f}", "100%")
    return table


def plot_history(history: list[dict], path: str | Path) -> Path:
    """Loss, validation and test scores, and the per-phase time of each epoch, as one PNG; below
    them, where the run adapted or measured for it: the settings (batch size, learning rate), each
    worker's throughput with the number of workers, and the gradient noise scale with the parts'
    gradient variance, with every policy decision marked at its epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    adaptive = any("decisions" in r or "noise" in r for r in history)
    fig, axes = plt.subplots(2 if adaptive else 1, 3, figsize=(15, 8.4 if adaptive else 4.2), squeeze=False)
    loss_ax, score_ax, time_ax = axes[0]
    epochs = [r["epoch"] + 1 for r in history]
    loss_ax.plot(epochs, [r["loss"] for r in history], marker=".")
    loss_ax.set(title="training loss", xlabel="epoch", ylabel="loss")
    keys = sorted({k for r in history for k in r if k.startswith(("val_", "test_"))})
    for key in keys:
        points = [(r["epoch"] + 1, r[key]) for r in history if key in r]
        score_ax.plot(*zip(*points, strict=True), marker="o", label=key)
    best = history[-1].get("best") if history else None
    if best and best["epoch"] is not None:  # the model the run keeps and reports
        score_ax.axvline(best["epoch"] + 1, color="gray", linestyle=":",
                         label=f"best {best['metric']}: test_acc {best.get('test_acc', float('nan')):.3f}")
    score_ax.set(title="evaluation (test: at each new best validation score)", xlabel="epoch", ylabel="score")
    if keys:
        score_ax.legend(fontsize="small")
    bottom = [0.0] * len(history)
    for phase in PHASES:
        heights = [r["phases"][phase] for r in history]
        time_ax.bar(epochs, heights, bottom=bottom, label=PHASE_LABELS[phase])
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    time_ax.plot(epochs, [r["epoch_s"] for r in history], color="black", marker=".", label="epoch wall time")
    time_ax.set(title="seconds per epoch by phase\n(mean over workers; sample and fetch overlap training)",
                xlabel="epoch", ylabel="seconds")
    time_ax.legend(fontsize="small")
    if adaptive:
        _plot_adaptation(history, axes[1])
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_adaptation(history: list[dict], axes) -> None:
    """The settings, the workers' throughput and the noise scale by epoch, decisions marked."""
    settings_ax, workers_ax, noise_ax = axes
    epochs = [r["epoch"] + 1 for r in history]
    with_settings = [(r["epoch"] + 1, r["settings"]) for r in history if "settings" in r]
    if with_settings:
        x, values = zip(*with_settings, strict=True)
        settings_ax.step(x, [v["batch_size"] for v in values], where="post", color="tab:blue", label="batch size")
        lr_ax = settings_ax.twinx()
        lr_ax.step(x, [v["lr"] for v in values], where="post", color="tab:orange", label="learning rate")
        lr_ax.set_ylabel("learning rate", color="tab:orange")
        lines = settings_ax.get_lines() + lr_ax.get_lines()
        settings_ax.legend(lines, [line.get_label() for line in lines], fontsize="small", loc="lower right")
    settings_ax.set(title="settings the epoch started with", xlabel="epoch", ylabel="global batch (seeds)")
    ranks = sorted({w["rank"] for r in history for w in r.get("workers", [])})
    for rank in ranks:
        points = [(r["epoch"] + 1, w["seeds_per_s"]) for r in history for w in r["workers"] if w["rank"] == rank]
        workers_ax.plot(*zip(*points, strict=True), marker=".", label=f"rank {rank}")
    count_ax = workers_ax.twinx()
    count_ax.step(epochs, [len(r.get("workers", [])) for r in history], where="post", color="gray",
                  linestyle=":", label="workers")
    count_ax.set_ylabel("workers", color="gray")
    workers_ax.set(title="each worker's seeds / s (dotted: workers)", xlabel="epoch", ylabel="seeds / s")
    if ranks:
        workers_ax.legend(fontsize="small")
    noise = [(r["epoch"] + 1, r["noise"]["scale"]) for r in history if r.get("noise", {}).get("scale") is not None]
    if noise:
        noise_ax.plot(*zip(*noise, strict=True), marker="o", label="noise scale")
        noise_ax.set_yscale("log")
    else:  # an empty panel would read as a scale of zero
        noise_ax.text(0.5, 0.5, "not measured (no policy reads it:\n--monitor-every N measures it),\n"
                      "or |G|^2 not yet resolved from the noise", ha="center", va="center",
                      transform=noise_ax.transAxes, fontsize="small", color="gray")
        noise_ax.set_yticks([])
    spread = [(r["epoch"] + 1, r["part_variance"]["relative"]) for r in history
              if r.get("part_variance", {}).get("relative") is not None]
    if spread:  # measured on the noise scale's steps
        spread_ax = noise_ax.twinx()
        spread_ax.plot(*zip(*spread, strict=True), marker=".", color="tab:purple", label="parts' gradient variance")
        spread_ax.set_ylabel("variance / |G|^2", color="tab:purple")
        lines = noise_ax.get_lines() + spread_ax.get_lines()
        noise_ax.legend(lines, [line.get_label() for line in lines], fontsize="small")
    noise_ax.set(title="gradient noise scale (seeds), parts' gradient variance", xlabel="epoch")
    for r in history:  # every decision at the epoch it was taken, on every panel, named once
        decisions = r.get("decisions", [])
        if not decisions:
            continue
        refused = any(d["refused"] for d in decisions)
        for ax in axes:
            ax.axvline(r["epoch"] + 1, color="red" if refused else "green", alpha=0.35, linestyle="--")
        label = "\n".join(dict.fromkeys(f"{d['policy']}: {d['action']}" + (" (refused)" if d["refused"] else "")
                                         for d in decisions))
        settings_ax.annotate(label, (r["epoch"] + 1, 0.98), rotation=90, fontsize=7,
                             xycoords=("data", "axes fraction"), va="top", ha="right")
