"""The validation gates, run by `make test`: a change that breaks the step-time gate on the calibration set, its
leave-one-source-out figure, the collectives, GEMM-kernel, memory or power gate fails the suite. Rows outside a gate are marked in the data
file with their reason (exclude_from_gate), never in code."""

from __future__ import annotations

import statistics

import pytest
import yaml

from supercluster.spec.calibration import default_calibration
from supercluster.validate import (
    DEFAULT_COLLECTIVES_FILE,
    DEFAULT_FILE,
    HELDOUT_FILE,
    validate_collectives,
    validate_file,
)
from supercluster.validate.calibrate import load_fit_runs, predict
from supercluster.validate.gemms import DEFAULT_GEMMS_FILE, validate_gemms
from supercluster.validate.memory import DEFAULT_MEMORY_FILE, validate_memory
from supercluster.validate.power import DEFAULT_POWER_FILE, validate_power


def test_calibration_gate_holds() -> None:
    """Every run of the calibration set is predicted within the file's tolerance (median and worst |error|)."""
    result = validate_file()
    assert result.passed, result.failures
    assert result.median_abs_rel_error <= result.tolerance["median_abs_rel_error"]
    assert result.max_abs_rel_error <= result.tolerance["max_abs_rel_error"]


def test_heldout_gate_holds() -> None:
    """The published runs no fit reads (validate/heldout.yaml) are predicted within that file's tolerance: the
    model's error on runs it has not seen cannot grow unnoticed."""
    result = validate_file(HELDOUT_FILE)
    assert result.passed, result.failures
    assert len(result.rows) - result.excluded >= 60
    # the report's interval coverage is the share of gated runs measured inside their predicted interval
    banded = [r for r in result.rows if r.excluded is None and r.step_time_interval_s is not None]
    inside = [r for r in banded if r.step_time_interval_s[0] <= r.expected_step_time_s <= r.step_time_interval_s[1]]
    assert result.intervals == len(banded) > 0
    assert result.interval_coverage == len(inside) / len(banded)
    assert 0 < len(inside) < len(banded)
    # the bands are honest on runs no fit saw: without the sources' spread (search.uncertainty.source_spread) 43%
    # of these fell inside, 81% with it
    assert result.interval_coverage >= 0.75


def test_no_heldout_run_is_in_the_calibration_set() -> None:
    """A held-out run is not also a calibration run (by id, nor by the same published figure of the same source)."""
    held = yaml.safe_load(HELDOUT_FILE.read_text(encoding="utf-8"))["runs"]
    fitted = yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))["runs"]
    assert not {r["id"] for r in held} & {r["id"] for r in fitted}
    assert not {r["source"] for r in held} & {r["source"] for r in fitted}


def test_memory_gate_holds() -> None:
    """The per-GPU memory measurements are within the file's tolerance (median, worst, OOM outcomes, unmappable)."""
    result = validate_memory()
    assert result.passed, result.failures
    assert result.unmappable <= result.tolerance["max_unmappable"]


def test_power_gate_holds() -> None:
    """The metered MLPerf Training runs' node power is predicted within the file's tolerance, at both meter points,
    every row modelled."""
    result = validate_power()
    assert result.passed, result.failures
    assert not any(r.error for r in result.rows)
    assert {m for m, s in result.by_meter.items() if s["rows"]} == {"AC", "DC"}


def test_collectives_gate_holds() -> None:
    """The nccl-tests measurements are within the file's tolerance: median, and the worst at 1 MiB or more."""
    result = validate_collectives()
    assert result.passed, result.failures


def test_gemms_gate_holds() -> None:
    """The published GEMM throughputs by shape (validate/gemms.yaml) are within the file's tolerance at the
    catalog's rates: the GEMM model holds over small-K and few-row shapes, not only the best one."""
    result = validate_gemms()
    assert result.passed, result.failures
    assert not any(r.error for r in result.rows)
    assert len(result.rows) - result.excluded >= 20


@pytest.mark.parametrize("path", [DEFAULT_FILE, HELDOUT_FILE, DEFAULT_COLLECTIVES_FILE, DEFAULT_MEMORY_FILE,
                                  DEFAULT_POWER_FILE, DEFAULT_GEMMS_FILE],
                         ids=["runs", "heldout", "collectives", "memory", "power", "gemms"])
def test_every_exclusion_says_why(path) -> None:
    """A row left out of a gate carries a reason in the data file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    rows = data.get("runs") or data.get("measurements")
    for row in rows:
        if "exclude_from_gate" in row:
            assert isinstance(row["exclude_from_gate"], str) and len(row["exclude_from_gate"]) > 20, row["id"]


def test_shipped_cross_validation_is_current_and_within_its_gate() -> None:
    """The leave-one-source-out errors `make calibrate` recorded belong to the model as it is now (every run's
    in-sample error reproduces bit for bit, so a change to the model or the data forces a refit), and their median
    is within the file's cross-validated gate."""
    cal = default_calibration()
    runs, excluded, listed_runs, _ = load_fit_runs(None)
    by_id = {r.id: r for r in cal.residuals if not r.listed}
    assert set(by_id) == {r.id for r in runs}, "the calibration set changed: run `make calibrate`"
    predicted = predict(runs, cal)
    for run, p in zip(runs, predicted, strict=True):
        assert p / run.expected_s - 1.0 == pytest.approx(by_id[run.id].rel_error, abs=1e-9), \
            f"{run.id}: the model changed since `make calibrate`"
    # the listed (unfitted) runs' errors, which plan draws on for a kind no fitted run has, are current too
    listed = {r.id: r for r in cal.residuals if r.listed}
    assert set(listed) == {x.id for x in excluded}, "the listed runs changed: run `make calibrate`"
    for run, p in zip(listed_runs, predict(listed_runs, cal), strict=True):
        assert p / run.expected_s - 1.0 == pytest.approx(listed[run.id].rel_error, abs=1e-9), \
            f"{run.id}: the model changed since `make calibrate`"
    tolerance = yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))["tolerance"]
    assert statistics.median(abs(r.cv_rel_error) for r in by_id.values()) <= tolerance["cv_median_abs_rel_error"]


def test_an_exclusion_without_a_reason_is_a_located_error(cli, tmp_path) -> None:
    """exclude_from_gate must carry its reason: an empty one is one located line, exit 2."""
    run = yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))["runs"][0]
    run["exclude_from_gate"] = ""
    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump({"runs": [run]}), encoding="utf-8")
    cli("validate", str(path)).one_error_line("runs[0].exclude_from_gate", "must say why")
