"""Charts of sweep results (PNG, matplotlib): MFU and time-to-train against the first numeric swept field, one line
per combination of the other fields."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..search.sweep import FIELD_PREFIX
from ..units import SECONDS_PER_DAY


def _value(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def plot_sweep(rows: list[dict[str, Any]], fields: list[str], out: str | Path, title: str = "") -> Path:
    """Draw the sweep; the x axis is the first swept field whose values are all numbers (log scale when they span
    more than a decade), else the point index."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numeric = [f for f in fields if all(isinstance(_value(r.get(FIELD_PREFIX + f)), int | float) for r in rows)]
    x_field = numeric[0] if numeric else None
    others = [f for f in fields if f != x_field]
    lines: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
    for r in rows:
        if r["status"] != "ok":
            continue
        label = ", ".join(f"{f.split('.')[-1]}={_value(r.get(FIELD_PREFIX + f))}" for f in others) or "all"
        x = float(_value(r[FIELD_PREFIX + x_field])) if x_field else float(r["point"])
        lines[label].append((x, r))
    fig, (ax_mfu, ax_days) = plt.subplots(1, 2, figsize=(12, 4.8))
    xs_all: list[float] = []
    for label, pts in sorted(lines.items()):
        pts.sort(key=lambda p: p[0])
        xs = [p[0] for p in pts]
        xs_all += xs
        ax_mfu.plot(xs, [100.0 * p[1]["mfu"] for p in pts], marker="o", label=label)
        ax_days.plot(xs, [p[1]["time_to_train_s"] / SECONDS_PER_DAY for p in pts], marker="o", label=label)
        with_failures = [(p[0], p[1]["time_to_train_with_failures_s"]) for p in pts
                         if p[1].get("time_to_train_with_failures_s")]
        if with_failures:
            ax_days.plot([w[0] for w in with_failures], [w[1] / SECONDS_PER_DAY for w in with_failures],
                         linestyle="--", color=ax_days.lines[-1].get_color(), alpha=0.6)
    xlabel = x_field or "point"
    log_x = bool(xs_all) and min(xs_all) > 0 and max(xs_all) / min(xs_all) > 10
    for ax, ylabel in ((ax_mfu, "MFU (%)"), (ax_days, "time to train (days; dashed: with failures, P50)")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if log_x:
            ax.set_xscale("log")
    ax_days.set_yscale("log")
    ax_mfu.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
