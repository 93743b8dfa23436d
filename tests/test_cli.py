"""The command line: its pinned surface, `plan`, `validate` and `catalog` output, exit codes and error lines."""

from __future__ import annotations

import copy
import json
import math
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from supercluster.cli import app
from supercluster.spec import catalog
from supercluster.validate import DEFAULT_FILE

REPO = Path(__file__).resolve().parents[1]
MEMPHIS = REPO / "scenarios" / "memphis.yaml"

SMALL = {
    "name": "small",
    "cluster": "colossus",
    "model": "llama3-8b",
    "training": {"tokens": 1.0e12, "global_batch": 512, "seq_len": 8192},
}

REPORT_KEYS = {
    "step_time_s", "tokens_per_s", "mfu", "hfu", "time_to_train_s", "gpu_hours", "memory_per_gpu_bytes", "fits",
    "params", "active_params", "model_flops_per_token", "parallelism", "breakdown",
}
PARALLELISM_KEYS = {"tp", "pp", "dp", "cp", "ep", "micro_batch", "virtual_stages", "recompute", "zero_stage"}
ROW_KEYS = {"id", "predicted_step_time_s", "expected_step_time_s", "rel_error", "parallelism"}


def _write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _calibration_runs(n: int) -> list[dict[str, Any]]:
    """The first n published runs of the built-in calibration file (small, fast to predict)."""
    runs = yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))["runs"]
    return copy.deepcopy(runs[:n])


def _runs_file(path: Path, runs: list[dict[str, Any]], median: float, worst: float) -> Path:
    tolerance = {"metric": "step_time_s", "median_abs_rel_error": median, "max_abs_rel_error": worst}
    return _write_yaml(path, {"tolerance": tolerance, "runs": runs})


def _plan_json(cli, *args: str) -> dict[str, Any]:
    """The step report of `plan ARGS --json` (the run report's ``step``)."""
    return _run_json(cli, *args)["step"]


def _run_json(cli, *args: str) -> dict[str, Any]:
    result = cli("plan", *args, "--json")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    return json.loads(result.out)


@pytest.fixture(scope="module")
def memphis_run(cli) -> dict[str, Any]:
    """`plan scenarios/memphis.yaml --json`, parsed (planned once per module)."""
    return _run_json(cli, str(MEMPHIS))


@pytest.fixture(scope="module")
def memphis(memphis_run: dict[str, Any]) -> dict[str, Any]:
    return memphis_run["step"]


def test_plan_json_is_one_typed_run_report(cli, memphis_run: dict[str, Any]) -> None:
    """`plan --json` is the RunReport: the step, what the search looked at, the fabric, the facility and reliability
    ledgers, the claims judged and the provenance of every input; and the same output twice, byte for byte."""
    assert memphis_run.keys() == {"model", "step", "search", "fabric", "facility", "reliability", "reliability_note",
                                  "reliability_infeasible", "claims", "provenance"}
    assert memphis_run["search"]["candidates"] > 1 and "seconds" not in memphis_run["search"]
    assert memphis_run["facility"]["peak"]["facility_w"] > 0
    assert memphis_run["fabric"]["switches"] > 0 and memphis_run["fabric"]["tiers"]
    kinds = {p["kind"] for p in memphis_run["provenance"]}
    assert {"cluster", "accelerator", "model", "facility", "software", "calibration"} <= kinds
    assert all(p["source"] for p in memphis_run["provenance"])
    assert cli("plan", str(MEMPHIS), "--json").out == json.dumps(memphis_run, indent=2) + "\n"


# --- the surface ----------------------------------------------------------------------------------------------


def test_cli_surface_is_pinned() -> None:
    """The app has exactly the commands plan, report, search, sweep, design, validate, calibrate, facility,
    reliability, claims, fabric, collective, catalog, serve and simulate,
    each with exactly
    its pinned parameters."""
    group = typer.main.get_command(app)
    surface = {
        name: {(p.param_type_name, *p.opts, bool(getattr(p, "multiple", False)), bool(getattr(p, "is_flag", False)))
               for p in command.params}
        for name, command in group.commands.items()
    }
    assert surface == {
        "plan": {("argument", "scenario", False, False), ("option", "--set", True, False),
                 ("option", "--calibration", False, False), ("option", "--strict", False, True),
                 ("option", "--json", False, True)},
        "report": {("argument", "scenario", False, False), ("option", "-o", "--out", False, False),
                   ("option", "--format", False, False), ("option", "--set", True, False),
                   ("option", "--calibration", False, False), ("option", "--strict", False, True)},
        "validate": {("argument", "file", False, False), ("option", "--cv", False, True),
                     ("option", "--calibration", False, False), ("option", "--workers", False, False),
                     ("option", "--json", False, True)},
        "calibrate": {("argument", "runs", False, False), ("option", "-o", "--out", False, False),
                      ("option", "--neutral", False, True), ("option", "--no-cv", False, True),
                      ("option", "--calibration", False, False), ("option", "--workers", False, False),
                      ("option", "--json", False, True)},
        "catalog": {("argument", "kind", False, False), ("option", "--json", False, True)},
        "fabric": {("argument", "target", False, False), ("option", "--json", False, True)},
        "claims": {("argument", "scenario", False, False), ("option", "--json", False, True)},
        "facility": {("argument", "scenario", False, False), ("option", "--set", True, False),
                     ("option", "--json", False, True)},
        "search": {("argument", "scenario", False, False), ("option", "--top", False, False),
                   ("option", "--pareto", False, True), ("option", "--set", True, False),
                   ("option", "--calibration", False, False), ("option", "--strict", False, True),
                   ("option", "--json", False, True)},
        "sweep": {("argument", "file", False, False), ("option", "--out", False, False),
                  ("option", "--backend", False, False), ("option", "--address", False, False),
                  ("option", "--workers", False, False), ("option", "--yes", False, True),
                  ("option", "--plot", False, False), ("option", "--report", False, False),
                  ("option", "--json", False, True)},
        "design": {("argument", "file", False, False), ("option", "--top", False, False),
                   ("option", "--out", False, False), ("option", "--backend", False, False),
                   ("option", "--address", False, False), ("option", "--workers", False, False),
                   ("option", "--json", False, True)},
        "reliability": {("argument", "scenario", False, False), ("option", "--runs", False, False),
                        ("option", "--seed", False, False), ("option", "--set", True, False),
                        ("option", "--json", False, True)},
        "collective": {("option", "--cluster", False, False), ("option", "--op", False, False),
                       ("option", "--bytes", False, False), ("option", "--gpus", False, False),
                       ("option", "--algo", False, False), ("option", "--stride", False, False),
                       ("option", "--json", False, True)},
        "serve": {("option", "--host", False, False), ("option", "--port", False, False)},
        "simulate": {("argument", "scenario", False, False), ("option", "--trace", False, False),
                     ("option", "--detail", False, False), ("option", "--seed", False, False),
                     ("option", "--iterations", False, False), ("option", "--straggler", True, False),
                     ("option", "--jitter", False, False), ("option", "--contention", False, True),
                     ("option", "--routing", False, False), ("option", "--slow-link", True, False),
                     ("option", "--set", True, False), ("option", "--calibration", False, False),
                     ("option", "--json", False, True)},
    }
    assert [p.opts for p in group.params if p.name != "help"] == [["--version"]]


def test_version_and_short_help(cli) -> None:
    """`--version` prints the version and exits 0; `-h` is `--help` on the app and on every command."""
    from supercluster import __version__

    result = cli("--version")
    assert (result.code, result.out.strip()) == (0, f"supercluster {__version__}")
    assert cli("-h").out == cli("--help").out
    for name in typer.main.get_command(app).commands:  # type: ignore[attr-defined]
        short, long = cli(name, "-h"), cli(name, "--help")
        assert short.code == long.code == 0, (name, short.err)
        assert short.out == long.out and "Usage" in short.out, name


def test_help_lists_the_commands(cli) -> None:
    """`--help` exits 0 and names every command."""
    result = cli("--help")
    assert result.code == 0, result.err
    for name in ("plan", "validate", "catalog"):
        assert name in result.out


@pytest.mark.parametrize("args", [[], ["plan"], ["plann"], ["plan", str(MEMPHIS), "--bogus"]],
                         ids=["no-args", "missing-argument", "unknown-command", "unknown-option"])
def test_usage_errors_exit_2_without_traceback(cli, args: list[str]) -> None:
    """A command line click cannot parse exits 2 with a usage message, never a traceback."""
    result = cli(*args)
    assert "Traceback" not in result.err, result.err
    assert result.code == 2
    assert result.err.strip() or result.out.strip()


# --- plan ------------------------------------------------------------------------------------------------------


def test_plan_json_has_the_figures(memphis: dict[str, Any]) -> None:
    """`plan --json` prints every decision figure, the parallel degrees and a per-part step breakdown."""
    assert memphis.keys() >= REPORT_KEYS
    assert memphis["parallelism"].keys() >= PARALLELISM_KEYS
    assert memphis["breakdown"] and all(isinstance(v, float) for v in memphis["breakdown"].values())


def test_plan_breakdown_sums_to_step_time(memphis: dict[str, Any]) -> None:
    """The breakdown parts add up to step_time_s (rel 1e-9), each part non-negative."""
    parts = memphis["breakdown"]
    assert all(v >= 0 for v in parts.values()), parts
    assert math.fsum(parts.values()) == pytest.approx(memphis["step_time_s"], rel=1e-9)


def test_plan_memphis_fits_with_sane_utilisation(memphis: dict[str, Any]) -> None:
    """The Memphis plan fits in memory and 0 < MFU <= HFU < 1."""
    assert memphis["fits"] is True
    assert memphis["memory_per_gpu_bytes"] <= memphis["hbm_budget_bytes"]
    assert 0 < memphis["mfu"] <= memphis["hfu"] < 1


def test_plan_figures_are_consistent(memphis: dict[str, Any]) -> None:
    """Throughput, time-to-train, GPU-hours and the degrees agree with one another and with the GPU count."""
    m, par = memphis, memphis["parallelism"]
    assert m["tokens_per_s"] == pytest.approx(m["tokens_per_step"] / m["step_time_s"], rel=1e-9)
    assert m["time_to_train_s"] == pytest.approx(m["training_tokens"] / m["tokens_per_s"], rel=1e-9)
    assert m["gpu_hours"] == pytest.approx(m["time_to_train_s"] * m["num_gpus"] / 3600, rel=1e-9)
    assert par["tp"] * par["pp"] * par["dp"] * par["cp"] == m["num_gpus"]
    assert 0 < m["active_params"] <= m["params"]


def test_set_tokens_scales_time_to_train(cli, memphis: dict[str, Any]) -> None:
    """--set training.tokens=15e12 keeps the step and scales time_to_train_s by 15e12 / the file's tokens."""
    r = _plan_json(cli, str(MEMPHIS), "--set", "training.tokens=15e12")
    assert r["training_tokens"] == 15e12
    assert r["step_time_s"] == pytest.approx(memphis["step_time_s"], rel=1e-12)
    assert r["time_to_train_s"] / memphis["time_to_train_s"] == pytest.approx(
        15e12 / memphis["training_tokens"], rel=1e-9)


def test_set_pins_a_parallel_degree(cli) -> None:
    """--set parallelism.tp=4 fixes tp at 4 in the chosen configuration."""
    r = _plan_json(cli, str(MEMPHIS), "--set", "parallelism.tp=4")
    assert r["parallelism"]["tp"] == 4
    par = r["parallelism"]
    assert par["tp"] * par["pp"] * par["dp"] * par["cp"] == r["num_gpus"]


def test_set_swaps_the_model(cli) -> None:
    """--set model=llama3-405b replaces the model by the catalog entry (405.85e9 parameters)."""
    r = _plan_json(cli, str(MEMPHIS), "--set", "model=llama3-405b", "--set", "cluster.num_gpus=16384",
                   "--set", "training.global_batch=2048")
    assert r["model"] == "llama3-405b"
    assert r["num_gpus"] == 16384
    assert r["params"] == pytest.approx(405.85e9, rel=1e-3)
    assert r["active_params"] == r["params"]


def test_set_num_gpus_on_a_catalog_cluster(cli, tmp_path: Path) -> None:
    """--set cluster.num_gpus resizes a cluster the scenario names from the catalog, keeping its hardware."""
    f = _write_yaml(tmp_path / "small.yaml", SMALL)
    r = _plan_json(cli, str(f), "--set", "cluster.num_gpus=64")
    assert (r["num_gpus"], r["cluster"], r["accelerator"]) == (64, "colossus", "H100-SXM5-80GB")
    par = r["parallelism"]
    assert par["tp"] * par["pp"] * par["dp"] * par["cp"] == 64


def test_plan_table_output(cli, tmp_path: Path) -> None:
    """Without --json, plan prints a human-readable report naming the model and exits 0."""
    f = _write_yaml(tmp_path / "small.yaml", SMALL)
    result = cli("plan", str(f), "--set", "cluster.num_gpus=64")
    assert result.code == 0, result.err
    assert "llama3-8b" in result.out
    assert result.err == ""


def test_plan_says_an_fp8_runs_scaling_recipe(cli, tmp_path: Path) -> None:
    """An fp8 plan names its scaling recipe: Transformer Engine's default on H100 (delayed) unless the scenario
    names one, and its LM head's precision (16-bit, as Megatron-Core runs it); the report line reads 'fp8, delayed
    scaling, LM head in bf16'; a bf16 plan has neither."""
    f = _write_yaml(tmp_path / "small.yaml", SMALL)
    fp8 = ("--set", "cluster.num_gpus=64", "--set", "training.precision=fp8")
    assert _plan_json(cli, str(f), *fp8)["fp8_recipe"] == "delayed"
    assert _plan_json(cli, str(f), *fp8, "--set", "training.fp8_recipe=tensorwise")["fp8_recipe"] == "tensorwise"
    bf16 = _plan_json(cli, str(f), "--set", "cluster.num_gpus=64")
    assert (bf16["fp8_recipe"], bf16["lm_head_precision"]) == (None, None)
    assert _plan_json(cli, str(f), *fp8)["lm_head_precision"] == "bf16"
    assert "fp8, delayed scaling, LM head in bf16" in cli("plan", str(f), *fp8).out


def test_plan_error_is_one_line(cli, tmp_path: Path) -> None:
    """A bad --set value gives one located `error:` line on stderr and exit code 2."""
    f = _write_yaml(tmp_path / "small.yaml", SMALL)
    cli("plan", str(f), "--set", "training.global_batch=-1").one_error_line(str(f), "training.global_batch")


# --- the model report and --strict -------------------------------------------------------------------------------

HF_DATA = REPO / "tests" / "data" / "hf"
GPT_OSS = {"name": "gpt-oss", "cluster": {"base": "colossus", "num_gpus": 64},
           "model": str(HF_DATA / "gpt-oss-120b" / "config.json"),
           "training": {"tokens": 1.0e12, "global_batch": 512, "seq_len": 4096}}


def test_plan_json_carries_the_model_report(cli, memphis_run: dict[str, Any]) -> None:
    """`plan --json` has the model under `model`: its layers, parameters with and without the input embedding, the
    N its MFU is computed from, the published totals and the assumptions of its catalog entry."""
    m = memphis_run["model"]
    entry = catalog.entries("models")["gpt4-moe"]
    assert (m["name"], m["family"], m["layers"], m["moe_layers"]) == ("gpt4-moe", "catalog", 120, 120)
    assert m["params"] == memphis_run["step"]["params"] and m["active_params"] == memphis_run["step"]["active_params"]
    assert m["mfu_params"] < m["active_params_without_input_embedding"] < m["active_params"]
    assert m["published_params"] == entry["published_params"] and m["assumptions"] == entry["assumptions"]
    assert "6N" in m["mfu_params_basis"]


def test_plan_prints_the_model_table_and_its_assumptions(cli, tmp_path: Path) -> None:
    """plan's text output has a model table before the step breakdown, and the config's assumptions one per line."""
    f = _write_yaml(tmp_path / "oss.yaml", {**GPT_OSS, "model": str(HF_DATA / "gemma-3-1b-pt" / "config.json")})
    result = cli("plan", str(f))
    assert result.code == 0, result.err
    out = result.out
    assert out.index("model") < out.index("step breakdown")
    assert "22 of 26 layers windowed (512 tokens), 4 full" in out and "N for MFU" in out
    assert "1 assumption the model rests on (--strict refuses them):" in out
    assert "  - tie_word_embeddings absent: tied input and output embeddings (the gemma3_text default)" in out


def test_plan_of_a_config_json_reports_its_counts(cli, tmp_path: Path) -> None:
    """plan of gpt-oss-120b's config.json: the model report's active count without the input embedding is the
    model card's 5.13B, its windowed layers and no assumption."""
    f = _write_yaml(tmp_path / "oss.yaml", GPT_OSS)
    m = _run_json(cli, str(f))["model"]
    assert m["family"] == "gpt_oss" and m["windowed_layers"] == 18 and m["sliding_window"] == 128
    assert m["active_params_without_input_embedding"] == pytest.approx(5.13e9, rel=0.01)
    assert m["assumptions"] == [] and m["published_params"] is None


def test_plan_of_a_mamba2_hybrid_config_json(cli, tmp_path: Path) -> None:
    """plan --json of Nemotron-H-8B's config.json works end to end: 28 layers (24 Mamba-2, 4 attention, 4 without an
    MLP) in the model report, 8.10B parameters, MFU over the model FLOPs with the SSD scan, no assumption."""
    f = _write_yaml(tmp_path / "nh.yaml", {**GPT_OSS, "model": str(HF_DATA / "Nemotron-H-8B-Base-8K" / "config.json"),
                                           "training": {"tokens": 1.0e12, "global_batch": 256, "seq_len": 8192}})
    run = _run_json(cli, str(f))
    m, step = run["model"], run["step"]
    assert m["family"] == "nemotron_h" and m["layers"] == 28 and m["ssm_layers"] == 24 and m["assumptions"] == []
    assert "24 Mamba-2, 4 attention; 4 without an MLP" in m["layer_pattern"]
    assert m["params"] == step["params"] == 8_100_852_736
    assert 0 < step["mfu"] <= step["hfu"] < 1 and step["fits"]


def test_a_bad_ssm_override_is_one_located_line(cli, tmp_path: Path) -> None:
    """--set model.ssm.groups that does not divide the SSM heads: one located error line, exit 2."""
    f = _write_yaml(tmp_path / "nh.yaml", {**GPT_OSS, "model": str(HF_DATA / "Nemotron-H-8B-Base-8K" / "config.json")})
    cli("plan", str(f), "--set", "model.ssm.groups=3").one_error_line(str(f), "model.ssm")


@pytest.mark.parametrize("command", ["plan", "search"])
def test_strict_refuses_a_model_resting_on_assumptions(cli, tmp_path: Path, command: str) -> None:
    """`plan/search --strict` on a config.json with assumptions: exit 2, one line naming the config file and each
    assumption; without --strict it runs."""
    config = HF_DATA / "gemma-3-27b-pt" / "config.json"
    f = _write_yaml(tmp_path / "g.yaml", {**GPT_OSS, "model": str(config)})
    line = cli(command, str(f), "--strict").one_error_line(str(config), "--strict refuses", "6 assumptions")
    for i in range(1, 7):
        assert f"({i}) " in line
    assert "(1) multimodal config: the language model (text_config) is modelled; vision_config left out" in line


def test_strict_accepts_a_config_stating_everything(cli, tmp_path: Path) -> None:
    """--strict changes nothing for a model without assumptions."""
    f = _write_yaml(tmp_path / "oss.yaml", GPT_OSS)
    assert cli("plan", str(f), "--strict", "--json").out == cli("plan", str(f), "--json").out


# --- end to end, as a real process -----------------------------------------------------------------------------


def _process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supercluster.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_end_to_end_plan_json(tmp_path: Path) -> None:
    """`python -m supercluster.cli plan FILE --json` in a fresh process prints valid JSON and exits 0."""
    _write_yaml(tmp_path / "small.yaml", SMALL)
    proc = _process("plan", "small.yaml", "--json", "--set", "cluster.num_gpus=64", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["step"]
    assert report["num_gpus"] == 64 and report["fits"] is True


def test_end_to_end_bad_input(tmp_path: Path) -> None:
    """A bad scenario in a fresh process: exit 2, exactly one stderr line, no traceback."""
    _write_yaml(tmp_path / "small.yaml", {**SMALL, "training": {**SMALL["training"], "tokenz": 1}})
    proc = _process("plan", "small.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: small.yaml: training.tokenz: unknown key"), lines
    assert proc.stdout == ""


# --- validate --------------------------------------------------------------------------------------------------


def test_validate_json_rows(cli, tmp_path: Path) -> None:
    """validate --json prints one row per run (id, predicted, expected, rel_error, parallelism) and the summary."""
    runs = _calibration_runs(2)
    f = _runs_file(tmp_path / "runs.yaml", runs, median=100.0, worst=100.0)
    result = cli("validate", str(f), "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert [row["id"] for row in data["rows"]] == [run["id"] for run in runs]
    errors = []
    for row in data["rows"]:
        assert row.keys() >= ROW_KEYS
        assert row["predicted_step_time_s"] > 0
        assert row["rel_error"] == pytest.approx(
            (row["predicted_step_time_s"] - row["expected_step_time_s"]) / row["expected_step_time_s"], rel=1e-9)
        assert {"tp", "pp", "dp", "cp"} <= row["parallelism"].keys()
        errors.append(abs(row["rel_error"]))
    assert data["median_abs_rel_error"] == pytest.approx(statistics.median(errors), rel=1e-12)
    assert data["max_abs_rel_error"] == pytest.approx(max(errors), rel=1e-12)
    assert data["passed"] is True and data["failures"] == []


def test_validate_expected_values_come_from_the_file(cli, tmp_path: Path) -> None:
    """Each row's expected_step_time_s is the run's expected.step_time_s, verbatim."""
    runs = _calibration_runs(1)
    runs[0]["expected"]["step_time_s"] = 1.234
    f = _runs_file(tmp_path / "runs.yaml", runs, median=100.0, worst=100.0)
    data = json.loads(cli("validate", str(f), "--json").out)
    assert data["rows"][0]["expected_step_time_s"] == 1.234


def test_validate_breach_is_reported(cli, tmp_path: Path) -> None:
    """With a tolerance of 0.0 every run breaches it: passed is false and each breach is listed."""
    runs = _calibration_runs(2)
    f = _runs_file(tmp_path / "runs.yaml", runs, median=0.0, worst=0.0)
    data = json.loads(cli("validate", str(f), "--json").out)
    assert data["passed"] is False
    assert any("median" in failure for failure in data["failures"])
    for run in runs:
        assert any(failure.startswith(f"{run['id']}: ") for failure in data["failures"]), data["failures"]


def test_validate_within_tolerance_exits_0(cli, tmp_path: Path) -> None:
    """validate exits 0 (table output) when every run is within the file's tolerance."""
    f = _runs_file(tmp_path / "runs.yaml", _calibration_runs(2), median=100.0, worst=100.0)
    result = cli("validate", str(f))
    assert result.code == 0, result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_validate_breach_exits_1(cli, tmp_path: Path, as_json: bool) -> None:
    """validate exits 1 when the file's tolerance is breached."""
    f = _runs_file(tmp_path / "runs.yaml", _calibration_runs(2), median=0.0, worst=0.0)
    result = cli("validate", str(f), *(["--json"] if as_json else []))
    assert "Traceback" not in result.err
    assert result.code == 1


def _unmodellable(n: int) -> list[dict[str, Any]]:
    runs = _calibration_runs(n)
    runs[0]["cluster"]["accelerator"] = "H900-SXM9"
    return runs


def test_validate_unmodellable_run_is_a_failure(cli, tmp_path: Path) -> None:
    """A run the tool cannot model (unknown accelerator) is a listed failure with its error, not skipped."""
    runs = _unmodellable(2)
    f = _runs_file(tmp_path / "runs.yaml", runs, median=100.0, worst=100.0)
    result = cli("validate", str(f), "--json")
    assert "Traceback" not in result.err
    data = json.loads(result.out)
    assert [row["id"] for row in data["rows"]] == [run["id"] for run in runs]
    bad = data["rows"][0]
    assert bad["predicted_step_time_s"] is None and bad["rel_error"] is None
    assert "H900-SXM9" in bad["error"]
    assert data["rows"][1]["rel_error"] is not None
    assert data["passed"] is False
    assert any(failure.startswith(f"{runs[0]['id']}: cannot be modelled") for failure in data["failures"])


def test_validate_unmodellable_run_exits_1(cli, tmp_path: Path) -> None:
    """A run the tool cannot model makes validate exit 1, however loose the tolerance."""
    f = _runs_file(tmp_path / "runs.yaml", _unmodellable(2), median=100.0, worst=100.0)
    assert cli("validate", str(f)).code == 1


def test_validate_json_is_strict_json_when_nothing_is_modelled(cli, tmp_path: Path) -> None:
    """validate --json prints standard JSON (no Infinity/NaN) even when no run can be modelled."""
    f = _runs_file(tmp_path / "runs.yaml", _unmodellable(1), median=100.0, worst=100.0)
    result = cli("validate", str(f), "--json")

    def reject(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    data = json.loads(result.out, parse_constant=reject)
    assert data["passed"] is False


def test_validate_missing_file(cli, tmp_path: Path) -> None:
    """validate on a missing file: one located error line, exit 2."""
    missing = tmp_path / "nope.yaml"
    cli("validate", str(missing)).one_error_line(str(missing), "file not found")


def test_validate_empty_runs(cli, tmp_path: Path) -> None:
    """A runs file without runs: one error line naming the 'runs' field, exit 2."""
    f = _write_yaml(tmp_path / "runs.yaml", {"runs": []})
    cli("validate", str(f)).one_error_line(str(f), "runs", "non-empty list")


def test_validate_run_without_expected(cli, tmp_path: Path) -> None:
    """A run without expected.step_time_s: one error line naming runs[0].expected.step_time_s, exit 2."""
    runs = _calibration_runs(1)
    del runs[0]["expected"]
    f = _runs_file(tmp_path / "runs.yaml", runs, median=1.0, worst=1.0)
    cli("validate", str(f)).one_error_line(str(f), "runs[0].expected.step_time_s")


def _mutate_run(field: str, value: Any):
    def mutate(data: dict[str, Any]) -> None:
        data["runs"][0][field] = value
    return mutate


def _set_expected(value: float):
    def mutate(data: dict[str, Any]) -> None:
        data["runs"][0]["expected"]["step_time_s"] = value
    return mutate


def _set_tolerance(data: dict[str, Any]) -> None:
    data["tolerance"]["median_abs_rel_error"] = "ten percent"


@pytest.mark.parametrize("mutate", [
    _mutate_run("cluster", "colossus"),
    _mutate_run("model", "llama3-8b"),
    _mutate_run("training", 512),
    _set_expected(0.0),
    _set_expected(-1.0),
    _set_tolerance,
], ids=["cluster-name", "model-name", "training-number", "expected-zero", "expected-negative", "tolerance-text"])
def test_validate_malformed_runs_file(cli, tmp_path: Path, mutate) -> None:
    """A malformed runs file is bad input: exit 2 and one located line, never a listed failure (exit 1 is for a
    breached accuracy gate) nor a traceback."""
    data = {"tolerance": {"median_abs_rel_error": 1.0, "max_abs_rel_error": 1.0}, "runs": _calibration_runs(1)}
    mutate(data)
    f = _write_yaml(tmp_path / "runs.yaml", data)
    cli("validate", str(f)).one_error_line(str(f))


def _set(path: str, value: Any):
    def mutate(run: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        part = run
        for key in parents:
            part = part[key]
        part[last] = value
    return mutate


@pytest.mark.parametrize(("mutate", "fragments"), [
    (_set("foo", 1), ("runs[1].foo", "unknown key", "expected one of")),
    (_set("cluster.gpus_per_nod", 8), ("runs[1].cluster.gpus_per_nod", "unknown key")),
    (_set("training.microbatch", 2), ("runs[1].training.microbatch", "unknown key")),
    (_set("parallelism.tp", -2), ("runs[1].parallelism.tp", ">= 1", "-2")),
    (_set("model.layerz", 32), ("runs[1].model.layerz", "unknown key")),
    (_set("model.hidden", -1), ("runs[1].model.hidden",)),
], ids=["top-level-key", "cluster-key", "training-key", "negative-degree", "model-key", "model-value"])
def test_validate_schema_error_is_exit_2_naming_the_run(cli, tmp_path: Path, mutate, fragments) -> None:
    """A run with an unknown key or a value out of range: exit 2 and one line with the file, the run's index and id
    and the field, before any run is predicted; an unknown key is named as such, not as a missing step time."""
    runs = _calibration_runs(2)
    mutate(runs[1])
    f = _runs_file(tmp_path / "runs.yaml", runs, median=1.0, worst=1.0)
    line = cli("validate", str(f)).one_error_line(str(f), *fragments, repr(runs[1]["id"]))
    assert "expected.step_time_s" not in line


def _memory_file(tmp_path: Path, mutate) -> Path:
    from supercluster.validate.memory import DEFAULT_MEMORY_FILE

    data = yaml.safe_load(DEFAULT_MEMORY_FILE.read_text(encoding="utf-8"))
    entry = copy.deepcopy(next(m for m in data["measurements"] if m["id"].startswith("megatron-ft")))
    mutate(entry)
    tolerance = {**data["tolerance"], "median_abs_rel_error": 100.0, "max_abs_rel_error": 100.0}
    return _write_yaml(tmp_path / "memory.yaml", {"tolerance": tolerance, "measurements": [entry]})


@pytest.mark.parametrize(("mutate", "fragments"), [
    (_set("foo", 1), ("measurements[0].foo", "unknown key")),
    (_set("parallelism.tp", 0), ("measurements[0].parallelism.tp", ">= 1")),
    (_set("training.micro_batch", "two"), ("measurements[0].training.micro_batch",)),
    (lambda m: m["measured"][0].update(unit_of="GiB"), ("measurements[0].measured[0].unit_of", "unknown key")),
], ids=["top-level-key", "zero-degree", "text-micro-batch", "measured-key"])
def test_validate_memory_schema_error_is_exit_2(cli, tmp_path: Path, mutate, fragments) -> None:
    """A memory measurement with an unknown key or a value out of range: exit 2, one located line naming it."""
    f = _memory_file(tmp_path, mutate)
    cli("validate", str(f)).one_error_line(str(f), *fragments)


def test_validate_memory_file_well_formed_exits_0(cli, tmp_path: Path) -> None:
    """The same memory measurement, unchanged, validates (exit 0): the schema refuses only what is wrong."""
    f = _memory_file(tmp_path, lambda m: None)
    result = cli("validate", str(f))
    assert result.code == 0, result.err or result.out


# --- catalog ---------------------------------------------------------------------------------------------------


def test_catalog_lists_every_entry_with_its_source(cli) -> None:
    """`catalog` prints every kind's table with every entry name and the start of its source."""
    result = cli("catalog")
    assert result.code == 0, result.err
    for kind in catalog.KINDS:
        assert any(line.strip() == kind for line in result.out.splitlines()), kind
        for name, body in catalog.entries(kind).items():
            assert name in result.out, (kind, name)
            assert str(body["source"])[:30] in result.out, (kind, name)


def test_catalog_models_lists_only_models(cli) -> None:
    """`catalog models` prints the models table (each model and its source) and no other kind's table."""
    result = cli("catalog", "models")
    assert result.code == 0, result.err
    titles = {line.strip() for line in result.out.splitlines()} & set(catalog.KINDS)
    assert titles == {"models"}
    for name, body in catalog.entries("models").items():
        assert name in result.out
        assert str(body["source"])[:30] in result.out


def test_catalog_models_json(cli) -> None:
    """`catalog models --json` gives every model by name, each with a non-empty source."""
    result = cli("catalog", "models", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert list(data) == ["models"]
    assert set(data["models"]) == set(catalog.entries("models"))
    assert all(isinstance(body["source"], str) and body["source"].strip() for body in data["models"].values())


def test_catalog_unknown_kind(cli) -> None:
    """`catalog nonsense` exits 2 with one error line naming the kind and the known kinds."""
    cli("catalog", "nonsense").one_error_line("unknown catalog kind 'nonsense'", *catalog.KINDS)


# --- output a user reads: pipes, widths, words ------------------------------------------------------------------

PINNED = ("--set", "cluster.num_gpus=64", "--set", "parallelism={tp: 1, pp: 1, dp: 64, cp: 1, ep: 1, micro_batch: 1, "
          "recompute: none, zero_stage: 3, virtual_stages: 1, sequence_parallel: false}")


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_a_reader_closing_the_pipe_ends_the_command_quietly(tmp_path: Path, as_json: bool) -> None:
    """`plan ... | head -1`: when the reader closes standard output the command stops with exit code 0 and says
    nothing on stderr (no BrokenPipeError, no exit 1)."""
    _write_yaml(tmp_path / "small.yaml", SMALL)
    proc = subprocess.Popen([sys.executable, "-m", "supercluster.cli", "plan", "small.yaml", *PINNED,
                             *(["--json"] if as_json else [])], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # gone before the first line is written (planning takes longer than this)
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 0, err
    assert err == b""


def test_piped_catalog_keeps_every_name_whole(cli) -> None:
    """Output that is not a terminal is not squeezed to 80 columns: every catalog name a user types back appears
    whole, nothing is cut short with an ellipsis."""
    result = cli("catalog", columns=80)
    assert result.code == 0, result.err
    assert "…" not in result.out
    for kind in catalog.KINDS:
        for name in catalog.entries(kind):
            assert name in result.out, (kind, name)


def test_plan_words_and_labels(cli, tmp_path: Path) -> None:
    """One configuration searched is '1 configuration', not '1 configurations'."""
    f = _write_yaml(tmp_path / "small.yaml", SMALL)
    result = cli("plan", str(f), *PINNED)
    assert result.code == 0, result.err
    assert "(1 configuration searched" in result.out and "configurations" not in result.out


def test_plan_groups_say_the_data_parallel_group_is_dp_times_cp(cli, memphis: dict[str, Any]) -> None:
    """With context parallelism the header's dp and the groups table's gradient group (dp x cp ranks) differ: the
    table labels that row dp × cp and says so, with both degrees."""
    dp, cp = memphis["parallelism"]["dp"], memphis["parallelism"]["cp"]
    assert cp > 1 and memphis["groups"]["dp"]["size"] == dp * cp
    result = cli("plan", str(MEMPHIS))
    assert result.code == 0, result.err
    assert f" dp {dp} " in result.out.splitlines()[1]
    rows = [line.split() for line in result.out.splitlines() if re.match(r"\s*dp × cp\s+│", line)]
    assert len(rows) == 1 and rows[0][4] == f"{dp * cp:,}", rows
    assert f"weight replicas a gradient is reduced over (dp {dp} × cp {cp} = {dp * cp:,} ranks)" in result.out


def _durations(text: str) -> list[str]:
    return re.findall(r"(?<![\w.,])(\d[\d,]*(?:\.\d+)?) (?:us|ms|s|min|h)\b", text)


def test_reliability_prints_every_duration_one_way(cli, tmp_path: Path) -> None:
    """Checkpoint write, restart, intervals and MTTF come from one formatter: three significant figures in the unit
    that reads best (not '26.385 s' beside '1.8 min')."""
    f = _write_yaml(tmp_path / "small.yaml", SMALL)
    result = cli("reliability", str(f), "--set", "cluster.num_gpus=64", "--runs", "20")
    assert result.code == 0, result.err
    figures = re.split(r"\n(?:estimate; )?source: ", result.out)[0]  # the cited source quotes its own numbers
    found = _durations(figures)
    assert len(found) >= 10, result.out
    for number in found:
        assert len(number.replace(",", "").replace(".", "").lstrip("0")) <= 3, (number, result.out)


def test_claims_print_plain_numbers(cli) -> None:
    """The claims table prints '150,000,000', never an exponent such as '1.5e+08'."""
    result = cli("claims")
    assert result.code == 0, result.err
    assert not re.search(r"\de[+-]\d", result.out), result.out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (a folder no one can create a file in)")
def test_calibrate_refuses_an_unwritable_out_before_fitting(cli, tmp_path: Path, monkeypatch) -> None:
    """calibrate -o in a folder that takes no new file: one located line and exit 2 before any run is fitted (not a
    traceback once the fit is done)."""
    import supercluster.cli as cli_module

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the fit ran before -o was checked")

    monkeypatch.setattr(cli_module, "fit_calibration", never)
    runs = _runs_file(tmp_path / "runs.yaml", _calibration_runs(2), median=1.0, worst=1.0)
    cli("calibrate", str(runs), "-o", "/proc/c.yaml").one_error_line("-o", "cannot write", "/proc")


def test_a_dualpipe_with_too_few_microbatches_is_one_located_line(cli) -> None:
    """DeepSeek-V3's DualPipe with 24 micro-batches on 16 stages (it needs an even m >= 2 pp): exit 2, one line
    naming the scenario file and parallelism.schedule."""
    f = REPO / "scenarios" / "deepseek-v3-2048-h800.yaml"
    cli("plan", str(f), "--set", "parallelism.micro_batch=5").one_error_line(str(f), "parallelism.schedule")


# --- simulate ---------------------------------------------------------------------------------------------------


def test_simulate_json_and_trace(cli, tmp_path: Path) -> None:
    """`simulate --json --trace` prints the simulated report beside the analytic step and writes a complete
    Perfetto trace (no temporary file left, an ordinary file's mode); the same seed gives the same bytes."""
    trace = tmp_path / "t.json"
    result = cli("simulate", str(MEMPHIS), "--json", "--trace", str(trace), "--jitter", "0.01", "--seed", "2")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert abs(report["rel_difference"]) < 0.05 and report["distribution"]["iterations"] == 1
    assert math.isclose(sum(report["breakdown"].values()), report["step_time_s"], rel_tol=1e-9)
    events = json.loads(trace.read_text())["traceEvents"]
    assert any(e["ph"] == "X" and e["name"].startswith("F mb0 chunk0 stage0") for e in events)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert trace.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary new file, not the temporary file's 0600
    power = report["power"]
    assert power["min_it_w"] <= power["average_it_w"] <= power["max_it_w"]
    assert power["swing_it_w"] == power["max_it_w"] - power["min_it_w"] and power["stopped_it_w"] <= power["min_it_w"]
    counter = [e for e in events if e["ph"] == "C"]
    assert {e["name"] for e in counter} == {"cluster power (MW)"}
    assert all(a["ts"] < b["ts"] for a, b in zip(counter, counter[1:], strict=False))
    first = trace.read_bytes()
    again = cli("simulate", str(MEMPHIS), "--json", "--trace", str(trace), "--jitter", "0.01", "--seed", "2")
    assert again.out == result.out and trace.read_bytes() == first


def test_simulate_prints_the_power_of_the_step(cli) -> None:
    """The console shows the simulated step's draw as the JSON report holds it (MW, IT and facility); a scenario
    without a facility prints no power line and its JSON holds power null."""
    small = ("--set", "cluster.num_gpus=512", "--set", "training.global_batch=32")
    p = json.loads(cli("simulate", str(MEMPHIS), *small, "--json").out)["power"]
    text = cli("simulate", str(MEMPHIS), *small)
    assert text.code == 0, text.err
    out = " ".join(text.out.split())
    assert (f"IT: min {p['min_it_w'] / 1e6:,.1f} · average {p['average_it_w'] / 1e6:,.1f} · max "
            f"{p['max_it_w'] / 1e6:,.1f} MW, swing {p['swing_it_w'] / 1e6:,.1f} MW") in out
    assert f"swing {p['swing_facility_w'] / 1e6:,.1f} MW (stopped: {p['stopped_facility_w'] / 1e6:,.1f} MW)" in out
    bare = REPO / "scenarios" / "llama3-405b-16k.yaml"  # names no facility
    result = cli("simulate", str(bare), "--set", "cluster.num_gpus=512", "--set", "parallelism.dp=4", "--set",
                 "training.global_batch=64", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["power"] is None


@pytest.mark.parametrize("args, fragments", [
    (["--straggler", "gpu=100000:0.8"], ["--straggler", "gpu 100000 does not exist"]),
    (["--straggler", "node=3:1.7"], ["--straggler", "(0, 1]"]),
    (["--trace", "/no/such/dir/t.json"], ["--trace", "does not exist"]),
    (["--detail", "full"], ["--detail", "4,096"]),
    (["--detail", "every"], ["--detail", "symmetric or full"]),
    (["--iterations", "0"], ["--iterations"]),
    (["--contention", "--routing", "spray"], ["--routing", "ecmp, adaptive", "'spray'"]),
    (["--routing", "ecmp"], ["--routing", "add --contention"]),
    (["--slow-link", "node=12500:0.5"], ["--slow-link", "node 12500 does not exist", "12,500 nodes"]),
    (["--slow-link", "leaf=3"], ["--slow-link", "expected node=INDEX:SPEED"]),
    (["--slow-link", "pod=1:0"], ["--slow-link", "(0, 1]"]),
], ids=["gpu-missing", "speed", "trace-dir", "full-too-big", "detail-name", "iterations", "routing-name",
        "routing-alone", "slow-node-missing", "slow-link-form", "slow-link-speed"])
def test_simulate_bad_input_is_one_located_line(cli, args: list[str], fragments: list[str]) -> None:
    """Bad simulate input: one located error line, exit 2, nothing on stdout."""
    cli("simulate", str(MEMPHIS), *args).one_error_line(*fragments)


def test_simulate_refuses_a_bad_routing_before_any_work(cli, monkeypatch) -> None:
    """An unknown --routing is refused before the scenario is even read."""
    import supercluster.cli as cli_module

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the scenario was loaded before --routing was checked")

    monkeypatch.setattr(cli_module, "load_scenario", never)
    cli("simulate", str(MEMPHIS), "--contention", "--routing", "flowlet").one_error_line("--routing", "'flowlet'")


def test_simulate_with_contention(cli, tmp_path: Path) -> None:
    """`simulate --contention --routing ecmp --slow-link`: the JSON report holds the routing, the slow link, the
    factors per axis and the step without contention (the plain simulation's step); the console shows them; the
    trace has a fabric track for the data-parallel ring's busiest link class."""
    small = ("--set", "cluster.num_gpus=2048", "--set", "training.global_batch=64")
    args = ("simulate", str(MEMPHIS), *small, "--contention", "--routing", "ecmp", "--slow-link", "node=12:0.5")
    trace = tmp_path / "t.json"
    result = cli(*args, "--json", "--trace", str(trace))
    assert result.code == 0, result.err
    report = json.loads(result.out)
    c = report["contention"]
    assert (c["routing"], c["seed"], c["slow_links"]) == ("ecmp", 0, ["node=12:0.5"])
    assert report["comm_factors"] == c["applied_factors"] and c["flow_factors"]["dp"] >= 2.0
    assert report["step_time_s"] > c["uncontended_step_time_s"]
    threads = [e["args"]["name"] for e in json.loads(trace.read_text())["traceEvents"] if e["name"] == "thread_name"]
    assert f"dp: {c['bottlenecks']['dp']}, {c['flow_factors']['dp']:.2f}x" in threads
    text = cli(*args)
    assert text.code == 0, text.err
    assert "routing ecmp, ECMP seed 0; slow links node=12:0.5" in text.out
    assert "simulated step without contention" in text.out
    plain = json.loads(cli("simulate", str(MEMPHIS), *small, "--json").out)
    assert plain["contention"] is None and plain["step_time_s"] == c["uncontended_step_time_s"]


def test_a_slow_link_alone_turns_the_fabric_on(cli) -> None:
    """`--slow-link` without `--contention` still routes the flows (adaptive by default) and reports them."""
    small = ("--set", "cluster.num_gpus=2048", "--set", "training.global_batch=64")
    result = cli("simulate", str(MEMPHIS), *small, "--slow-link", "leaf=0:0.5", "--json")
    assert result.code == 0, result.err
    c = json.loads(result.out)["contention"]
    assert (c["routing"], c["slow_links"]) == ("adaptive", ["leaf=0:0.5"])
