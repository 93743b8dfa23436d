"""The terminal view of a simulated iteration (sim.run.SimReport). Computes nothing."""

from __future__ import annotations

from rich.console import Console

from ..sim.contention import ContentionSummary
from ..sim.run import SimPower, SimResult
from ..units import format_duration
from .console import Table, breakdown_table, parallelism_text


def render_simulation(result: SimResult, console: Console, trace: str | None = None) -> None:
    r = result.report
    par = r.parallelism
    console.print(f"[bold]{r.scenario}[/bold]: {r.num_gpus:,} GPUs simulated ({r.detail}: "
                  f"{r.replicas_simulated} pipeline replica(s) x {r.stages} stages, {r.microbatches} micro-batches)")
    console.print(f"parallelism: {parallelism_text(par)}")
    t = breakdown_table(r.breakdown, r.step_time_s, "simulated step breakdown", "step (simulated)",
                        caption=f"parts of the busiest stage ({r.busiest_stage})")
    t.add_row("step (analytic model)", format_duration(r.analytic_step_time_s), f"{r.rel_difference:+.1%}")
    console.print(t)
    if r.contention is not None:
        _render_contention(r.contention, r.step_time_s, console)
    if r.power is not None:
        _render_power(r.power, console)
    d = r.distribution
    if d.iterations > 1:
        console.print(f"{d.iterations} iterations: min {format_duration(d.min_s)} · median "
                      f"{format_duration(d.median_s)} · p95 {format_duration(d.p95_s)} · max {format_duration(d.max_s)}")
    extra = []
    if r.jitter_sigma > 0:
        extra.append(f"jitter sigma {r.jitter_sigma:g} (seed {r.seed})")
    if r.stragglers:
        extra.append("stragglers " + ", ".join(r.stragglers))
    if extra:
        console.print(" · ".join(extra))
    console.print(f"[dim]{r.tasks:,} tasks, {r.events:,} events per iteration; "
                  f"{result.events_per_s:,.0f} events/s[/dim]")
    if trace:
        console.print(f"trace written to {trace} (open in ui.perfetto.dev)")


def _render_contention(c: ContentionSummary, step_s: float, console: Console) -> None:
    where = f"routing {c.routing}" + (f", ECMP seed {c.seed}" if c.routing == "ecmp" else "")
    if c.slow_links:
        where += "; slow links " + ", ".join(c.slow_links)
    console.print(f"fabric contention ({where}), per axis: its most loaded links, its flows all at once over one "
                  "group alone, what the analytic model already charges, their ratio applied")
    t = Table(show_edge=False)
    for name in ("axis", "busiest links", "flows", "charged", "applied"):
        t.add_column(name, justify="left" if name in ("axis", "busiest links") else "right")
    for axis, flow in c.flow_factors.items():
        t.add_row(axis, c.bottlenecks.get(axis, "-"), f"{flow:.2f}x", f"{c.analytic_factors[axis]:.2f}x",
                  f"{c.applied_factors[axis]:.2f}x")
    console.print(t)
    base = c.uncontended_step_time_s
    console.print(f"simulated step without contention {format_duration(base)}, with it {format_duration(step_s)} "
                  f"({step_s / base - 1:+.1%})")


def _render_power(p: SimPower, console: Console) -> None:
    def mw(w: float) -> str:
        return f"{w / 1e6:,.1f}"

    console.print(f"power over the simulated step, IT: min {mw(p.min_it_w)} · average {mw(p.average_it_w)} · max "
                  f"{mw(p.max_it_w)} MW, swing {mw(p.swing_it_w)} MW (a stopped job: {mw(p.stopped_it_w)} MW)")
    console.print(f"  at the facility (x PUE): min {mw(p.min_facility_w)} · average {mw(p.average_facility_w)} · max "
                  f"{mw(p.max_facility_w)} MW, swing {mw(p.swing_facility_w)} MW (stopped: "
                  f"{mw(p.stopped_facility_w)} MW)")
