"""The run report's figures (Plotly), each read from the typed RunReport, the GPU-count sweep (search.scaling) and
the pipeline schedule perf.schedule draws; nothing is computed here. The HTML page (report.html) embeds them, and
``--format png | svg`` writes them one file each."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from ..perf.schedule import pipeline_schedule
from ..search.plan import plan
from ..search.run_report import RunReport
from ..search.scaling import ScalingPoint, gpu_count_sweep
from ..spec.calibration import Calibration
from ..spec.scenario import Scenario
from ..units import GALLONS_PER_M3, GIB, SECONDS_PER_DAY, format_duration
from .console import PART_LABELS

MAX_DRAWN_BLOCKS = 20_000  # a pipeline with more blocks than this is described, not drawn
#: every figure's file stem, in page order
FIGURE_NAMES = ("step-time", "memory", "pipeline", "scaling", "step-power", "power", "water", "capex", "goodput")


@dataclass(frozen=True)
class ReportData:
    """What the page shows: the run, the scenario's description and the GPU-count sweep."""

    run: RunReport
    scaling: list[ScalingPoint]
    description: str | None = None


def build_report(s: Scenario, calibration: Calibration | None = None) -> ReportData:
    """Plan the scenario and the GPU-count sweep around it: everything the page shows."""
    run = plan(s, calibration, interval_sensitivity=True)
    return ReportData(run=run, scaling=gpu_count_sweep(s, calibration, given=run.step), description=s.description)


# ---------------------------------------------------------------- figures (plotly imported only when drawing)

def _go() -> Any:
    import plotly.graph_objects as go

    return go


def _layout(fig: Any, title: str, **kwargs: Any) -> Any:
    fig.update_layout(title=title, template="plotly_white", margin={"l": 60, "r": 20, "t": 60, "b": 50},
                      height=kwargs.pop("height", 380), **kwargs)
    return fig


def step_figure(run: RunReport) -> Any:
    """The step's parts as bars, the step itself with the interval its measured value should lie in."""
    go = _go()
    r = run.step
    parts = [(PART_LABELS.get(k, k), v) for k, v in r.breakdown.items() if v > 0]
    fig = go.Figure()
    fig.add_bar(name="parts", x=[p[0] for p in parts], y=[p[1] for p in parts],
                text=[format_duration(p[1]) for p in parts], textposition="outside")
    error = None
    if r.step_time_interval_s:
        lo, hi = r.step_time_interval_s
        error = {"type": "data", "symmetric": False, "array": [hi - r.step_time_s],
                 "arrayminus": [r.step_time_s - lo]}
    fig.add_bar(name="step", x=["step"], y=[r.step_time_s], error_y=error, text=[format_duration(r.step_time_s)],
                textposition="inside")
    return _layout(fig, f"Step time {format_duration(r.step_time_s)}", yaxis_title="seconds", showlegend=False)


def memory_figure(run: RunReport) -> Any:
    """Memory per GPU by component, stacked, against the HBM budget and the HBM."""
    go = _go()
    r = run.step
    fig = go.Figure()
    for part, n_bytes in r.memory_breakdown.items():
        if n_bytes > 0:
            fig.add_bar(name=part, x=["per GPU"], y=[n_bytes / GIB], hovertemplate="%{y:.2f} GiB")
    fig.add_hline(y=r.hbm_budget_bytes / GIB, line_dash="dash", annotation_position="bottom right",
                  annotation_text=f"budget {r.hbm_budget_bytes / GIB:.1f} GiB")
    fig.add_hline(y=r.hbm_bytes / GIB, annotation_text=f"HBM {r.hbm_bytes / GIB:.1f} GiB")
    return _layout(fig, f"Memory per GPU: {r.memory_per_gpu_bytes / GIB:.1f} GiB", barmode="stack",
                   yaxis_title="GiB", width=None)


# by kind and phase; a backward split in two (ZB-H1, DualPipe) shows its input-gradient pass in the backward's
# colours and its weight-gradient pass in green (ZB-H1's fill the cool-down); DualPipe's direction 1 hatched
_BLOCK_COLOURS = {("forward", "warm-up"): "#9ecae1", ("forward", "steady"): "#3182bd",
                  ("backward", "warm-up"): "#e6550d",
                  ("backward", "steady"): "#e6550d", ("backward", "cool-down"): "#fdae6b",
                  ("backward_input", "warm-up"): "#e6550d", ("backward_input", "steady"): "#e6550d",
                  ("backward_input", "cool-down"): "#fdae6b",
                  ("backward_weight", "warm-up"): "#31a354", ("backward_weight", "steady"): "#31a354",
                  ("backward_weight", "cool-down"): "#a1d99b"}


def pipeline_figure(run: RunReport) -> Any | None:
    """One iteration's pipeline: each stage's forward and backward blocks (warm-up, steady 1F1B, cool-down)."""
    p = run.step.pipeline
    if p is None or 2 * p.stages * p.virtual_stages * p.microbatches > MAX_DRAWN_BLOCKS:
        return None
    go = _go()
    blocks = pipeline_schedule(p)
    fig = go.Figure()
    dual = p.schedule == "dualpipe"
    for ((kind, phase), colour), direction in itertools.product(_BLOCK_COLOURS.items(), (0, 1)):
        mine = [b for b in blocks if b.kind == kind and b.phase == phase and b.direction == direction]
        if not mine:
            continue
        name = f"{phase} {kind.replace('_', ' ')}" + (f" (direction {direction})" if dual else "")
        fig.add_bar(name=name, orientation="h", y=[f"stage {b.stage}" for b in mine],
                    x=[b.end_s - b.start_s for b in mine], base=[b.start_s for b in mine], marker_color=colour,
                    marker_pattern_shape="/" if direction else "",
                    opacity=0.6 if dual else 1.0,  # a DualPipe pair: two blocks over the same span
                    customdata=[[b.microbatch, b.chunk] for b in mine],
                    hovertemplate="micro-batch %{customdata[0]}, chunk %{customdata[1]}<br>%{base:.4g} s"
                                  "<extra>%{fullData.name}</extra>")
    fig.update_yaxes(autorange="reversed")
    title = (f"Pipeline of one iteration ({p.schedule}): {p.stages} stages x {p.virtual_stages} virtual, "
             f"{p.microbatches} "
             f"micro-batches, bubble {format_duration(p.bubble_s)}")
    return _layout(fig, title, barmode="overlay", xaxis_title="seconds", height=max(260, 40 * p.stages + 120))


def scaling_figure(data: ReportData) -> Any:
    """MFU, tokens/s and time-to-train against GPU count."""
    go = _go()
    from plotly.subplots import make_subplots

    pts = [p for p in data.scaling if p.note is None]
    fig = make_subplots(rows=1, cols=3, subplot_titles=("MFU", "tokens/s", "time to train (days)"))
    x = [p.num_gpus for p in pts]
    fig.add_trace(go.Scatter(x=x, y=[p.mfu for p in pts], mode="lines+markers", name="MFU"), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=[p.tokens_per_s for p in pts], mode="lines+markers", name="tokens/s"),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=x, y=[(p.time_to_train_s or 0.0) / SECONDS_PER_DAY for p in pts],
                             mode="lines+markers", name="days"), row=1, col=3)
    fig.update_xaxes(type="log", title_text="GPUs")
    fig.update_yaxes(tickformat=".0%", row=1, col=1)
    return _layout(fig, f"Against GPU count (this run: {data.run.step.num_gpus:,})", showlegend=False)


def step_power_figure(run: RunReport) -> Any | None:
    """The cluster's IT draw through one step, phase by phase."""
    f = run.facility
    if f is None:
        return None
    go = _go()
    fig = go.Figure()
    fig.add_bar(x=[f"{ph.phase} ({format_duration(ph.seconds)})" for ph in f.step_power.phases],
                y=[ph.it_w / 1e6 for ph in f.step_power.phases],
                customdata=[ph.seconds for ph in f.step_power.phases],
                hovertemplate="%{y:.2f} MW for %{customdata:.3g} s<extra></extra>", name="IT draw")
    fig.add_hline(y=f.average.it_w / 1e6, line_dash="dash", annotation_text="average")
    fig.add_hline(y=f.peak.it_w / 1e6, annotation_text="peak")
    return _layout(fig, "IT power through a step", yaxis_title="MW")


def power_figure(run: RunReport) -> Any | None:
    """Peak and average power by part, IT and facility."""
    f = run.facility
    if f is None:
        return None
    go = _go()
    names = ("gpus_w", "hosts_w", "network_w", "storage_w", "it_w", "facility_w")
    labels = ["GPUs", "hosts", "network", "storage", "IT", "facility"]
    fig = go.Figure()
    for label, b in (("peak", f.peak), ("average", f.average)):
        fig.add_bar(name=label, x=labels, y=[getattr(b, n) / 1e6 for n in names])
    return _layout(fig, f"Power, peak and training average (PUE {f.pue:.2f})", yaxis_title="MW")


def water_figure(run: RunReport) -> Any | None:
    """Site water per day, month by month."""
    f = run.facility
    if f is None or not f.water_by_month:
        return None
    go = _go()
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    fig = go.Figure()
    fig.add_bar(x=[months[m.month - 1] for m in f.water_by_month],
                y=[(m.water_m3_per_day or 0.0) * GALLONS_PER_M3 / 1e6 for m in f.water_by_month],
                customdata=[m.wue_l_per_kwh for m in f.water_by_month],
                hovertemplate="%{y:.3f} M gal/day (WUE %{customdata:.2f} L/kWh)<extra></extra>")
    return _layout(fig, "Site water by month", yaxis_title="million US gallons per day")


def capex_figure(run: RunReport) -> Any | None:
    f = run.facility
    if f is None or not f.capex_usd.get("total"):
        return None
    go = _go()
    items = [(k, v) for k, v in f.capex_usd.items() if k != "total"]
    fig = go.Figure()
    fig.add_bar(x=[k for k, _ in items], y=[v / 1e9 for _, v in items])
    return _layout(fig, f"Capex ${f.capex_usd['total'] / 1e9:,.2f} B", yaxis_title="billion USD")


def goodput_figure(run: RunReport) -> Any | None:
    """Goodput against the checkpoint interval: simulated and Daly's closed form."""
    rel = run.reliability
    if rel is None or not rel.interval_sensitivity:
        return None
    go = _go()
    pts = rel.interval_sensitivity
    x = [p.interval_s / 60.0 for p in pts]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=[p.goodput for p in pts], mode="lines+markers", name="simulated"))
    fig.add_trace(go.Scatter(x=x, y=[p.daly_goodput for p in pts], mode="lines", name="Daly (closed form)"))
    fig.add_vline(x=rel.interval_used_s / 60.0, line_dash="dash")
    fig.update_xaxes(type="log", title_text="checkpoint interval (minutes)")
    fig.update_yaxes(tickformat=".1%")
    return _layout(fig, f"Goodput against the checkpoint interval (dashed: the one used, "
                        f"{format_duration(rel.interval_used_s)})")


def figures(data: ReportData) -> dict[str, Any]:
    """Every figure of the report by file stem, in page order (those the report has data for)."""
    run = data.run
    drawn = {
        "step-time": step_figure(run),
        "memory": memory_figure(run),
        "pipeline": pipeline_figure(run),
        "scaling": scaling_figure(data),
        "step-power": step_power_figure(run),
        "power": power_figure(run),
        "water": water_figure(run),
        "capex": capex_figure(run),
        "goodput": goodput_figure(run),
    }
    return {k: v for k, v in drawn.items() if v is not None}
