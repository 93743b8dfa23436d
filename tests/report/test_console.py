"""Terminal rendering: identifiers a user types back are never cut, figures carry their units, counts their
grammatical number."""

from __future__ import annotations

import io
import json
import re
import sys

import pytest
from rich.console import Console

from supercluster.cli import _stdout as stdout_console
from supercluster.report import render_collective_validation, render_sweep, render_validation
from supercluster.report.console import plural
from supercluster.search.runner import SweepRun
from supercluster.search.sweep import FIELD_PREFIX
from supercluster.validate.collectives import CollectiveRow, CollectiveValidationResult
from supercluster.validate.runs import Row, ValidationResult

LONG_IDS = ["megatron-lm-2021-table1-gpt3-175b-a100-3072", "bigscience-bloom-176b-a100-384-zero1-run-11c"]
PAR = {"tp": 8, "pp": 12, "dp": 32, "cp": 1, "ep": 1, "micro_batch": 1, "virtual_stages": 4, "recompute": "full",
       "zero_stage": 1}


@pytest.fixture(params=["pipe", "terminal"])
def render(request, monkeypatch):
    """Render as the command line does where COLUMNS is 80: into a pipe or a file (its console for standard output,
    which is not a terminal there), and on an 80-column terminal."""

    def draw(renderer, report, *args) -> str:
        out = io.StringIO()
        if request.param == "pipe":
            monkeypatch.setenv("COLUMNS", "80")
            monkeypatch.setattr(sys, "stdout", out)
            console = stdout_console()
        else:
            console = Console(file=out, width=80, force_terminal=True, color_system=None)
        renderer(report, *args, console)
        text = out.getvalue()
        assert "…" not in text  # nothing is ever cut short, however narrow
        return text if request.param == "pipe" else ""

    return draw


def test_run_ids_are_whole_at_80_columns(render) -> None:
    """validate's run ids and configurations: never cut on an 80-column terminal, whole in a pipe."""
    rows = [Row(id=rid, predicted_step_time_s=12.5, expected_step_time_s=12.0, rel_error=0.0417, parallelism=PAR,
                fits=True) for rid in LONG_IDS]
    v = ValidationResult(file="runs.yaml", rows=rows, median_abs_rel_error=0.0417, max_abs_rel_error=0.0417,
                         tolerance={"median_abs_rel_error": 0.1, "max_abs_rel_error": 0.25}, passed=True, failures=[])
    text = render(render_validation, v)
    if not text:
        return
    for rid in LONG_IDS:
        assert rid in text
    assert "8-12-32-1-1" in text and "1/4/ful/1" in text
    assert "over 2 runs" in text


def test_measurement_ids_and_sizes_at_80_columns(render) -> None:
    """Collective measurement ids: never cut, whole in a pipe; sizes and times carry their unit, a time in the unit
    that reads best."""
    rows = [CollectiveRow(id=rid, op="all_reduce", gpus=16, nodes=2, message_bytes=2.0**30, accelerator="H100",
                          fabric="infiniband", scale_out_gbps_per_gpu=400.0,
                          algorithm_published="Ring (NCCL_ALGO=Ring, NCCL_PROTO=Simple)", algorithm_forced="ring",
                          algorithm_predicted="ring", metric="time_us", expected=31307.0, predicted=30000.0,
                          rel_error=-0.0417) for rid in LONG_IDS]
    v = CollectiveValidationResult(file="m.yaml", rows=rows, modelled=2, not_modelled=0, median_abs_rel_error=0.04,
                                   max_abs_rel_error=0.04, max_abs_rel_error_at_or_above_1MiB=0.04,
                                   tolerance={"median_abs_rel_error": 0.15,
                                              "max_abs_rel_error_at_or_above_1MiB": 0.35},
                                   passed=True, failures=[])
    text = render(render_collective_validation, v)
    if not text:
        return
    for rid in LONG_IDS:
        assert rid in text
    assert "1 GiB" in text and "31.3 ms" in text and "30.0 ms" in text and " us" not in text
    assert "2 measurements:" in text


def test_sweep_rows_keep_swept_values_and_show_mfu_in_percent(render) -> None:
    """A sweep's swept values (catalog names) are never cut, whole in a pipe; its columns are the dotted paths a user
    sets, and MFU is a percentage."""
    names = ["H100-SXM5-80GB", "MI300X-OAM-192GB"]
    rows = []
    for i, acc in enumerate(names):
        rows.append({"point": i, "status": "ok", "mfu": 0.412, "time_to_train_s": 86400.0 * 20,
                     "time_to_train_with_failures_s": None, "facility_average_power_w": None, "run_cost_usd": None,
                     FIELD_PREFIX + "cluster.accelerator": json.dumps(acc),
                     FIELD_PREFIX + "training.global_batch": json.dumps(1024)})
    run = SweepRun(file="s.duckdb", parquet="s.parquet", points=2, computed=2, resumed=0, seconds=75.0,
                   backend="local", rows=rows)
    text = render(render_sweep, run, ["cluster.accelerator", "training.global_batch"])
    if not text:
        return
    for name in [*names, "cluster.accelerator", "training.global_batch"]:
        assert name in text
    assert text.count("41.2%") == 2
    assert "2 points" in text and "1.25 min" in text


def test_plural() -> None:
    """1 configuration, 2 configurations, 1,000 GPUs."""
    assert plural(1, "configuration") == "1 configuration"
    assert plural(2, "configuration") == "2 configurations"
    assert plural(1000, "GPU") == "1,000 GPUs"
    assert plural(0, "run") == "0 runs"
    assert re.fullmatch(r"3 entries", plural(3, "entry", "entries"))


def test_model_table_prints_names_and_assumptions_as_written() -> None:
    """The model table shows a name with brackets as written (not as console markup) and every assumption on its own
    line, however it is worded."""
    from supercluster.report.console import render_model
    from supercluster.spec.catalog import entry
    from supercluster.spec.model import Model
    from supercluster.workload import model_report

    body = {**entry("models", "llama3-8b"), "name": "team/[bold]llama", "source": "ours",
            "assumptions": ["vocabulary [padded] to 128,512", "seq_len 8192 assumed"]}
    out = io.StringIO()
    render_model(model_report(Model.model_validate(body)), Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "team/[bold]llama" in text and "user input" in text
    assert "2 assumptions the model rests on" in text
    assert "  - vocabulary [padded] to 128,512\n" in text and "  - seq_len 8192 assumed\n" in text
