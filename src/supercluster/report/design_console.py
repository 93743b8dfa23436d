"""The terminal view of a design search: the front, the best design and what the next increment buys. Formats only."""

from __future__ import annotations

from rich.console import Console

from ..design.rows import DesignRow
from ..design.run import DesignResult
from ..units import SECONDS_PER_DAY, format_duration, format_usd
from .console import Table, id_column, plural, render_plan


def _days(v: float | None) -> str:
    return "-" if v is None else f"{v / SECONDS_PER_DAY:,.1f}"


def _num(v: float | None, scale: float, fmt: str) -> str:
    return "-" if v is None else format(v / scale, fmt)


def _row_cells(r: DesignRow) -> list[str]:
    return [str(r.design), r.accelerator or "-", f"{r.num_gpus:,}", str(r.domain_gpus), r.fabric,
            "-" if r.tiers is None else str(r.tiers), r.facility, _days(r.time_to_train_s),
            _days(r.time_to_train_with_failures_s), _num(r.mfu, 0.01, ".1f"), _num(r.capex_usd, 1e9, ",.2f"),
            _num(r.facility_peak_power_w, 1e6, ",.1f"), _num(r.water_m3_per_day, 1.0, ",.0f"),
            _num(r.run_co2_kg, 1e6, ",.1f"), _num(r.run_cost_with_failures_usd, 1e6, ",.0f")]


def _table(title: str) -> Table:
    t = Table(title=title, show_edge=False)
    for col in ("#", "accelerator", "GPUs", "domain", "fabric", "tiers", "facility"):
        id_column(t, col, justify="right" if col in ("#", "GPUs", "domain", "tiers") else "left")
    for col in ("days", "days w/ failures", "MFU %", "capex $B", "peak MW", "water m3/day", "CO2 kt",
                "run $M w/ failures"):
        t.add_column(col, justify="right")
    return t


def _workload_lines(r: DesignResult, console: Console) -> None:
    """A line per workload of the best design, when it runs several (or one more than once)."""
    assert r.best is not None
    ws = r.best.workloads
    if len(ws) < 2 and all(w.weight == 1 for w in ws):
        return
    console.print(f"its workloads, run in turn (the times are one run's; the plan below is {ws[0].name}'s):",
                  markup=False, highlight=False)
    for w in ws:
        p = w.parallelism
        degrees = " · ".join(f"{k} {p[k]}" for k in ("tp", "pp", "dp", "cp", "ep") if k in p)
        console.print(f"  {w.name} x{w.weight:g}: {_days(w.time_to_train_s)} days, "
                      f"{_days(w.time_to_train_with_failures_s)} with failures, MFU {w.mfu:.1%}, step "
                      f"{format_duration(w.step_time_s)}, {degrees}", markup=False, highlight=False)


def render_design(r: DesignResult, console: Console, *, top: int, seconds: float, show_plan: bool = True) -> None:
    c = r.constraints
    limits = [f"budget {format_usd(c.budget_usd)}" + (f" ({', '.join(c.budget_parts)})" if c.budget_parts else "")
              if c.budget_usd is not None else None,
              f"power {c.power_mw:g} MW" if c.power_mw is not None else None,
              f"water {c.water_m3_per_day:,.0f} m3/day" if c.water_m3_per_day is not None else None,
              f"deadline {c.deadline_days:g} days" if c.deadline_days is not None else None]
    counts = ", ".join(f"{n:,} {k}" for k, n in r.status.items())
    console.print(f"[bold]{r.name}[/bold]: {plural(r.designs, 'design')} ({counts}; "
                  f"{plural(r.shapes_planned, 'shape')} planned now, {r.resumed:,} resumed) in "
                  f"{format_duration(seconds)}; constraints: {', '.join(x for x in limits if x) or 'none'}")
    t = _table(f"Pareto front over time to train with failures, capex and peak power "
               f"({min(top, len(r.front))} of {len(r.front)}, fastest first)")
    for row in r.front[:top]:
        t.add_row(*_row_cells(row))
    console.print(t)
    if r.reasons:
        console.print("infeasible: " + "; ".join(f"{n:,} {k}" for k, n in r.reasons.items()))
    if r.best is None:
        console.print("[red]no design meets the constraints[/red]")
    else:
        b = _table("the best design under the constraints")
        b.add_row(*_row_cells(r.best.design))
        console.print(b)
        _workload_lines(r, console)
        inc = Table(title="what the next increment buys", show_edge=False)
        id_column(inc, "increment")
        inc.add_column("figure", justify="left")
        for i in r.increments:
            inc.add_row(i.name, i.note if i.applicable else f"[dim]n/a: {i.note}[/dim]")
        console.print(inc)
        if show_plan:
            render_plan(r.best.plan, console)
    console.print(f"[dim]results: {r.out} and {r.parquet}[/dim]")
