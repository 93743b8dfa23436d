"""`supercluster validate` on metered training runs: each row predicted inside its boundary, node power compared,
the interconnect estimate shown beside; bad rows are located errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from supercluster.validate import validation_kind
from supercluster.validate.power import DEFAULT_POWER_FILE, meter_point, validate_power

ROWS: list[dict[str, Any]] = yaml.safe_load(DEFAULT_POWER_FILE.read_text(encoding="utf-8"))["runs"]


def _write(tmp_path: Path, runs: list[dict[str, Any]], **top: Any) -> Path:
    path = tmp_path / "power.yaml"
    path.write_text(yaml.safe_dump({**top, "runs": runs}), encoding="utf-8")
    return path


def _row(suffix: str) -> dict[str, Any]:
    return next(r for r in ROWS if r["id"].endswith(suffix))


def test_a_metered_runs_file_is_its_own_kind(tmp_path) -> None:
    """A 'runs:' file whose entries carry average_power_w and boundary is a power file; mixing it with published
    training runs is refused."""
    assert validation_kind(DEFAULT_POWER_FILE) == "power"
    published = {"id": "x", "cluster": {}, "model": {}, "training": {}, "expected": {"step_time_s": 1.0}}
    with pytest.raises(Exception, match="mixes metered runs"):
        validation_kind(_write(tmp_path, [ROWS[0], published]))


def test_json_rows_carry_the_prediction_its_parts_and_the_statistics(cli) -> None:
    """--json: every row has id, predicted and expected W, the error, the component split and its notes; node power
    is compared (the interconnect estimate is shown beside, in both totals), and the statistics are the rows'."""
    result = cli("validate", str(DEFAULT_POWER_FILE), "--json")
    assert result.code == 0, result.out
    data = json.loads(result.out)
    assert data["kind"] == "power" and len(data["rows"]) == len(ROWS)
    by_id = {r["id"]: r for r in ROWS}
    errors = []
    for row in data["rows"]:
        published = by_id[row["id"]]
        interconnect = published.get("interconnect_power_w") or 0.0
        assert row["expected_w"] == pytest.approx(published["average_power_w"] - interconnect)
        assert row["expected_total_w"] == pytest.approx(published["average_power_w"])
        assert row["predicted_total_w"] == pytest.approx(row["predicted_w"] + interconnect)
        parts = row["components"]
        assert parts["network_w"] == pytest.approx(interconnect)
        assert row["predicted_w"] == pytest.approx(
            parts["gpus_w"] + parts["hosts_w"] + parts["nics_w"] + parts["conversion_w"], rel=1e-9)
        assert (parts["conversion_w"] > 0) == (row["meter"] == "AC")
        assert row["rel_error"] == pytest.approx(row["predicted_w"] / row["expected_w"] - 1)
        assert row["predicted_energy_j"] == pytest.approx(row["predicted_w"] * published["time_to_train_s"])
        errors.append(abs(row["rel_error"]))
    assert data["max_abs_rel_error"] == pytest.approx(max(errors))
    lora = [r for r in data["rows"] if "lora" in r["id"]]
    assert lora and all(any("LoRA fine-tuning: rank 16" in n for n in r["notes"]) for r in lora)


def test_the_ac_meter_reads_more_than_the_dc_side_by_the_supplies_efficiency() -> None:
    """The same run seen at the AC input and on the DC side: the AC prediction is the DC one over the power supplies'
    efficiency, and the row text decides which meter a row is."""
    result = validate_power()
    by_id = {r.id: r for r in result.rows}
    for row in result.rows:
        if row.meter != "AC":
            continue
        dc = by_id[row.id.replace("-ac-", "-dc-")]
        assert dc.meter == "DC" and row.predicted_w is not None and dc.predicted_w is not None
        assert row.predicted_w == pytest.approx(dc.predicted_w / 0.96)
    assert meter_point("node DC power on the DC side (same runs as the AC row)") == "DC"
    assert meter_point("node AC input power") == "AC"


def test_an_unknown_benchmark_is_a_row_that_cannot_be_modelled(cli, tmp_path) -> None:
    """A benchmark without a model in the tool is listed with its reason and fails the gate (exit 1), not a crash."""
    row = {**_row("dc-1x8-h100-llama2-70b-lora")}
    row["workload"] = {**row["workload"], "benchmark": "stable_diffusion"}
    result = cli("validate", str(_write(tmp_path, [row])))
    assert result.code == 1 and "stable_diffusion" in result.out and "Traceback" not in result.err


@pytest.mark.parametrize(("change", "field"), [
    ({"average_power_w": -5.0}, "runs[0].average_power_w"),
    ({"interconnect_power_w": 1.0e7}, "runs[0].interconnect_power_w"),
    ({"wattage": 5.0}, "runs[0].wattage"),
    ({"cluster": {**_row("dc-1x8-h100-llama2-70b-lora")["cluster"], "num_gpus": 0}}, "runs[0].cluster.num_gpus"),
    ({"workload": {**_row("dc-1x8-h100-llama2-70b-lora")["workload"], "trained_samples": 0}},
     "runs[0].workload.trained_samples"),
    ({"workload": {**_row("dc-1x8-h100-llama2-70b-lora")["workload"], "evaluations": -1}},
     "runs[0].workload.evaluations"),
    ({"parallelism": {"tp": 4, "pp": 0}}, "runs[0].parallelism.pp"),
])
def test_bad_rows_are_one_located_line(cli, tmp_path, change: dict[str, Any], field: str) -> None:
    """A negative power, an interconnect above the total, an unknown key or a zero GPU count: one located line,
    exit 2."""
    row = {**_row("dc-1x8-h100-llama2-70b-lora"), **change}
    cli("validate", str(_write(tmp_path, [row]))).one_error_line(field)


def test_the_row_s_parallelism_is_used_when_it_states_one(tmp_path) -> None:
    """A row that publishes its parallel degrees is timed with them, not with the search's choice."""
    row = {**_row("dc-64x8-h100-gpt3"), "parallelism": {"tp": 8, "pp": 8, "dp": 8}}
    result = validate_power(_write(tmp_path, [row]))
    par = result.rows[0].parallelism
    assert par is not None and (par["tp"], par["pp"], par["dp"]) == (8, 8, 8)


def test_a_short_run_s_set_up_inside_its_window_idles_its_gpus(tmp_path) -> None:
    """The meter averages over the timed window, not over the steps: the 512-GPU LoRA run (two minutes) works its
    108 steps and 8 evaluations at the step's activity and waits through the rest of the window with the SMs idle.
    Without the samples it trained the row is taken as steps throughout, and reads about +19% (+22% before the
    attention kernels of its software were timed as cuDNN's)."""
    row = _row("dc-64x8-h100-llama2-70b-lora")
    assert row["parallelism"]["source"] and row["parallelism"]["cp"] == 2  # the published NeMo config
    windowed = validate_power(_write(tmp_path, [row])).rows[0]
    assert windowed.window_s == pytest.approx(row["time_to_train_s"] / row["rcp_scaling_factor"])
    # the steps and passes last as the run's logs time them (timeline), the model's step beside
    assert windowed.train_s == pytest.approx(108 * row["timeline"]["step_time_s"])
    assert windowed.eval_s == pytest.approx(row["timeline"]["evaluation_s"]) and windowed.eval_s < windowed.train_s
    assert windowed.step_time_s is not None and windowed.step_time_s != row["timeline"]["step_time_s"]
    assert any("result logs" in n for n in windowed.notes)
    assert windowed.logged_step_time_s == row["timeline"]["step_time_s"]
    assert any(n.startswith(f"{row['id']}: the step model's step") for n in windowed.notes)  # the two beside
    predicted = validate_power(_write(tmp_path, [{k: v for k, v in row.items() if k != "timeline"}])).rows[0]
    assert predicted.logged_step_time_s is None
    assert predicted.train_s == pytest.approx(108 * windowed.step_time_s)
    assert predicted.eval_s is not None and 0 < predicted.eval_s < predicted.train_s
    assert not any("result logs" in n for n in predicted.notes)
    busy = (windowed.train_s + windowed.eval_s) / windowed.window_s
    assert 0.5 < busy < 0.8
    assert windowed.gpu_activity == pytest.approx(windowed.step_gpu_activity * busy)
    assert windowed.rel_error is not None and abs(windowed.rel_error) < 0.10
    steps_only = {**row, "workload": {k: v for k, v in row["workload"].items() if k != "trained_samples"}}
    old = validate_power(_write(tmp_path, [steps_only])).rows[0]
    assert old.gpu_activity == old.step_gpu_activity == windowed.step_gpu_activity
    assert old.rel_error is not None and old.rel_error > 0.15
    assert any("samples trained not stated" in n for n in old.notes)


def test_a_run_longer_than_its_window_works_throughout(tmp_path) -> None:
    """When the steps and evaluations fill the measured window (here a step of 4 s against the 3.84 s the one-node
    run's logs time), the GPUs are taken as working all of it, at the step's activity."""
    data = _row("dc-1x8-h100-llama2-70b-lora")
    data = {**data, "timeline": {**data["timeline"], "step_time_s": 4.0}}
    row = validate_power(_write(tmp_path, [data])).rows[0]
    assert row.train_s is not None and row.eval_s is not None and row.window_s is not None
    assert row.train_s + row.eval_s >= row.window_s
    assert row.gpu_activity == row.step_gpu_activity
