"""Published training runs (the schema of validation/README.md) → scenarios → predicted vs expected step time.

Each run is predicted from its configuration alone: what the source did not publish (null) is chosen by the same
search a user gets, among configurations that fit in memory (or, when the memory model says none fits a run that
did run, the fastest one, flagged).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import CatalogNameError, FileFormatError, InputError, SuperclusterError
from ..search.plan import best_step
from ..spec.calibration import Calibration
from ..spec.load import build_scenario
from ..spec.scenario import Scenario
from .schema import RUN, SOFTWARE_FIELDS, check_entry
from .tolerance import gate_exclusion, read_tolerance, read_validation_file

DEFAULT_FILE = Path(__file__).with_name("calibration.yaml")
#: published runs kept out of every fit (no knob, constant or interval reads them): the model's error on runs it has
#: not seen
HELDOUT_FILE = Path(__file__).with_name("heldout.yaml")
_PAR_KEYS = ("tp", "pp", "dp", "cp", "ep", "etp", "virtual_stages")  # etp: absent, searched (1 or tp)
DEFAULT_TOLERANCE: dict[str, Any] = {"metric": "step_time_s", "median_abs_rel_error": 0.10,
                                     "max_abs_rel_error": 0.25}
_TRAINING_TO_PAR = ("micro_batch", "recompute", "zero_stage", "sequence_parallel")


class Row(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    predicted_step_time_s: float | None
    expected_step_time_s: float
    rel_error: float | None
    parallelism: dict[str, Any] | None
    fits: bool | None = None
    mfu: float | None = None
    error: str | None = None
    excluded: str | None = None  # why the data file leaves this run out of the gate (and of the fit)
    step_time_interval_s: tuple[float, float] | None = None
    cv_predicted_step_time_s: float | None = None  # with the knobs refitted without this run's source (--cv)
    cv_rel_error: float | None = None


class ValidationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    file: str
    rows: list[Row]
    median_abs_rel_error: float | None  # None when no run could be modelled
    max_abs_rel_error: float | None
    tolerance: dict[str, Any]
    passed: bool
    failures: list[str]
    excluded: int = 0
    calibration: str = ""
    cv_median_abs_rel_error: float | None = None  # leave-one-source-out (--cv)
    cv_max_abs_rel_error: float | None = None
    cv_groups: list[str] = []
    # of the gated runs with an interval, the share whose measured step time lies inside its predicted interval
    # (plan's step_time_interval_s): on runs no fit read (heldout.yaml), the honest test of the error bars
    interval_coverage: float | None = None
    intervals: int = 0  # how many gated runs had one


def expected_step_time(run: Any, *, file: str, index: int) -> float:
    """A run's measured step time, or one located error."""
    try:
        expected = float(run["expected"]["step_time_s"])
    except (KeyError, TypeError, ValueError):
        expected = float("nan")
    if not expected > 0 or expected == float("inf"):
        raise FileFormatError("expected a positive number of seconds", file=file,
                              field=f"runs[{index}].expected.step_time_s")
    return expected


def run_to_scenario(run: dict[str, Any], *, file: str, index: int) -> Scenario:
    """A published run as a Scenario (catalog accelerator and generic fabric by transport). A run the file's schema
    or the specs refuse is a located :class:`~supercluster.errors.InputError` naming the run; an unknown catalog
    name is a :class:`~supercluster.errors.CatalogNameError` (the tool lacks that part)."""
    where = f"runs[{index}]"
    check_entry(run, RUN, file=file, where=where, noun="run")
    for part in ("cluster", "model", "training"):
        if not isinstance(run.get(part), dict):
            raise FileFormatError(f"expected a mapping '{part}', got {run.get(part)!r}", file=file,
                                  field=f"{where}.{part}")
    par_in = run.get("parallelism") or {}
    if not isinstance(par_in, dict):
        raise FileFormatError(f"expected a mapping 'parallelism', got {par_in!r}", file=file,
                              field=f"{where}.parallelism")
    c, m, t = run["cluster"], dict(run["model"]), run["training"]
    model: dict[str, Any] = {k: v for k, v in m.items() if v is not None and k not in ("moe", "mla")}
    model["name"] = run.get("id", where)
    model["source"] = run.get("source", file)
    if m.get("moe"):
        moe = {k: v for k, v in m["moe"].items() if v is not None}
        model["moe"] = moe
    if m.get("mla"):
        model["mla"] = m["mla"]
    parallelism: dict[str, Any] = {k: par_in.get(k) for k in _PAR_KEYS if par_in.get(k) is not None}
    for k in _TRAINING_TO_PAR:
        if t.get(k) is not None:
            parallelism[k] = t[k]
    for flag in ("offload_optimizer", "offload_weights", "offload_activations"):
        parallelism[flag] = bool(par_in.get(flag, False))  # a published run that does not say it offloads did not
    layers, pp = m.get("layers"), par_in.get("pp")
    if layers and pp and layers % pp:
        parallelism["uneven_pipeline"] = True
    if pp and par_in.get("virtual_stages") and layers and layers % (pp * par_in["virtual_stages"]):
        parallelism["uneven_pipeline"] = True
    seq = m.get("seq_len")
    try:
        scale_out = float(c.get("scale_out_gbps_per_gpu", 0)) * 1e9 / 8
        tokens = float(t.get("global_batch", 1)) * float(seq or 1)
    except (TypeError, ValueError):
        raise FileFormatError("expected numbers for cluster.scale_out_gbps_per_gpu, training.global_batch and "
                              "model.seq_len", file=file, field=where) from None
    data = {
        "name": run.get("id", where),
        "cluster": {
            "name": f"{run.get('id', where)}-cluster",
            "source": run.get("source", file),
            "accelerator": c.get("accelerator"),
            "num_gpus": c.get("num_gpus"),
            "gpus_per_node": c.get("gpus_per_node", 8),
            "scale_out_bandwidth_per_gpu_bytes_per_s": scale_out,
            "fabric": c.get("fabric"),
        },
        "model": model,
        "training": {
            "tokens": tokens,
            "global_batch": t.get("global_batch"),
            "precision": t.get("precision", "bf16"),
            **{k: t[k] for k in SOFTWARE_FIELDS if t.get(k) is not None},
        },
        "parallelism": parallelism,
    }
    try:
        return build_scenario(data, file=file)
    except InputError as exc:
        located = exc.located(field_prefix=where)
        raise type(located)(f"{located.message} (run {str(run.get('id', where))!r})", file=located.file,
                            field=located.field) from None


def validate_file(path: str | Path | None = None, calibration: Calibration | None = None) -> ValidationResult:
    """Predict every run of a published-runs file; rows that cannot be modelled count as failures, rows the file
    marks ``exclude_from_gate: reason`` are predicted and listed but left out of the statistics and the gate."""
    data, runs, shown = read_validation_file(path, DEFAULT_FILE, "runs")
    tol = read_tolerance(data, DEFAULT_TOLERANCE, ("median_abs_rel_error", "max_abs_rel_error"), shown)
    rows: list[Row] = []
    for i, run in enumerate(runs):  # every run well-formed before any is predicted (bad input: exit code 2)
        check_entry(run, RUN, file=shown, where=f"runs[{i}]", noun="run")
        expected_step_time(run, file=shown, index=i)
        gate_exclusion(run, file=shown, field=f"runs[{i}]")
    for i, run in enumerate(runs):
        rid = str(run.get("id", f"runs[{i}]"))
        expected = expected_step_time(run, file=shown, index=i)
        excluded = gate_exclusion(run, file=shown, field=f"runs[{i}]")
        try:  # a run that breaks a spec is bad input (raised); a part the catalog lacks, or a run the step model
            # cannot time, is a row the tool cannot model
            scenario = run_to_scenario(run, file=shown, index=i)
        except CatalogNameError as exc:
            rows.append(Row(id=rid, predicted_step_time_s=None, expected_step_time_s=expected, rel_error=None,
                            parallelism=None, error=str(exc), excluded=excluded))
            continue
        try:
            report, _ = best_step(scenario, calibration, require_fit=False)
        except SuperclusterError as exc:
            rows.append(Row(id=rid, predicted_step_time_s=None, expected_step_time_s=expected, rel_error=None,
                            parallelism=None, error=str(exc), excluded=excluded))
            continue
        pred = report.step_time_s
        rows.append(Row(id=rid, predicted_step_time_s=pred, expected_step_time_s=expected,
                        rel_error=(pred - expected) / expected, parallelism=report.parallelism,
                        fits=report.fits, mfu=report.mfu, excluded=excluded,
                        step_time_interval_s=report.step_time_interval_s))
    gated = [r for r in rows if r.excluded is None]
    errors = [abs(r.rel_error) for r in gated if r.rel_error is not None]
    median = statistics.median(errors) if errors else None
    worst = max(errors) if errors else None
    failures = [f"{r.id}: cannot be modelled: {r.error}" for r in gated if r.error]
    if median is not None and median > float(tol["median_abs_rel_error"]):
        failures.append(f"median |error| {median:.1%} exceeds {float(tol['median_abs_rel_error']):.0%}")
    limit = float(tol.get("max_abs_rel_error", 0.25))
    failures += [f"{r.id}: |error| {abs(r.rel_error):.1%} exceeds {limit:.0%}" for r in gated
                 if r.rel_error is not None and abs(r.rel_error) > limit]
    used = calibration.source if calibration else "catalog/calibration.yaml"
    banded = [(r.step_time_interval_s, r.expected_step_time_s) for r in gated if r.step_time_interval_s is not None]
    inside = sum(lo <= measured <= hi for (lo, hi), measured in banded)
    return ValidationResult(file=shown, rows=rows, median_abs_rel_error=median, max_abs_rel_error=worst,
                            tolerance=tol, passed=not failures, failures=failures,
                            excluded=len(rows) - len(gated), calibration=used,
                            interval_coverage=inside / len(banded) if banded else None, intervals=len(banded))
