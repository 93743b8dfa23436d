"""The pipeline schedules in the step model (perf.pipeline): ZB-H1 and DualPipe against 1F1B on the same
configurations, the all-to-all DualPipe hides by overlap rather than by a knob, and their memory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from test_step import candidates, scenario

from supercluster import perf
from supercluster.errors import SpecError
from supercluster.perf.candidates import SCHEDULE_CODES
from supercluster.perf.schedule import stage_ops
from supercluster.search import enumerate_space
from supercluster.spec import build_scenario, load_scenario
from supercluster.spec.calibration import default_calibration
from supercluster.spec.scenario import Scenario
from supercluster.workload.memory import memory_per_gpu

# Mixtral on 64 GPUs with a pipeline of 2 and 4 stages, m = 256 / (dp * mb) micro-batches (>= 2 pp)
MOE = candidates(tp=[2, 1, 2], pp=[2, 4, 4], dp=[16, 16, 8], ep=[4, 8, 8], micro_batch=[1, 2, 1],
                 recompute=["selective", "none", "full"], sp=[True, False, True])


def _as(c: perf.Candidates, schedule: str) -> perf.Candidates:
    return dataclasses.replace(c, schedule=np.full(len(c), SCHEDULE_CODES[schedule]))


def test_zb_h1_shortens_only_the_bubble_by_its_weight_gradient_passes() -> None:
    """ZB-H1 against 1F1B on the same configurations: every part but the bubble equal (the gradient reduction, hidden
    behind the weight-gradient pass rather than the whole backward, hidden all the same here), the memory equal (Qi
    et al. 2023: the same peak activation memory), the bubble (t_crit - t)(t - 2W)/t against 1F1B's t_crit - t."""
    s, cal = scenario("mixtral-8x7b"), default_calibration()
    one, zb = perf.evaluate(s, _as(MOE, "1f1b"), cal), perf.evaluate(s, _as(MOE, "zb-h1"), cal)
    for p in perf.PARTS:
        if p != "pipeline_bubble":
            assert np.array_equal(one.parts[p], zb.parts[p]), p
    assert np.array_equal(one.memory.total_bytes, zb.memory.total_bytes)
    t, w, crit = one.microbatch_s, one.weight_gradient_s, one.critical_path_s
    assert w is not None and np.all(w > 0) and np.all(2 * w < t)
    assert np.allclose(zb.parts["pipeline_bubble"], (crit - t) * (t - 2 * w) / t, rtol=1e-12)
    assert np.all(zb.step_time_s < one.step_time_s)


def test_dualpipe_hides_the_all_to_all_by_overlap_not_by_a_knob() -> None:
    """DualPipe's exposed all-to-all is what its pair's compute does not cover: the same whatever the global
    ep_comm_overlap knob says, which still moves the same configurations interleaved (Megatron-Core's batch-level
    overlap runs a pipeline only with virtual stages)."""
    s = scenario("mixtral-8x7b")
    cal = default_calibration()
    hidden, none = cal.model_copy(update={"ep_comm_overlap": 1.0}), cal.model_copy(update={"ep_comm_overlap": 0.0})
    dual = _as(MOE, "dualpipe")
    a, b = perf.evaluate(s, dual, hidden), perf.evaluate(s, dual, none)
    assert np.array_equal(a.step_time_s, b.step_time_s)
    one = _as(MOE, "1f1b")
    chunks = dataclasses.replace(_as(MOE, "interleaved"), virtual_stages=np.full(len(MOE), 2))
    hid, shown = perf.evaluate(s, chunks, hidden).parts["ep_comm"], perf.evaluate(s, chunks, none).parts["ep_comm"]
    assert np.all(hid[:2] < shown[:2]) and hid[2] == shown[2]  # the third recomputes whole layers: no overlap
    busy = a.parts["compute"] + a.parts["recompute"]
    raw = perf.evaluate(s, one, none).parts["ep_comm"] + perf.evaluate(s, one, none).parts["pp_comm"]
    assert np.allclose(a.parts["ep_comm"] + a.parts["pp_comm"], np.maximum(raw - busy, 0.0), rtol=1e-9, atol=1e-12)


def test_dualpipe_holds_two_copies_of_the_weights_and_pp_plus_one_microbatches() -> None:
    """DeepSeek-V3 report Table 2: parameters 2x, activations of pp + 1 micro-batches (1F1B's first stage: pp)."""
    model = scenario("mixtral-8x7b").model
    deg = {k: np.array([v]) for k, v in dict(tp=2, pp=4, dp=8, cp=1, ep=8, etp=1, micro_batch=1, virtual_stages=1,
                                             recompute=0, zero_stage=1, sp=True).items()}
    one, dual = (memory_per_gpu(model, seq_len=4096, global_batch=256, flash_attention=True, precision="bf16", stage="first",
                                schedule=np.array([SCHEDULE_CODES[x]]), **deg) for x in ("1f1b", "dualpipe"))
    assert dual.weights_bytes == pytest.approx(2 * one.weights_bytes)
    assert dual.gradients_bytes == pytest.approx(2 * one.gradients_bytes)
    assert dual.optimizer_bytes == pytest.approx(one.optimizer_bytes)
    assert dual.activations_bytes == pytest.approx(one.activations_bytes * 5 / 4)


def test_report_carries_the_schedule_and_its_pipeline() -> None:
    """StepReport.parallelism names the schedule; its pipeline's m x microbatch_s + bubble is the step model's."""
    s, cal = scenario("mixtral-8x7b"), default_calibration()
    for name in ("1f1b", "zb-h1", "dualpipe"):
        c = _as(MOE, name)
        a = perf.evaluate(s, c, cal)
        r = perf.step_report(s, c, a, 1)
        assert r.parallelism["schedule"] == name and r.pipeline is not None and r.pipeline.schedule == name
        assert r.pipeline.pipeline_s == pytest.approx(r.step_time_s - sum(
            r.breakdown[p] for p in ("dp_comm", "optimizer", "offload")))
        assert (r.pipeline.overlapped_pair_s is not None) == (name == "dualpipe")


def test_dualpipe_prices_a_microbatch_at_the_busiest_rank_of_the_real_split() -> None:
    """DeepSeek-V3 (61 layers, the first 3 dense) on 16 stages: stages 0-2 hold 3 layers, 3-15 four (the head on
    15), so a DualPipe rank (stages r and 15 - r) holds 3 dense, 4 MoE layers and the head (ranks 0, 15), 7 MoE
    layers (ranks 1, 2, 13, 14) or 8 (the others). A micro-batch's compute and recompute is half the busiest rank's,
    from the op costs; no longer the busiest stage's paired with an average one."""
    path = Path(__file__).resolve().parents[2] / "src" / "supercluster" / "scenarios" / "deepseek-v3-2048-h800.yaml"
    s = load_scenario(str(path), [])
    cal = s.calibrated(None)
    c = enumerate_space(s)
    assert set(c.pp.tolist()) == {16} and set(c.schedule.tolist()) == {SCHEDULE_CODES["dualpipe"]}
    a = perf.evaluate(s, c, cal)
    assert a.ops is not None
    work = {kind: x["fwd"] + x["bwd"] + x["recompute"] for kind, x in a.ops.layer.items()}
    head = a.ops.head_fwd_s + a.ops.head_bwd_s
    ranks = [3 * work["dense"] + 4 * work["moe"] + head, 7 * work["moe"], 8 * work["moe"]]
    per_microbatch = (a.parts["compute"] + a.parts["recompute"]) / a.microbatches
    np.testing.assert_allclose(per_microbatch, 0.5 * np.maximum.reduce(ranks), rtol=1e-12)


def _flushed(flushes: int, global_batch: int) -> Scenario:
    return build_scenario({"name": f"mixtral-flushes-{flushes}", "cluster": {"base": "llama3-16k", "num_gpus": 64},
                           "model": "mixtral-8x7b",
                           "training": {"tokens": 1.0e12, "global_batch": global_batch, "pipeline_flushes": flushes}})


@pytest.mark.parametrize("schedule", ["1f1b", "zb-h1"])
def test_pipeline_flushes_run_whole_schedules_back_to_back(schedule: str) -> None:
    """Two schedules a step of m/2 micro-batches each (torchtitan's and NeMo Automodel's pipeline under gradient
    accumulation) take exactly twice one schedule of m/2: twice its compute and twice its fill and drain, so more
    bubble than one schedule over all m; the memory is that of one schedule."""
    cal = default_calibration()
    c = _as(MOE, schedule)
    two = perf.evaluate(_flushed(2, 256), c, cal)
    half = perf.evaluate(_flushed(1, 128), c, cal)
    whole = perf.evaluate(_flushed(1, 256), c, cal)
    for part in ("compute", "recompute", "tp_comm", "ep_comm", "pp_comm", "pipeline_bubble"):
        np.testing.assert_allclose(two.parts[part], 2.0 * half.parts[part], rtol=1e-12, err_msg=part)
    np.testing.assert_allclose(two.parts["compute"], whole.parts["compute"], rtol=1e-12)
    assert np.all(two.parts["pipeline_bubble"] > whole.parts["pipeline_bubble"])
    assert np.array_equal(two.memory.activations_bytes, whole.memory.activations_bytes)


def test_flushes_that_do_not_divide_the_microbatches_are_refused() -> None:
    """m = 256 / (dp 16 * micro_batch 1) = 16 micro-batches do not split into 3 schedules: refused at the field."""
    with pytest.raises(SpecError, match="training.pipeline_flushes") as err:
        build_scenario({"name": "x", "cluster": {"base": "llama3-16k", "num_gpus": 64}, "model": "mixtral-8x7b",
                        "training": {"tokens": 1.0e12, "global_batch": 256, "pipeline_flushes": 3},
                        "parallelism": {"tp": 2, "pp": 2, "dp": 16, "ep": 4, "micro_batch": 1,
                                        "virtual_stages": 1, "sequence_parallel": True}})
    assert "multiple of it" in str(err.value)


def test_flushed_schedule_orders_are_whole_schedules_in_turn() -> None:
    """stage_ops with flushes: each schedule's order of m/flushes micro-batches, the next numbered after it."""
    one = stage_ops("interleaved", 1, 8, 4, 2)
    two = stage_ops("interleaved", 1, 16, 4, 2, flushes=2)
    assert two[:len(one)] == one
    assert [(o.kind, o.microbatch - 8, o.chunk) for o in two[len(one):]] == [(o.kind, o.microbatch, o.chunk)
                                                                              for o in one]
