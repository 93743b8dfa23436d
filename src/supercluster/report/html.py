"""The run report as one self-contained HTML page (Plotly's JavaScript embedded once, no network needed to open it),
or its figures (report.figures) as PNG / SVG files for slides; where each goes checked before any work, and no file
of the user's overwritten. Presentation only: nothing is computed here.
"""

from __future__ import annotations

import html
import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files import atomic_write
from ..perf.report import group_label
from ..search.output import check_output_file
from ..units import GALLONS_PER_M3, GIB, J_PER_KWH, SECONDS_PER_DAY, format_duration, format_usd
from .console import PART_LABELS, claimed_range, computed_value, parallelism_text, precision_text
from .figures import (
    FIGURE_NAMES,
    MAX_DRAWN_BLOCKS,
    ReportData,
    build_report,
    figures,
    pipeline_figure,
)

__all__ = ["FIGURE_FORMATS", "FIGURE_NAMES", "GENERATOR", "MAX_DRAWN_BLOCKS", "ReportData", "build_report",
           "check_report_target", "figures", "parallelism_text", "pipeline_figure", "render_html", "write_figures",
           "write_html", "written_by_supercluster"]

#: marks a page (and a figure folder) as this tool's own: only such a file is ever replaced
GENERATOR = "supercluster report"
FIGURE_FORMATS = ("png", "svg")
_MARKER_FILE = ".supercluster-report"
_CONFIG = {"displaylogo": False, "responsive": True}


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def table_html(headers: Iterable[str], rows: Iterable[Iterable[object]], cls: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# ---------------------------------------------------------------- the page

def _figure_html(figs: dict[str, Any], key: str) -> str:
    fig = figs.get(key)
    if fig is None:
        return ""
    return str(fig.to_html(full_html=False, include_plotlyjs=False, config=_CONFIG, div_id=f"fig-{key}"))


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>\n{body}\n</section>'


def _scenario_section(data: ReportData) -> str:
    run, r = data.run, data.run.step
    searched = f"{run.search.candidates:,} configurations searched"
    lines = [f"<p><b>{escape(r.scenario)}</b>: {escape(r.model)} on {escape(r.cluster)} ({r.num_gpus:,} x {escape(r.accelerator)}, "
             f"{escape(precision_text(r))})</p>"]
    if data.description:
        lines.append(f"<p>{escape(data.description)}</p>")
    lines.append(f"<p>parallelism: <b>{escape(parallelism_text(r.parallelism))}</b></p>")
    why = ("the fastest configuration that fits in memory" if r.fits
           else "the fastest configuration (none fits in memory)")
    lines.append(f"<p>why it won: {why} of {searched}"
                 + (f"; with offload, {escape(run.search.offload)}" if run.search.offload else "") + ".</p>")
    if r.groups:
        lines.append(table_html(("axis", "size", "stride", "per node", "nodes", "traffic", "algorithm"),
                            ((group_label(axis, g, r.parallelism), f"{g['size']:,}", f"{g['stride']:,}",
                              g["per_node"], f"{g['nodes']:,}", g["crosses"], g.get("algorithm", "-"))
                             for axis, g in r.groups.items())))
    rows = [("tokens/s", f"{r.tokens_per_s:,.0f}"),
            ("MFU / HFU", f"{r.mfu:.1%} / {r.hfu:.1%}"
             + (f" (MFU {r.mfu_interval[0]:.1%} – {r.mfu_interval[1]:.1%})" if r.mfu_interval else "")),
            ("time to train (no failures)", f"{r.time_to_train_s / SECONDS_PER_DAY:,.1f} days"
             + (f" ({r.time_to_train_interval_s[0] / SECONDS_PER_DAY:,.1f} – "
                f"{r.time_to_train_interval_s[1] / SECONDS_PER_DAY:,.1f})" if r.time_to_train_interval_s else "")),
            ("GPU-hours", f"{r.gpu_hours / 1e6:,.2f} M")]
    lines.append(table_html(("figure", "value"), rows))
    return _section("scenario", "Scenario and parallelism", "\n".join(lines))


def _step_section(data: ReportData, figs: dict[str, Any]) -> str:
    r = data.run.step
    rows = [(PART_LABELS.get(k, k), format_duration(v), f"{v / r.step_time_s:.1%}")
            for k, v in r.breakdown.items() if v > 0]
    rows.append(("step", format_duration(r.step_time_s), "100%"))
    body = [_figure_html(figs, "step-time"), table_html(("part", "time", "share"), rows)]
    if r.step_time_interval_s:
        lo, hi = r.step_time_interval_s
        body.append(f"<p>measured step likely within {format_duration(lo)} – {format_duration(hi)}</p>")
    if r.uncertainty:
        u = r.uncertainty
        body.append(f'<p class="note">interval: {escape(u.basis)} ({escape(", ".join(u.rows))}; {escape(u.calibration)})</p>')
    return _section("step", "Step time", "\n".join(body))


def _memory_section(data: ReportData, figs: dict[str, Any]) -> str:
    r = data.run.step
    verdict = "fits" if r.fits else "does not fit"
    rows = [(k, f"{v / GIB:.2f}") for k, v in r.memory_breakdown.items()]
    rows.append(("total", f"{r.memory_per_gpu_bytes / GIB:.2f}"))
    body = [_figure_html(figs, "memory"), table_html(("part", "GiB"), rows),
            f"<p>{verdict}: {r.memory_per_gpu_bytes / GIB:.1f} GiB of a {r.hbm_budget_bytes / GIB:.1f} GiB budget "
            f"({r.hbm_bytes / GIB:.1f} GiB HBM)</p>"]
    return _section("memory", "Memory per GPU", "\n".join(body))


def _pipeline_section(data: ReportData, figs: dict[str, Any]) -> str:
    p = data.run.step.pipeline
    if p is None:
        return _section("pipeline", "Pipeline schedule", "<p>no pipeline figures in this report</p>")
    body = [_figure_html(figs, "pipeline")]
    if "pipeline" not in figs:
        body.append(f"<p>{2 * p.stages * p.virtual_stages * p.microbatches:,} blocks: more than "
                    f"{MAX_DRAWN_BLOCKS:,}, so the schedule is described, not drawn</p>")
    body.append(table_html(("figure", "value"), [
        ("schedule", p.schedule),
        ("stages x virtual stages", f"{p.stages} x {p.virtual_stages}"),
        ("micro-batches", f"{p.microbatches:,}"),
        ("one micro-batch on the busiest stage (forward / backward)",
         f"{format_duration(p.microbatch_s)} ({format_duration(p.forward_s)} / {format_duration(p.backward_s)})"),
        ("one micro-batch through every stage", format_duration(p.critical_path_s)),
        ("pipeline time / bubble", f"{format_duration(p.pipeline_s)} / {format_duration(p.bubble_s)}"),
    ]))
    body.append('<p class="note">drawn from the analytic schedule with every stage as the busiest one (1F1B, '
                'interleaved when there are virtual stages, ZB-H1 with its weight-gradient passes apart, DualPipe '
                'with its two directions); the step model also counts uneven stages and the stage-to-stage '
                'hops</p>')
    return _section("pipeline", "Pipeline schedule", "\n".join(body))


def _scaling_section(data: ReportData, figs: dict[str, Any]) -> str:
    rows = []
    for p in data.scaling:
        if p.note is not None:
            rows.append((f"{p.num_gpus:,}", "-", "-", "-", "-", p.note))
        else:
            rows.append((f"{p.num_gpus:,}", format_duration(p.step_time_s or 0.0), f"{p.mfu or 0.0:.1%}",
                         f"{p.tokens_per_s or 0.0:,.0f}", f"{(p.time_to_train_s or 0.0) / SECONDS_PER_DAY:,.1f}",
                         parallelism_text(p.parallelism or {})))
    body = [_figure_html(figs, "scaling"),
            table_html(("GPUs", "step", "MFU", "tokens/s", "days", "best configuration"), rows)]
    return _section("scaling", "Scaling with GPU count", "\n".join(body))


def _fabric_section(data: ReportData) -> str:
    fab = data.run.fabric
    if fab is None:
        return _section("fabric", "Fabric", "<p>no fabric in this report</p>")
    body = [f"<p>{escape(fab.cluster)}: {fab.gpus:,} GPUs in {fab.nodes:,} nodes, {escape(fab.transport)}, "
            f"{escape(fab.switch or 'generic switch')} (radix {fab.radix} at {fab.port_gbps:.0f} Gb/s)</p>"]
    body.extend(f"<p class=\"note\">{escape(line)}</p>" for line in fab.explanation)
    body.append(table_html(("tier", "switches", "down", "up", "down:up", "links up", "GPUs per block"),
                       ((t.tier, f"{t.switches:,}", t.down_ports, t.up_ports, f"{t.oversubscription:g}:1",
                         f"{t.links_up:,}", f"{t.gpus_per_switch_block:,}") for t in fab.tiers)))
    rows = [("switches", f"{fab.switches:,}"),
            ("NIC links / switch-switch links", f"{fab.nic_links:,} / {fab.switch_links:,}"),
            ("transceivers (both ends, all optical)", f"{fab.transceivers:,}"),
            ("bisection bandwidth", f"{fab.bisection_bytes_per_s * 8 / 1e15:,.2f} Pb/s")]
    rows.extend((f"power: {part}", f"{w / 1e6:,.2f} MW") for part, w in fab.power_w.items())
    body.append(table_html(("figure", "value"), rows))
    return _section("fabric", "Fabric", "\n".join(body))


def _facility_section(data: ReportData, figs: dict[str, Any]) -> str:
    f = data.run.facility
    if f is None:
        return _section("facility", "Power, water, carbon and cost",
                        "<p>the scenario names no facility (add facility: NAME)</p>")
    body = [_figure_html(figs, k) for k in ("step-power", "power", "water", "capex")]
    rows = [("IT power peak / training average", f"{f.peak.it_w / 1e6:,.2f} / {f.average.it_w / 1e6:,.2f} MW"),
            ("facility power peak / average", f"{f.peak.facility_w / 1e6:,.2f} / {f.average.facility_w / 1e6:,.2f} MW"),
            ("IT swing within a step; to a stopped job",
             f"{f.step_power.swing_it_w / 1e6:,.2f} MW; {f.step_power.swing_to_stopped_it_w / 1e6:,.2f} MW"),
            ("energy of the run (facility)", f"{f.run_energy_facility_j / J_PER_KWH / 1e6:,.2f} GWh")]
    if f.homes_equivalent_peak is not None and f.homes_equivalent_average is not None:
        rows.append(("US homes equivalent (peak / average)",
                     f"{f.homes_equivalent_peak:,.0f} / {f.homes_equivalent_average:,.0f}"))
    if f.water_m3_per_day is not None and f.run_water_m3 is not None:
        rows.append(("site water", f"{f.water_m3_per_day * GALLONS_PER_M3 / 1e6:,.3f} M gal/day; "
                                   f"{f.run_water_m3 * GALLONS_PER_M3 / 1e6:,.2f} M gal for the run"))
    if f.run_co2_kg is not None and f.co2_kg_per_year is not None:
        rows.append(("CO2 of the run / per year", f"{f.run_co2_kg / 1e3:,.0f} t / {f.co2_kg_per_year / 1e3:,.0f} t"))
    if f.cost_per_gpu_hour_usd is not None:
        cloud = f.cloud_usd_per_gpu_hour
        rows.append(("cost per GPU-hour", f"${f.cost_per_gpu_hour_usd:,.2f}" + (f" (cloud: ${cloud:,.2f})"
                                                                               if cloud else "")))
    if f.run_cost_usd is not None:
        rows.append(("cost of the run", format_usd(f.run_cost_usd)))
    body.append(table_html(("figure", "value"), rows))
    if f.estimates:
        body.append(f'<p class="note">estimates among the inputs: {escape(", ".join(f.estimates))}</p>')
    if f.missing:
        body.append(f'<p class="note">not in the catalog (left out): {escape(", ".join(f.missing))}</p>')
    return _section("facility", "Power, water, carbon and cost", "\n".join(body))


def _goodput_section(data: ReportData, figs: dict[str, Any]) -> str:
    run = data.run
    rel = run.reliability
    if rel is None:
        what = "never finishes" if run.reliability_infeasible else "not modelled"
        return _section("goodput", "Goodput", f"<p>time to train with failures: {what}: "
                                              f"{escape(run.reliability_note or '')}</p>")
    keys = ("mean", "p10", "p50", "p90")
    body = [_figure_html(figs, "goodput"),
            table_html(("", *keys), [
                ("time to train with failures (days)",
                 *(f"{rel.time_to_train_s[k] / SECONDS_PER_DAY:,.2f}" for k in keys)),
                ("goodput", *(f"{rel.goodput[k]:.1%}" for k in keys))]),
            table_html(("figure", "value"), [
                ("job mean time to failure", format_duration(rel.mttf_unexpected_s)),
                ("interruptions a day", f"{rel.interruptions_per_day:,.2f}"),
                ("checkpoint interval used", f"{format_duration(rel.interval_used_s)} ({rel.interval_source})"),
                ("simulated runs", f"{rel.runs:,} (seed {rel.seed})")])]
    if rel.size_sensitivity:
        body.append(table_html(("GPUs", "MTTF", "interruptions/day", "interval", "goodput"),
                           ((f"{z.gpus:,}", format_duration(z.mttf_h * 3600.0), f"{z.interruptions_per_day:,.1f}",
                             format_duration(z.interval_s), f"{z.goodput:.1%}") for z in rel.size_sensitivity)))
    return _section("goodput", "Goodput", "\n".join(body))


def _claims_section(data: ReportData) -> str:
    claims = data.run.claims
    if not claims:
        return _section("claims", "Public claims", "<p>the scenario states no public claims</p>")
    rows = "".join(
        f'<tr><td>{escape(c.claim)}<br><span class="note">{escape(c.source)}</span></td><td>{escape(claimed_range(c))}</td>'
        f'<td>{escape(computed_value(c))}</td><td class="verdict {escape(c.verdict.replace(" ", "-"))}">{escape(c.verdict)}</td>'
        f"<td>{escape(c.basis)}</td></tr>" for c in claims)
    table = ("<table><thead><tr><th>claim</th><th>claimed</th><th>computed</th><th>verdict</th><th>basis</th></tr>"
             f"</thead><tbody>{rows}</tbody></table>")
    return _section("claims", "Public claims", table)


def _model_section(data: ReportData) -> str:
    m = data.run.model
    rows = [("name", m.name + (" (estimate)" if m.estimate else "")), ("family", m.family),
            ("source", m.source), ("layers", f"{m.layers}: {m.layer_pattern}"), ("attention", m.attention),
            ("parameters", f"{m.params / 1e9:,.2f} B ({m.params_without_input_embedding / 1e9:,.2f} B without the "
                           "input embedding)"),
            ("active per token", f"{m.active_params / 1e9:,.2f} B"),
            ("N for MFU", f"{m.mfu_params / 1e9:,.2f} B ({m.mfu_params_basis})")]
    body = [table_html(("figure", "value"), rows)]
    if m.assumptions:
        body.append("<p>the model rests on these assumptions (--strict refuses them):</p><ul>"
                    + "".join(f"<li>{escape(a)}</li>" for a in m.assumptions) + "</ul>")
    else:
        body.append("<p>the model rests on no assumption: every figure is stated by its source</p>")
    return _section("model", "Model and assumptions", "\n".join(body))


_ESTIMATE = '<b class="estimate">estimate</b>'


def _sources_section(data: ReportData) -> str:
    rows = "".join(
        f"<tr><td>{escape(p.kind)}</td><td>{escape(p.name)}</td><td>{escape(p.source)}</td>"
        f"<td>{_ESTIMATE if p.estimate else ''}</td></tr>" for p in data.run.provenance)
    table = ("<table><thead><tr><th>kind</th><th>entry</th><th>source</th><th></th></tr></thead>"
             f"<tbody>{rows}</tbody></table>")
    return _section("sources", "Sources", table)


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } .note { color: #666; font-size: .9em; }
.verdict.holds { color: #1a7f37; } .verdict.loose { color: #9a6700; } .verdict.does-not-hold { color: #cf222e; }
.estimate { color: #9a6700; } nav a { margin-right: 1em; }
"""


def render_html(data: ReportData) -> str:
    """The whole page: sections in reading order, Plotly's JavaScript embedded once."""
    from plotly.offline import get_plotlyjs

    figs = figures(data)
    sections = [_scenario_section(data), _step_section(data, figs), _memory_section(data, figs),
                _pipeline_section(data, figs), _scaling_section(data, figs), _fabric_section(data),
                _facility_section(data, figs), _goodput_section(data, figs), _claims_section(data),
                _model_section(data), _sources_section(data)]
    nav = " ".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("scenario", "scenario"), ("step", "step"), ("memory", "memory"), ("pipeline", "pipeline"),
        ("scaling", "scaling"), ("fabric", "fabric"), ("facility", "facility"), ("goodput", "goodput"),
        ("claims", "claims"), ("model", "model"), ("sources", "sources")))
    r = data.run.step
    title = f"{r.scenario}: {r.model} on {r.num_gpus:,} x {r.accelerator}"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="generator" content="{GENERATOR}"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head>\n<body>"
            f"<h1>{escape(title)}</h1><nav>{nav}</nav>\n" + "\n".join(sections) + "\n</body></html>\n")


# ---------------------------------------------------------------- output paths

def written_by_supercluster(path: Path) -> bool:
    """Whether ``path`` is a page this tool wrote (its generator meta tag near the top)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return f'<meta name="generator" content="{GENERATOR}">'.encode() in head


def write_html(data: ReportData, path: Path) -> None:
    """The page to ``path`` (written whole or not at all)."""
    atomic_write(path, render_html(data))


def write_figures(data: ReportData, folder: Path, fmt: str) -> list[Path]:
    """Each figure as ``folder/NAME.fmt`` (folder marked as this tool's); the files written."""
    folder.mkdir(exist_ok=True)
    (folder / _MARKER_FILE).write_text(f"{GENERATOR}\n", encoding="utf-8")
    written = []
    for name, fig in figures(data).items():
        target = folder / f"{name}.{fmt}"
        try:
            fig.write_image(str(target), format=fmt, width=1100, height=fig.layout.height or 420)
        except Exception as exc:  # kaleido without a browser, or a browser that fails to start
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(f"kaleido could not draw {target.name} ({first}); {fmt.upper()} figures need a "
                             "Chromium: apt-get install chromium", field="--format") from None
        written.append(target)
    return written


KALEIDO_MISSING = ("PNG and SVG figures need the kaleido package and a Chromium: pip install kaleido; "
                   "apt-get install chromium (or use --format html)")


def _kaleido_installed() -> bool:
    return importlib.util.find_spec("kaleido") is not None


def check_report_target(path: str, fmt: str, field: str = "-o") -> Path:
    """Before any work: ``path`` as the page (``html``: a .html file that is new or one this tool wrote) or the
    folder of figures (``png`` / ``svg``: new, or one holding no figure file of the same name it did not write),
    and what drawing figures needs installed."""
    if fmt == "html":
        if not path.lower().endswith((".html", ".htm")):
            raise InputError(f"expected a .html file, got {path!r}", field=field)
        p = check_output_file(path, field=field)
        if p.exists() and not written_by_supercluster(p):
            raise InputError(f"{path} exists and was not written by supercluster: it is left as it is; choose "
                             "another file", field=field)
        return p
    if fmt not in FIGURE_FORMATS:
        raise InputError(f"unknown format {fmt!r} (expected html, png or svg)", field="--format")
    if not _kaleido_installed():
        raise InputError(KALEIDO_MISSING, field="--format")
    p = Path(path)
    if not p.exists():
        return check_output_file(path, field=field)  # a new folder: its parent must take it
    if not p.is_dir():
        raise InputError(f"{path} is a file; --format {fmt} writes the figures into a folder", field=field)
    if not os.access(p, os.W_OK | os.X_OK):
        raise InputError(f"cannot write in folder {path!r}", field=field)
    if not (p / _MARKER_FILE).is_file():
        taken = [f"{n}.{fmt}" for n in FIGURE_NAMES if (p / f"{n}.{fmt}").exists()]
        if taken:
            raise InputError(f"{path} holds {', '.join(taken)}, not written by supercluster: they are left as "
                             "they are; choose another folder", field=field)
    return p
