"""A prediction's interval (search.uncertainty): the nearest runs' cross-validated errors, widened by the spread of
the sources' mean errors."""

from __future__ import annotations

import math

import pytest

from supercluster import build_scenario
from supercluster.search.plan import best_step
from supercluster.search.uncertainty import (
    MIN_REL_ERROR,
    error_range,
    features,
    nearest,
    source_spread,
    unmatched,
    widened,
)
from supercluster.spec.calibration import Residual, default_calibration
from supercluster.spec.load import load_scenario

FEATS: dict[str, str | float | bool] = {"precision": "bf16"}


def _res(rid: str, group: str, cv: float) -> Residual:
    return Residual(id=rid, group=group, features=FEATS, rel_error=cv, cv_rel_error=cv)


def test_source_spread_is_the_deviation_of_the_sources_means() -> None:
    """Each source counts once, whatever its number of runs: means +0.1 (three runs) and -0.1 (one) give 0.1."""
    rows = [_res("a1", "A", 0.05), _res("a2", "A", 0.10), _res("a3", "A", 0.15), _res("b1", "B", -0.10)]
    assert source_spread(rows) == pytest.approx(0.1)
    # one source left: no spread to draw; leaving a source out leaves its runs out
    assert source_spread(rows, exclude_group="B") == 0.0
    assert source_spread(rows[:1]) == 0.0
    # sources that agree have no spread, however far their runs scatter inside them
    agree = [_res("a1", "A", -0.2), _res("a2", "A", 0.2), _res("b1", "B", 0.0)]
    assert source_spread(agree) == 0.0


def test_widened_band_holds_the_neighbours_range_and_never_an_infinite_time() -> None:
    rows = [_res("a1", "A", -0.05), _res("b1", "B", 0.08)]
    lo, hi = widened(*error_range(rows), 0.06)
    assert (lo, hi) == (pytest.approx(-0.11), pytest.approx(0.14))
    assert widened(-0.85, 0.0, 0.2)[0] == MIN_REL_ERROR


def test_plan_interval_is_the_neighbours_band_widened_by_the_shipped_spread() -> None:
    """plan's interval on the shipped calibration: the neighbours' range widened by the sources' spread, which is
    a few percent over the shipped sources, and the report says so."""
    cal = default_calibration()
    spread = source_spread(cal.residuals)
    assert 0.02 < spread < 0.15
    s = load_scenario("scenarios/llama3-405b-16k.yaml")
    report, _ = best_step(s, cal)
    assert report.uncertainty is not None and report.step_time_interval_s is not None
    e_min, e_max = error_range(nearest(cal.residuals, features(s, report.parallelism)))
    lo, hi = report.uncertainty.rel_error_range
    assert (lo, hi) == (pytest.approx(e_min - spread), pytest.approx(e_max + spread))
    assert report.uncertainty.source_spread == pytest.approx(spread)
    low, high = report.step_time_interval_s
    assert math.isclose(low, report.step_time_s / (1 + hi)) and math.isclose(high, report.step_time_s / (1 + lo))
    assert f"widened by {spread:.1%}" in report.uncertainty.basis


def test_a_kind_no_fitted_run_has_takes_the_listed_runs_of_its_kind() -> None:
    """A Mamba-2 hybrid (Nemotron 3 Nano): no fitted run has Mamba layers, so the report names them and draws the band
    from the calibration set's listed, unfitted runs of that kind (Megatron-Bridge's three Nano runs), whose measured
    step times lie inside it; a transformer keeps its neighbours and band, and is told nothing."""
    cal = default_calibration()
    listed = [r for r in cal.residuals if r.listed]
    assert {r.id for r in listed if r.features.get("ssm")} == {
        "mb2608-nemotron3-nano-8xgb300-mxfp8", "mb2606-nemotron3-nano-8xgb200-mxfp8",
        "mb2606-nemotron3-nano-16xh100-fp8cs"}
    nano = build_scenario({"name": "nano", "cluster": {"base": "llama3-16k", "num_gpus": 16},
                           "model": {"base": "nemotron-3-nano"},
                           "training": {"tokens": 1.0e12, "global_batch": 1024, "seq_len": 8192}}, check_rules=False)
    report, _ = best_step(nano, cal)
    u = report.uncertainty
    assert u is not None and u.unmatched == ["Mamba layers"] and len(u.rows) == 3
    assert "runs the calibration set lists and does not fit" in u.basis
    lo, hi = u.rel_error_range
    assert all(lo <= r.rel_error <= hi for r in listed if r.id in u.rows)  # each listed run inside the band
    dense = load_scenario("scenarios/llama3-405b-16k.yaml")
    dense_report, _ = best_step(dense, cal)
    assert dense_report.uncertainty is not None and dense_report.uncertainty.unmatched == []
    feats = features(dense, dense_report.parallelism)
    assert feats["ssm"] is False and unmatched(cal.residuals, feats) == []
    without = {k: v for k, v in feats.items() if k != "ssm"}  # the neighbours the band had before the feature
    assert [r.id for r in nearest(cal.residuals, without)] == dense_report.uncertainty.rows
    assert not any(r.listed for r in nearest(cal.residuals, feats, k=1000))  # listed runs never a neighbour


def test_listed_runs_weigh_in_no_spread_and_a_residual_before_the_feature_is_without_it() -> None:
    rows = [_res("a1", "A", 0.0), _res("b1", "B", 0.2)]
    listed = Residual(id="x", group="C", features={"ssm": True}, rel_error=-0.5, cv_rel_error=-0.5, listed=True)
    assert source_spread([*rows, listed]) == source_spread(rows)
    assert unmatched(rows, {"ssm": True}) == ["ssm"] and unmatched(rows, {"ssm": False}) == []
    assert unmatched([*rows, listed], {"ssm": True}) == ["ssm"]  # a listed run is not a fitted one
