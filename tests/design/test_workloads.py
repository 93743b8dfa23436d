"""A design that runs several workloads: its figures are the weighted totals of each workload's, planned on the same
cluster as a design of that workload alone would be."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from supercluster.design.evaluate import Builder, cheap_row, plan_group, plan_shape
from supercluster.design.rows import DesignRow
from supercluster.design.spec import load_design

from .conftest import small_design, write

# One design: 64 H100 on Spectrum-X in Memphis.
ONE = {"accelerators": ["H100-SXM5-80GB"], "num_gpus": [64], "fabrics": ["spectrum-x"],
       "facilities": ["memphis-colossus"]}
PRE = {"name": "pre"}  # the base scenario's workload: llama3-8b on 2e11 tokens
SHORT = {"name": "short", "tokens": 5.0e10}  # the same in all but its tokens (shares the space and memory)
# a scenario file in another folder (its cluster and facility ignored), with its own batch and sequence length
FT = {"name": "ft", "scenario": "runs/ft.yaml"}
FT_SCENARIO = {"name": "ft", "cluster": "gpt3-a100", "model": "llama3-8b", "facility": "generic-liquid-cooled",
               "training": {"tokens": 2.0e10, "global_batch": 128, "seq_len": 8192, "precision": "bf16"}}


def _row(tmp_path: Path, workloads: list[dict[str, Any]], name: str) -> DesignRow:
    """The planned row of the one design, with these workloads."""
    (tmp_path / "runs").mkdir(exist_ok=True)
    (tmp_path / "runs" / "ft.yaml").write_text(yaml.safe_dump(FT_SCENARIO))
    d = load_design(write(tmp_path, small_design(space=ONE, workloads=workloads), name))
    assert d.size == 1
    b = Builder(d)
    p = d.points[0]
    cheap = cheap_row(d, 0, p, b)
    rows = plan_group([([b.scenarios(p)], [p.storage], [cheap])], d.workloads)
    assert len(rows) == 1 and rows[0].status == "ok", rows[0].reason
    return rows[0]


SUMS = ("time_to_train_s", "time_to_train_with_failures_s", "bound_time_s", "run_energy_facility_j", "run_co2_kg",
        "run_cost_usd", "run_cost_with_failures_usd")


def test_totals_are_the_weighted_sums_of_each_workload_alone(tmp_path: Path) -> None:
    """Times, bound, energy, CO2 and run costs add up with the weights; average power and MFU are the means weighted
    by time, water the most any workload needs; capex and peak power are the cluster's; each workload's own
    figures are those of a design of it alone (also when it shares its space with another workload)."""
    weights = {"pre": 1.0, "short": 2.0, "ft": 3.0}
    alone = {w["name"]: _row(tmp_path, [w], f"{w['name']}.yaml") for w in (PRE, SHORT, FT)}
    mix = _row(tmp_path, [{**w, "weight": weights[w["name"]]} for w in (PRE, SHORT, FT)], "mix.yaml")
    for field in SUMS:
        expected = sum(weights[n] * getattr(r, field) for n, r in alone.items())
        assert getattr(mix, field) == pytest.approx(expected, rel=1e-12), field
    times = {n: weights[n] * r.time_to_train_s for n, r in alone.items()}  # type: ignore[operator]
    for field in ("facility_average_power_w", "mfu"):
        expected = sum(times[n] * getattr(r, field) for n, r in alone.items()) / sum(times.values())
        assert getattr(mix, field) == pytest.approx(expected, rel=1e-12), field
    assert mix.water_m3_per_day == max(r.water_m3_per_day for r in alone.values())  # type: ignore[type-var]
    for field in ("capex_usd", "facility_peak_power_w", "budget_capex_usd"):
        assert getattr(mix, field) == getattr(alone["pre"], field)
    assert mix.parallelism == alone["pre"].parallelism and mix.step_time_s == alone["pre"].step_time_s
    figures = mix.workload_figures()
    assert [(f.name, f.weight) for f in figures] == [("pre", 1.0), ("short", 2.0), ("ft", 3.0)]
    for f in figures:
        (own,) = alone[f.name].workload_figures()
        assert f.model_copy(update={"weight": 1.0}) == own
    # the file's workload took its model and training (batch, sequence length), not its cluster
    assert alone["ft"].accelerator == "H100-SXM5-80GB"
    d = load_design(tmp_path / "ft.yaml")
    assert d.workloads[0].part == {k: FT_SCENARIO[k] for k in ("model", "training")}
    assert Builder(d).scenario(d.points[0]).seq_len == 8192


def test_config_json_paths_are_read_from_the_file_naming_them(tmp_path: Path) -> None:
    """A workload's config.json is relative to the file that names it (its scenario file, or the design file for
    an override), not to the base scenario's folder."""
    config = (Path(__file__).parents[1] / "data" / "hf" / "Meta-Llama-3-8B" / "config.json").read_text()
    for folder in ("runs/hf", "hf", "base"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / "runs" / "hf" / "config.json").write_text(config)
    (tmp_path / "hf" / "config.json").write_text(config)
    (tmp_path / "runs" / "tiny.yaml").write_text(yaml.safe_dump({**FT_SCENARIO, "model": "hf/config.json"}))
    (tmp_path / "base" / "base.yaml").write_text(yaml.safe_dump(small_design()["scenario"]))
    data = small_design(space=ONE, scenario="base/base.yaml", workloads=[
        {"name": "file", "scenario": "runs/tiny.yaml"},
        {"name": "override", "model": {"base": "hf/config.json", "layers": 16}}])
    d = load_design(write(tmp_path, data))
    b = Builder(d)
    assert [b.scenario(d.points[0], w).model.layers for w in range(2)] == [32, 16]


def test_weight_two_doubles_the_time(tmp_path: Path) -> None:
    """Running the workload twice takes twice as long, with and without failures, and costs twice the energy."""
    once = _row(tmp_path, [PRE], "once.yaml")
    twice = _row(tmp_path, [{**PRE, "weight": 2}], "twice.yaml")
    for field in SUMS:
        assert getattr(twice, field) == 2 * getattr(once, field), field
    for field in ("mfu", "facility_average_power_w", "water_m3_per_day", "goodput", "capex_usd"):
        assert getattr(twice, field) == getattr(once, field), field


def test_without_workloads_the_base_is_the_one_workload(tmp_path: Path) -> None:
    """No workloads list: the base scenario's workload, weight 1, and the same figures as naming it."""
    d = load_design(write(tmp_path, small_design(space=ONE)))
    assert [(w.weight, w.part) for w in d.workloads] == [(1.0, {})]
    b = Builder(d)
    p = d.points[0]
    (row,) = plan_shape([b.scenarios(p)], [p.storage], [cheap_row(d, 0, p, b)], d.workloads)
    named = _row(tmp_path, [PRE], "named.yaml")
    assert row.model_dump(exclude={"workloads"}) == named.model_dump(exclude={"workloads"})


def test_a_workload_that_fits_nowhere_makes_the_design_infeasible(tmp_path: Path) -> None:
    """A workload with no configuration (a 2T-parameter model on 64 GPUs: none fits in memory) makes the row
    infeasible, its reason naming the workload."""
    d = load_design(write(tmp_path, small_design(space=ONE, workloads=[PRE, {"name": "huge", "model": {
        "base": "llama3-8b", "layers": 8192}}])))
    b = Builder(d)
    p = d.points[0]
    (row,) = plan_shape([b.scenarios(p)], [p.storage], [cheap_row(d, 0, p, b)], d.workloads)
    assert row.status == "infeasible" and row.reason is not None
    assert row.reason.startswith("no configuration: workload 'huge': "), row.reason


def test_digest_names_the_workloads(tmp_path: Path) -> None:
    """Another weight, another name or another workload is other work (a results file of one is not resumed by
    the other); the same list is the same work."""
    def digest(workloads: list[dict[str, Any]] | None) -> str:
        data = small_design() if workloads is None else small_design(workloads=workloads)
        return load_design(write(tmp_path, data)).digest

    base = digest([PRE, SHORT])
    assert digest([PRE, SHORT]) == base
    others = [digest([PRE, {**SHORT, "weight": 2}]), digest([PRE, {**SHORT, "name": "brief"}]), digest([PRE]),
              digest(None), digest([PRE, {**SHORT, "tokens": 6.0e10}])]
    assert len({base, *others}) == len(others) + 1


def test_resume_refuses_another_workload_list(cli, tmp_path: Path) -> None:
    """A results file of the design with one workload list is refused (one line, exit 2) when the list changes."""
    out = tmp_path / "out.duckdb"
    first = write(tmp_path, small_design(space=ONE, workloads=[PRE, SHORT]))
    assert cli("design", str(first), "--out", str(out), "--json", "--workers", "1").code == 0
    second = write(tmp_path, small_design(space=ONE, workloads=[PRE, {**SHORT, "weight": 4}]))
    cli("design", str(second), "--out", str(out), "--workers", "1").one_error_line(
        "--out", "holds the results of another design search")


def test_console_and_json_show_the_workloads(cli, tmp_path: Path) -> None:
    """The JSON's best design lists each workload's figures; the console prints a line for each."""
    path = write(tmp_path, small_design(space=ONE, workloads=[PRE, {**SHORT, "weight": 5}]))
    data = json.loads(cli("design", str(path), "--out", str(tmp_path / "a.duckdb"), "--json", "--workers",
                          "1").out)
    best = data["best"]
    assert [(w["name"], w["weight"]) for w in best["workloads"]] == [("pre", 1.0), ("short", 5.0)]
    assert json.loads(best["design"]["workloads"]) == best["workloads"]
    assert best["design"]["time_to_train_s"] == pytest.approx(
        sum(w["weight"] * w["time_to_train_s"] for w in best["workloads"]), rel=1e-12)
    console = cli("design", str(path), "--out", str(tmp_path / "b.duckdb"), "--workers", "1")
    assert console.code == 0, console.err
    assert "its workloads, run in turn" in console.out
    assert "pre x1:" in console.out and "short x5:" in console.out
