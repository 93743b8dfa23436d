"""The analytic step model: its ledger adds up, its terms vanish and scale as the formulas say, it is vectorised.

No test here pins a calibrated number of seconds; every assertion is a relation between outputs of the model,
a closed form, or a bound that holds for any calibration.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest

from supercluster import build_scenario, perf
from supercluster.perf.compute import attention_s, gemm_backward_s, gemm_forward_s, memory_bound_s
from supercluster.search import enumerate_space
from supercluster.spec.calibration import default_calibration
from supercluster.spec.catalog import entry
from supercluster.spec.hardware import Accelerator
from supercluster.spec.scenario import Scenario
from supercluster.spec.training import resolved_fp8_recipe
from supercluster.workload import Gemm, layer_work, lm_head_work
from supercluster.workload.quantization import scaling_recipe

GB = 256  # global batch (sequences) of the test scenarios


@cache
def scenario(model: str = "llama3-8b", precision: str = "bf16", gpus: int = 64, global_batch: int = GB,
             cluster: str = "llama3-16k", check_rules: bool = True) -> Scenario:
    """A catalog model on a cut-down catalog cluster (H100, 8-GPU NVLink nodes, 400G RoCE by default)."""
    return build_scenario({
        "name": f"{model}-{precision}-{gpus}",
        "cluster": {"base": cluster, "num_gpus": gpus},
        "model": model,
        "training": {"tokens": 1.0e12, "global_batch": global_batch, "precision": precision},
    }, check_rules=check_rules)


def candidates(**cols: Any) -> perf.Candidates:
    base: dict[str, Any] = dict(tp=1, pp=1, dp=1, cp=1, ep=1, etp=1, micro_batch=1, virtual_stages=1,
                                recompute="none", zero_stage=1, sp=False)
    base.update(cols)
    return perf.Candidates.from_columns(**base)


def evaluate(s: Scenario, c: perf.Candidates) -> perf.StepArrays:
    return perf.evaluate(s, c, default_calibration())


def interleaved(**cols: Any) -> dict[str, Any]:
    """One configuration as the simulator takes it: an interleaved pipeline with full recompute, ZeRO-1, no
    sequence parallelism nor offloading, ``cols`` (tp, pp, dp, ep, virtual_stages...) over the defaults."""
    return {"tp": 1, "pp": 2, "dp": 1, "cp": 1, "ep": 1, "etp": 1, "micro_batch": 1, "virtual_stages": 2,
            "recompute": "full", "zero_stage": 1, "order": "tp-cp-ep-dp-pp", "schedule": "interleaved",
            "sequence_parallel": False, "offload_optimizer": False, "offload_weights": False,
            "offload_activations": False, **cols}


# Valid configurations of 64 GPUs (tp*pp*dp*cp = 64), mixing every axis.
DENSE_64 = candidates(tp=[1, 2, 4, 8, 8, 2], pp=[1, 2, 2, 4, 1, 4], dp=[64, 8, 8, 2, 4, 4], cp=[1, 2, 1, 1, 2, 2],
                      micro_batch=[1, 1, 2, 1, 4, 2], virtual_stages=[1, 1, 2, 4, 1, 2],
                      recompute=["none", "selective", "full", "full", "selective", "none"],
                      zero_stage=[1, 1, 2, 1, 3, 0], sp=[False, True, True, True, True, True])
MOE_64 = candidates(tp=[1, 2, 4, 2], pp=[1, 2, 2, 4], dp=[64, 16, 8, 8], cp=[1, 1, 1, 1], ep=[8, 4, 8, 2],
                    etp=[1, 1, 4, 2], micro_batch=[1, 2, 1, 1], virtual_stages=[1, 2, 1, 2],
                    recompute=["none", "selective", "full", "none"], zero_stage=[1, 1, 2, 0],
                    sp=[False, True, True, True])
CASES = [("llama3-8b", DENSE_64), ("mixtral-8x7b", MOE_64)]
IDS = ["dense-gqa", "moe"]


@pytest.mark.parametrize(("model", "cand"), CASES, ids=IDS)
def test_parts_sum_to_step_time(model: str, cand: perf.Candidates) -> None:
    """The named parts of StepArrays are non-negative and add up to step_time_s, for every candidate."""
    a = evaluate(scenario(model), cand)
    assert tuple(a.parts) == perf.PARTS
    assert all(np.all(a.parts[p] >= 0) for p in perf.PARTS)
    total = np.zeros(len(cand))
    for p in perf.PARTS:
        total = total + a.parts[p]
    np.testing.assert_allclose(total, a.step_time_s, rtol=1e-14)
    assert np.all(a.step_time_s > 0)


@pytest.mark.parametrize(("model", "cand"), CASES, ids=IDS)
def test_report_breakdown_sums_to_step_time(model: str, cand: perf.Candidates) -> None:
    """StepReport.breakdown adds up to step_time_s and matches the arrays it was made from."""
    s = scenario(model)
    a = evaluate(s, cand)
    for i in range(len(cand)):
        r = perf.step_report(s, cand, a, i)
        assert sum(r.breakdown.values()) == pytest.approx(r.step_time_s, rel=1e-12)
        assert r.step_time_s == float(a.step_time_s[i])
        assert r.breakdown == {p: float(a.parts[p][i]) for p in perf.PARTS}
        assert sum(r.memory_breakdown.values()) == pytest.approx(r.memory_per_gpu_bytes, rel=1e-12)


@pytest.mark.parametrize(("model", "cand"), CASES, ids=IDS)
def test_report_pipeline_is_the_step_models(model: str, cand: perf.Candidates) -> None:
    """StepReport.pipeline: m micro-batches of the busiest stage's time (forward + backward) plus the bubble make
    the pipeline time, which is the step's time less what runs outside the pipeline."""
    s = scenario(model)
    a = evaluate(s, cand)
    outside = ("dp_comm", "optimizer", "offload")
    for i in range(len(cand)):
        r = perf.step_report(s, cand, a, i)
        p = r.pipeline
        assert p is not None
        assert (p.stages, p.virtual_stages) == (r.parallelism["pp"], r.parallelism["virtual_stages"])
        assert p.microbatches == r.microbatches
        assert 0 < p.forward_s < p.microbatch_s and p.forward_s + p.backward_s == pytest.approx(p.microbatch_s)
        assert p.microbatch_s == pytest.approx(per_microbatch(a)[i], rel=1e-12)
        assert p.pipeline_s == pytest.approx(r.step_time_s - sum(r.breakdown[k] for k in outside), rel=1e-12)
        assert p.critical_path_s >= p.microbatch_s


def per_microbatch(a: perf.StepArrays) -> np.ndarray:
    """Time of one micro-batch on the slowest stage, from the parts that scale with the micro-batch count."""
    busy = ("compute", "recompute", "tp_comm", "cp_comm", "ep_comm", "pp_comm")
    return sum((a.parts[p] for p in busy), start=np.zeros_like(a.step_time_s)) / a.microbatches


def flat_pipeline(c: perf.Candidates) -> perf.Candidates:
    """The same configurations with the pipeline folded into data parallelism (pp 1, v 1, dp * pp, 1F1B)."""
    cols = c.as_arrays()
    cols.update(dp=c.dp * c.pp, pp=np.ones_like(c.pp), virtual_stages=np.ones_like(c.pp),
                schedule=np.zeros_like(c.pp))  # 1F1B: no pipeline to schedule
    return perf.Candidates(**cols)


def expected_pipeline(s: Scenario, cand: perf.Candidates, a: perf.StepArrays) -> np.ndarray:
    """t_pipe of the module docstring from independent pieces: the busiest stage's micro-batch (t_max), the whole
    model's micro-batch (pp folded away) plus 2(pp*v - 1) stage-to-stage sends (t_crit)."""
    t_max = per_microbatch(a)
    flat = evaluate(s, flat_pipeline(cand))
    v, m = cand.virtual_stages, a.microbatches
    p2p = a.parts["pp_comm"] / (m * 2 * v)
    t_crit = per_microbatch(flat) + 2 * (cand.pp * v - 1) * p2p
    return np.maximum(m * t_max + (t_crit - t_max) / v, t_crit + (m - 1) * t_max / v)


@pytest.mark.parametrize(("model", "cand"), CASES, ids=IDS)
def test_pipeline_bubble(model: str, cand: perf.Candidates) -> None:
    """The pipeline takes max(m t_max + (t_crit - t_max)/v, t_crit + (m-1) t_max/v) and m = global_batch/(dp*mb);
    with equal stages this is the (pp-1)/v micro-batch bubble of Narayanan et al. SC'21 §2.2 (up to the head)."""
    s = scenario(model)
    a = evaluate(s, cand)
    np.testing.assert_allclose(a.microbatches, GB / (cand.dp * cand.micro_batch), rtol=0)
    t_pipe = a.microbatches * per_microbatch(a) + a.parts["pipeline_bubble"]
    np.testing.assert_allclose(t_pipe, expected_pipeline(s, cand, a), rtol=1e-9)
    assert np.all(a.parts["pipeline_bubble"][cand.pp > 1] > 0)
    assert np.all(a.parts["pipeline_bubble"][cand.pp == 1] == 0)
    narayanan = (cand.pp - 1) / cand.virtual_stages * per_microbatch(a)
    assert np.all(a.parts["pipeline_bubble"] <= narayanan * (1 + 1e-12))  # the head counts once, not pp-1 times


@pytest.mark.parametrize("model", ["llama3-8b", "mixtral-8x7b"])
def test_fewer_microbatches_than_stages(model: str) -> None:
    """With fewer micro-batches than stages, one micro-batch still crosses every stage: interleaving cannot hide
    the fill, and a single micro-batch's step is its whole critical path (t_crit), whatever v."""
    s = scenario(model, global_batch=8)
    big = candidates(pp=8, dp=8, micro_batch=1, virtual_stages=[1, 2, 4])
    a = evaluate(s, big)
    assert np.all(a.microbatches == 1)
    t_pipe = per_microbatch(a) + a.parts["pipeline_bubble"]
    np.testing.assert_allclose(t_pipe, expected_pipeline(s, big, a), rtol=1e-9)
    # one micro-batch: the pipeline time is the critical path, so v buys nothing but extra sends
    assert t_pipe[1] >= t_pipe[0] and t_pipe[2] >= t_pipe[1]
    flat = evaluate(s, flat_pipeline(big))
    assert np.all(t_pipe >= per_microbatch(flat))


@pytest.mark.parametrize(("model", "cand"), CASES, ids=IDS)
def test_doubling_global_batch_doubles_compute(model: str, cand: perf.Candidates) -> None:
    """Twice the global batch at fixed parallelism doubles compute; the bubble and optimizer stay the same."""
    one, two = evaluate(scenario(model), cand), evaluate(scenario(model, global_batch=2 * GB), cand)
    np.testing.assert_allclose(two.microbatches, 2 * one.microbatches, rtol=0)
    for p in ("compute", "recompute", "tp_comm", "ep_comm", "pp_comm"):
        np.testing.assert_allclose(two.parts[p], 2 * one.parts[p], rtol=1e-12, err_msg=p)
    np.testing.assert_allclose(two.parts["pipeline_bubble"], one.parts["pipeline_bubble"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(two.parts["optimizer"], one.parts["optimizer"], rtol=1e-12)


@pytest.mark.parametrize(("axis", "part", "model", "degrees"), [
    ("tp", "tp_comm", "llama3-8b", dict(tp=[1, 8], dp=[64, 8], sp=[False, True])),
    ("cp", "cp_comm", "llama3-8b", dict(cp=[1, 8], dp=[64, 8])),
    ("ep", "ep_comm", "mixtral-8x7b", dict(ep=[1, 8], dp=64)),
    ("pp", "pp_comm", "llama3-8b", dict(pp=[1, 4], dp=[64, 16])),
    ("pp", "pipeline_bubble", "llama3-8b", dict(pp=[1, 4], dp=[64, 16])),
])
def test_parallel_axis_costs_nothing_at_degree_one(axis: str, part: str, model: str, degrees: dict[str, Any]
                                                   ) -> None:
    """A parallel axis of degree 1 adds no time to its own part; degree > 1 adds some."""
    cols: dict[str, Any] = dict(micro_batch=1, recompute="full", zero_stage=1)
    cols.update(degrees)
    # the fitted overlaps may hide a collective entirely: turn them off to see its cost
    cal = default_calibration().model_copy(update={f"{axis}_comm_overlap": 0.0} if axis != "pp" else {})
    a = perf.evaluate(scenario(model), candidates(**cols), cal)
    assert a.parts[part][0] == 0.0
    assert a.parts[part][1] > 0.0


def test_single_replica_has_no_data_parallel_time() -> None:
    """With dp = cp = 1 the gradients are not reduced: dp_comm is zero."""
    s = scenario(gpus=8)
    a = evaluate(s, candidates(tp=8, dp=1, sp=True, recompute="full", zero_stage=[0, 1]))
    np.testing.assert_array_equal(a.parts["dp_comm"], 0.0)


def layer_forward_s(s: Scenario, c: perf.Candidates) -> tuple[np.ndarray, np.ndarray]:
    """(whole forward, attention-core forward) seconds of one dense layer, from perf.compute's building blocks."""
    acc, cal, prec = s.cluster.accelerator, default_calibration(), s.training.precision
    name = resolved_fp8_recipe(s.training, acc.architecture)
    f64 = np.float64
    work = layer_work(s.model, "dense", seq_len=s.seq_len, micro_batch=c.micro_batch.astype(f64),
                      tp=c.tp.astype(f64), cp=c.cp.astype(f64), sp=c.sp, ep=c.ep.astype(f64),
                      etp=c.etp.astype(f64), precision=prec, fp8_recipe=name)
    key_len = s.seq_len / c.cp.astype(f64)
    recipe = scaling_recipe(prec, name)
    gemms = sum((gemm_forward_s(acc, cal, prec, recipe, g) for g in work.gemms), start=np.zeros_like(key_len))
    attn = attention_s(acc, cal, work.attention_flops, key_len)
    elem = memory_bound_s(acc, cal, work.elementwise_bytes, work.elementwise_kernels)
    return gemms + attn + elem, attn


def test_recompute_times() -> None:
    """Full recompute re-runs each layer's forward (TP comm x 1.5), selective the attention core; compute unchanged."""
    s = scenario()
    cols: dict[str, Any] = dict(tp=4, pp=2, dp=8, micro_batch=2, sp=True, zero_stage=1)
    c = candidates(recompute=["none", "selective", "full"], **cols)
    a = evaluate(s, c)
    fwd, attn = layer_forward_s(s, c)
    layers = s.model.layers / 2
    m = a.microbatches
    assert a.parts["recompute"][0] == 0.0
    assert a.parts["recompute"][1] == pytest.approx(m[1] * layers * attn[1], rel=1e-12)
    assert a.parts["recompute"][2] == pytest.approx(m[2] * layers * fwd[2], rel=1e-12)
    np.testing.assert_allclose(a.parts["compute"], a.parts["compute"][0], rtol=1e-12)
    assert a.parts["tp_comm"][2] == pytest.approx(1.5 * a.parts["tp_comm"][0], rel=1e-12)
    assert a.parts["tp_comm"][1] == pytest.approx(a.parts["tp_comm"][0], rel=1e-12)


@pytest.mark.parametrize("model", ["llama3-8b", "llama3-70b", "mixtral-8x7b"])
def test_fp8_compute_faster_than_bf16_on_h100(model: str) -> None:
    """On H100 the compute part of an fp8 run is shorter than that of the same bf16 run, every configuration."""
    cand = MOE_64 if model == "mixtral-8x7b" else DENSE_64
    bf16 = evaluate(scenario(model, "bf16"), cand)
    fp8 = evaluate(scenario(model, "fp8"), cand)
    assert np.all(fp8.parts["compute"] < bf16.parts["compute"])


def test_lm_head_runs_in_16_bits_unless_fp8_output_proj() -> None:
    """An fp8 run's LM head is a plain 16-bit projection (Megatron-Core's output layer): its time is the bf16 run's,
    only the layers gain; fp8_output_proj (MXFP8, GB200) runs it in fp8, shorter by more than its quantization."""
    f64 = np.float64
    mb, tp, cp = np.array([1.0, 4.0]), np.array([1.0, 8.0]), np.array([1.0, 1.0])
    s = scenario("llama3-70b", "fp8")
    acc, cal = s.cluster.accelerator, default_calibration()

    def head_s(precision: str, recipe: str | None, on: bool, acc: Any = acc) -> np.ndarray:
        work = lm_head_work(s.model, seq_len=s.seq_len, micro_batch=mb, tp=tp, cp=cp, precision=precision,
                            fp8_recipe=recipe, fp8_output_proj=on)
        rec = scaling_recipe(precision, recipe)
        return sum((gemm_forward_s(acc, cal, precision, rec, g) for g in work.gemms), start=np.zeros(2, f64)) \
            + memory_bound_s(acc, cal, work.elementwise_bytes, work.elementwise_kernels)

    np.testing.assert_array_equal(head_s("fp8", "delayed", False), head_s("bf16", None, False))
    gb200 = scenario("llama3-70b", "fp8", cluster="colossus-2-gb200").cluster.accelerator
    assert np.all(head_s("fp8", "mxfp8", True, gb200) < 0.7 * head_s("fp8", "mxfp8", False, gb200))


def test_fp8_on_a100_is_not_faster() -> None:
    """An accelerator without fp8 tensor cores (A100) gains no GEMM speed from fp8: compute is not shorter (such a
    scenario is refused at load, spec.rules; the step model's fallback must still hold where it is asked)."""
    bf16 = evaluate(scenario(cluster="selene", precision="bf16"), DENSE_64)
    fp8 = evaluate(scenario(cluster="selene", precision="fp8", check_rules=False), DENSE_64)
    assert np.all(fp8.parts["compute"] >= bf16.parts["compute"])


ACCELERATORS = ["A100-SXM4-80GB", "H100-SXM5-80GB", "H100-PCIe", "B200", "MI300X"]


def accelerator(name: str) -> Accelerator:
    """A catalog accelerator by name."""
    return Accelerator.model_validate(entry("accelerators", name))


@pytest.mark.parametrize("name", ACCELERATORS)
@pytest.mark.parametrize(("precision", "fp8_recipe"), [("bf16", None), ("fp16", None), ("fp8", "delayed"),
                                                       ("fp8", "tensorwise"), ("fp8", "mxfp8")])
def test_gemm_never_beats_peak(name: str, precision: str, fp8_recipe: str | None) -> None:
    """A GEMM's forward time is never below FLOPs / dense peak, its backward never below 2 x that, whatever the
    scaling recipe."""
    acc, cal = accelerator(name), default_calibration()
    recipe = scaling_recipe(precision, fp8_recipe)
    rng = np.random.default_rng(0)
    m, n, k = (np.floor(2.0 ** rng.uniform(0, 16, 4000)) for _ in range(3))
    count = np.floor(2.0 ** rng.uniform(0, 6, 4000))
    g = Gemm("g", m, n, k, count=count)
    peak = acc.peak_flops_per_s(precision)
    assert np.all(gemm_forward_s(acc, cal, precision, recipe, g) >= g.flops / peak)
    assert np.all(gemm_backward_s(acc, cal, precision, recipe, g) >= 2 * g.flops / peak)
    key_len = np.full(4000, 4096.0)
    assert np.all(attention_s(acc, cal, g.flops, key_len) >= g.flops / acc.peak_flops_per_s("bf16"))


@pytest.mark.parametrize("name", ACCELERATORS)
def test_wave_quantisation(name: str) -> None:
    """A GEMM of one full wave of output tiles plus one more tile takes longer per FLOP than the full wave."""
    acc, cal = accelerator(name), default_calibration()
    units, tm, tn = acc.compute_units, acc.matmul.tile_m, acc.matmul.tile_n
    rows = max(d for d in range(1, int(units**0.5) + 1) if units % d == 0)  # tiles down M
    cols = units // rows  # tiles across N
    k = np.array([32768.0])
    one_wave = {  # exactly `units` output tiles: one full wave
        "grid": Gemm("grid", np.array([rows * tm * 1.0]), np.array([cols * tn * 1.0]), k),
        "column": Gemm("column", np.array([units * tm * 1.0]), np.array([tn * 1.0]), k),
    }
    plus_one = Gemm("plus", np.array([(units + 1) * tm * 1.0]), np.array([tn * 1.0]), k)  # units + 1 tiles

    def per_flop(g: Gemm) -> float:
        return float(gemm_forward_s(acc, cal, "bf16", None, g)[0] / g.flops[0])

    for name_, g in one_wave.items():
        # the extra tile costs a second wave: close to twice the time per FLOP
        assert per_flop(plus_one) > 1.5 * per_flop(g), name_


@pytest.mark.parametrize(("model", "cand"), CASES, ids=IDS)
def test_deterministic(model: str, cand: perf.Candidates) -> None:
    """Evaluating the same candidates twice gives bit-identical arrays."""
    s = scenario(model)
    a, b = evaluate(s, cand), evaluate(s, cand)
    for p in perf.PARTS:
        np.testing.assert_array_equal(a.parts[p], b.parts[p], err_msg=p)
    for k, v in a.memory.parts().items():
        np.testing.assert_array_equal(v, b.memory.parts()[k], err_msg=k)
    np.testing.assert_array_equal(a.fits, b.fits)


@pytest.mark.parametrize("model", ["llama3-8b", "mixtral-8x7b", "deepseek-v3"])
def test_batch_equals_one_at_a_time(model: str) -> None:
    """Evaluating a batch of candidates gives the same numbers as evaluating each candidate alone."""
    s = build_scenario({"name": "batch", "cluster": {"base": "llama3-16k", "num_gpus": 256}, "model": model,
                        "training": {"tokens": 1.0e12, "global_batch": 512},
                        "parallelism": {"uneven_pipeline": True, "micro_batch": 1, "zero_stage": 1}})
    space = enumerate_space(s)
    rng = np.random.default_rng(7)
    pick = np.sort(rng.choice(len(space), size=min(24, len(space)), replace=False))
    if model == "deepseek-v3":  # mix stages with and without the three dense layers
        pick = np.unique(np.concatenate([pick, np.flatnonzero(space.pp == 1)[:2]]))
    batch = space.take(pick)
    together = evaluate(s, batch)
    for i in range(len(batch)):
        alone = evaluate(s, batch.take(np.array([i])))
        for p in perf.PARTS:
            assert alone.parts[p][0] == together.parts[p][i], (p, batch.row(i))
        assert alone.memory.total_bytes[0] == together.memory.total_bytes[i]
        assert alone.fits[0] == together.fits[i]


@pytest.mark.parametrize(("model", "cand"), CASES, ids=IDS)
def test_a_prepared_stage_times_like_a_fresh_evaluation(model: str, cand: perf.Candidates) -> None:
    """evaluate() with a stage prepared under another calibration (differing in timing knobs only) gives every part
    bit for bit as a fresh evaluation; a stage made for other candidates is not reused."""
    s = scenario(model)
    base = default_calibration()
    prepared = perf.prepare(s, cand, base)
    other = base.model_copy(update={"matmul_scale": 0.6, "tp_comm_overlap": 0.3, "dp_comm_overlap": 0.2,
                                    "step_overhead_s": 0.05})
    reused, fresh = perf.evaluate(s, cand, other, prepared), perf.evaluate(s, cand, other)
    for p in perf.PARTS:
        np.testing.assert_array_equal(reused.parts[p], fresh.parts[p], err_msg=p)
    twin = perf.Candidates(**cand.as_arrays())  # equal values, another batch
    assert perf.evaluate(s, twin, other, prepared).step_time_s.tolist() == fresh.step_time_s.tolist()


def test_reduction_after_the_flush_is_exposed_whole() -> None:
    """Software that reduces gradients after the pipeline's flush (dp_overlap false: Megatron-LM's train_step before
    --overlap-grad-reduce, DeepSpeed's pipeline engine) launches no chunk's buckets under the later chunks'
    backward: the whole reduction (and ZeRO-1's gather) is exposed, whatever the interleaving; with the overlap on,
    interleaving hides part of it."""
    base = scenario("llama3-70b", gpus=256, cluster="llama3-16k")
    cal = default_calibration()
    cand = candidates(tp=[8, 8], pp=[4, 4], dp=[8, 8], micro_batch=[1, 1], virtual_stages=[1, 5],
                      recompute=["none", "none"], zero_stage=[1, 1], sp=[True, True])
    for overlap in (False, True):
        s = base.model_copy(update={"training": base.training.model_copy(update={"dp_overlap": overlap})})
        arrays = perf.evaluate(s, cand, cal)
        assert arrays.ops is not None
        whole = sum(np.where(r.present, r.grad_s + r.gather_s, 0.0) for r in arrays.ops.replicas)
        dp = arrays.parts["dp_comm"]
        if overlap:
            assert dp[1] < dp[0] <= whole[0]
        else:
            np.testing.assert_allclose(dp, whole, rtol=1e-12)
            assert arrays.ops.dp_after_flush


def test_expert_all_to_all_hidden_only_where_the_batch_level_overlap_runs() -> None:
    """ep_overlap (Megatron-Core --overlap-moe-expert-parallel-comm): a share ep_comm_overlap of the all-to-all
    hidden where the framework runs it (ep > 1; a pipeline only when interleaved; no full recompute), none
    otherwise; software without it (ep_overlap false) waits for every all-to-all."""
    base = scenario("mixtral-8x7b")
    cal = default_calibration()
    cand = candidates(pp=[1, 2, 2, 1], dp=[64, 32, 32, 64], ep=[8, 8, 8, 8], virtual_stages=[1, 1, 2, 1],
                      recompute=["none", "none", "none", "full"])
    arrays = {}
    for overlap in (False, True):
        s = base.model_copy(update={"training": base.training.model_copy(update={"ep_overlap": overlap})})
        arrays[overlap] = perf.evaluate(s, cand, cal)
    off, on = arrays[False].parts["ep_comm"], arrays[True].parts["ep_comm"]
    assert (off > 0).all()
    np.testing.assert_allclose(on[[1, 3]], off[[1, 3]], rtol=1e-12)  # pp 2 without interleaving; full recompute
    np.testing.assert_allclose(on[[0, 2]], (1.0 - cal.ep_comm_overlap) * off[[0, 2]], rtol=1e-9)
    # the default: Megatron-LM with fused attention overlaps; PyTorch (FSDP2 stacks) does not
    default = perf.evaluate(base, cand, cal).parts["ep_comm"]
    np.testing.assert_allclose(default, on, rtol=1e-12)
    torch_stack = base.model_copy(update={"training": base.training.model_copy(update={"framework": "pytorch"})})
    np.testing.assert_allclose(perf.evaluate(torch_stack, cand, cal).parts["ep_comm"], off, rtol=1e-12)


def test_narrow_attention_heads_run_below_the_catalog_fraction() -> None:
    """Attention throughput scales as (head_dim/128)^0.181 below 128 (FlashAttention-2 hd64 runs at 0.88 of hd128),
    and stays at the catalog fraction from 128 up."""
    from supercluster.perf.compute import head_dim_efficiency

    s = scenario()
    acc, cal = s.cluster.accelerator, default_calibration()
    assert acc.attention_head_dim_exponent == 0.181  # the catalog's figure (accelerators.yaml attention_head_dim_note)
    assert head_dim_efficiency(acc, 128) == 1.0 and head_dim_efficiency(acc, 192) == 1.0
    assert head_dim_efficiency(acc, 64) == pytest.approx(0.882, abs=0.002)
    assert head_dim_efficiency(acc, 32) < head_dim_efficiency(acc, 64) < head_dim_efficiency(acc, 96) < 1.0
    flops, key = np.array([1e12]), np.array([4096.0])
    t128, t64 = attention_s(acc, cal, flops, key), attention_s(acc, cal, flops, key, head_dim=64)
    assert (t64 - cal.kernel_gap_s)[0] == pytest.approx((t128 - cal.kernel_gap_s)[0] / head_dim_efficiency(acc, 64))


def test_fp4_on_blackwell_computes_faster_than_fp8_and_quantizes_more() -> None:
    """On GB200 an NVFP4 run's compute part is shorter than the same fp8 run's for every configuration (GEMMs at the
    fp4 rate, catalog), though each quantized GEMM input moves more bytes (quantization.py): the quantization is
    charged, not free."""
    fp8 = evaluate(scenario("llama3-70b", "fp8", cluster="colossus-2-gb200"), DENSE_64)
    fp4 = evaluate(scenario("llama3-70b", "fp4", cluster="colossus-2-gb200"), DENSE_64)
    assert np.all(fp4.parts["compute"] < fp8.parts["compute"])
    assert np.all(fp4.parts["compute"] > 0.5 * fp8.parts["compute"])  # attention, norms and casts do not speed up


def _casts(w: Any) -> tuple[np.ndarray, np.ndarray]:
    """(the quantized input elements of a layer's GEMMs that quantize apart, those of its LayerNormLinear inputs)."""
    from supercluster.workload.operators import NORM_FUSED_INPUTS
    zero = np.zeros(1)
    return (sum((g.m * g.k * g.count for g in w.gemms if g.low_precision and g.name not in NORM_FUSED_INPUTS),
                start=zero),
            sum((g.m * g.k * g.count for g in w.gemms if g.low_precision and g.name in NORM_FUSED_INPUTS), start=zero))


def test_fp4_layer_work_casts_more_bytes_than_fp8() -> None:
    """An fp4 layer's memory-bound bytes exceed an MXFP8 layer's by (NVFP4 - MXFP8 quantize bytes) x the inputs
    quantized apart, and by NVFP4's bytes x the LayerNormLinear inputs on the rank's tokens (MXFP8's norm writes both
    copies itself; NVFP4's is not fused: quantization.py); its GEMMs are the same."""
    from supercluster.workload.quantization import RECIPES
    m = scenario("llama3-8b").model
    kw: dict[str, Any] = dict(kind="dense", seq_len=4096, micro_batch=np.array([2.0]), tp=np.array([2.0]),
                              cp=np.array([1.0]), ep=np.array([1.0]), etp=np.array([1.0]), sp=np.array([True]),
                              flash_attention=True)
    w8, w4 = layer_work(m, precision="fp8", fp8_recipe="mxfp8", **kw), layer_work(m, precision="fp4", **kw)
    apart, fused = _casts(w8)
    assert np.all(apart > 0) and np.all(fused > 0)
    extra = (RECIPES["nvfp4"].quantize_bytes - RECIPES["mxfp8"].quantize_bytes) * apart \
        + RECIPES["nvfp4"].quantize_bytes * fused / 2.0
    np.testing.assert_allclose(w4.elementwise_bytes - w8.elementwise_bytes, extra, rtol=1e-12)
    assert [g.flops.tolist() for g in w4.gemms] == [g.flops.tolist() for g in w8.gemms]


@pytest.mark.parametrize("cluster", ["llama3-16k", "colossus-2-gb200"])
def test_fp8_recipes_cost_their_quantization_and_kernels(cluster: str) -> None:
    """Per-tensor current scaling moves more bytes per quantized input than delayed scaling (its amax pass, and its
    norm does not quantize), so its compute part is longer for every configuration; on Blackwell an MXFP8 run's
    block-scaled GEMMs run at 0.951 of the tensor-scaled ones, so it computes longer than delayed scaling, whose
    norm-fused inputs cost it about as little (quantization.py)."""
    base = scenario("llama3-70b", "fp8", cluster=cluster)

    def compute(recipe: str) -> np.ndarray:
        s = base.model_copy(update={"training": base.training.model_copy(update={"fp8_recipe": recipe})})
        return evaluate(s, DENSE_64).parts["compute"]

    delayed, tensorwise = compute("delayed"), compute("tensorwise")
    assert np.all(tensorwise > delayed)
    if cluster == "colossus-2-gb200":
        assert np.all(compute("mxfp8") > delayed)


def test_fp8_recipe_quantize_bytes_and_kernel_rate() -> None:
    """The layer's memory-bound bytes differ between recipes by their quantize bytes x the quantized input elements;
    an MXFP8 GEMM at a compute-bound shape takes 7.161 / 6.812 of the tensor-scaled one's time (the measured B300
    ratio)."""
    from supercluster.workload.quantization import RECIPES
    m = scenario("llama3-8b").model
    kw: dict[str, Any] = dict(kind="dense", seq_len=4096, micro_batch=np.array([2.0]), tp=np.array([2.0]),
                              cp=np.array([1.0]), ep=np.array([1.0]), etp=np.array([1.0]), sp=np.array([True]),
                              flash_attention=True, precision="fp8")
    delayed, current = layer_work(m, fp8_recipe="delayed", **kw), layer_work(m, fp8_recipe="tensorwise", **kw)
    apart, fused = _casts(delayed)
    # apart: current scaling's amax pass; the LayerNormLinear inputs: delayed scaling's norm writes the fp8 copy,
    # current scaling's casts the rank's half of the tokens (tp 2 with sequence parallelism), both then transpose
    # the gathered copy
    np.testing.assert_allclose(current.elementwise_bytes - delayed.elementwise_bytes,
                               (RECIPES["tensorwise"].quantize_bytes - RECIPES["delayed"].quantize_bytes) * apart
                               + (RECIPES["tensorwise"].quantize_bytes - 1.0) * fused / 2.0)
    # the kernel rate is the tensor cores': compared on the roofline (the compute time alone at this shape)
    acc, cal = accelerator("GB200"), default_calibration().model_copy(update={"gemm_overlap_exponent": 1e6})
    big = Gemm("g", np.array([16384.0]), np.array([16384.0]), np.array([16384.0]))
    t_mx = gemm_forward_s(acc, cal, "fp8", scaling_recipe("fp8", "mxfp8"), big) - cal.kernel_gap_s
    t_cs = gemm_forward_s(acc, cal, "fp8", scaling_recipe("fp8", "tensorwise"), big) - cal.kernel_gap_s
    np.testing.assert_allclose(t_mx / t_cs, 7.161 / 6.812, rtol=1e-9)
    with pytest.raises(ValueError, match="fp8_recipe"):
        layer_work(m, **kw)


def test_a_layernorm_linear_input_is_quantized_by_its_norm_on_the_rank_s_tokens() -> None:
    """Transformer Engine's LayerNormLinear (the QKV and dense fc1 inputs) quantizes in the norm kernel under delayed
    scaling and MXFP8, on the rank's own tokens before the sequence-parallel all-gather: delayed scaling pays the
    transpose of the gathered fp8 copy (2 B an element) under the gather and the norm's 1-byte column-wise write
    without it, MXFP8 nothing; current scaling casts the rank's tokens (5 B) and transposes the gathered copy."""
    from supercluster.workload.operators import NORM_FUSED_INPUTS, quantization_work
    from supercluster.workload.quantization import RECIPES
    qkv = Gemm("qkv_proj", np.array([8192.0]), np.array([3072.0]), np.array([4096.0]))
    out = Gemm("out_proj", np.array([8192.0]), np.array([4096.0]), np.array([1024.0]))
    assert qkv.name in NORM_FUSED_INPUTS and out.name not in NORM_FUSED_INPUTS
    like, elems = np.zeros(1), 8192.0 * 4096.0

    def fused_bytes(recipe: str, seq_shard: float) -> float:
        return float(quantization_work([qkv], RECIPES[recipe], like, seq_shard)[0][0])
    assert fused_bytes("delayed", 4.0) == 2.0 * elems and fused_bytes("delayed", 1.0) == 1.0 * elems
    assert fused_bytes("mxfp8", 4.0) == fused_bytes("mxfp8", 1.0) == 0.0
    assert fused_bytes("tensorwise", 4.0) == 5.0 * elems / 4.0 + 2.0 * elems
    assert fused_bytes("tensorwise", 1.0) == RECIPES["tensorwise"].quantize_bytes * elems
    # a GEMM quantized apart pays its recipe's bytes on its whole input, gathered or not
    for recipe in RECIPES.values():
        assert float(quantization_work([out], recipe, like, 4.0)[0][0]) == recipe.quantize_bytes * 8192.0 * 1024.0


def test_every_fp8_recipe_the_spec_accepts_has_its_costs() -> None:
    """The recipes a scenario may name (spec.base.Fp8Recipe) are the ones workload/quantization.py costs."""
    from typing import get_args

    from supercluster.spec.base import Fp8Recipe
    from supercluster.workload.quantization import RECIPES
    assert set(get_args(Fp8Recipe)) == set(RECIPES) - {"nvfp4"}


def test_the_split_counting_the_embedding_and_the_loss_relieves_the_head_stage() -> None:
    """Llama 3 405B on 16 stages: the last stage holds ceil(126/16) = 8 layers and the LM head; counting the
    embedding and the loss as layers (Megatron-Core's split, Llama 3's) it holds 7 and the head, the others 8: the
    busiest stage's compute is the larger of 8 layers and 7 layers + the head, the critical path unchanged."""
    par = dict(tp=8, pp=16, dp=4, micro_batch=1, sp=True, recompute="none", zero_stage=1)
    base = {"name": "split", "cluster": {"base": "llama3-16k", "num_gpus": 512}, "model": "llama3-405b",
            "training": {"tokens": 1e12, "global_batch": 64, "seq_len": 8192},
            "parallelism": {"uneven_pipeline": True}}
    plain = build_scenario(base)
    counted = build_scenario({**base, "training": {**base["training"], "account_for_embedding_in_pipeline_split": True,
                                                   "account_for_loss_in_pipeline_split": True}})
    c = candidates(**par)
    a, b = evaluate(plain, c), evaluate(counted, c)
    m = float(a.microbatches[0])
    layer = float(a.ops.layer["dense"]["fwd"][0] + a.ops.layer["dense"]["bwd"][0])
    head = float(a.ops.head_fwd_s[0] + a.ops.head_bwd_s[0])
    assert a.parts["compute"][0] / m == pytest.approx(8 * layer + head, rel=1e-9)
    assert b.parts["compute"][0] / m == pytest.approx(max(8 * layer, 7 * layer + head), rel=1e-9)
    assert b.step_time_s[0] < a.step_time_s[0]
    assert b.critical_path_s[0] == pytest.approx(a.critical_path_s[0], rel=1e-9)


def test_a_pipeline_layout_sets_the_busiest_stage() -> None:
    """DeepSeek-V3 placed by Megatron-Bridge's layout on 8 ranks of 2 chunks: seven ranks hold 8 layers, the last 6
    and two LM-head passes (the loss's and the MTP module's); the busiest stage's compute is the larger of the two,
    where the even split charged ceil(61/8) = 8 layers and the head."""
    base = {"name": "layout", "cluster": {"base": "llama3-16k", "num_gpus": 2048}, "model": "deepseek-v3",
            "training": {"tokens": 1e12, "global_batch": 4096, "seq_len": 4096},
            "parallelism": {"uneven_pipeline": True}}
    plain = build_scenario(base)
    placed = build_scenario({**base, "training": {**base["training"], "pipeline_layout": "Et*4|(t*4|)*14tmL"}})
    c = candidates(tp=1, pp=8, dp=256, ep=64, virtual_stages=2, micro_batch=1, recompute="none", zero_stage=1)
    a, b = evaluate(plain, c), evaluate(placed, c)
    m = float(a.microbatches[0])
    per_layer = a.ops.layer["moe"]
    layer = float(per_layer["fwd"][0] + per_layer["bwd"][0])
    busy = layer + float(sum(per_layer[k][0] for k in ("recompute", "tp", "cp", "ep")))  # a layer's whole time
    head = float(a.ops.head_fwd_s[0] + a.ops.head_bwd_s[0])
    assert a.parts["compute"][0] / m == pytest.approx(8 * layer + head, rel=1e-9)
    # the busiest rank by its whole time (layers with their collectives, and the head passes)
    n, h = max(((8, 0), (6, 2)), key=lambda nh: nh[0] * busy + nh[1] * head)
    assert b.parts["compute"][0] / m == pytest.approx(n * layer + h * head, rel=1e-9)
    assert b.step_time_s[0] < a.step_time_s[0]


@pytest.mark.parametrize("dispatcher", ["alltoall", "deepep"])
def test_expert_tensor_parallel_dispatch_moves_what_megatron_core_moves(dispatcher: str) -> None:
    """Megatron-Core's token dispatchers with expert-tensor parallelism (token_dispatcher.py): the all-to-all one
    sends each rank's T/tp tokens' top_k copies over the expert-parallel group, then all-gathers what it received
    over the etp ranks before the experts and reduce-scatters after; the flex one (DeepEP) sends each token to its
    experts' etp shards (a copy per rank reached inside a scale-up domain, one per node across) and gathers
    nothing."""
    from supercluster.network import build_topology, collective_time, place
    from supercluster.perf.step import _layer_comm, candidate_strides
    from supercluster.workload.dispatch import dispatch_bytes_factor

    base = scenario("mixtral-8x7b")
    s = base.model_copy(update={"training": base.training.model_copy(update={"moe_dispatcher": dispatcher})})
    cal, topo = default_calibration(), build_topology(s.cluster)
    # etp 1 inside a node, etp 4 across nodes (ep 8 x etp 4 = 32 GPUs), etp 4 inside one 8-GPU node (ep 2), and
    # experts sharded over 4 ranks without expert parallelism (ep 1): the flex dispatcher still sends to the shards
    ep, etps = [8.0, 8.0, 2.0, 1.0], [1.0, 4.0, 4.0, 4.0]
    cand = candidates(tp=4, dp=16, ep=ep, etp=etps, micro_batch=2, sp=True)
    degrees = {a: getattr(cand, a).astype(np.float64) for a in ("tp", "cp", "dp", "pp")}
    strides = candidate_strides(cand, degrees)
    comm = _layer_comm(s, cal, cand, "moe", strides, topo)
    dense = _layer_comm(s, cal, cand, "dense", strides, topo)
    moe = s.model.moe
    assert moe is not None
    h, k, local = float(s.model.hidden), float(moe.top_k), 2.0 * s.seq_len / 4.0
    attention_block = dense.tp_fwd / 2.0  # a dense layer: the same two collectives around attention and the MLP
    for i, (e, etp) in enumerate(zip(ep, etps, strict=True)):
        if dispatcher == "deepep":  # the expert-tensor x expert-parallel group; experts reached over the ep ranks
            group = place(s.cluster, topo, np.array([e * etp]), np.array([1.0]))
            factor = dispatch_bytes_factor(s.model, s.training, group.domains, np.array([e]))
        else:
            group = place(s.cluster, topo, np.array([e]), np.array([etp]))
            factor = dispatch_bytes_factor(s.model, s.training, group.domains, group.size)
        shards = etp if dispatcher == "deepep" and group.domains[0] == 1 else 1.0
        a2a = collective_time(s.cluster, topo, cal, "all_to_all", local * k * shards * h * 2.0 * factor, group).time_s
        np.testing.assert_allclose(comm.a2a[i], a2a[0], rtol=1e-12)
        gather = 0.0
        if dispatcher == "alltoall" and etp > 1:
            etp_group = place(s.cluster, topo, np.array([etp]), np.array([1.0]))
            gather = 2.0 * collective_time(s.cluster, topo, cal, "all_gather", np.array([etp * k * local * h * 2.0]),
                                           etp_group).time_s[0]
        np.testing.assert_allclose(comm.tp_fwd[i], attention_block[i] + gather, rtol=1e-12)
    if dispatcher == "alltoall":  # top_k copies gathered: more than a dense block's collectives
        assert comm.tp_fwd[1] > dense.tp_fwd[1]
    # experts split over 4 ranks are never reached for free: gathered (all-to-all) or dispatched to (flex)
    assert comm.tp_fwd[3] + comm.a2a[3] > attention_block[3]


def test_memory_is_computed_once_per_configuration_whatever_its_layout() -> None:
    """Candidates that differ in their rank layout alone hold the same bytes: candidate_memory computes them once and
    spreads them, to the bit what computing every candidate gives."""
    from dataclasses import fields

    from supercluster.perf.step import _candidate_memory, candidate_memory
    from supercluster.workload.memory import MemoryBreakdown

    base = scenario("mixtral-8x7b")
    s = base.model_copy(update={"parallelism": base.parallelism.model_copy(update={"order": "auto"})})
    space = enumerate_space(s)
    assert len(np.unique(space.order)) > 1
    deduped, whole = candidate_memory(s, space), _candidate_memory(s, space)
    for f in fields(MemoryBreakdown):
        np.testing.assert_array_equal(getattr(deduped, f.name), getattr(whole, f.name), err_msg=f.name)


def _zero3_by_tensor(model: dict[str, Any], gpus: int) -> float:
    """The data-parallel time of GPT-3 175B's shape under DeepSpeed's ZeRO-3 before 0.6 (tensor by tensor), all
    ``gpus`` data parallel, one sequence each."""
    s = build_scenario({
        "name": f"zero3-{gpus}", "cluster": {"base": "llama3-16k", "num_gpus": gpus},
        "model": {"base": "gpt3-175b", "layers": 8, **model},
        "training": {"tokens": 1.0e12, "global_batch": gpus, "precision": "bf16", "zero3_gather": "tensor"},
    }, check_rules=False)
    a = evaluate(s, candidates(dp=gpus, zero_stage=3, recompute="full"))
    return float(a.parts["dp_comm"][0])


def test_zero3_by_tensor_pays_a_collective_for_every_parameter_tensor() -> None:
    """DeepSpeed's ZeRO-3 before 0.6 gathers and reduces parameter by parameter, the biases and norms too (one
    collective and one host loop over the ranks each): a GPT layer (LayerNorm, biased projections: 12 tensors) pays
    more than the same layer with RMSNorm and no biases (6), by more as the ranks grow; the bytes are the same."""
    gpt, bare = {"norm": "layernorm", "linear_bias": True}, {"norm": "rmsnorm", "linear_bias": False}
    gaps = [_zero3_by_tensor(gpt, n) - _zero3_by_tensor(bare, n) for n in (64, 512)]
    assert 0.0 < gaps[0] < gaps[1]
    assert _zero3_by_tensor({}, 64) == _zero3_by_tensor(gpt, 64)  # a GELU model's norm and biases, when unstated
