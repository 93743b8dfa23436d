"""Published runs as scenarios: the optional software facts a row states reach the model."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from supercluster.search.plan import best_step
from supercluster.validate import DEFAULT_FILE, HELDOUT_FILE, run_to_scenario


def _row(run_id: str) -> dict:
    runs = yaml.safe_load(HELDOUT_FILE.read_text(encoding="utf-8"))["runs"]
    return next(r for r in runs if r["id"] == run_id)


def test_a_run_that_reduces_in_bf16_holds_half_the_gradient_bytes() -> None:
    """`grad_accum_fp32: false` (NeMo's performance mode) reaches the training spec: the gradient buffers are
    16-bit, half the fp32 ones, and the rest of the memory is unchanged."""
    stated = _row("dgxc250504-llama31-405b-512xh100-bf16")
    assert stated["training"]["grad_accum_fp32"] is False
    fp32 = copy.deepcopy(stated)
    fp32["training"]["grad_accum_fp32"] = True
    reports = []
    for i, run in enumerate((stated, fp32)):
        s = run_to_scenario(run, file="runs.yaml", index=i)
        assert s.training.grad_accum_fp32 is run["training"]["grad_accum_fp32"]
        reports.append(best_step(s, None, require_fit=False)[0])
    bf16, full = (r.memory_breakdown for r in reports)
    assert bf16["gradients"] * 2 == full["gradients"]
    assert bf16["weights"] == full["weights"]
    assert reports[0].fits and not reports[1].fits  # the 405B layout the recipe ran fits only with bf16 gradients


def _calibration_row(run_id: str) -> tuple[int, dict]:
    runs = yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))["runs"]
    return next((i, r) for i, r in enumerate(runs) if r["id"] == run_id)


def test_a_run_built_in_bf16_keeps_no_master_copy_and_bf16_moments() -> None:
    """NeMo Automodel's MoE benchmarks build the model in bf16 and step it with torch.optim.Adam: `master_weights:
    false` and `optimizer_state_dtype: bf16` reach the spec; the optimizer holds 4 B a parameter instead of 12, and
    the run fits on 80 GB H100 as it ran (it did not with the default fp32 master and moments)."""
    i, stated = _calibration_row("am-qwen3-30b-a3b-8xh100-bf16-fsdp")
    assert stated["training"]["master_weights"] is False and stated["training"]["optimizer_state_dtype"] == "bf16"
    default = copy.deepcopy(stated)
    del default["training"]["master_weights"], default["training"]["optimizer_state_dtype"]
    reports = []
    for run in (stated, default):
        s = run_to_scenario(run, file="runs.yaml", index=i)
        reports.append(best_step(s, None, require_fit=False)[0])
    bf16, fp32 = reports
    assert bf16.memory_breakdown["optimizer"] * 3 == pytest.approx(fp32.memory_breakdown["optimizer"], rel=1e-9)
    assert bf16.step_time_s == fp32.step_time_s  # memory only: the optimizer step's bytes are the step model's own
    assert bf16.fits and not fp32.fits


def test_pipeline_flushes_reach_the_spec() -> None:
    """Kimi K2 on NeMo Automodel runs its pipeline schedule once per gradient-accumulation step (2 a step): the
    row's `pipeline_flushes: 2` reaches the spec and costs a second fill and drain."""
    i, stated = _calibration_row("am-kimi-k2-256xh100-bf16")
    one = copy.deepcopy(stated)
    one["training"]["pipeline_flushes"] = 1
    two_s, one_s = (run_to_scenario(r, file="runs.yaml", index=i) for r in (stated, one))
    assert two_s.training.pipeline_flushes == 2
    two_r, one_r = (best_step(s, None, require_fit=False)[0] for s in (two_s, one_s))
    assert two_r.breakdown["pipeline_bubble"] > one_r.breakdown["pipeline_bubble"]
    assert two_r.breakdown["compute"] == pytest.approx(one_r.breakdown["compute"], rel=1e-12)


def test_fp8_recipe_reaches_the_spec() -> None:
    """A Megatron-Bridge B200 row in per-tensor current scaling states `fp8_recipe: tensorwise`: it reaches the
    spec, and the same row read with Blackwell's default (MXFP8, slower kernels) predicts a longer compute part."""
    i, stated = _calibration_row("mb2511-llama31-405b-128xb200-fp8cs")
    default = copy.deepcopy(stated)
    del default["training"]["fp8_recipe"]
    cs, mx = (run_to_scenario(r, file="runs.yaml", index=i) for r in (stated, default))
    assert cs.training.fp8_recipe == "tensorwise" and mx.training.fp8_recipe is None
    cs_r, mx_r = (best_step(s, None, require_fit=False)[0] for s in (cs, mx))
    assert mx_r.breakdown["compute"] > cs_r.breakdown["compute"]


def test_a_stated_expert_tensor_parallelism_reaches_the_plan() -> None:
    """`parallelism.etp` (the project's copy of the schema): NeMo 24.12's Grok-1 ran its experts split 4-way
    (Megatron-Core's default, ETP = TP); the row's plan takes it, where unset the search picks 1 or tp."""
    stated = _row("dgxc2504-grok1-314b-1024xh100-fp8")
    assert stated["parallelism"]["etp"] == 4
    searched = copy.deepcopy(stated)
    del searched["parallelism"]["etp"]
    s, free = (run_to_scenario(r, file="runs.yaml", index=0) for r in (stated, searched))
    assert s.parallelism.etp == 4 and free.parallelism.etp is None
    assert best_step(s, None, require_fit=False)[0].parallelism["etp"] == 4
    assert best_step(free, None, require_fit=False)[0].parallelism["etp"] == 1


def test_a_release_date_reaches_the_spec_and_its_kernels() -> None:
    """`software_date` (a run's container release) reaches the training spec; on a part whose catalog lists an older
    attention kernel generation, the dated run is timed slower than the same run undated (today's kernels)."""
    stated = _row("dgxc250504-llama31-405b-128xgb200-bf16")
    assert str(stated["training"]["software_date"]) == "2025-04-01"
    undated = copy.deepcopy(stated)
    del undated["training"]["software_date"]
    steps = []
    for i, run in enumerate((stated, undated)):
        s = run_to_scenario(run, file="runs.yaml", index=i)
        steps.append(best_step(s, None, require_fit=False)[0].step_time_s)
    assert steps[0] > steps[1]


@pytest.mark.parametrize("path", [DEFAULT_FILE, HELDOUT_FILE], ids=["calibration", "heldout"])
def test_blackwell_runs_of_a_named_2025_release_carry_its_date(path: Path) -> None:
    """A Blackwell run whose source names a 2024-2025 NeMo release (its container, or MLPerf's NeMo) states the
    release date, so the model times it with that release's attention kernels (catalog attention_history)."""
    dated = 0
    for run in yaml.safe_load(path.read_text(encoding="utf-8"))["runs"]:
        acc = run["cluster"]["accelerator"]
        name = acc if isinstance(acc, str) else acc["base"]
        text = yaml.safe_dump(run, width=1 << 20)
        release = re.search(r"NeMo 2[45]\.\d\d|2[45]\.\d\d NeMo Container|nemo:2[45]\.", text)
        if name.startswith(("B200", "GB200", "GB300", "B300")) and release:
            assert "software_date" in run["training"], run["id"]
            assert str(run["training"]["software_date"]) < "2025-12-19", run["id"]
            dated += 1
    assert dated >= 2  # the rows this rule is about exist
