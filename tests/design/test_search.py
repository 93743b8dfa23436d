"""The design search against brute force, its pruning, its constraints and its determinism."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from supercluster.design.evaluate import Builder, cheap_row, plan_shape
from supercluster.design.front import dominates
from supercluster.design.run import run_design
from supercluster.design.spec import load_design

from .conftest import small_design, write

# Two workloads: the base's, and three fine-tunes with their own batch (a weighted sum of bounds prunes, too).
WORKLOADS = [{"name": "pre"}, {"name": "ft", "weight": 3, "tokens": 2.0e10, "training": {"global_batch": 128}}]


@pytest.mark.parametrize("workloads", [None, WORKLOADS], ids=["one-workload", "two-workloads"])
def test_front_equals_brute_force(tmp_path: Path, workloads: list[dict[str, Any]] | None) -> None:
    """On a small space the front is what planning every design and removing the dominated ones gives, though
    the search prunes designs without planning them; no planned design beats its bound."""
    space = {**small_design()["space"], "facilities": ["memphis-colossus"]}
    data = small_design(space=space) if workloads is None else small_design(space=space, workloads=workloads)
    design = load_design(write(tmp_path, data))
    result = run_design(design, tmp_path / "out.duckdb", workers=1, wave=2)  # small waves: pruned between them
    assert result.status.get("pruned", 0) > 0  # the bound did skip work
    b = Builder(design)
    planned = []
    for i, p in enumerate(design.points):
        row = cheap_row(design, i, p, b)
        planned += plan_shape([b.scenarios(p)], [p.storage], [row], design.workloads)
    ok = [r for r in planned if r.status == "ok"]
    assert len(ok) == design.size
    for r in ok:
        assert r.bound_time_s is not None and r.time_to_train_s is not None
        assert r.bound_time_s <= r.time_to_train_s <= r.time_to_train_with_failures_s  # type: ignore[operator]
    brute = sorted(r.design for r in ok if not any(dominates(o.objectives(), r.objectives()) for o in ok))
    assert sorted(r.design for r in result.front) == brute
    by_id = {r.design: r for r in ok}
    for r in result.front:  # the same figures, whether planned with its fabrics together or alone
        assert r.objectives() == by_id[r.design].objectives()
    assert result.best is not None
    assert result.best.design.design == min(ok, key=lambda r: (*r.objectives(), r.design)).design


def test_constraints_make_rows_with_reasons(tmp_path: Path) -> None:
    """A design over the budget or the power cap is a row with its reason, never planned; the best meets both."""
    data = small_design(constraints={"budget_usd": 8.0e6, "power_mw": 0.2})
    result = run_design(load_design(write(tmp_path, data)), tmp_path / "out.duckdb", workers=1)
    assert result.best is not None
    best = result.best.design
    assert best.capex_usd is not None and best.capex_usd <= 8.0e6
    assert best.facility_peak_power_w is not None and best.facility_peak_power_w <= 0.2e6
    import duckdb

    con = duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True)
    reasons = [r[0] for r in con.execute("SELECT reason FROM results WHERE status = 'infeasible'").fetchall()]
    con.close()
    assert any(r.startswith("over budget") for r in reasons)
    names = {i.name: i for i in result.increments}
    assert set(names) == {"budget+10%", "power+10%", "one more tier", "NVL72"}
    assert names["budget+10%"].applicable and not names["NVL72"].applicable


def test_nothing_satisfies_is_one_located_line_before_any_work(cli, tmp_path: Path) -> None:
    """A budget no design meets: one line naming the file and constraints.budget_usd, exit 2, no results file."""
    path = write(tmp_path, small_design(constraints={"budget_usd": 1.0e3}))
    out = tmp_path / "out.duckdb"
    line = cli("design", str(path), "--out", str(out)).one_error_line(str(path), "constraints.budget_usd",
                                                                       "the cheapest costs")
    assert "Traceback" not in line
    assert not out.exists()


def test_same_json_twice_and_resumed(cli, tmp_path: Path) -> None:
    """Two runs print the same JSON (front, best with its plan, increments); a finished results file resumes to
    the same answer without planning again."""
    path = write(tmp_path, small_design())
    first = cli("design", str(path), "--out", str(tmp_path / "a.duckdb"), "--json", "--workers", "1")
    second = cli("design", str(path), "--out", str(tmp_path / "b.duckdb"), "--json", "--workers", "1")
    assert first.code == second.code == 0, first.err
    assert first.out == second.out
    data = json.loads(first.out)
    assert {"front", "best", "increments"} <= set(data)
    assert data["best"]["plan"]["step"]["num_gpus"] == data["best"]["design"]["num_gpus"]
    again = cli("design", str(path), "--out", str(tmp_path / "a.duckdb"), "--json", "--workers", "1")
    assert again.code == 0 and json.loads(again.out)["front"] == data["front"]


def test_console_lists_front_best_and_increments(cli, tmp_path: Path) -> None:
    """Without --json: the front, the best design and the increments as tables."""
    path = write(tmp_path, small_design())
    result = cli("design", str(path), "--out", str(tmp_path / "a.duckdb"), "--top", "2", "--workers", "1")
    assert result.code == 0, result.err
    for fragment in ("Pareto front", "(2 of", "the best design under the constraints", "what the next increment buys",
                     "power+10%", "parallelism:"):
        assert fragment in result.out, fragment


def test_a_cap_only_planning_can_check_leaves_no_best(cli, tmp_path: Path) -> None:
    """A water cap nothing meets is known only after planning: every design is a row with its reason, no best,
    no increments, and the reasons counted."""
    space = {**small_design()["space"], "accelerators": ["H100-SXM5-80GB"], "num_gpus": [64], "fabrics": ["spectrum-x"]}
    path = write(tmp_path, small_design(space=space, constraints={"water_m3_per_day": 0.0}))
    result = cli("design", str(path), "--out", str(tmp_path / "a.duckdb"), "--json", "--workers", "1")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["best"] is None and data["front"] == [] and data["increments"] == []
    assert data["reasons"] == {"over the water cap": 2}
