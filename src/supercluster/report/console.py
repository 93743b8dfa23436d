"""Terminal rendering of reports with rich. Formats only; computes nothing."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table as RichTable

from ..facility.ledger import FacilityReport
from ..network.report import CollectiveReport, FabricReport
from ..perf.report import StepReport, group_label
from ..reliability.report import ReliabilityReport
from ..search.claims import ClaimCheck
from ..search.rank import Ranked, SearchReport
from ..search.run_report import RunReport
from ..search.runner import SweepRun
from ..search.sweep import FIELD_PREFIX
from ..spec.training import LoRA
from ..units import (
    GALLONS_PER_M3,
    GIB,
    J_PER_KWH,
    SECONDS_PER_DAY,
    format_bytes,
    format_duration,
    format_number,
)
from ..validate.claims import ClaimsReport
from ..workload.model_report import ModelReport

PART_LABELS = {
    "compute": "compute (fwd + bwd)",
    "recompute": "activation recompute",
    "tp_comm": "tensor-parallel comm (exposed)",
    "cp_comm": "context-parallel comm (exposed)",
    "ep_comm": "expert all-to-all (exposed)",
    "pp_comm": "pipeline send/recv",
    "pipeline_bubble": "pipeline bubble",
    "dp_comm": "data-parallel comm (exposed)",
    "optimizer": "optimizer step",
    "offload": "offload to host memory (exposed)",
}


class Table(RichTable):
    """A rich table whose cells are never cut short with an ellipsis: a value wider than its column, on a console too
    narrow for the table, folds onto the next line instead (a cut number or name reads as another one)."""

    def add_column(self, header: RenderableType = "", footer: RenderableType = "", **kwargs: Any) -> None:
        kwargs.setdefault("overflow", "fold")
        super().add_column(header, footer, **kwargs)


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 configuration``, ``2 configurations`` (``many`` for an irregular plural)."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"


def id_column(table: Table, header: str, **kwargs: Any) -> None:
    """A column of identifiers a user types back (names, ids, swept values, configurations): kept on one line, the
    last column to give way to a narrow console (and then folded, never cut)."""
    table.add_column(header, no_wrap=True, **kwargs)


def _fmt_claim_value(v: float | None, unit: str) -> str:
    """A claim's figure in its own unit: 150 MW, 1.3 M gal/day, 3.5 B USD, 36.3% (fractions), 4.0x."""
    if v is None:
        return "never"
    if unit == "fraction":
        return f"{v:.1%}"
    if unit == "%":
        return f"{v:.1f}%"
    if unit == "x":
        return f"{v:,.1f}x"
    if unit == "W" and abs(v) >= 1e6:  # a power in SI: read in MW
        return _fmt_claim_value(v / 1e6, "MW")
    a = abs(v)
    number = (f"{v / 1e9:,.3g} B" if a >= 1e9 else f"{v / 1e6:,.3g} M" if a >= 1e6
              else f"{v:,.0f}" if a >= 1000 or float(v).is_integer() else f"{v:.3g}")
    return f"{number} {unit}"


_VERDICT_STYLE = {"holds": "green", "loose": "yellow", "does not hold": "red", "input": "dim"}


def claimed_range(c: ClaimCheck) -> str:
    """A claim's range as it was claimed: '150 MW', 'more than 100 MW', 'up to 150 MW', '90 – 100 days'."""
    lo, hi = (_fmt_claim_value(b, c.unit) if b is not None else None for b in (c.low, c.high))
    return lo if lo == hi and lo is not None else (f"more than {lo}" if hi is None else f"up to {hi}" if lo is None
                                                   else f"{lo} – {hi}")


def computed_value(c: ClaimCheck) -> str:
    """What supercluster computes for a claim, in the claim's unit ('never' for a run that never ends)."""
    return _fmt_claim_value(c.predicted, c.predicted_unit)


def claims_table(claims: list[ClaimCheck], title: str) -> Table:
    """Each claim: the claimed range and the computed figure in the claim's unit, the verdict and its basis."""
    t = Table(title=title, show_lines=True)
    for col in ("claim", "claimed", "computed", "verdict", "basis"):
        t.add_column(col, justify="right" if col in ("claimed", "computed") else "left")
    for c in claims:
        style = _VERDICT_STYLE[c.verdict]
        t.add_row(f"{c.claim}\n[dim]{c.source}[/dim]", claimed_range(c), computed_value(c),
                  f"[{style}]{c.verdict}[/{style}]", c.basis)
    return t


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def signed_pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1%}"


def _billions(n: float) -> str:
    return f"{format_number(n / 1e9)} B"


def render_model(m: ModelReport, console: Console, lora: LoRA | None = None) -> None:
    """The model as the run counts it: layers, parameters (and the N its MFU is computed from), published figures,
    and every assumption it rests on."""
    t = Table(title="model", show_edge=False)
    t.add_column("figure")
    t.add_column("value")
    t.add_row("name", escape(m.name) + (" [yellow](estimate)[/yellow]" if m.estimate else ""))
    t.add_row("family", escape(m.family))
    t.add_row("layers", f"{m.layers}: {m.layer_pattern}")
    t.add_row("attention", m.attention)
    published = f"; published {_billions(m.published_params)}" if m.published_params else ""
    t.add_row("parameters", f"{_billions(m.params)} ({_billions(m.params_without_input_embedding)} without the "
              f"input embedding){published}")
    published = f"; published {_billions(m.published_active_params)}" if m.published_active_params else ""
    t.add_row("active per token", f"{_billions(m.active_params)} ({_billions(m.active_params_without_input_embedding)}"
              f" without the input embedding){published}")
    convention = ("4N for the frozen weights (no weight gradient) + 6 per LoRA adapter parameter" if lora
                  else "PaLM's 6N")
    t.add_row("N for MFU", f"{_billions(m.mfu_params)}: without the input embedding and the LM head ({convention})")
    console.print(t)
    if m.assumptions:
        console.print(f"[yellow]{plural(len(m.assumptions), 'assumption')}[/yellow] the model rests on (--strict "
                      "refuses them):")
        for line in m.assumptions:
            console.print(f"  - {line}", markup=False, highlight=False)


def precision_text(r: StepReport) -> str:
    """The run's precision, an fp8 run's scaling recipe and a quantized run's LM head with it, and a dated run's
    software: 'fp8, delayed scaling, LM head in bf16, software of 2025-04-01 (attention at 0.453 of peak)', and a run
    on the flash-attn package's kernels: 'bf16, the flash-attn package (attention at 0.33 of peak)'."""
    text = f"{r.precision}, {r.fp8_recipe} scaling" if r.fp8_recipe else r.precision
    text = f"{text}, LM head in {r.lm_head_precision}" if r.lm_head_precision else text
    software = ([f"software of {r.software_date.isoformat()}"] if r.software_date is not None else []) \
        + ({"flash": ["the flash-attn package"], "flex": ["FlexAttention"]}.get(r.attention_backend, []))
    if software and r.attention_fraction is not None:
        text += f", {', '.join(software)} (attention at {r.attention_fraction:.3g} of peak)"
    return text


def parallelism_text(par: dict[str, Any]) -> str:
    """A configuration in one line: every degree, the micro-batch, the schedule, recompute, ZeRO, SP."""
    return (f"tp {par['tp']} · pp {par['pp']} · dp {par['dp']} · cp {par['cp']} · ep {par['ep']}"
            f" (etp {par['etp']}) · micro-batch {par['micro_batch']} · virtual stages {par['virtual_stages']}"
            f" · schedule {par.get('schedule', '1f1b')}"
            f" · recompute {par['recompute']} · ZeRO {par['zero_stage']}"
            f" · SP {'on' if par['sequence_parallel'] else 'off'}")


def breakdown_table(breakdown: dict[str, float], step_s: float, title: str, total: str,
                    caption: str | None = None) -> RichTable:
    """A step's parts (those above zero) with their time and share, and the step they add up to."""
    t = Table(title=title, caption=caption, show_edge=False)
    t.add_column("part")
    t.add_column("time", justify="right")
    t.add_column("share", justify="right")
    for part, seconds in breakdown.items():
        if seconds > 0:
            t.add_row(PART_LABELS.get(part, part), format_duration(seconds), f"{seconds / step_s:.1%}")
    t.add_row(f"[bold]{total}[/bold]", f"[bold]{format_duration(step_s)}[/bold]", "100%")
    return t


def render_plan(run: RunReport, console: Console, seconds: float | None = None) -> None:
    """The plan of a scenario; ``seconds``: how long the search took (measured by the caller, never reported)."""
    r = run.step
    n = run.search.candidates
    searched = f"{plural(n, 'configuration')} searched" + (f" in {format_duration(seconds)}" if seconds else "")
    console.print(f"[bold]{r.scenario}[/bold]: {r.model} on {r.cluster} "
                  f"({r.num_gpus:,} x {r.accelerator}, {precision_text(r)}"
                  + (f", LoRA rank {r.lora.rank} on {' and '.join(r.lora.targets)}, base weights frozen" if r.lora else "")
                  + ")")
    par = r.parallelism
    console.print(
        f"parallelism: {parallelism_text(par)}  [dim]({searched})[/dim]")

    if r.groups:
        replicas = group_label("dp", r.groups["dp"], par)  # the group gradients are reduced over
        g = Table(title="parallel groups on the fabric", show_edge=False,
                  caption=f"{replicas}: the weight replicas a gradient is reduced over (dp {par['dp']} × cp "
                          f"{par['cp']} = {par['dp'] * par['cp']:,} ranks)" if par["cp"] > 1 else None)
        id_column(g, "axis")
        for col in ("size", "stride", "per node", "nodes", "traffic", "algorithm"):
            g.add_column(col, justify="left" if col in ("traffic", "algorithm") else "right")
        for axis, grp in r.groups.items():
            g.add_row(group_label(axis, grp, par), f"{grp['size']:,}", f"{grp['stride']:,}", str(grp["per_node"]),
                      f"{grp['nodes']:,}", grp["crosses"], grp.get("algorithm", "-"))
        console.print(g)

    render_model(run.model, console, run.step.lora)

    t = breakdown_table(r.breakdown, r.step_time_s, "step breakdown", "step")
    if r.step_time_interval_s:
        lo, hi = r.step_time_interval_s
        t.add_row("[dim]measured step likely within[/dim]",
                  f"[dim]{format_duration(lo)} – {format_duration(hi)}[/dim]", "")
    console.print(t)

    m = Table(title="memory per GPU", show_edge=False)
    m.add_column("part")
    m.add_column("GiB", justify="right")
    for part, n_bytes in r.memory_breakdown.items():
        m.add_row(part, f"{n_bytes / GIB:.1f}")
    verdict = "[green]fits[/green]" if r.fits else "[red]does not fit[/red]"
    m.add_row("[bold]total[/bold]", f"[bold]{r.memory_per_gpu_bytes / GIB:.1f}[/bold]")
    console.print(m)
    console.print(f"{verdict}: {r.memory_per_gpu_bytes / GIB:.1f} GiB of a {r.hbm_budget_bytes / GIB:.1f} GiB "
                  f"budget ({r.hbm_bytes / GIB:.1f} GiB HBM)")
    offloaded = [name.removeprefix("offload_") for name in ("offload_optimizer", "offload_weights",
                                                             "offload_activations") if r.parallelism.get(name)]
    if offloaded:
        console.print(f"offloaded to host memory: {', '.join(offloaded)} ({r.host_memory_bytes / GIB:.1f} GiB per GPU"
                      f"){'; ' + run.search.offload if run.search.offload else ''}")

    s = Table(title="run", show_edge=False)
    s.add_column("figure")
    s.add_column("value", justify="right")
    s.add_row("parameters (total / active)", f"{r.params / 1e9:,.1f} B / {r.active_params / 1e9:,.1f} B")
    s.add_row("model FLOPs per token (PaLM)", f"{r.model_flops_per_token:.3e}")
    s.add_row("tokens per step", f"{r.tokens_per_step:,.0f}")
    s.add_row("tokens/s", f"{r.tokens_per_s:,.0f}")
    s.add_row("MFU / HFU", f"{r.mfu:.1%} / {r.hfu:.1%}"
              + (f"  [dim](MFU {r.mfu_interval[0]:.1%} – {r.mfu_interval[1]:.1%})[/dim]" if r.mfu_interval else ""))
    s.add_row("training tokens", f"{r.training_tokens:.3g}")
    s.add_row("time to train (no failures)", f"{r.time_to_train_s / SECONDS_PER_DAY:,.1f} days"
              + (f"  [dim]({r.time_to_train_interval_s[0] / SECONDS_PER_DAY:,.1f} – "
                 f"{r.time_to_train_interval_s[1] / SECONDS_PER_DAY:,.1f})[/dim]"
                 if r.time_to_train_interval_s else ""))
    rel = run.reliability
    if rel is None and run.reliability_infeasible:
        s.add_row("time to train with failures", f"[red]never: {run.reliability_note}[/red]")
    elif rel is None:
        s.add_row("time to train with failures", f"[dim]not modelled: {run.reliability_note}[/dim]")
    else:
        ttt = rel.time_to_train_s
        s.add_row("time to train with failures (P10 / P50 / P90)",
                  " / ".join(f"{ttt[k] / SECONDS_PER_DAY:,.1f}" for k in ("p10", "p50", "p90"))
                  + f" days; goodput {rel.goodput['mean']:.1%}")
        s.add_row("job mean time to failure", f"{format_duration(rel.mttf_unexpected_s)} "
                  f"({rel.interruptions_per_day:,.1f} interruptions a day; checkpoint every "
                  f"{format_duration(rel.interval_used_s)})")
        if rel.run_cost_with_failures_usd is not None and rel.run_energy_facility_with_failures_j is not None:
            s.add_row("energy and cost of the run with failures (P50)",
                      f"{rel.run_energy_facility_with_failures_j / J_PER_KWH / 1e6:,.1f} GWh; "
                      f"${rel.run_cost_with_failures_usd / 1e6:,.0f} M")
    s.add_row("GPU-hours", f"{r.gpu_hours / 1e6:,.2f} M")
    console.print(s)
    if r.uncertainty:
        u = r.uncertainty
        console.print(f"[dim]interval: {u.basis} ({', '.join(u.rows)}; {u.calibration})[/dim]")
        if u.unmatched:
            console.print(f"[yellow]no fitted calibration run has its {', '.join(u.unmatched)}: the model is untested"
                          " there[/yellow]")
    if run.facility:
        render_facility(run.facility, console)
    if run.claims:
        console.print(claims_table(run.claims, "against the public record"))


def render_fabric(r: FabricReport, console: Console) -> None:
    console.print(f"[bold]{r.cluster}[/bold]: {r.gpus:,} GPUs in {r.nodes:,} nodes, {r.transport}, "
                  f"{r.switch or 'generic switch'} (radix {r.radix} at {r.port_gbps:.0f} Gb/s)")
    for line in r.explanation:
        console.print(f"  {line}")
    t = Table(title="tiers", show_edge=False)
    id_column(t, "tier")
    for col in ("switches", "down", "up", "down:up", "links up", "GPUs per block"):
        t.add_column(col, justify="right")
    for tier in r.tiers:
        t.add_row(tier.tier, f"{tier.switches:,}", str(tier.down_ports), str(tier.up_ports),
                  f"{tier.oversubscription:g}:1", f"{tier.links_up:,}", f"{tier.gpus_per_switch_block:,}")
    console.print(t)
    s = Table(title="totals", show_edge=False)
    s.add_column("figure")
    s.add_column("value", justify="right")
    s.add_row("switches", f"{r.switches:,}")
    s.add_row("NIC links / switch-switch links", f"{r.nic_links:,} / {r.switch_links:,}")
    s.add_row("transceivers (both ends, all optical)", f"{r.transceivers:,}")
    s.add_row("bisection bandwidth", f"{r.bisection_bytes_per_s * 8 / 1e15:,.1f} Pb/s")
    for part, watts in r.power_w.items():
        s.add_row(f"power: {part}", f"{watts / 1e6:,.2f} MW")
    console.print(s)


def render_collective(r: CollectiveReport, console: Console) -> None:
    size = format_bytes(r.message_bytes)
    exact = f"{r.message_bytes:,.0f} bytes"
    console.print(f"[bold]{r.op.replace('_', '-')}[/bold] of {size}{'' if size.endswith(' B') else f' ({exact})'} "
                  f"on {plural(r.gpus, 'GPU')} of {r.cluster} ({r.per_domain} per scale-up domain over "
                  f"{plural(r.domains, 'domain')}; traffic {r.crosses})")
    console.print(f"algorithm {r.algorithm}: {format_duration(r.time_s)}, "
                  f"algbw {format_number(r.algbw_bytes_per_s / 1e9)} GB/s, "
                  f"busbw {format_number(r.busbw_bytes_per_s / 1e9)} GB/s")
    others = ", ".join(f"{a} {format_duration(t)}" for a, t in r.alternatives.items())
    console.print(f"[dim]alternatives: {others}[/dim]")


def render_facility(f: FacilityReport, console: Console) -> None:
    """The facility ledger."""
    t = Table(title=f"facility: {f.facility} (PUE {f.pue:.2f})", show_edge=False)
    t.add_column("figure")
    t.add_column("value", justify="right")
    peak, avg = f.peak, f.average
    t.add_row("IT power peak / training average",
              f"{peak.it_w / 1e6:,.1f} / {avg.it_w / 1e6:,.1f} MW")
    t.add_row("  GPUs / hosts / network / storage (average)",
              " / ".join(f"{w / 1e6:,.1f}" for w in (avg.gpus_w, avg.hosts_w, avg.network_w, avg.storage_w)) + " MW")
    t.add_row("facility power peak / average", f"{peak.facility_w / 1e6:,.1f} / {avg.facility_w / 1e6:,.1f} MW")
    sp = f.step_power
    t.add_row("IT power over a step: min / average / max",
              f"{sp.min_it_w / 1e6:,.1f} / {avg.it_w / 1e6:,.1f} / {sp.max_it_w / 1e6:,.1f} MW")
    t.add_row("  swing within a step; to a stopped job",
              f"{sp.swing_it_w / 1e6:,.1f} MW; {sp.swing_to_stopped_it_w / 1e6:,.1f} MW (stopped: "
              f"{sp.stopped_it_w / 1e6:,.1f} MW)")
    if f.homes_equivalent_peak is not None:
        t.add_row("US homes equivalent (peak / average)",
                  f"{f.homes_equivalent_peak:,.0f} / {f.homes_equivalent_average:,.0f}")
    t.add_row("energy of the run (facility)", f"{f.run_energy_facility_j / J_PER_KWH / 1e6:,.1f} GWh")
    if f.water_m3_per_day is not None and f.run_water_m3 is not None:
        t.add_row("site water", f"{f.water_m3_per_day * GALLONS_PER_M3 / 1e6:,.2f} M gal/day; "
                                f"{f.run_water_m3 * GALLONS_PER_M3 / 1e6:,.1f} M gal for the run")
        if f.water_by_month and f.water_m3_per_day_peak_month is not None:
            months = f.water_by_month
            t.add_row("  WUE by month, Jan-Dec (L/kWh IT)", " ".join(f"{m.wue_l_per_kwh:.2f}" for m in months))
            t.add_row("  wet-bulb by month, Jan-Dec (C)", " ".join(f"{m.wet_bulb_c:.0f}" for m in months))
            t.add_row("  site water in the peak month",
                      f"{f.water_m3_per_day_peak_month * GALLONS_PER_M3 / 1e6:,.2f} M gal/day")
    if f.run_co2_kg is not None and f.co2_kg_per_year is not None:
        t.add_row("CO2 of the run / per year", f"{f.run_co2_kg / 1e3:,.0f} t / {f.co2_kg_per_year / 1e3:,.0f} t")
    if f.run_generation_water_m3 is not None:
        t.add_row("water to generate the electricity (off site)",
                  f"{f.run_generation_water_m3 * GALLONS_PER_M3 / 1e6:,.1f} M gal for the run")
    capex = f.capex_usd
    if capex.get("total"):
        t.add_row("capex", f"${capex['total'] / 1e9:,.2f} B (" + ", ".join(
            f"{k} {v / 1e9:,.2f}" for k, v in capex.items() if k != "total") + ")")
    if f.cost_per_gpu_hour_usd is not None and f.run_cost_usd is not None:
        cloud = f.cloud_usd_per_gpu_hour
        t.add_row("cost per GPU-hour", f"${f.cost_per_gpu_hour_usd:,.2f}"
                  + (f" (cloud: ${cloud:,.2f})" if cloud else ""))
        t.add_row("cost of the run", f"${f.run_cost_usd / 1e6:,.0f} M")
    console.print(t)
    if f.estimates:
        console.print(f"[dim]estimates among the inputs: {', '.join(f.estimates)}[/dim]")
    if f.missing:
        console.print(f"[dim]not in the catalog (left out): {', '.join(f.missing)}[/dim]")


def render_reliability(r: ReliabilityReport, console: Console) -> None:
    """Failures, checkpoints, restarts, the simulated run and its sensitivities."""
    day = SECONDS_PER_DAY
    t = Table(title=f"failures on {r.num_gpus:,} GPUs ({r.profile})", show_edge=False)
    for col in ("cause", "scales per", "component MTBF", "units", "per day", "per run (simulated)"):
        t.add_column(col, justify="left" if col in ("cause", "scales per") else "right")
    for f in r.failures:
        mtbf = "-" if f.component_mtbf_years is None else f"{f.component_mtbf_years:,.1f} y"
        t.add_row(f.cause + (" [dim](planned)[/dim]" if f.planned else ""), f.per, mtbf, f"{f.units:,.0f}",
                  f"{f.per_day:,.2f}", f"{f.simulated_per_run:,.1f}")
    console.print(t)
    s = Table(title="checkpoints, restarts and the run", show_edge=False)
    s.add_column("figure")
    s.add_column("value", justify="right")
    s.add_row("job MTTF (unplanned / all)", f"{format_duration(r.mttf_unexpected_s)} / {format_duration(r.mttf_all_s)}")
    s.add_row("checkpoint (one copy) / per GPU", f"{format_bytes(r.checkpoint_bytes)} / "
                                                 f"{format_bytes(r.checkpoint_per_gpu_bytes)}")
    s.add_row("write / read back / snapshot", " / ".join(format_duration(x) for x in (
        r.checkpoint_write_s, r.checkpoint_read_s, r.checkpoint_snapshot_s)))
    s.add_row("training stops per checkpoint", f"{format_duration(r.checkpoint_blocking_s)} "
                                               f"({'asynchronous' if r.async_checkpoint else 'synchronous'})")
    s.add_row("restart (unplanned / planned)", f"{format_duration(r.restart_s['unexpected'])} / "
                                               f"{format_duration(r.restart_s['planned'])}")
    if r.spare_free_probability < 1.0:
        s.add_row("P(a hot spare is free)", f"{r.spare_free_probability:.1%}")
    best = "-" if r.interval_best_simulated_s is None else format_duration(r.interval_best_simulated_s)
    s.add_row("checkpoint interval: Young / Daly / best simulated",
              f"{format_duration(r.interval_young_s)} / {format_duration(r.interval_daly_s)} / {best}")
    s.add_row("interval used", f"{format_duration(r.interval_used_s)} ({r.interval_source})")
    s.add_row("time to train, no failures", f"{r.failure_free_s / day:,.1f} days")
    ttt = r.time_to_train_s
    s.add_row(f"time to train, {r.runs:,} runs (P10 / P50 / P90)",
              f"{ttt['p10'] / day:,.1f} / {ttt['p50'] / day:,.1f} / {ttt['p90'] / day:,.1f} days")
    g = r.goodput
    s.add_row("goodput (mean; P10-P90)", f"{g['mean']:.1%} ({g['p10']:.1%}-{g['p90']:.1%})")
    lost = r.lost_time_s
    s.add_row("lost per run: restarts / checkpoints / rolled-back work",
              " / ".join(f"{lost[k] / day:,.1f}" for k in ("restart", "checkpoint", "lost_work")) + " days")
    if r.energy_wasted_j is not None and r.run_energy_facility_with_failures_j is not None:
        s.add_row("energy of the run with failures (P50) / lost to failures (mean)",
                  f"{r.run_energy_facility_with_failures_j / J_PER_KWH / 1e6:,.1f} / "
                  f"{r.energy_wasted_j / J_PER_KWH / 1e6:,.1f} GWh")
    if r.run_cost_with_failures_usd is not None:
        s.add_row("cost of the run with failures (P50)", f"${r.run_cost_with_failures_usd / 1e6:,.0f} M")
    console.print(s)
    i = Table(title="goodput against the checkpoint interval", show_edge=False)
    for col in ("interval", "simulated", "Daly (closed form)"):
        i.add_column(col, justify="right")
    for p in r.interval_sensitivity:
        i.add_row(format_duration(p.interval_s), f"{p.goodput:.1%}", f"{p.daly_goodput:.1%}")
    console.print(i)
    if r.size_sensitivity:
        z = Table(title="goodput against the job size (same cluster design, per-GPU throughput held)",
                  show_edge=False)
        for col in ("GPUs", "MTTF", "interruptions/day", "interval", "goodput", "time to train"):
            z.add_column(col, justify="right")
        for z_pt in r.size_sensitivity:
            z.add_row(f"{z_pt.gpus:,}", format_duration(z_pt.mttf_h * 3600.0), f"{z_pt.interruptions_per_day:,.1f}",
                      format_duration(z_pt.interval_s), f"{z_pt.goodput:.1%}",
                      "-" if z_pt.time_to_train_days is None else f"{z_pt.time_to_train_days:,.1f} days")
        console.print(z)
    console.print(f"[dim]{'estimate; ' if r.estimate else ''}source: {r.source}[/dim]")


def _config(p: dict[str, Any]) -> str:
    """A configuration on one line: tp8 pp16 dp128 cp1 ep1/etp1 mb1 vs7 none z2."""
    return (f"tp{p['tp']} pp{p['pp']} dp{p['dp']} cp{p['cp']} ep{p['ep']}/etp{p['etp']} mb{p['micro_batch']} "
            f"vs{p['virtual_stages']} {p['recompute']} z{p['zero_stage']}")


def _ranked_table(title: str, rows: list[Ranked]) -> Table:
    t = Table(title=title, show_edge=False)
    for col in ("#", "step", "MFU", "memory", "free", "$/M tok"):
        t.add_column(col, justify="right", no_wrap=True)
    id_column(t, "configuration")
    for r in rows:
        t.add_row(str(r.rank), format_duration(r.step_time_s), f"{r.mfu:.1%}",
                  f"{r.memory_per_gpu_bytes / GIB:.1f}G",
                  f"{r.headroom_bytes / GIB:.1f}G",
                  "-" if r.cost_per_million_tokens_usd is None else f"{r.cost_per_million_tokens_usd:,.2f}",
                  _config(r.parallelism))
    return t


def render_search(r: SearchReport, console: Console, seconds: float | None = None) -> None:
    """The ranked search; ``seconds``: how long it took (measured by the caller, never reported)."""
    took = f" in {format_duration(seconds)}" if seconds else ""
    console.print(f"[bold]{r.scenario}[/bold]: {plural(r.candidates, 'configuration')} timed{took}, "
                  f"{r.fitting:,} fit in memory")
    render_model(r.model, console)
    console.print(_ranked_table(f"the {len(r.top)} fastest that fit", r.top))
    if r.pareto:
        more = f" (first {len(r.pareto)} of {r.pareto_size})" if r.pareto_size > len(r.pareto) else ""
        console.print(_ranked_table(f"Pareto front: step time vs memory headroom{more}", r.pareto))
    w = Table(title="why the best wins: the fastest alternative on each axis", show_edge=False)
    id_column(w, "axis")
    for col in ("best", "other", "slower", "where the time goes (other - best)"):
        w.add_column(col, justify="left" if col == "where the time goes (other - best)" else "right")
    for reason in r.why:
        if reason.alternative is None:
            w.add_row(reason.axis, str(reason.winner), "-", "-", "the only value that fits")
            continue
        w.add_row(reason.axis, str(reason.winner), str(reason.alternative), f"{reason.slower_by:+.1%}",
                  ", ".join(f"{k} {'+' if v > 0 else ''}{format_duration(v)}" for k, v in reason.parts.items() if v))
    console.print(w)
    if r.cost_basis:
        console.print(f"[dim]cost per token from the {r.cost_basis}[/dim]")


def render_sweep(r: SweepRun, fields: list[str], console: Console) -> None:
    t = Table(title=f"sweep: {plural(r.points, 'point')} ({r.computed:,} computed now, {r.resumed:,} resumed) in "
                    f"{format_duration(r.seconds)} on {r.backend}", show_edge=False)
    for field in fields:  # the dotted path a user sets (--set, a sweep file's grid)
        id_column(t, field, justify="right")
    for col in ("MFU", "days", "days w/ failures", "MW", "$M", "status"):
        t.add_column(col, justify="right")
    for row in r.rows:
        ok = row["status"] == "ok"

        def num(key: str, scale: float, fmt: str, row: dict[str, Any] = row) -> str:
            v = row.get(key)
            return "-" if v is None else format(v / scale, fmt)

        swept = [row.get(FIELD_PREFIX + f) for f in fields]
        t.add_row(*["-" if v is None else str(json.loads(v)) for v in swept],
                  num("mfu", 0.01, ".1f") + "%" if ok and row.get("mfu") is not None else "-",
                  num("time_to_train_s", SECONDS_PER_DAY, ",.1f"),
                  num("time_to_train_with_failures_s", SECONDS_PER_DAY, ",.1f"),
                  num("facility_average_power_w", 1e6, ",.0f"), num("run_cost_usd", 1e6, ",.0f"),
                  row["status"] if ok else f"[red]{row['status']}[/red]")
    console.print(t)
    console.print(f"[dim]results: {r.file}" + (f" and {r.parquet}" if r.parquet else "") + "[/dim]")


def render_claims(r: ClaimsReport, console: Console) -> None:
    t = claims_table(r.claims, f"the public claims, against {r.scenario}")
    console.print(t)
    s = Table(title="the supercomputers the articles name (TOP500, FP64)", show_edge=False)
    for col in ("system", "accelerators", "Rpeak published / modelled", "Rmax", "HPL power published / modelled",
                "error"):
        s.add_column(col, justify="left" if col == "system" else "right")
    for row in r.supercomputers:
        pub = "-" if row.power_published_w is None else f"{row.power_published_w / 1e6:,.1f}"
        err = "-" if row.power_rel_error is None else f"{row.power_rel_error:+.0%}"
        s.add_row(row.system + (" [yellow](estimate)[/yellow]" if row.estimate else ""),
                  f"{row.accelerators:,} x {row.accelerator}",
                  f"{row.rpeak_published_flops_per_s / 1e18:,.2f} / {row.rpeak_modelled_flops_per_s / 1e18:,.2f} EF",
                  f"{row.rmax_published_flops_per_s / 1e18:,.2f} EF", f"{pub} / {row.power_modelled_w / 1e6:,.1f} MW",
                  err)
    console.print(s)
