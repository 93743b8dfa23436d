"""A finished sweep as one self-contained HTML page (Plotly's JavaScript embedded once): MFU and time-to-train
against the first numeric swept field, one line per combination of the others (report.plot.sweep_series), and every
point's row — its swept values, status, the headline figures, or why it has none. Formats the sweep's rows; computes
nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..files import atomic_write
from ..search.sweep import FIELD_PREFIX
from ..units import SECONDS_PER_DAY
from .html import GENERATOR, STYLE, escape, table_html
from .plot import sweep_series


def _cell(row: dict[str, Any], key: str, scale: float, fmt: str) -> str:
    v = row.get(key)
    return "-" if v is None else format(v / scale, fmt)


def render_sweep_html(rows: list[dict[str, Any]], fields: list[str], title: str, results: str) -> str:
    """The page: two charts and the table of every point (``results``: where the rows are stored)."""
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs

    x_field, lines = sweep_series(rows, fields)
    xs_all = [x for pts in lines.values() for x, _ in pts]
    log_x = bool(xs_all) and min(xs_all) > 0 and max(xs_all) / min(xs_all) > 10
    mfu, days = go.Figure(), go.Figure()
    for label, pts in lines.items():
        xs = [x for x, _ in pts]
        mfu.add_trace(go.Scatter(x=xs, y=[100.0 * r["mfu"] for _, r in pts], mode="lines+markers", name=label))
        days.add_trace(go.Scatter(x=xs, y=[r["time_to_train_s"] / SECONDS_PER_DAY for _, r in pts],
                                  mode="lines+markers", name=label))
    for fig, ytitle in ((mfu, "MFU (%)"), (days, "time to train (days)")):
        fig.update_layout(title=ytitle, xaxis_title=x_field or "point", yaxis_title=ytitle, height=420,
                          xaxis_type="log" if log_x else "linear", margin={"l": 60, "r": 20, "t": 50, "b": 50})
    charts = "".join(f.to_html(full_html=False, include_plotlyjs=False, div_id=n,
                               config={"displaylogo": False, "responsive": True})
                     for f, n in ((mfu, "sweep-mfu"), (days, "sweep-days")))
    headers = [*fields, "status", "MFU (%)", "days", "days with failures (P50)", "facility MW", "run cost $M", "note"]
    body = []
    for r in rows:
        swept = [json.loads(r[FIELD_PREFIX + f]) if r.get(FIELD_PREFIX + f) is not None else "-" for f in fields]
        body.append([*swept, r["status"], _cell(r, "mfu", 0.01, ".1f"),
                     _cell(r, "time_to_train_s", SECONDS_PER_DAY, ",.1f"),
                     _cell(r, "time_to_train_with_failures_s", SECONDS_PER_DAY, ",.1f"),
                     _cell(r, "facility_average_power_w", 1e6, ",.1f"), _cell(r, "run_cost_usd", 1e6, ",.0f"),
                     r.get("error") or ""])
    ok = sum(1 for r in rows if r["status"] == "ok")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="generator" content="{GENERATOR}"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head>\n<body>"
            f"<h1>sweep: {escape(title)}</h1><p class=\"note\">{ok:,} of {len(rows):,} points planned; the rows are in "
            f"{escape(results)}.</p>\n<h2>MFU and time to train</h2>{charts}\n<h2>every point</h2>"
            f"{table_html(headers, body)}\n</body></html>\n")


def write_sweep_html(rows: list[dict[str, Any]], fields: list[str], path: str | Path, title: str,
                     results: str) -> Path:
    """The page to ``path`` (checked beforehand by report.html.check_report_target; written whole or not at all)."""
    p = Path(path)
    atomic_write(p, render_sweep_html(rows, fields, title, results))
    return p
