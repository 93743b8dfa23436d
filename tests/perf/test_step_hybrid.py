"""The step model with Mamba-2 layers (hybrids): a Mamba-2 layer is its projections' GEMMs, its SSD scan timed as
an attention kernel over one chunk, and its memory-bound kernels (workload.ssm); a hybrid at a long sequence takes
less time than the same depth all attention; a model without state-space layers is unchanged."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_step import candidates, interleaved

from supercluster import build_scenario, perf
from supercluster.perf.compute import attention_s, gemm_backward_s, gemm_forward_s, memory_bound_s
from supercluster.spec.calibration import default_calibration
from supercluster.spec.scenario import Scenario
from supercluster.workload import layer_work, lm_head_work
from supercluster.workload.ssm import ssd_scan_flops_per_token_layer

NEMOTRON = Path(__file__).resolve().parent.parent / "data" / "hf" / "Nemotron-H-8B-Base-8K" / "config.json"
NO_PIPELINE = candidates(tp=[1, 2, 4, 8], dp=[64, 32, 16, 8], micro_batch=[1, 1, 1, 1], sp=[False, True, True, True])


@cache
def scenario(seq: int, hybrid: bool = True) -> Scenario:
    """Nemotron-H-8B (or the same 28 layers all attention with an MLP) on 64 H100 at a sequence of ``seq``."""
    model: dict[str, Any] = {"base": str(NEMOTRON), "seq_len": seq}
    if not hybrid:
        model |= {"layer_types": None, "ssm": None}
    return build_scenario({"name": f"nh-{seq}-{hybrid}", "cluster": {"base": "llama3-16k", "num_gpus": 64},
                           "model": model, "training": {"tokens": 1.0e12, "global_batch": 64, "seq_len": seq}},
                          check_rules=False)


def test_mamba_layer_work_is_the_closed_form() -> None:
    """A Mamba-2 layer's forward on tp ranks: in_proj T x ((2*d_inner + heads)/tp + 2*N*max(G/tp, 1)) x h, out_proj
    T x h x d_inner/tp, the scan's FLOPs T/tp of the per-token closed form; without an MLP, no MLP GEMMs."""
    s = scenario(8192)
    m, ssm = s.model, s.model.ssm
    assert ssm is not None
    tp = np.array([1.0, 4.0, 16.0])
    one = np.ones(3)
    w = layer_work(m, "dense", seq_len=8192, micro_batch=one, tp=tp, cp=one, sp=np.zeros(3, bool), ep=one, etp=one,
                   precision="bf16", mixer="mamba")
    T = 8192.0
    names = [g.name for g in w.gemms]
    assert names == ["ssm_in_proj", "ssm_out_proj", "mlp_up", "mlp_down"]
    np.testing.assert_array_equal(w.gemms[0].n, (2 * 8192 + 128) / tp + 2 * 128 * np.maximum(8 / tp, 1.0))
    np.testing.assert_array_equal(w.gemms[1].k, 8192 / tp)
    np.testing.assert_allclose(w.attention_flops, T * ssd_scan_flops_per_token_layer(m, 8192) / tp, rtol=1e-15)
    bare = layer_work(m, "dense", seq_len=8192, micro_batch=one, tp=tp, cp=one, sp=np.zeros(3, bool), ep=one,
                      etp=one, precision="bf16", mixer="mamba", mlp=False)
    assert [g.name for g in bare.gemms] == ["ssm_in_proj", "ssm_out_proj"]
    assert np.all(bare.elementwise_bytes < w.elementwise_bytes)


@pytest.mark.parametrize("backend", ["auto", "flash"])
def test_hybrid_step_mixes_its_layers_by_their_counts(backend: str) -> None:
    """Without a pipeline the compute of a micro-batch is 4 attention layers, 20 Mamba-2 layers with an MLP and 4
    without (the scan at a key length of one chunk), forward and backward, plus the LM head, each from
    perf.compute's building blocks. With the flash-attn package (NVTE_FUSED_ATTN=0, as NeMo's Nemotron-H recipe
    sets) the attention layers run at its fraction and the scans at the part's own: the backend is Transformer
    Engine's attention, not the scan's Triton kernels."""
    s = scenario(8192)
    s = s.model_copy(update={"training": s.training.model_copy(update={"attention_backend": backend})})
    c = candidates(tp=[1, 4], dp=[64, 16], micro_batch=[1, 2], sp=[False, True])
    acc, cal, f64 = s.cluster.accelerator, default_calibration(), np.float64
    args: dict[str, Any] = dict(seq_len=8192, micro_batch=c.micro_batch.astype(f64), tp=c.tp.astype(f64),
                                cp=c.cp.astype(f64), sp=c.sp, ep=c.ep.astype(f64), etp=c.etp.astype(f64),
                                precision="bf16")

    def compute_s(w: Any, key_len: float, fraction: float = acc.attention_fraction) -> np.ndarray:
        key = np.full(len(c), key_len)
        zero = np.zeros(len(c))
        return (sum((gemm_forward_s(acc, cal, "bf16", None, g) + gemm_backward_s(acc, cal, "bf16", None, g) for g in w.gemms),
                    start=zero)
                + attention_s(acc, cal, w.attention_flops, key, fraction=fraction)
                + attention_s(acc, cal, w.attention_flops, key, True, fraction=fraction)
                + memory_bound_s(acc, cal, w.elementwise_bytes, w.elementwise_kernels)
                + memory_bound_s(acc, cal, 2.0 * w.elementwise_bytes, 2.0 * w.elementwise_kernels))

    attention = acc.attention_fraction_at(None, backend)  # type: ignore[arg-type]
    assert (attention < acc.attention_fraction) == (backend == "flash")
    layers = (4 * compute_s(layer_work(s.model, "dense", **args), 8192, attention)
              + 20 * compute_s(layer_work(s.model, "dense", mixer="mamba", **args), 128)
              + 4 * compute_s(layer_work(s.model, "dense", mixer="mamba", mlp=False, **args), 128))
    head = compute_s(lm_head_work(s.model, seq_len=8192, micro_batch=args["micro_batch"], tp=args["tp"],
                                  cp=args["cp"]), 8192)
    a = perf.evaluate(s, c, cal)
    np.testing.assert_allclose(a.parts["compute"] / a.microbatches, layers + head, rtol=1e-12)


@pytest.mark.parametrize("seq", [32768, 131072])
def test_hybrid_is_faster_than_all_attention_at_long_sequence(seq: int) -> None:
    """At 32k and 128k tokens the hybrid's step (and its compute) is below the same 28 layers all attention with an
    MLP, and the gap widens with the sequence."""
    c = candidates(tp=8, dp=8, micro_batch=1, sp=True, recompute="full")
    cal = default_calibration()
    hybrid, attention = (perf.evaluate(scenario(seq, h), c, cal) for h in (True, False))
    assert hybrid.step_time_s[0] < attention.step_time_s[0]
    assert hybrid.parts["compute"][0] < attention.parts["compute"][0]


def test_gap_widens_with_sequence() -> None:
    """The all-attention model's step over the hybrid's grows from 32k to 128k tokens (attention's T^2 term)."""
    c = candidates(tp=8, dp=8, micro_batch=1, sp=True, recompute="full")
    cal = default_calibration()

    def ratio(seq: int) -> float:
        return float(perf.evaluate(scenario(seq, False), c, cal).step_time_s[0]
                     / perf.evaluate(scenario(seq, True), c, cal).step_time_s[0])

    assert ratio(131072) > ratio(32768) > 1.0


JAMBA = Path(__file__).resolve().parent.parent / "data" / "hf" / "Jamba-v0.1" / "config.json"


@cache
def jamba(seq: int, hybrid: bool = True) -> Scenario:
    """Jamba v0.1 (or its 32 layers all attention) on 64 H100 at a sequence of ``seq``."""
    model: dict[str, Any] = {"base": str(JAMBA), "seq_len": seq}
    if not hybrid:
        model |= {"layer_types": None, "ssm": None}
    return build_scenario({"name": f"jamba-{seq}-{hybrid}", "cluster": {"base": "llama3-16k", "num_gpus": 64},
                           "model": model, "training": {"tokens": 1.0e12, "global_batch": 64, "seq_len": seq}},
                          check_rules=False)


def test_mamba1_layer_work_and_long_sequence_step() -> None:
    """A Jamba Mamba-1 layer runs in_proj, x_proj, dt_proj and out_proj split over tp and its selective scan
    T/tp x (9 d_inner N + d_inner); at 64k tokens Jamba's step is below the same layers all attention."""
    s = jamba(65536)
    one, tp = np.ones(2), np.array([1.0, 4.0])
    w = layer_work(s.model, "moe", seq_len=65536, micro_batch=one, tp=tp, cp=one, sp=np.ones(2, bool), ep=one * 8,
                   etp=one, precision="bf16", mixer="mamba")
    assert [g.name for g in w.gemms][:4] == ["ssm_in_proj", "ssm_x_proj", "ssm_dt_proj", "ssm_out_proj"]
    np.testing.assert_allclose(w.attention_flops, 65536 * (9 * 8192 * 16 + 8192) / tp, rtol=1e-15)
    c = candidates(tp=8, dp=1, cp=8, ep=8, micro_batch=1, sp=True, recompute="full")
    cal = default_calibration()
    assert perf.evaluate(s, c, cal).step_time_s[0] < perf.evaluate(jamba(65536, False), c, cal).step_time_s[0]


@cache
def nano(bare: bool = True) -> Scenario:
    """Nemotron 3 Nano (every MLP MoE, 6 Mamba-2 layers without one) on 16 H100, or the same with every layer's MLP."""
    model: dict[str, Any] = {"base": "nemotron-3-nano"}
    if not bare:
        model["ssm"] = {"mlp_free_layers": 0}
    return build_scenario({"name": f"nano-{bare}", "cluster": {"base": "llama3-16k", "num_gpus": 16}, "model": model,
                           "training": {"tokens": 1.0e12, "global_batch": 1024, "seq_len": 8192}}, check_rules=False)


def test_a_layer_without_an_mlp_has_no_experts_nor_their_all_to_all() -> None:
    """In a hybrid whose every MLP is MoE (Nemotron 3 Nano), a Mamba-2 layer without an MLP routes nothing: the
    expert all-to-all is that of 23 layers of 29, the experts held those of 23, and the tensor-parallel collectives
    of such a layer are the two around its mixer (an MoE layer without expert tensor parallelism has those two too)."""
    c = candidates(tp=[1, 2], dp=[16, 8], ep=[8, 8], micro_batch=[1, 1], sp=[False, True])
    cal = default_calibration()
    with_bare, every = (perf.evaluate(nano(flag), c, cal) for flag in (True, False))
    np.testing.assert_allclose(with_bare.parts["ep_comm"], every.parts["ep_comm"] * 23 / 29, rtol=1e-12)
    np.testing.assert_allclose(with_bare.parts["tp_comm"], every.parts["tp_comm"], rtol=1e-12)
    assert np.all(with_bare.parts["compute"] < every.parts["compute"])
    assert np.all(with_bare.memory.weights_bytes < every.memory.weights_bytes)


def test_a_dense_hybrid_layer_without_an_mlp_has_half_the_tensor_parallel_collectives() -> None:
    """Nemotron-H-8B: 4 of its 28 layers have no MLP, so the two collectives around an MLP are 24 layers', not 28:
    the tensor-parallel time is (4 x 28 - 2 x 4) / (4 x 28) of what every layer with an MLP would take."""
    c = candidates(tp=[2, 8], dp=[32, 8], micro_batch=[1, 1], sp=[True, True])
    cal = default_calibration()
    hybrid = perf.evaluate(scenario(8192), c, cal)
    every = perf.evaluate(build_scenario({
        "name": "nh-every", "cluster": {"base": "llama3-16k", "num_gpus": 64},
        "model": {"base": str(NEMOTRON), "seq_len": 8192,
                  "ssm": {"mlp_free_layers": 0}},
        "training": {"tokens": 1.0e12, "global_batch": 64, "seq_len": 8192}}, check_rules=False), c, cal)
    np.testing.assert_allclose(hybrid.parts["tp_comm"], every.parts["tp_comm"] * (4 * 28 - 2 * 4) / (4 * 28),
                               rtol=1e-12)


def test_the_simulator_agrees_on_a_moe_hybrid() -> None:
    """Nemotron 3 Nano over two pipeline stages of two chunks, expert parallel 8: the simulated step is within 5% of
    the analytic one (the layers without an MLP route nothing in either)."""
    from supercluster.sim.run import simulate
    s = nano()
    r = simulate(s, s.calibrated(None), interleaved(pp=2, dp=8, ep=8, virtual_stages=2)).report
    assert abs(r.rel_difference) <= 0.05, r.rel_difference
