"""Published runs as scenarios: the optional software facts a row states reach the model."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from supercluster.errors import SpecError
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


def test_a_stated_attention_backend_reaches_the_spec_and_its_kernels() -> None:
    """`attention_backend: flash` (NeMo 24.07's launcher ran the flash-attn package): the row's attention is timed
    at the part's FlashAttention-2 rate, slower than the same row on Transformer Engine's choice (cuDNN on Hopper)."""
    i, stated = _calibration_row("nemo2407-llama3-8b-8")
    assert stated["training"]["attention_backend"] == "flash"
    auto = copy.deepcopy(stated)
    del auto["training"]["attention_backend"]
    flash, cudnn = (run_to_scenario(r, file="runs.yaml", index=i) for r in (stated, auto))
    assert (flash.training.attention_backend, cudnn.training.attention_backend) == ("flash", "auto")
    flash_r, cudnn_r = (best_step(s, None, require_fit=False)[0] for s in (flash, cudnn))
    assert flash_r.attention_fraction == 0.33 and cudnn_r.attention_fraction == 0.526
    assert flash_r.step_time_s > cudnn_r.step_time_s


def test_an_attention_backend_no_framework_has_is_a_located_error() -> None:
    i, row = _calibration_row("nemo2407-llama3-8b-8")
    row["training"]["attention_backend"] = "cudnn"
    with pytest.raises(SpecError, match="attention_backend") as err:
        run_to_scenario(row, file="runs.yaml", index=i)
    assert "runs.yaml" in str(err.value)


def test_hopper_runs_of_the_2024_nemo_launcher_ran_flash_attn() -> None:
    """Every Hopper row whose source names a NeMo container of 2024-02 to 2024-08 (the launcher's NVTE_FUSED_ATTN=0,
    catalog attention_note) states attention_backend flash; no other NVIDIA-stack Hopper row does."""
    flash = 0
    for run in yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))["runs"]:
        acc = run["cluster"]["accelerator"]
        name = acc if isinstance(acc, str) else acc["base"]
        if not name.startswith(("H100", "H800", "H200")):
            continue
        launcher = re.search(r"NeMo 24\.0[3-7]", run["source"])
        assert (run["training"].get("attention_backend") == "flash") == bool(
            launcher or run["id"].startswith("foundry-")), run["id"]
        flash += bool(launcher)
    assert flash >= 17


def test_flex_attention_is_stated_by_the_runs_whose_framework_ran_it() -> None:
    """NeMo Automodel's gpt-oss layers take FlexAttention only (components/models/gpt_oss/layers.py asserts it): its
    gpt-oss rows state attention_backend flex, and are timed at the flash-attn fraction; no other row states it."""
    rows = yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))["runs"] + \
        yaml.safe_load(HELDOUT_FILE.read_text(encoding="utf-8"))["runs"]
    flex = [r["id"] for r in rows if r["training"].get("attention_backend") == "flex"]
    assert sorted(flex) == ["am-gpt-oss-120b-64xh100-bf16-fsdp", "am-gpt-oss-20b-8xh100-bf16-fsdp"]
    i, row = _calibration_row("am-gpt-oss-20b-8xh100-bf16-fsdp")
    assert "gptoss_20b_te_deepep.yaml" in row["source"]
    report = best_step(run_to_scenario(row, file="runs.yaml", index=i), None, require_fit=False)[0]
    assert report.attention_backend == "flex" and report.attention_fraction == 0.33


# The recipes of the held-out runs that set NVTE_FUSED_ATTN=0, so that Transformer Engine falls back to the flash-attn
# package: dgxc-benchmarking's Grok-1 (grok1/configure.sh @85380ff) and Nemotron-4 340B (nemotron/configure.sh
# @1b9bb6b, every size but 15b), and NeMo's Nemotron-H 56B performance script (pretrain_nemotronh_56b.py @7a8f1cc)
FLASH_RECIPES = ("grok1/README_314b.md @85380ff", "nemotron/README_340b.md @1b9bb6b", "nemotronh/README.md @1f6d9f4")


def test_heldout_hopper_runs_state_flash_attn_where_their_recipe_disabled_cudnn() -> None:
    """A held-out Hopper row states attention_backend flash exactly when its source is a recipe that set
    NVTE_FUSED_ATTN=0 (the others, and every MLPerf submission, leave Transformer Engine its cuDNN default)."""
    flash = 0
    for run in yaml.safe_load(HELDOUT_FILE.read_text(encoding="utf-8"))["runs"]:
        acc = run["cluster"]["accelerator"]
        if not (acc if isinstance(acc, str) else acc["base"]).startswith(("H100", "H800", "H200")):
            continue
        recipe = any(r in run["source"] for r in FLASH_RECIPES)
        assert (run["training"].get("attention_backend") == "flash") == recipe, run["id"]
        flash += recipe
    assert flash == 8


def test_an_eager_expert_epilogue_reaches_the_spec_and_costs_memory_traffic() -> None:
    """`expert_epilogue: eager` (Megatron-Core 25.11 applies gpt-oss's clamp and fc2 bias in separate passes): the
    row is timed longer than with the fused epilogue, the difference in memory-bound compute alone (no GEMM or
    communication changes); a model without expert biases or clamp is unchanged by it."""
    i, stated = _calibration_row("nemo2511-gpt-oss-120b-64-bf16")
    assert stated["training"]["expert_epilogue"] == "eager" and stated["model"]["glu_limit"] == 7.0
    fused = copy.deepcopy(stated)
    fused["training"]["expert_epilogue"] = "fused"
    eager_s, fused_s = (run_to_scenario(r, file="runs.yaml", index=i) for r in (stated, fused))
    assert eager_s.training.expert_epilogue == "eager" and fused_s.training.expert_epilogue == "fused"
    eager_r, fused_r = (best_step(s, None, require_fit=False)[0] for s in (eager_s, fused_s))
    assert eager_r.parallelism == fused_r.parallelism
    assert eager_r.breakdown["compute"] > fused_r.breakdown["compute"]
    for part in ("tp_comm", "ep_comm", "dp_comm", "optimizer"):
        assert eager_r.breakdown[part] == pytest.approx(fused_r.breakdown[part], rel=0.05)
    plain = copy.deepcopy(stated)
    del plain["model"]["glu_limit"], plain["model"]["linear_bias"]
    plain_fused = copy.deepcopy(plain)
    plain_fused["training"]["expert_epilogue"] = "fused"
    a, b = (best_step(run_to_scenario(r, file="runs.yaml", index=i), None, require_fit=False)[0].step_time_s
            for r in (plain, plain_fused))
    assert a == b
