"""`supercluster calibrate` and `validate --cv`: a user's few runs move the knobs towards their measurements, the
written file is what a scenario or --calibration names, nothing a user wrote is overwritten, and the shipped
calibration is what the same command reproduces from neutral values."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from supercluster import build_scenario, plan
from supercluster.spec.calibration import default_calibration, knob_ranges, load_calibration, shipped_document
from supercluster.validate import DEFAULT_FILE
from supercluster.validate.calibrate import fit, load_fit_runs, source_group

RUNS = yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))["runs"]


def _runs_file(path: Path, runs: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"runs": runs}, sort_keys=False), encoding="utf-8")
    return path


def _slower(ids: list[str], factor: float) -> list[dict[str, Any]]:
    """Runs of the calibration set as measured on a cluster ``factor`` times slower (a user's own runs)."""
    out = []
    for run in RUNS:
        if run["id"] in ids:
            run = copy.deepcopy(run)
            run["expected"]["step_time_s"] *= factor
            run["source"] = "my cluster, 2026"
            out.append(run)
    return out


THREE = ["nemo2407-llama2-7b-8", "nemo2407-llama3-8b-8", "nemo2407-gpt3-5b-64"]


def test_three_runs_move_the_knobs_towards_their_measurements(cli, tmp_path: Path) -> None:
    """On three runs of a cluster 30% slower than the shipped knobs assume, calibrate brings every run's
    prediction closer to its measurement, writes a file, and a scenario naming that file plans with it."""
    runs = _runs_file(tmp_path / "mine.yaml", _slower(THREE, 1.3))
    out = tmp_path / "my-calibration.yaml"
    result = cli("calibrate", str(runs), "-o", str(out), "--json", "--workers", "1")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert len(data["rows"]) == 3 and data["written"] == str(out)
    for row in data["rows"]:
        assert abs(row["rel_error"]) < abs(row["before_rel_error"]), row
    assert data["median_abs_rel_error"] < data["median_abs_rel_error_before"]
    assert data["cv_median_abs_rel_error"] is not None  # leave-one-run-out: the three share one source
    assert data["knobs_after"] != data["knobs_before"]

    cal = load_calibration(str(out))
    assert len(cal.residuals) == 3
    scenario = {"name": "mine", "cluster": {"base": "llama3-16k", "num_gpus": 8}, "model": "llama3-8b",
                "training": {"tokens": 1e12, "global_batch": 64, "seq_len": 4096}}
    default = plan(build_scenario(scenario), with_reliability=False).step
    named = build_scenario({**scenario, "calibration": out.name}, base_dir=tmp_path)
    mine = plan(named, with_reliability=False).step
    assert mine.step_time_s > default.step_time_s  # the slower cluster's knobs are in effect
    assert mine.step_time_s == plan(build_scenario(scenario), cal, with_reliability=False).step.step_time_s
    assert mine.uncertainty is not None and set(mine.uncertainty.rows) <= set(THREE)

    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    flag = json.loads(cli("plan", str(scenario_file), "--calibration", str(out), "--json").out)
    assert flag["step"]["step_time_s"] == mine.step_time_s


def test_calibrate_never_overwrites_a_users_file(cli, tmp_path: Path) -> None:
    """-o naming a file calibrate did not write is refused before any work, and the file is left as it was."""
    runs = _runs_file(tmp_path / "mine.yaml", _slower(THREE[:1], 1.1))
    notes = tmp_path / "notes.yaml"
    notes.write_text("my: notes\n", encoding="utf-8")
    cli("calibrate", str(runs), "-o", str(notes)).one_error_line("notes.yaml", "not written by")
    assert notes.read_text(encoding="utf-8") == "my: notes\n"
    cli("calibrate", str(runs), "-o", str(tmp_path / "missing" / "c.yaml")).one_error_line("does not exist")


def test_a_scenario_naming_a_missing_calibration_file_is_one_located_line(cli, tmp_path: Path) -> None:
    scenario = {"name": "x", "cluster": {"base": "llama3-16k", "num_gpus": 8}, "model": "llama3-8b",
                "training": {"tokens": 1e12, "global_batch": 64}, "calibration": "nowhere.yaml"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    cli("plan", str(path)).one_error_line("s.yaml", "calibration", "file not found")
    cli("plan", str(path.with_name("none.yaml")), "--calibration", str(tmp_path / "nope.yaml")).one_error_line()


def test_validate_cv_reports_leave_one_source_out_errors(cli, tmp_path: Path) -> None:
    """--cv adds every run's prediction with its source left out of the fit, and their median and max."""
    picked = [r for r in RUNS if r["id"].startswith(("nemo2407-llama", "mcore-h100-weak-1", "mcore-h100-weak-7"))]
    assert len({source_group(r) for r in picked}) == 2
    path = _runs_file(tmp_path / "two-sources.yaml", picked)
    result = cli("validate", str(path), "--cv", "--json", "--workers", "2")
    data = json.loads(result.out)
    assert data["cv_median_abs_rel_error"] is not None and data["cv_max_abs_rel_error"] is not None
    assert len(data["cv_groups"]) == 2
    assert all(r["cv_rel_error"] is not None for r in data["rows"])
    assert data["cv_max_abs_rel_error"] >= data["cv_median_abs_rel_error"]


@pytest.mark.refit
def test_shipped_calibration_is_the_neutral_fit_of_the_calibration_set() -> None:
    """catalog/calibration.yaml is `make calibrate`'s output for the calibration set as it is now: the same file
    (by hash), and the fitted knobs are what a fit from the neutral values gives."""
    fitted = shipped_document()["fit"]
    assert fitted["runs_sha256"] == hashlib.sha256(DEFAULT_FILE.read_bytes()).hexdigest(), \
        "the calibration set changed: run `make calibrate`"
    runs = load_fit_runs(None).fit
    ranges = knob_ranges()
    shipped = default_calibration()
    neutral = shipped.model_copy(update={k: r.neutral for k, r in ranges.items()})
    again = fit(runs, neutral, ranges)
    for knob in ranges:
        assert getattr(again, knob) == pytest.approx(getattr(shipped, knob), abs=1e-12), knob
