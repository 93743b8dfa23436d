"""`supercluster validate` on GEMM throughputs by shape (validate/gemms.yaml): each measurement predicted at its
part's catalog rate, compared, gated; bad rows are located errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from supercluster.validate import validation_kind
from supercluster.validate.gemms import DEFAULT_GEMMS_FILE, validate_gemms

ROWS: list[dict[str, Any]] = yaml.safe_load(DEFAULT_GEMMS_FILE.read_text(encoding="utf-8"))["measurements"]


def _write(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / "gemms.yaml"
    path.write_text(yaml.safe_dump({"measurements": rows}), encoding="utf-8")
    return path


def test_a_gemm_file_is_its_own_kind(tmp_path) -> None:
    """'measurements:' whose entries carry tflops is a GEMM file; mixing it with collective measurements is
    refused with a located line."""
    assert validation_kind(DEFAULT_GEMMS_FILE) == "gemms"
    collective = {"id": "c", "collective": "all_reduce", "message_bytes": 1024, "busbw_GBps": 10}
    with pytest.raises(Exception, match="mixes GEMM measurements"):
        validation_kind(_write(tmp_path, [ROWS[0], collective]))


def test_json_rows_carry_prediction_measurement_and_error(cli) -> None:
    """--json: every row's predicted and measured TFLOPS and their ratio; the statistics are the gated rows'."""
    result = cli("validate", str(DEFAULT_GEMMS_FILE), "--json")
    assert result.code == 0, result.out
    data = json.loads(result.out)
    assert data["kind"] == "gemms" and len(data["rows"]) == len(ROWS)
    gated = []
    for row in data["rows"]:
        assert row["rel_error"] == pytest.approx(row["predicted_tflops"] / row["measured_tflops"] - 1)
        if row["excluded"] is None:
            gated.append(abs(row["rel_error"]))
    assert data["max_abs_rel_error"] == pytest.approx(max(gated))
    assert data["excluded"] == sum(1 for r in ROWS if "exclude_from_gate" in r) > 0


def test_the_table_names_every_measurement(cli) -> None:
    result = cli("validate", str(DEFAULT_GEMMS_FILE))
    assert result.code == 0, result.out
    assert "GEMM kernel validation" in result.out and "within tolerance" in result.out
    for row in ROWS:
        assert row["id"] in result.out


def test_an_unknown_part_cannot_be_modelled_and_fails_the_gate(cli, tmp_path) -> None:
    """A part the catalog lacks is a row that cannot be modelled, with the reason, and the gate fails (exit 1)."""
    row = {**ROWS[0], "accelerator": "Z9000"}
    result = cli("validate", str(_write(tmp_path, [row])))
    assert result.code == 1 and "Z9000" in result.out and "Traceback" not in result.err


@pytest.mark.parametrize(("change", "field"), [
    ({"tflops": -5.0}, "measurements[0].tflops"),
    ({"m": 0}, "measurements[0].m"),
    ({"groups": 1.5}, "measurements[0].groups"),
    ({"dtype": "int4"}, "measurements[0].dtype"),
    ({"speed": 5.0}, "measurements[0].speed"),
    ({"exclude_from_gate": ""}, "measurements[0].exclude_from_gate"),
])
def test_bad_rows_are_one_located_line(cli, tmp_path, change: dict[str, Any], field: str) -> None:
    """A negative throughput, a zero dimension, a fractional group count, an unknown format or key, an exclusion
    without its reason: one located line, exit 2."""
    cli("validate", str(_write(tmp_path, [{**ROWS[0], **change}]))).one_error_line(field)


def test_the_gate_reads_the_file_s_tolerance(tmp_path) -> None:
    """A tolerance tighter than the model's worst row fails the gate and names the row."""
    path = tmp_path / "tight.yaml"
    path.write_text(yaml.safe_dump({"tolerance": {"median_abs_rel_error": 0.5, "max_abs_rel_error": 0.001},
                                    "measurements": ROWS[:3]}), encoding="utf-8")
    result = validate_gemms(path)
    assert not result.passed and any(ROWS[0]["id"] in f for f in result.failures)
