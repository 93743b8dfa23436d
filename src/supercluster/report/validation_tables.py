"""Terminal tables of the validation sets (published runs, the calibration fit, nccl-tests, memory, metered power):
predicted beside measured, with the errors and the gate. Formats only; computes nothing."""

from __future__ import annotations

from rich.console import Console

from ..units import GIB, format_bytes, format_duration
from ..validate.calibrate import CalibrationResult
from ..validate.collectives import CollectiveValidationResult
from ..validate.gemms import GemmValidationResult
from ..validate.memory import MemoryValidationResult
from ..validate.power import PowerValidationResult
from ..validate.runs import ValidationResult
from .console import Table, id_column, pct, plural, signed_pct


def _gate(passed: bool, failures: list[str], console: Console) -> None:
    """A validation's verdict: within tolerance, or each failure on its own line."""
    if passed:
        console.print("[green]within tolerance[/green]")
        return
    for f in failures:
        console.print(f"[red]✗[/red] {f}")


def render_validation(v: ValidationResult, console: Console) -> None:
    t = Table(title=f"validation: {v.file}", show_edge=False)
    cv = v.cv_median_abs_rel_error is not None
    id_column(t, "run")
    for col in ("tp-pp-dp-cp-ep", "mb/vs/rc/zero"):
        id_column(t, col)
    for col in ("expected s", "predicted s", "error", *(["cv error"] if cv else [])):
        t.add_column(col, justify="right")
    limit = float(v.tolerance["max_abs_rel_error"])
    for row in v.rows:
        if row.error or row.parallelism is None or row.rel_error is None:
            t.add_row(row.id, "-", "-", f"{row.expected_step_time_s:.3f}", "[red]cannot model[/red]",
                      row.error or "", *([""] if cv else []))
            continue
        p = row.parallelism
        style = "red" if abs(row.rel_error) > limit and row.excluded is None else ""
        err = f"{row.rel_error:+.1%}"
        if row.excluded:
            err += " [dim](not gated)[/dim]"
        cells = [row.id, f"{p['tp']}-{p['pp']}-{p['dp']}-{p['cp']}-{p['ep']}",
                 f"{p['micro_batch']}/{p['virtual_stages']}/{p['recompute'][:3]}/{p['zero_stage']}"
                 + ("" if row.fits else " [yellow]oom?[/yellow]"),
                 f"{row.expected_step_time_s:.3f}", f"{row.predicted_step_time_s:.3f}",
                 f"[{style}]{err}[/{style}]" if style else err]
        if cv:
            cells.append("-" if row.cv_rel_error is None else f"{row.cv_rel_error:+.1%}")
        t.add_row(*cells)
    console.print(t)

    gated = len(v.rows) - v.excluded
    console.print(f"median |error| {pct(v.median_abs_rel_error)}  max |error| {pct(v.max_abs_rel_error)}  "
                  f"(tolerance: median {float(v.tolerance.get('median_abs_rel_error', 0.1)):.0%}, "
                  f"max {limit:.0%}) over {plural(gated, 'run')}"
                  + (f"; {v.excluded} more listed but not gated (the data file says why)" if v.excluded else ""))
    if v.interval_coverage is not None:
        console.print(f"measured inside the predicted interval: {pct(v.interval_coverage)} of "
                      f"{plural(v.intervals, 'run')}")
    if cv:
        console.print(f"leave-one-source-out: median |error| {pct(v.cv_median_abs_rel_error)}  max |error| "
                      f"{pct(v.cv_max_abs_rel_error)} (knobs refitted without each of "
                      f"{plural(len(v.cv_groups), 'source')})")
    for row in v.rows:
        if row.excluded:
            console.print(f"[dim]not gated: {row.id}: {row.excluded}[/dim]")
    _gate(v.passed, v.failures, console)


def render_calibration(c: CalibrationResult, console: Console) -> None:
    k = Table(title=f"calibration on {c.file} (from {c.start})", show_edge=False)
    id_column(k, "knob")
    for col in ("before", "after"):
        k.add_column(col, justify="right")
    for name in c.fitted:
        k.add_row(name, f"{c.knobs_before[name]:.4g}", f"{c.knobs_after[name]:.4g}")
    console.print(k)
    t = Table(show_edge=False)
    id_column(t, "run")
    t.add_column("source")
    for col in ("measured s", "before", "after", "cross-validated"):
        t.add_column(col, justify="right")

    for r in c.rows:
        t.add_row(r.id, r.group, f"{r.expected_step_time_s:.3f}", signed_pct(r.before_rel_error),
                  signed_pct(r.rel_error), signed_pct(r.cv_rel_error))
    console.print(t)

    console.print(f"before: median |error| {pct(c.median_abs_rel_error_before)}, "
                  f"max {pct(c.max_abs_rel_error_before)}"
                  f"; after: median {pct(c.median_abs_rel_error)}, max {pct(c.max_abs_rel_error)}; "
                  f"cross-validated (leaving out each of "
                  f"{plural(len(c.groups), 'source' if len(c.groups) < len(c.rows) else 'run')}): median "
                  f"{pct(c.cv_median_abs_rel_error)}"
                  f", max {pct(c.cv_max_abs_rel_error)}; runs inside their own cross-validated band: "
                  f"{pct(c.cv_interval_coverage)}")
    for e in c.excluded:
        console.print(f"[dim]left out of the fit: {e.id}: {e.reason}[/dim]")
    if c.written:
        console.print(f"written: {c.written} (name it in a scenario as `calibration: {c.written}` or pass "
                      f"--calibration {c.written})")


def _fmt_metric(value: float | None, metric: str | None) -> str:
    """A collective measurement's figure: a time (the files record microseconds) or a bus bandwidth in GB/s."""
    if value is None:
        return "-"
    if metric == "time_us":
        return format_duration(value * 1e-6)
    number = f"{value:,.0f}" if value >= 1000 else f"{value:,.1f}" if value >= 10 else f"{value:.3g}"
    return f"{number} GB/s"


def render_collective_validation(v: CollectiveValidationResult, console: Console) -> None:
    limit = float(v.tolerance.get("max_abs_rel_error_at_or_above_1MiB", 0.35))
    t = Table(title=f"collective validation: {v.file}", show_edge=False)
    id_column(t, "measurement")
    id_column(t, "op")
    for col, just in (("gpus", "right"), ("size", "right"), ("algorithm published → predicted", "left"),
                      ("expected", "right"), ("predicted", "right"), ("error", "right")):
        t.add_column(col, justify=just)
    for row in v.rows:
        published = row.algorithm_published or "-"
        size = "-" if row.message_bytes is None else format_bytes(row.message_bytes)
        if any(n.startswith("peak figure") for n in row.notes):
            size += " (peak)"
        gpus = str(row.gpus) if row.gpus is not None else "-"
        if row.error or row.rel_error is None:
            t.add_row(row.id, row.op or "-", gpus, size, published, _fmt_metric(row.expected, row.metric),
                      "[yellow]cannot model[/yellow]", "-")
            continue
        large = (row.message_bytes or 0) >= 2**20
        err = f"{row.rel_error:+.1%}"
        style = "red" if large and abs(row.rel_error) > limit else ""
        t.add_row(row.id, row.op or "-", gpus, size, f"{published} → {row.algorithm_predicted}",
                  _fmt_metric(row.expected, row.metric), _fmt_metric(row.predicted, row.metric),
                  f"[{style}]{err}[/{style}]" if style else err)
    console.print(t)
    unmodelled = [row for row in v.rows if row.error or row.rel_error is None]
    if unmodelled:
        console.print(f"[bold]cannot be modelled ({plural(len(unmodelled), 'measurement')})[/bold], excluded from "
                      "the statistics:")
        for row in unmodelled:
            console.print(f"  {row.id}: {row.error or 'no prediction'}", markup=False, highlight=False)

    console.print(f"median |error| {pct(v.median_abs_rel_error)}  max |error| at >= 1 MiB "
                  f"{pct(v.max_abs_rel_error_at_or_above_1MiB)}  (tolerance: median "
                  f"{float(v.tolerance.get('median_abs_rel_error', 0.15)):.0%}, max at >= 1 MiB {limit:.0%})")
    console.print(f"{plural(len(v.rows), 'measurement')}: {v.modelled} modelled, {v.not_modelled} cannot be modelled "
                  "(listed with their reason, excluded from the statistics)")
    _gate(v.passed, v.failures, console)


def _fmt_memory(value: float | None, metric: str | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if metric == "activation_ratio" else f"{value / GIB:.2f} GiB"


def render_memory_validation(v: MemoryValidationResult, console: Console) -> None:
    limit = float(v.tolerance["max_abs_rel_error"])
    t = Table(title=f"memory validation: {v.file}", show_edge=False)
    id_column(t, "measurement")
    id_column(t, "compared")
    for col, just in (("rank", "left"), ("expected", "right"), ("predicted", "right"), ("error", "right"),
                      ("largest parts, GiB", "left")):
        t.add_column(col, justify=just)
    for row in v.rows:
        if row.error:
            t.add_row(row.id, row.metric or "-", "-", "-", "[yellow]cannot model[/yellow]", "-", "")
            continue
        if row.metric == "outcome":
            ok = row.predicted_outcome == row.expected_outcome
            t.add_row(row.id, "outcome", row.rank or "-", row.expected_outcome or "-",
                      f"{row.predicted_outcome} ({_fmt_memory(row.predicted_bytes, None)})", "ok" if ok else
                      "[red]wrong[/red]", "")
            continue
        err = f"{row.rel_error:+.1%}" if row.rel_error is not None else "-"
        style = "red" if row.rel_error is not None and abs(row.rel_error) > limit and not row.excluded else ""
        seen = row.components if row.metric == "device_used" else {
            k: b for k, b in row.components.items() if k not in ("runtime", "allocator")}  # torch counters' view
        parts = sorted(((k, b) for k, b in seen.items() if b > 0), key=lambda kv: -kv[1])[:3]
        t.add_row(row.id + (" (not gated)" if row.excluded else ""), row.metric or "-", row.rank or "-",
                  _fmt_memory(row.expected_bytes, row.metric), _fmt_memory(row.predicted_bytes, row.metric),
                  f"[{style}]{err}[/{style}]" if style else err,
                  ", ".join(f"{k} {b / GIB:.1f}" for k, b in parts))
    console.print(t)
    unmodelled = [row for row in v.rows if row.error]
    if unmodelled:
        console.print(f"[bold]cannot be modelled ({v.unmappable}, and {len(unmodelled) - v.unmappable} not gated)"
                      "[/bold]:")
        for row in unmodelled:
            mark = f" (not gated: {row.excluded})" if row.excluded else ""
            console.print(f"  {row.id}: {row.error}{mark}", markup=False, highlight=False)
    src = Table(title="by source", show_edge=False)
    id_column(src, "source")
    for col in ("rows", "median |error|", "max |error|"):
        src.add_column(col, justify="right")
    for key, stats in v.by_source.items():
        if stats["rows"]:
            src.add_row(key, str(stats["rows"]), pct(stats["median_abs_rel_error"]), pct(stats["max_abs_rel_error"]))
    console.print(src)
    console.print(f"median |error| {pct(v.median_abs_rel_error)}  max |error| {pct(v.max_abs_rel_error)}  signed "
                  f"mean {pct(v.signed_mean_rel_error)}  OOM outcomes right {v.outcomes_correct}/{v.outcomes_total}"
                  f"  (tolerance: median {float(v.tolerance['median_abs_rel_error']):.0%}, max {limit:.0%}, at most "
                  f"{int(v.tolerance['max_unmappable'])} measurements that cannot be modelled)")
    _gate(v.passed, v.failures, console)


def render_power_validation(v: PowerValidationResult, console: Console) -> None:
    """Metered training runs: node power inside each row's boundary, predicted against measured."""
    def _kw(watts: float | None) -> str:
        return "-" if watts is None else f"{watts / 1e3:,.1f}"

    limit = float(v.tolerance["max_abs_rel_error"])
    t = Table(title=f"power validation: {v.file}", show_edge=False)
    id_column(t, "run")
    for col, just in (("meter", "left"), ("nodes", "right"), ("measured kW", "right"), ("predicted kW", "right"),
                      ("error", "right"), ("GPU activity", "right"), ("steps + evals / window s", "right"),
                      ("GPUs / host / NICs / PSU kW", "right"),
                      ("interconnect kW (not scored)", "right")):
        t.add_column(col, justify=just)
    for row in v.rows:
        if row.error or row.predicted_w is None or row.expected_w is None or row.rel_error is None:
            t.add_row(row.id, "-", "-", _kw(row.expected_w), "-", "[yellow]cannot model[/yellow]", "-", "-", "-", "-")
            continue
        err = f"{row.rel_error:+.1%}"
        style = "red" if abs(row.rel_error) > limit and not row.excluded else ""
        c = row.components
        t.add_row(row.id + (" (not gated)" if row.excluded else ""), row.meter or "-", str(row.nodes or "-"),
                  _kw(row.expected_w), _kw(row.predicted_w), f"[{style}]{err}[/{style}]" if style else err,
                  f"{row.gpu_activity:.0%}" if row.gpu_activity is not None else "-",
                  "-" if row.window_s is None or row.train_s is None or row.eval_s is None
                  else f"{row.train_s:,.0f} + {row.eval_s:,.0f} / {row.window_s:,.0f}",
                  " / ".join(f"{c.get(k, 0.0) / 1e3:,.1f}" for k in ("gpus_w", "hosts_w", "nics_w", "conversion_w")),
                  _kw(c.get("network_w") or None))
    console.print(t)
    for row in v.rows:
        if row.error:
            console.print(f"  {row.id}: cannot be modelled: {row.error}", markup=False, highlight=False)
    notes = sorted({n for row in v.rows for n in row.notes if not n.startswith("interconnect")})
    for note in notes:
        console.print(f"[dim]  {note}[/dim]", highlight=False)
    meters = "  ".join(f"{m}: median {pct(s['median_abs_rel_error'])}, max {pct(s['max_abs_rel_error'])}"
                       for m, s in v.by_meter.items() if s["rows"])
    console.print(f"median |error| {pct(v.median_abs_rel_error)}  max |error| {pct(v.max_abs_rel_error)}  signed "
                  f"mean {pct(v.signed_mean_rel_error)}  ({meters}; tolerance: median "
                  f"{float(v.tolerance['median_abs_rel_error']):.0%}, max {limit:.0%})")
    _gate(v.passed, v.failures, console)


def render_gemm_validation(v: GemmValidationResult, console: Console) -> None:
    """GEMM throughputs by shape: the compute model's GEMM at the part's catalog rate against the measurement."""
    limit = float(v.tolerance["max_abs_rel_error"])
    t = Table(title=f"GEMM kernel validation: {v.file}", show_edge=False)
    id_column(t, "measurement")
    for col, just in (("part", "left"), ("format", "left"), ("groups x M x N x K", "right"),
                      ("measured TFLOPS", "right"), ("predicted TFLOPS", "right"), ("error", "right")):
        t.add_column(col, justify=just)
    for row in v.rows:
        if row.rel_error is None or row.predicted_tflops is None:
            t.add_row(row.id, row.accelerator, row.dtype, row.shape, f"{row.measured_tflops:,.0f}", "-",
                      "[yellow]cannot model[/yellow]")
            continue
        err = f"{row.rel_error:+.1%}"
        style = "red" if abs(row.rel_error) > limit and not row.excluded else ""
        t.add_row(row.id + (" (not gated)" if row.excluded else ""), row.accelerator, row.dtype, row.shape,
                  f"{row.measured_tflops:,.0f}", f"{row.predicted_tflops:,.0f}",
                  f"[{style}]{err}[/{style}]" if style else err)
    console.print(t)
    for row in v.rows:
        if row.error:
            console.print(f"  {row.id}: cannot be modelled: {row.error}", markup=False, highlight=False)
    console.print(f"median |error| {pct(v.median_abs_rel_error)}  max |error| {pct(v.max_abs_rel_error)}  signed "
                  f"mean {pct(v.signed_mean_rel_error)}  over {len(v.rows) - v.excluded} measurements "
                  f"({v.excluded} not gated; tolerance: median {float(v.tolerance['median_abs_rel_error']):.0%}, "
                  f"max {limit:.0%})")
    _gate(v.passed, v.failures, console)
