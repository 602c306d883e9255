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
    """Loss, validation and test scores, and the per-phase time of each epoch, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] + 1 for r in history]
    fig, (loss_ax, score_ax, time_ax) = plt.subplots(1, 3, figsize=(15, 4.2))
    loss_ax.plot(epochs, [r["loss"] for r in history], marker=".")
    loss_ax.set(title="training loss", xlabel="epoch", ylabel="loss")
    keys = sorted({k for r in history for k in r if k.startswith(("val_", "test_"))})
    for key in keys:
        points = [(r["epoch"] + 1, r[key]) for r in history if key in r]
        score_ax.plot(*zip(*points, strict=True), marker="o", label=key)
    score_ax.set(title="evaluation", xlabel="epoch", ylabel="score")
    if keys:
        score_ax.legend()
    bottom = [0.0] * len(history)
    for phase in PHASES:
        heights = [r["phases"][phase] for r in history]
        time_ax.bar(epochs, heights, bottom=bottom, label=PHASE_LABELS[phase])
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    time_ax.plot(epochs, [r["epoch_s"] for r in history], color="black", marker=".", label="epoch wall time")
    time_ax.set(title="seconds per epoch by phase (sample and fetch overlap training)", xlabel="epoch",
                ylabel="seconds")
    time_ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
