"""The command line: parse, call one library function, format. Knobs live in specs, not here."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from . import __version__
from .design.run import run_design
from .design.spec import load_design
from .errors import InfeasibleError, InputError, SuperclusterError
from .network import ALGORITHMS, OPS
from .network.report import MAX_MESSAGE_BYTES, collective_report, fabric_report
from .reliability.report import DEFAULT_RUNS, MAX_RUNS
from .report import (
    render_calibration,
    render_claims,
    render_collective,
    render_collective_validation,
    render_fabric,
    render_facility,
    render_gemm_validation,
    render_memory_validation,
    render_plan,
    render_power_validation,
    render_reliability,
    render_search,
    render_sweep,
    render_validation,
)
from .report.console import Table, id_column
from .report.design_console import render_design
from .report.html import build_report, check_report_target, write_figures, write_html
from .report.plot import check_plot_target, plot_sweep
from .report.sim_console import render_simulation
from .report.sweep_html import write_sweep_html
from .search import plan as plan_scenario
from .search import rank
from .search.output import check_output_file
from .search.plan import best_step, run_reliability
from .search.runner import run_sweep
from .search.sim_power import with_power
from .search.sweep import MAX_POINTS, load_sweep
from .sim.contended import simulate_contended
from .sim.fabric import ROUTINGS, check_routing
from .sim.run import MAX_FULL_GPUS, check_detail
from .sim.run import simulate as run_simulation
from .sim.slowlink import parse_slow_link
from .sim.trace import check_trace_target, write_trace
from .sim.variability import parse_straggler
from .spec import catalog as catalog_data
from .spec import load_scenario
from .spec.calibration import Calibration, default_calibration, load_calibration
from .spec.load import load_cluster
from .units import format_bytes, format_duration, parse_bytes
from .validate import validate_collectives, validate_file, validation_kind
from .validate.calibrate import calibrate as fit_calibration
from .validate.calibrate import check_writable, with_cross_validation, write_calibration
from .validate.claims import MEMPHIS, check_claims_file
from .validate.gemms import validate_gemms
from .validate.memory import validate_memory
from .validate.power import validate_power

MAX_TOP = 10_000
MAX_SIM_ITERATIONS = 10_000
T = TypeVar("T")
STRICT_OPTION = typer.Option("--strict", help="refuse a model that rests on assumptions (what its config.json or "
                             "catalog entry does not state; plan lists them)")
CALIBRATION_OPTION = typer.Option("--calibration", help="a calibration file written by `supercluster calibrate` "
                                  "(default: the scenario's, else the shipped one)")


def _resumable(bar: Any, target: Any, what: str, run: Callable[[], T]) -> T:
    """Run a resumable search (sweep, design) under its progress bar; Ctrl-C says where the work done is, exit 130."""
    try:
        with bar:
            return run()
    except KeyboardInterrupt:
        _err.print(f"interrupted: the {what} done are in {target}; run the same command to resume")
        raise typer.Exit(130) from None


def _check_workers(workers: int | None) -> None:
    if workers is not None and workers < 1:
        raise InputError(f"expected at least 1 worker, got {workers}", field="--workers")


def _located(file: str, work: Callable[[], T]) -> T:
    """``work()``, its InfeasibleError located in ``file`` (the scenario it arose from)."""
    try:
        return work()
    except InfeasibleError as exc:
        raise exc.located(file=file) from None


def _calibration(path: str | None) -> Calibration | None:
    """The calibration a --calibration FILE holds (None: the scenario's or the shipped one)."""
    return load_calibration(str(path)) if path else None

PIPE_WIDTH = 200  #: columns of output sent to a pipe or a file: a table is never squeezed to a terminal's 80


def _reader_gone() -> NoReturn:
    """The reader of standard output went away (``supercluster plan ... | head -1``): stop quietly with exit code 0;
    what Python still flushes on the way out goes to /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass
    raise SystemExit(0)


class _Stdout(Console):
    """Standard output as rich writes it, ending quietly when the reader closes the pipe."""

    def on_broken_pipe(self) -> None:
        _reader_gone()


def _stdout() -> Console:
    """A console on standard output: a terminal's own width; a pipe or a file at least PIPE_WIDTH columns wide, so
    that names, ids and sources are not cut to fit 80 columns."""
    console = _Stdout()
    if not console.is_terminal:
        console.width = max(console.width, PIPE_WIDTH)
    return console


def _json_default(value: Any) -> Any:
    """What JSON has no type for: a date (a run's software_date) as ISO 8601 text."""
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _print_json(data: Any, **kwargs: Any) -> None:
    """Data as JSON on standard output (strict: no NaN or Infinity unless asked; dates as ISO 8601)."""
    kwargs.setdefault("allow_nan", False)
    kwargs.setdefault("default", _json_default)
    try:
        print(json.dumps(data, indent=2, **kwargs), flush=True)
    except BrokenPipeError:
        _reader_gone()


def _version(value: bool) -> None:
    if value:
        print(f"supercluster {__version__}")
        raise typer.Exit()


app = typer.Typer(add_completion=False, no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]},
                  help="supercluster: a digital twin of AI training superclusters.")
_err = Console(stderr=True)


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """supercluster: a digital twin of AI training superclusters."""


@app.command()
def simulate(
    scenario: Annotated[str, typer.Argument(help="scenario file (YAML, TOML or JSON)")],
    trace: Annotated[str | None, typer.Option("--trace", help="write a Chrome/Perfetto trace (JSON) to FILE")] = None,
    detail: Annotated[str, typer.Option("--detail", help="symmetric (one replica per class of equivalent ranks) or "
                                        f"full (every pipeline replica, up to {MAX_FULL_GPUS:,} GPUs)")] = "symmetric",
    seed: Annotated[int, typer.Option("--seed", help="seed of the speed jitter and of ECMP's hash")] = 0,
    iterations: Annotated[int, typer.Option("--iterations", help="iterations to simulate (the distribution "
                                            "of their step times is reported)")] = 1,
    straggler: Annotated[list[str] | None, typer.Option("--straggler", help="a slow GPU or node: gpu=1234:0.8 or "
                                                        "node=12:0.8 (runs at 80% speed); repeatable")] = None,
    jitter: Annotated[float, typer.Option("--jitter", help="sigma of each GPU's lognormal compute-time "
                                          "factor (0: none)")] = 0.0,
    contention: Annotated[bool, typer.Option("--contention", help="slow each axis's communication by the "
                                             "fabric's contention: every group's flows at once on the fat tree, "
                                             "links shared max-min fairly")] = False,
    routing: Annotated[str | None, typer.Option("--routing", help=f"{' or '.join(ROUTINGS)} (with --contention; "
                                                "default adaptive)")] = None,
    slow_link: Annotated[list[str] | None, typer.Option("--slow-link", help="a slow link: node=12:0.5 (node 12's "
                                                        "NICs at 50%), leaf=3:0.5 or pod=1:0.5 (its uplinks); "
                                                        "repeatable; turns on --contention")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a field: key.path=value")] = None,
    calibration: Annotated[str | None, CALIBRATION_OPTION] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Simulate one iteration op by op (the configuration plan picks, or the scenario's fixed parallelism), beside
    the analytic model's step time; with jitter and stragglers, what they cost; with a facility, the cluster's draw
    over the step (lowest, average, highest, swing; the trace's "cluster power (MW)" track)."""
    if not 1 <= iterations <= MAX_SIM_ITERATIONS:
        raise InputError(f"expected 1 to {MAX_SIM_ITERATIONS:,} iterations, got {iterations}", field="--iterations")
    if not 0.0 <= jitter <= 1.0:
        raise InputError(f"expected a sigma in [0, 1], got {jitter:g}", field="--jitter")
    if routing is not None:
        try:
            check_routing(routing)
        except ValueError as exc:
            raise InputError(str(exc), field="--routing") from None
        if not (contention or slow_link):
            raise InputError("routing applies to the fabric's flows: add --contention", field="--routing")
    if trace:
        check_trace_target(trace)
    s = load_scenario(scenario, set_ or [])
    stragglers = tuple(parse_straggler(x, s) for x in straggler or [])
    slow_links = tuple(parse_slow_link(x, s) for x in slow_link or [])
    check_detail(detail, s.cluster.num_gpus)
    cal = s.calibrated(_calibration(calibration))
    step, _ = _located(scenario, lambda: best_step(s, cal))
    if contention or slow_links:
        result = _located(scenario, lambda: simulate_contended(
            s, cal, step.parallelism, routing=routing or "adaptive", slow_links=slow_links,  # type: ignore[arg-type]
            detail=detail, seed=seed, iterations=iterations, jitter_sigma=jitter,  # type: ignore[arg-type]
            stragglers=stragglers))
    else:
        result = _located(scenario, lambda: run_simulation(
            s, cal, step.parallelism, detail=detail, seed=seed, iterations=iterations, jitter_sigma=jitter,  # type: ignore[arg-type]
            stragglers=stragglers))
    result = _located(scenario, lambda: with_power(s, result))
    if trace:
        c = result.report.contention
        write_trace(trace, result.graph, c.link_tracks() if c else None, result.report.busiest_stage,
                    result.power_trace)
    if as_json:
        _print_json(result.report.model_dump())
    else:
        render_simulation(result, _stdout(), trace)


@app.command()
def plan(
    scenario: Annotated[str, typer.Argument(help="scenario file (YAML, TOML or JSON)")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a field: key.path=value")] = None,
    calibration: Annotated[str | None, CALIBRATION_OPTION] = None,
    strict: Annotated[bool, STRICT_OPTION] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """The model as it is counted (with its assumptions), best parallelism, step breakdown, memory, MFU and
    time-to-train of a scenario, with the interval the measured figures should lie in."""
    s = load_scenario(scenario, set_ or [], strict=strict)
    start = time.perf_counter()
    report = _located(scenario, lambda: plan_scenario(s, _calibration(calibration)))
    if as_json:
        _print_json(report.model_dump())
    else:
        render_plan(report, _stdout(), seconds=time.perf_counter() - start)


@app.command()
def report(
    scenario: Annotated[str, typer.Argument(help="scenario file (YAML, TOML or JSON)")],
    out: Annotated[str, typer.Option("-o", "--out", help="the page (.html), or the folder the figures go in "
                                                         "(--format png | svg)")],
    fmt: Annotated[str, typer.Option("--format", help="html (one self-contained page) | png | svg (each figure "
                                                      "a file, for slides)")] = "html",
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a field: key.path=value")] = None,
    calibration: Annotated[str | None, CALIBRATION_OPTION] = None,
    strict: Annotated[bool, STRICT_OPTION] = False,
) -> None:
    """A shareable report of the scenario's run: parallelism, step time, memory, pipeline, scaling with GPU count,
    fabric, power, water, carbon, cost, goodput, the public claims and every source, as one HTML page that opens
    without a network."""
    target = check_report_target(out, fmt)  # before any work
    s = load_scenario(scenario, set_ or [], strict=strict)
    data = _located(scenario, lambda: build_report(s, _calibration(calibration)))
    if fmt == "html":
        write_html(data, target)
        print(f"report: {out}")
    else:
        written = write_figures(data, target, fmt)
        print(f"{len(written)} figures in {out}: {', '.join(p.name for p in written)}")


@app.command()
def search(
    scenario: Annotated[str, typer.Argument(help="scenario file (YAML, TOML or JSON)")],
    top: Annotated[int, typer.Option("--top", help="how many of the fastest configurations to list")] = 10,
    pareto: Annotated[bool, typer.Option("--pareto", help="also the Pareto front over step time, memory headroom "
                                                          "and cost per token")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a field: key.path=value")] = None,
    calibration: Annotated[str | None, CALIBRATION_OPTION] = None,
    strict: Annotated[bool, STRICT_OPTION] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """The K fastest parallel configurations that fit, the Pareto front, and why the best one wins."""
    if not 1 <= top <= MAX_TOP:
        raise InputError(f"expected 1 to {MAX_TOP:,}, got {top}", field="--top")
    cal = _calibration(calibration)
    s = load_scenario(scenario, set_ or [], strict=strict)
    start = time.perf_counter()
    report = _located(scenario, lambda: rank(s, top=top, pareto=pareto, calibration=cal))
    if as_json:
        _print_json(report.model_dump())
    else:
        render_search(report, _stdout(), seconds=time.perf_counter() - start)


# The options of a command that runs on a process pool or Ray (sweep, design)
BackendOption = Annotated[str, typer.Option("--backend", help="local (a process pool) | ray")]
AddressOption = Annotated[str | None, typer.Option("--address", help="HOST:PORT of a running Ray cluster "
                                                                     "(default: start a local one)")]
WorkersOption = Annotated[int | None, typer.Option("--workers", help="parallel workers (default: the CPU count)")]


@app.command()
def sweep(
    file: Annotated[str, typer.Argument(help="sweep file: a base scenario and a grid (or list) of field values")],
    out: Annotated[str | None, typer.Option("--out", help="results file (DuckDB; a Parquet copy is written beside "
                                                          "it when complete); default: the sweep's name.duckdb")]
    = None,
    backend: BackendOption = "local",
    address: AddressOption = None,
    workers: WorkersOption = None,
    yes: Annotated[bool, typer.Option("--yes", help=f"run a grid of more than {MAX_POINTS:,} points")] = False,
    plot: Annotated[str | None, typer.Option("--plot", help="draw MFU and time-to-train to this PNG")] = None,
    report_to: Annotated[str | None, typer.Option("--report", help="write the finished sweep as one "
                                                                   "self-contained HTML page")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the rows as JSON")] = False,
) -> None:
    """Plan every point of a grid of scenario variants for its best configuration; one row per point with the
    headline figures, in DuckDB (and Parquet). An interrupted sweep resumes where it stopped."""
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    _check_workers(workers)
    if plot is not None:  # every file the sweep writes is checked before it starts (--out: by run_sweep)
        check_plot_target(plot)
    if report_to is not None:
        check_report_target(report_to, "html", field="--report")
    sw = load_sweep(file)
    if len(sw.points) > MAX_POINTS and not yes:
        raise InputError(f"{len(sw.points):,} points is more than {MAX_POINTS:,}; add --yes to run them",
                         file=file, field="grid")
    target = Path(out) if out else Path(f"{sw.name}.duckdb")
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=_err,
                   disable=not _err.is_terminal)
    task = bar.add_task(sw.name, total=len(sw.points), rate="")
    t0 = time.perf_counter()
    first: list[int] = []

    def progress(done: int, total: int) -> None:
        if not first:
            first.append(done)
        new = done - first[0]
        elapsed = max(time.perf_counter() - t0, 1e-9)
        rate = new / elapsed
        bar.update(task, completed=done, rate=f"{rate:.2f} points/s")
        if not _err.is_terminal and new:  # logs and pipes: a plain line per point
            eta = (total - done) / rate if rate > 0 else float("inf")
            print(f"{sw.name}: {done}/{total} points, {rate:.2f} points/s, ETA {format_duration(eta)}",
                  file=sys.stderr, flush=True)

    result = _resumable(bar, target, "points", lambda: run_sweep(
        sw, target, backend=backend, workers=workers, address=address, progress=progress))  # type: ignore[arg-type]
    if plot:
        try:
            plot_sweep(result.rows, sw.fields, plot, title=sw.name)
        except OSError as exc:  # the folder went away while the sweep ran
            raise InputError(f"cannot write {plot} ({exc.strerror or exc}); the results are in {result.file}",
                             field="--plot") from None
    if report_to:
        try:
            write_sweep_html(result.rows, sw.fields, report_to, title=sw.name, results=str(result.file))
        except OSError as exc:  # the folder went away while the sweep ran
            raise InputError(f"cannot write {report_to} ({exc.strerror or exc}); the results are in {result.file}",
                             field="--report") from None
    if as_json:
        _print_json(result.model_dump(), default=str)
    else:
        console = _stdout()
        render_sweep(result, sw.fields, console)
        if plot:
            console.print(f"plot: {plot}")


@app.command()
def design(
    file: Annotated[str, typer.Argument(help="design file: a workload, a space of clusters and constraints")],
    top: Annotated[int, typer.Option("--top", help="rows of the Pareto front to list (the JSON holds all)")] = 10,
    out: Annotated[str | None, typer.Option("--out", help="results file, one row per design (DuckDB; a Parquet "
                                                          "copy beside it when complete); default: NAME.duckdb")]
    = None,
    backend: BackendOption = "local",
    address: AddressOption = None,
    workers: WorkersOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print front, best (with its plan) and increments as "
                                                         "JSON")] = False,
) -> None:
    """Which cluster to build: every design of a space (accelerator, GPU count, scale-up domain, fabric, facility,
    storage) planned for its best parallelism and costed; the Pareto front over time to train with failures, capex
    and peak power, the best design under the budget, power, water and deadline, and what the next increment
    buys. An interrupted search resumes where it stopped."""
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    _check_workers(workers)
    if not 1 <= top <= MAX_TOP:
        raise InputError(f"expected 1 to {MAX_TOP:,}, got {top}", field="--top")
    spec = load_design(file)
    target = Path(out) if out else Path(f"{spec.name}.duckdb")
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=_err, disable=not _err.is_terminal)
    task = bar.add_task(spec.name, total=spec.size)
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        bar.update(task, completed=done)
        if not _err.is_terminal and done:  # logs and pipes: a plain line per batch
            print(f"{spec.name}: {done}/{total} designs", file=sys.stderr, flush=True)

    result = _resumable(bar, target, "designs", lambda: run_design(
        spec, target, backend=backend, workers=workers, address=address, progress=progress))  # type: ignore[arg-type]
    if as_json:
        _print_json(result.model_dump(include={"name", "designs", "status", "reasons", "constraints", "front",
                                               "best", "increments"}))
    else:
        render_design(result, _stdout(), top=top, seconds=time.perf_counter() - start)


@app.command()
def validate(
    file: Annotated[str | None, typer.Argument(
        help="a published-runs file ('runs:'), a metered-runs file ('runs:' with 'average_power_w'), a "
             "collective-measurements file ('measurements:'), a per-GPU memory file ('measurements:' with "
             "'measured' quantities) or a GEMM-throughput file ('measurements:' with 'tflops'); default: the "
             "built-in published runs")] = None,
    cv: Annotated[bool, typer.Option("--cv", help="also leave each source out, refit the global knobs on the rest "
                                                  "and predict it (published runs only)")] = False,
    calibration: Annotated[str | None, CALIBRATION_OPTION] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="processes for --cv (default: the CPU count)")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Predict every published run (or collective measurement) of FILE and compare; exit 1 when the file's
    tolerance is breached."""
    _check_workers(workers)
    cal = _calibration(calibration)
    kind = validation_kind(file) if file is not None else "runs"
    if cv and kind != "runs":
        what = {"memory": "a memory file", "power": "a metered-runs file",
                "gemms": "a GEMM-measurements file"}.get(kind, "a measurements file")
        raise InputError(f"--cv refits the step-time knobs on published runs; {what} has none", field="--cv")
    result: Any
    render: Callable[[Any, Console], None]
    if kind == "memory":
        result, render = validate_memory(file), render_memory_validation
    elif kind == "power":
        result, render = validate_power(file, cal), render_power_validation
    elif kind == "gemms":
        result, render = validate_gemms(file, cal), render_gemm_validation
    elif kind == "measurements":
        result, render = validate_collectives(file, cal), render_collective_validation
    else:
        result, render = validate_file(file, cal), render_validation
        if cv:
            result = with_cross_validation(result, file, cal, workers=workers)
    if as_json:
        _print_json(result.model_dump())
    else:
        render(result, _stdout())
    if not result.passed:
        raise typer.Exit(1)


@app.command()
def calibrate(
    runs: Annotated[str, typer.Argument(help="your measured runs: a published-runs file (the calibration set's "
                                             "schema, 'runs:'); two or three runs are enough to move the knobs")],
    out: Annotated[str | None, typer.Option("-o", "--out", help="write the calibration here (a scenario names it as "
                                                                "'calibration: FILE'; plan, search and validate take "
                                                                "--calibration FILE)")] = None,
    neutral: Annotated[bool, typer.Option("--neutral", help="fit from the knobs' neutral values with no pull "
                                                            "towards the shipped ones (how the shipped calibration "
                                                            "is made: make calibrate)")] = False,
    no_cv: Annotated[bool, typer.Option("--no-cv", help="skip the cross-validation (and the residuals a "
                                                        "prediction's interval is drawn from)")] = False,
    calibration: Annotated[str | None, CALIBRATION_OPTION] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="processes for the cross-validation")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Fit the global knobs to measured runs: before and after, in-sample and leave-one-source-out."""
    _check_workers(workers)
    if out is not None:
        check_output_file(out, field="-o")
        check_writable(out)
    if validation_kind(runs) != "runs":
        raise InputError("expected a published-runs file ('runs:'), not collective measurements", file=runs)
    start = _calibration(calibration) or default_calibration()
    progress = None if as_json or not _err.is_terminal else (lambda msg: _err.print(f"[dim]{msg}[/dim]"))
    result, fitted = fit_calibration(runs, start=start, neutral=neutral, prior=start, cv=not no_cv,
                                     workers=workers, progress=progress)
    if out is not None:
        write_calibration(out, result, fitted, runs)
        result = result.model_copy(update={"written": out})
    if as_json:
        _print_json(result.model_dump())
    else:
        render_calibration(result, _stdout())


@app.command()
def facility(
    scenario: Annotated[str, typer.Argument(help="scenario file with a facility")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a field: key.path=value")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the ledger as JSON")] = False,
) -> None:
    """Power, water, carbon and money of the scenario's cluster and training run (plans it first)."""
    s = load_scenario(scenario, set_ or [])
    if s.facility is None:
        raise InputError("the scenario names no facility (add facility: NAME or an inline facility)",
                         file=scenario, field="facility")
    ledger = _located(scenario, lambda: plan_scenario(s, with_reliability=False)).facility
    assert ledger is not None  # the scenario names a facility
    if as_json:
        _print_json(ledger.model_dump())
    else:
        render_facility(ledger, _stdout())


@app.command()
def reliability(
    scenario: Annotated[str, typer.Argument(help="scenario file")],
    runs: Annotated[int, typer.Option("--runs", help="simulated runs")] = DEFAULT_RUNS,
    seed: Annotated[int | None, typer.Option("--seed", help="random seed (default: the scenario's seed)")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a field: key.path=value")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Failures, checkpoints and restarts of the scenario's run: job MTTF, the best checkpoint interval, a Monte
    Carlo of the whole run (time-to-train P10/P50/P90, interruptions by cause, goodput) and its sensitivity to the
    checkpoint interval and to the cluster size."""
    if not 1 <= runs <= MAX_RUNS:
        raise InputError(f"expected 1 to {MAX_RUNS:,} runs, got {runs}", field="--runs")
    if seed is not None and seed < 0:
        raise InputError(f"expected a seed >= 0, got {seed}", field="--seed")
    s = load_scenario(scenario, set_ or [])
    run = _located(scenario, lambda: plan_scenario(s, with_reliability=False))
    report = _located(scenario, lambda: run_reliability(s, run.step, run.facility, runs=runs, seed=seed))
    if as_json:
        _print_json(report.model_dump())
    else:
        render_reliability(report, _stdout())


@app.command()
def claims(
    scenario: Annotated[str | None, typer.Argument(help="scenario file with claims (default: the Memphis "
                                                        "Supercluster's, scenarios/memphis.yaml)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the verdicts as JSON")] = False,
) -> None:
    """A scenario's public claims (the Memphis Supercluster's by default), each beside what supercluster computes,
    with a verdict by the same rule `plan` uses; and the TOP500 systems beside their published figures."""
    path = scenario or str(MEMPHIS)
    report = _located(path, lambda: check_claims_file(path))
    if as_json:
        _print_json(report.model_dump())
    else:
        render_claims(report, _stdout())


@app.command()
def fabric(
    target: Annotated[str, typer.Argument(help="a catalog cluster name or a scenario file")],
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """The cluster's scale-out fabric: tiers, switches, links, optics, bisection bandwidth and power."""
    report = fabric_report(load_cluster(target))
    if as_json:
        _print_json(report.model_dump())
    else:
        render_fabric(report, _stdout())


@app.command()
def collective(
    cluster: Annotated[str, typer.Option("--cluster", help="a catalog cluster name or a scenario file")],
    op: Annotated[str, typer.Option("--op", help="all-reduce | reduce-scatter | all-gather | broadcast | "
                                                 "all-to-all | send-recv")],
    size: Annotated[str, typer.Option("--bytes", help="message size, e.g. 1GiB, 256MB, 4e9")],
    gpus: Annotated[int, typer.Option("--gpus", help="GPUs in the group (consecutive ranks)")],
    algo: Annotated[str | None, typer.Option("--algo", help="force an algorithm: ring | tree | nvls | "
                                                             "hierarchical | sharp | pairwise | direct")] = None,
    stride: Annotated[int, typer.Option("--stride", help="ranks between consecutive members")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Time, algorithm bandwidth and bus bandwidth (nccl-tests definitions) of one collective."""
    op_name = op.replace("-", "_").lower()
    if op_name == "alltoall":
        op_name = "all_to_all"
    if op_name not in OPS:
        raise InputError(f"unknown operation {op!r} (expected one of: {', '.join(o.replace('_', '-') for o in OPS)})",
                         field="--op")
    if algo is not None and algo not in ALGORITHMS:
        raise InputError(f"unknown algorithm {algo!r} (expected one of: {', '.join(ALGORITHMS)})", field="--algo")
    try:
        message = parse_bytes(size)
    except ValueError as exc:
        raise InputError(str(exc), field="--bytes") from None
    if message > MAX_MESSAGE_BYTES:
        raise InputError(f"expected at most {format_bytes(MAX_MESSAGE_BYTES)} (a collective's buffer lives in one "
                         f"GPU's memory), got {size!r}", field="--bytes")
    if message != round(message):
        raise InputError(f"expected a whole number of bytes, got {size!r} ({message:g} bytes)", field="--bytes")
    report = collective_report(load_cluster(cluster), op_name, message, gpus, stride=stride,
                               algorithm=algo)
    if as_json:
        _print_json(report.model_dump())
    else:
        render_collective(report, _stdout())


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="address to listen on (default: loopback only; 0.0.0.0 "
                                                     "opens the app to the network)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
) -> None:
    """The web app: a JSON API (plan, search, catalog, fabric, collective, facility, reliability, claims, report,
    validate; its schema at /openapi.json) and a page at / to pick catalog entries, change knobs and see the figures."""
    try:
        from .web import serve as serve_app
    except ImportError as exc:
        raise InputError(f"the web app needs fastapi and uvicorn ({exc.name} is missing): "
                         "pip install 'supercluster[web]'", field="serve") from None
    serve_app(host, port)


KEY_FIGURES: dict[str, list[str]] = {
    "accelerators": ["dense_peak_flops_per_s", "hbm_bytes", "hbm_bandwidth_bytes_per_s", "tdp_w"],
    "switches": ["vendor", "transport", "capacity_bytes_per_s", "max_ports", "power_w"],
    "nics": ["vendor", "bandwidth_bytes_per_s", "power_w"],
    "optics": ["bandwidth_bytes_per_s", "power_w"],
    "fabrics": ["transport", "switch", "tiers", "oversubscription", "achievable_fraction", "multipath_efficiency"],
    "clusters": ["accelerator", "num_gpus", "gpus_per_node", "fabric"],
    "models": ["layers", "hidden", "heads", "vocab", "moe", "published_params"],
    "facilities": ["pue", "location", "cooling"],
    "reliability": ["reference_cluster", "observation_days", "detection_s", "relaunch_s", "async_checkpoint"],
    "software": ["grad_bytes", "master_bytes", "loss_upcast_bytes", "cuda_context_bytes"],
}


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_short(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@app.command()
def catalog(
    kind: Annotated[str | None, typer.Argument(help="accelerators | switches | nics | optics | fabrics | clusters | "
                                                    "models | facilities | reliability | software")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the entries as JSON")] = False,
) -> None:
    """List catalog entries with their key figures and sources."""
    kinds = [kind] if kind else list(catalog_data.KINDS)
    data = {k: catalog_data.entries(k) for k in kinds}
    if as_json:
        _print_json(data, allow_nan=True)
        return
    console = _stdout()
    for k in kinds:
        t = Table(title=k, show_lines=False)
        id_column(t, "name", style="bold")
        for col in KEY_FIGURES[k]:
            t.add_column(col)
        t.add_column("source", min_width=30)
        for name, body in data[k].items():
            est = "\n[yellow](estimate)[/yellow]" if body.get("estimate") else ""
            t.add_row(name + est, *[_short(body.get(col, "")) for col in KEY_FIGURES[k]], str(body.get("source", "")))
        console.print(t)


def main() -> None:
    """Entry point: a SuperclusterError becomes one line on stderr and exit code 2, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except SuperclusterError as exc:
        _err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _err.print("aborted")
        sys.exit(130)
    except Exception as exc:
        # click usage errors (typer vendors its own click; match by interface, not by class)
        exit_code = getattr(exc, "exit_code", None)
        show = getattr(exc, "show", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
