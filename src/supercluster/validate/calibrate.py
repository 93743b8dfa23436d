"""Fit the global knobs to measured runs, and say how well the model does on runs it has not seen.

- ``fit``: Powell's method (scipy) over the knobs that have a ``fit:`` range in catalog/calibration.yaml, each
  scaled to its range, from their neutral values (from scratch) or from given ones (a refinement). The objective is
  the mean |log(predicted / measured)| over the runs (robust to the few the model cannot reach), plus (when fitting a
  user's few runs) a pull towards the shipped values, so that two or three runs move the knobs without throwing them
  to the edges. Deterministic: the same runs and start give the same knobs, rounded to each
  knob's resolution.
- ``cross_validate``: leave one source out (runs grouped by the source they came from: ``source_group``, else the
  text of ``source`` before its first comma or parenthesis), refit the knobs on the others starting from the full
  fit, predict the left-out runs. Its errors are the honest figure, and the residuals an interval is drawn from.
- ``calibrate``: both, and the file a scenario (``calibration: path``) or ``--calibration`` can name.

Runs marked ``exclude_from_gate: "reason"`` in the data file are left out of the fit and of the gate.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import multiprocessing
import os
import re
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict

from ..errors import FileFormatError, InputError, SuperclusterError
from ..files import atomic_write
from ..search.plan import TimedSpace, best_step
from ..search.uncertainty import error_range, features, nearest, source_spread, widened
from ..spec.calibration import (
    Calibration,
    KnobRange,
    Residual,
    default_calibration,
    knob_ranges,
    shipped_document,
)
from ..spec.safe_yaml import MAX_INPUT_BYTES, parse_yaml
from ..spec.scenario import Scenario
from .runs import DEFAULT_FILE, ValidationResult, expected_step_time, run_to_scenario
from .tolerance import gate_exclusion, read_validation_file

PRIOR_WEIGHT = 0.02  #: pull of the shipped values when fitting a user's runs (per knob, per range squared)
WRITTEN_BY = "supercluster calibrate"
MISSING_PENALTY = 5.0  #: |log error| charged for a run the model cannot predict


@dataclass(frozen=True)
class FitRun:
    id: str
    group: str
    scenario: Scenario
    expected_s: float
    timed: TimedSpace = field(compare=False)  # the run's search space, timed again under every trial calibration


class Excluded(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    reason: str


class CalibrationRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    group: str
    expected_step_time_s: float
    before_step_time_s: float | None
    step_time_s: float | None
    cv_step_time_s: float | None
    before_rel_error: float | None
    rel_error: float | None
    cv_rel_error: float | None
    inside_cv_band: bool | None = None


class CalibrationResult(BaseModel):
    """Before and after the fit, in-sample and cross-validated, per run and overall."""

    model_config = ConfigDict(frozen=True)

    file: str
    start: str  # 'neutral' (from scratch) or the calibration the fit started from
    fitted: list[str]
    knobs_before: dict[str, float]
    knobs_after: dict[str, float]
    rows: list[CalibrationRow]
    excluded: list[Excluded]
    groups: list[str]
    median_abs_rel_error_before: float | None
    max_abs_rel_error_before: float | None
    median_abs_rel_error: float | None
    max_abs_rel_error: float | None
    cv_median_abs_rel_error: float | None
    cv_max_abs_rel_error: float | None
    cv_interval_coverage: float | None  # share of runs whose measurement lies in their own cross-validated band
    written: str | None = None


def source_group(run: dict[str, Any]) -> str:
    """The source a run came from: its ``source_group``, else its ``source`` up to the first ',' or '('."""
    explicit = run.get("source_group")
    if explicit:
        return str(explicit)
    text = str(run.get("source") or run.get("id") or "")
    return re.split(r"[,(]", text, maxsplit=1)[0].strip() or text


class FitRuns(NamedTuple):
    """A published-runs file read for a fit."""

    fit: list[FitRun]  # the runs the knobs are fitted on
    excluded: list[Excluded]  # the runs marked ``exclude_from_gate``, and why
    listed: list[FitRun]  # those of them the model can time (their errors are recorded, never fitted)
    file: str  # the file as shown in messages


def load_fit_runs(path: str | Path | None) -> FitRuns:
    """The runs of a published-runs file as scenarios; those marked ``exclude_from_gate`` set aside."""
    _, runs, shown = read_validation_file(path, DEFAULT_FILE, "runs")
    out, excluded, listed = [], [], []
    for i, run in enumerate(runs):
        if not isinstance(run, dict):
            raise FileFormatError(f"expected a mapping, got {type(run).__name__}", file=shown, field=f"runs[{i}]")
        rid = str(run.get("id", f"runs[{i}]"))
        reason = gate_exclusion(run, file=shown, field=f"runs[{i}]")
        if reason:
            excluded.append(Excluded(id=rid, reason=reason))
            with contextlib.suppress(SuperclusterError):  # a listed run the model cannot build stays a reason only
                listed.append(_fit_run(run, rid, shown, i))
            continue
        out.append(_fit_run(run, rid, shown, i))
    if not out:
        raise FileFormatError("no run to fit (every run is excluded from the gate)", file=shown, field="runs")
    return FitRuns(out, excluded, listed, shown)


def _fit_run(run: dict[str, Any], rid: str, shown: str, i: int) -> FitRun:
    """A published run as the scenario to time, its source and its measured step."""
    scenario = run_to_scenario(run, file=shown, index=i)
    return FitRun(id=rid, group=source_group(run), scenario=scenario,
                  expected_s=expected_step_time(run, file=shown, index=i), timed=TimedSpace(scenario))


def predict(runs: Sequence[FitRun], cal: Calibration) -> np.ndarray:
    """Predicted step time of every run, as ``plan`` chooses (NaN where the model cannot predict it)."""
    out = np.full(len(runs), np.nan)
    for i, r in enumerate(runs):
        with contextlib.suppress(SuperclusterError):
            out[i] = r.timed.fastest_step_time(cal)
    return out


def objective(pred: np.ndarray, expected: np.ndarray, cal: Calibration, prior: Calibration | None,
              ranges: dict[str, KnobRange], weight: float) -> float:
    err = np.abs(np.log(pred / expected))
    value = float(np.mean(np.where(np.isfinite(err), err, MISSING_PENALTY)))
    if prior is not None and weight > 0:
        value += weight * sum(((getattr(cal, k) - getattr(prior, k)) / (r.high - r.low)) ** 2
                              for k, r in ranges.items())
    return value


def _snap(value: float, r: KnobRange) -> float:
    snapped = round(round(value / r.resolution) * r.resolution, 12)
    return min(max(snapped, r.low), r.high)


def fit(runs: Sequence[FitRun], start: Calibration, ranges: dict[str, KnobRange], *, prior: Calibration | None = None,
        weight: float = 0.0, max_evaluations: int = 1500,
        progress: Callable[[str], None] | None = None) -> Calibration:
    """Minimise the objective over the knobs in ``ranges`` from ``start`` by Powell's method (scipy.optimize; each
    knob scaled to [0, 1] over its range, bounded), then round each knob to its resolution. Deterministic."""
    from scipy.optimize import minimize  # only fitting needs scipy

    expected = np.array([r.expected_s for r in runs])
    names = list(ranges)

    def to_cal(x: np.ndarray, snap: bool = False) -> Calibration:
        values = {}
        for k, xi in zip(names, x, strict=True):
            r = ranges[k]
            v = r.low + float(np.clip(xi, 0.0, 1.0)) * (r.high - r.low)
            values[k] = _snap(v, r) if snap else v
        return start.model_copy(update=values)

    def value(x: np.ndarray) -> float:
        cal = to_cal(x)
        return objective(predict(runs, cal), expected, cal, prior, ranges, weight)

    x0 = np.array([(float(getattr(start, k)) - r.low) / (r.high - r.low) for k, r in ranges.items()])
    res = minimize(value, np.clip(x0, 0.0, 1.0), method="Powell", bounds=[(0.0, 1.0)] * len(names),
                   options={"xtol": 1e-3, "ftol": 1e-5, "maxfev": max_evaluations})
    best = to_cal(res.x, snap=True)
    if progress:
        progress(f"fitted {', '.join(names)} in {res.nfev} evaluations: objective {float(res.fun):.5f}")
    return best


def _fold(args: tuple[list[FitRun], list[FitRun], Calibration, dict[str, KnobRange], Calibration | None, float]
          ) -> list[float]:
    train, test, start, ranges, prior, weight = args
    cal = fit(train, start, ranges, prior=prior, weight=weight, max_evaluations=400)
    return [float(x) for x in predict(test, cal)]


def cross_validate(runs: Sequence[FitRun], fitted: Calibration, ranges: dict[str, KnobRange], *,
                   prior: Calibration | None = None, weight: float = 0.0, workers: int | None = None,
                   progress: Callable[[str], None] | None = None) -> tuple[np.ndarray, list[str]]:
    """Leave-one-source-out predictions of every run (leave-one-run-out when all runs share one source), and the
    groups left out. Folds run in parallel processes; the result does not depend on how many."""
    groups = sorted({r.group for r in runs})
    key: Callable[[FitRun], str] = (lambda r: r.group) if len(groups) > 1 else (lambda r: r.id)
    if len(groups) == 1:
        groups = [r.id for r in runs]
    if len(groups) < 2:
        return np.full(len(runs), np.nan), groups
    tasks = [([r for r in runs if key(r) != g], [r for r in runs if key(r) == g], fitted, ranges, prior, weight)
             for g in groups]
    n = max(1, min(workers if workers is not None else (os.cpu_count() or 1), len(tasks)))
    if n == 1:
        results = [_fold(t) for t in tasks]
    else:
        with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_fold, tasks))
    out = np.full(len(runs), np.nan)
    index = {r.id: i for i, r in enumerate(runs)}
    for (_, test, *_), preds in zip(tasks, results, strict=True):
        for r, p in zip(test, preds, strict=True):
            out[index[r.id]] = p
    if progress:
        progress(f"cross-validated over {len(groups)} left-out {'sources' if len(groups) < len(runs) else 'runs'}")
    return out, groups


def _stats(errors: Sequence[float | None]) -> tuple[float | None, float | None]:
    vals = [abs(e) for e in errors if e is not None and math.isfinite(e)]
    return (statistics.median(vals), max(vals)) if vals else (None, None)


def _rel(pred: float, expected: float) -> float | None:
    return pred / expected - 1.0 if math.isfinite(pred) else None


def calibrate(path: str | Path | None, *, start: Calibration, neutral: bool, prior: Calibration | None,
              cv: bool = True, workers: int | None = None,
              progress: Callable[[str], None] | None = None) -> tuple[CalibrationResult, Calibration]:
    """Fit the knobs to the runs of ``path`` (from their neutral values, or from ``start`` pulled towards
    ``prior``), cross-validate, and return the result and the calibration with its residuals."""
    runs, excluded, listed, shown = load_fit_runs(path)
    ranges = knob_ranges()
    first = start.model_copy(update={k: r.neutral for k, r in ranges.items()}) if neutral else start
    weight = 0.0 if neutral or prior is None else PRIOR_WEIGHT
    before = predict(runs, start)
    fitted = fit(runs, first, ranges, prior=None if neutral else prior, weight=weight, progress=progress)
    after = predict(runs, fitted)
    if cv:
        cv_pred, groups = cross_validate(runs, fitted, ranges, prior=None if neutral else prior, weight=weight,
                                         workers=workers, progress=progress)
    else:
        cv_pred, groups = np.full(len(runs), np.nan), sorted({r.group for r in runs})
    def residual(r: FitRun, p: float, c: float, listed: bool = False) -> Residual:
        """The run's features (at the configuration plan picks with the fitted knobs) and its errors."""
        plan_par = best_step(r.scenario, fitted, require_fit=False)[0].parallelism
        return Residual(id=r.id, group=r.group, features=features(r.scenario, plan_par),
                        rel_error=p / r.expected_s - 1.0, cv_rel_error=c / r.expected_s - 1.0, listed=listed)

    residuals = [residual(r, p, c) for r, p, c in zip(runs, after, cv_pred, strict=True)
                 if math.isfinite(p) and math.isfinite(c)]
    by_id = {res.id: res for res in residuals}
    rows = []
    for r, b, p, c in zip(runs, before, after, cv_pred, strict=True):
        inside = None
        if r.id in by_id and cv:
            # the band a run would have had without its source: its neighbours and the sources' spread both
            # drawn from the others
            others = [x for x in residuals if x.group != r.group] or [x for x in residuals if x.id != r.id]
            lo, hi = widened(*error_range(nearest(others, by_id[r.id].features)), source_spread(others))
            inside = lo <= by_id[r.id].cv_rel_error <= hi
        rows.append(CalibrationRow(
            id=r.id, group=r.group, expected_step_time_s=r.expected_s,
            before_step_time_s=float(b) if math.isfinite(b) else None,
            step_time_s=float(p) if math.isfinite(p) else None,
            cv_step_time_s=float(c) if math.isfinite(c) else None,
            before_rel_error=_rel(b, r.expected_s), rel_error=_rel(p, r.expected_s),
            cv_rel_error=_rel(c, r.expected_s), inside_cv_band=inside))
    med_b, max_b = _stats([r.before_rel_error for r in rows])
    med, mx = _stats([r.rel_error for r in rows])
    cv_med, cv_max = _stats([r.cv_rel_error for r in rows])
    inside_flags = [r.inside_cv_band for r in rows if r.inside_cv_band is not None]
    # the listed runs' errors with the fitted knobs: out of the fit by construction, kept for a scenario of a kind no
    # fitted run has (search.uncertainty)
    residuals += [residual(r, p, p, listed=True) for r, p in zip(listed, predict(listed, fitted), strict=True)
                  if math.isfinite(p)]
    result = CalibrationResult(
        file=shown, start="neutral" if neutral else start.source, fitted=list(ranges),
        knobs_before={k: float(getattr(start, k)) for k in ranges},
        knobs_after={k: float(getattr(fitted, k)) for k in ranges},
        rows=rows, excluded=excluded, groups=groups,
        median_abs_rel_error_before=med_b, max_abs_rel_error_before=max_b,
        median_abs_rel_error=med, max_abs_rel_error=mx,
        cv_median_abs_rel_error=cv_med, cv_max_abs_rel_error=cv_max,
        cv_interval_coverage=sum(inside_flags) / len(inside_flags) if inside_flags else None)
    return result, fitted.model_copy(update={"residuals": tuple(residuals)})


def check_writable(out: str | Path) -> None:
    """Refuse a target that exists and was not written by ``supercluster calibrate`` (a user's file is never
    overwritten), or whose folder does not exist; before any work is done."""
    p = Path(out)
    if p.is_dir():
        raise InputError("is a directory; expected a file name", file=str(out), field="-o")
    if not p.parent.is_dir():
        raise InputError(f"folder {str(p.parent)!r} does not exist", file=str(out), field="-o")
    if p.exists():
        try:  # a file too large or not YAML was not written by calibrate
            data = None if p.stat().st_size > MAX_INPUT_BYTES else parse_yaml(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, FileFormatError):
            data = None
        fit_block = data.get("fit") if isinstance(data, dict) else None
        if not (isinstance(fit_block, dict) and fit_block.get("written_by") == WRITTEN_BY):
            raise InputError(f"exists and was not written by `{WRITTEN_BY}`: it is left as it is; choose another "
                             "file", file=str(out), field="-o")


def write_calibration(out: str | Path, result: CalibrationResult, cal: Calibration, runs_path: str | Path | None
                      ) -> None:
    """The calibration file: every knob (docs and fit ranges from the shipped file, fitted values), how it was
    fitted, and the residuals. Written whole to a temporary file, then moved into place."""
    check_writable(out)
    doc = shipped_document()
    knobs: dict[str, Any] = {}
    for name, entry in doc["calibration"].items():
        value = getattr(cal, name)
        knobs[name] = {**entry, "value": dict(value) if isinstance(value, dict) else value}
    source = Path(runs_path) if runs_path else DEFAULT_FILE
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    fit_block = {
        "written_by": WRITTEN_BY,
        "runs": result.file, "runs_sha256": digest, "rows": len(result.rows),
        "excluded": [e.model_dump() for e in result.excluded], "start": result.start,
        "fitted": result.fitted, "sources": result.groups,
        "median_abs_rel_error": result.median_abs_rel_error, "max_abs_rel_error": result.max_abs_rel_error,
        "cv_median_abs_rel_error": result.cv_median_abs_rel_error,
        "cv_max_abs_rel_error": result.cv_max_abs_rel_error,
        "cv_interval_coverage": result.cv_interval_coverage,
    }
    header = ("# Global knobs of the analytic step model (supercluster.spec.calibration.Calibration).\n"
              "# Knobs with a `fit:` range were fitted by `supercluster calibrate` on the runs named under `fit:`\n"
              "# (the shipped file: the calibration set validate/calibration.yaml, from the knobs' neutral values, by\n"
              "# `make calibrate`); collective_ramp_bytes and hierarchical_overlap by benchmarks/fit_collectives.py on the\n"
              "# collectives set, gemm_overlap_exponent by benchmarks/fit_gemm_overlap.py on the GEMM set; the others\n"
              "# are read off a cited source. Each knob is one number for every run.\n"
              "# `residuals`: each fitted run's features and its leave-one-source-out error, from which `plan` draws\n"
              "# a prediction's interval; `listed: true`, a run listed and not fitted, its error with these knobs\n"
              "# (drawn on only for a kind no fitted run has). Regenerate rather than edit by hand.\n")
    body = yaml.safe_dump({"calibration": knobs, "fit": fit_block,
                           "residuals": [r.model_dump(exclude_defaults=True) for r in cal.residuals]},
                          sort_keys=False, width=120, allow_unicode=True)
    atomic_write(Path(out), header + body)


def with_cross_validation(result: ValidationResult, path: str | Path | None, calibration: Calibration | None, *,
                          workers: int | None = None) -> ValidationResult:
    """``validate --cv``: the result with every run's leave-one-source-out prediction (knobs refitted, from the
    calibration in effect, without the run's source) and the cross-validated median and maximum; the gate also
    holds the file's ``tolerance.cv_median_abs_rel_error`` when it names one."""
    runs = load_fit_runs(path).fit
    start = calibration or default_calibration()
    cv_pred, groups = cross_validate(runs, start, knob_ranges(), workers=workers)
    by_id = {r.id: (p, r.expected_s) for r, p in zip(runs, cv_pred, strict=True)}
    rows = []
    for row in result.rows:
        if row.id in by_id and math.isfinite(by_id[row.id][0]):
            p, e = by_id[row.id]
            row = row.model_copy(update={"cv_predicted_step_time_s": float(p), "cv_rel_error": p / e - 1.0})
        rows.append(row)
    cv_med, cv_max = _stats([r.cv_rel_error for r in rows if r.excluded is None])
    failures = list(result.failures)
    limit = result.tolerance.get("cv_median_abs_rel_error")
    if limit is not None and cv_med is not None and cv_med > float(limit):
        failures.append(f"leave-one-source-out median |error| {cv_med:.1%} exceeds {float(limit):.0%}")
    return result.model_copy(update={"rows": rows, "cv_median_abs_rel_error": cv_med, "cv_max_abs_rel_error": cv_max,
                                     "cv_groups": groups, "failures": failures, "passed": not failures})
