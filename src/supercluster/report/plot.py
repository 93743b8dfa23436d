"""Charts of sweep results (PNG, matplotlib): MFU and time-to-train against the first numeric swept field, one line
per combination of the other fields."""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..search.output import check_output_file
from ..search.sweep import FIELD_PREFIX
from ..units import SECONDS_PER_DAY

#: the PNG text chunk (``Software``) that marks a plot as supercluster's own: only such a file is ever replaced
WRITTEN_BY = "supercluster sweep --plot"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def written_by_supercluster(path: str | Path) -> bool:
    """Whether ``path`` is a PNG whose ``Software`` text chunk says this tool drew it."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return False
    if not data.startswith(_PNG_SIGNATURE):
        return False
    at = len(_PNG_SIGNATURE)
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if kind == b"tEXt" and body.partition(b"\0")[::2] == (b"Software", WRITTEN_BY.encode("latin-1")):
            return True
        if kind == b"IEND":
            break
        at += 12 + length
    return False


def check_plot_target(path: str) -> Path:
    """Before the sweep runs: a .png file name that can be written, and not a file of the user's (an existing file
    is replaced only when it is a plot this tool drew)."""
    if not path.lower().endswith(".png"):
        raise InputError(f"expected a .png file, got {path!r}", field="--plot")
    p = check_output_file(path, field="--plot")
    if p.exists() and not written_by_supercluster(p):
        raise InputError(f"{path} exists and was not drawn by supercluster: it is left as it is; choose another "
                         "file", field="--plot")
    return p


def _value(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def sweep_series(rows: list[dict[str, Any]], fields: list[str]
                 ) -> tuple[str | None, dict[str, list[tuple[float, dict[str, Any]]]]]:
    """The x axis of a sweep's charts — the first swept field whose values are all numbers (None: the point index)
    — and its completed rows as lines, one per combination of the other swept fields, each sorted by x."""
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
    return x_field, {k: sorted(v, key=lambda p: p[0]) for k, v in sorted(lines.items())}


def plot_sweep(rows: list[dict[str, Any]], fields: list[str], out: str | Path, title: str = "") -> Path:
    """Draw the sweep; the x axis is the first swept field whose values are all numbers (log scale when they span
    more than a decade), else the point index."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_field, lines = sweep_series(rows, fields)
    fig, (ax_mfu, ax_days) = plt.subplots(1, 2, figsize=(12, 4.8))
    xs_all: list[float] = []
    for label, pts in lines.items():
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
    fig.savefig(path, dpi=110, metadata={"Software": WRITTEN_BY})
    plt.close(fig)
    return path
