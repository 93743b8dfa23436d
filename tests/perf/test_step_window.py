"""The step model with sliding-window attention: windowed layers cost the attention of their window (the closed
form of workload.window), mixed models land between, a window covering the sequence changes nothing to the bit."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest
from test_step import DENSE_64, MOE_64, accelerator, candidates

from supercluster import build_scenario, perf
from supercluster.perf.compute import attention_s
from supercluster.spec.calibration import default_calibration
from supercluster.spec.scenario import Scenario
from supercluster.workload.flops import model_flops_per_token

GEMMA3_32 = (["sliding_attention"] * 5 + ["full_attention"]) * 5 + ["sliding_attention"] * 2  # 27 local, 5 global


@cache
def scenario(model: str = "llama3-8b", seq: int = 8192, window: int | None = None,
             layer_types: tuple[str, ...] | None = None, flash: bool = True, global_batch: int = 256) -> Scenario:
    """A catalog model, windowed as asked, on 64 H100 of a cut-down catalog cluster."""
    m: dict[str, Any] = {"base": model, "seq_len": seq}
    if window is not None:
        m["sliding_window"] = window
    if layer_types is not None:
        m["layer_types"] = list(layer_types)
    return build_scenario({
        "name": f"{model}-{seq}-{window}", "cluster": {"base": "llama3-16k", "num_gpus": 64}, "model": m,
        "training": {"tokens": 1.0e12, "global_batch": global_batch, "seq_len": seq, "flash_attention": flash},
    }, check_rules=False)


def evaluate(s: Scenario, c: perf.Candidates) -> perf.StepArrays:
    return perf.evaluate(s, c, default_calibration())


def assert_same(a: perf.StepArrays, b: perf.StepArrays) -> None:
    np.testing.assert_array_equal(a.step_time_s, b.step_time_s)
    for p in perf.PARTS:
        np.testing.assert_array_equal(a.parts[p], b.parts[p])
    np.testing.assert_array_equal(a.memory.total_bytes, b.memory.total_bytes)


@pytest.mark.parametrize(("model", "cand"), [("llama3-8b", DENSE_64), ("mixtral-8x7b", MOE_64)], ids=["dense", "moe"])
@pytest.mark.parametrize("flash", [True, False])
def test_a_window_covering_the_sequence_changes_nothing(model: str, cand: perf.Candidates, flash: bool) -> None:
    """sliding_window >= seq_len, on every layer or on Gemma 3's local layers: the same step, parts and memory as
    without a window, to the bit."""
    base = evaluate(scenario(model, flash=flash), cand)
    layers = scenario(model).model.layers
    types = tuple(GEMMA3_32[:layers]) if layers <= 32 else None
    for window, lt in ((8192, None), (10**6, types)):
        assert_same(base, evaluate(scenario(model, window=window, layer_types=lt, flash=flash), cand))


# 64 GPUs without a pipeline (every layer on one stage), with tensor and context parallelism
FLAT = candidates(tp=[1, 2, 8, 4, 8], pp=1, dp=[64, 32, 8, 8, 4], cp=[1, 1, 1, 2, 2], micro_batch=1,
                  recompute="none", zero_stage=1, sp=[False, True, True, True, True])


def closed_form_attention_s(s: Scenario, c: perf.Candidates, window: int | None) -> np.ndarray:
    """Forward + backward flash-attention seconds of one layer from the closed form alone: executed FLOPs
    2*T*H/tp*(d_qk + d_v) * k(s, w) (the causal pairs of the window, k(s, w) = (w(w+1)/2 + (s-w)w)/s a query),
    at the kernel rate of key length s*k(s, w)/k(s, s), at most the s/cp keys of a context-parallel block."""
    m, seq = s.model, s.seq_len
    w = seq if window is None else min(window, seq)
    keys = (w * (w + 1) / 2 + (seq - w) * w) / seq
    full_keys = (seq + 1) / 2
    f64 = np.float64
    tp, cp, mb = c.tp.astype(f64), c.cp.astype(f64), c.micro_batch.astype(f64)
    T = mb * seq / cp
    d = m.d_head
    # executed causal FLOPs: half PaLM's non-causal count 2*T*s*H/tp*2d, scaled by the window's share of the pairs
    flops = 0.5 * 2.0 * T * seq * (m.heads / tp) * (2 * d) * (keys / full_keys)
    key_len = np.minimum(seq / cp, seq * keys / full_keys)
    acc, cal = s.cluster.accelerator, default_calibration()
    win = w if w < seq else None  # a window covering the sequence is no window
    return attention_s(acc, cal, flops, key_len, window=win) + attention_s(acc, cal, flops, key_len, backward=True,
                                                                         window=win)


@pytest.mark.parametrize("acc_name", ["H100-SXM5-80GB", "GB200"])
def test_a_windowed_kernel_runs_at_its_windows_measured_rate(acc_name: str) -> None:
    """A w-token window's kernel runs at w / (w + w_half) of the long-sequence rate (catalog
    attention_window_half_keys, 785: NVIDIA's GPT-OSS attention benchmark), never faster than a full layer of its key
    length, and faster as the window widens."""
    acc, cal = accelerator(acc_name), default_calibration()
    assert acc.attention_window_half_keys == 785.0
    flops, long_keys = np.array([1.0e12]), np.array([1.0e9])
    long = attention_s(acc, cal, flops, long_keys)  # the long-sequence rate (the key-length ramp ~1)
    t128 = attention_s(acc, cal, flops, np.array([252.0]), window=128)
    np.testing.assert_allclose(long / t128, 128 / (128 + 785), rtol=1e-6)
    assert np.all(t128 >= attention_s(acc, cal, flops, np.array([252.0])))  # slower than the key-length ramp says
    t1024 = attention_s(acc, cal, flops, np.array([1791.0]), window=1024)
    np.testing.assert_allclose(long / t1024, 1024 / (1024 + 785), rtol=1e-6)
    assert np.all(t1024 < t128)
    # a block shorter than the window (context parallelism): the key-length ramp binds
    short = attention_s(acc, cal, flops, np.array([64.0]), window=4096)
    np.testing.assert_array_equal(short, attention_s(acc, cal, flops, np.array([64.0])))


def test_a_window_at_long_sequence_costs_the_closed_forms_attention() -> None:
    """32k tokens, 4k window on every layer: the compute saved is exactly the layers' attention time of the closed
    form (full minus windowed), the step is shorter, and the model FLOPs fall by the window's share of the pairs."""
    seq, w = 32768, 4096
    full, local = scenario(seq=seq, global_batch=64), scenario(seq=seq, window=w, global_batch=64)
    a, b = evaluate(full, FLAT), evaluate(local, FLAT)
    assert np.all(b.step_time_s < a.step_time_s)
    saved = a.parts["compute"] - b.parts["compute"]
    layers = full.model.layers
    expected = a.microbatches * layers * (closed_form_attention_s(full, FLAT, None)
                                          - closed_form_attention_s(local, FLAT, w))
    np.testing.assert_allclose(saved, expected, rtol=1e-9)
    assert np.all(saved > 0)
    six_n = model_flops_per_token(full.model, seq) - 3 * layers * 2.0 * seq * full.model.heads * 2 * full.model.d_head
    share = (w * (w + 1) / 2 + (seq - w) * w) / ((seq + 1) / 2 * seq)
    assert (model_flops_per_token(local.model, seq) - six_n) == pytest.approx(
        (model_flops_per_token(full.model, seq) - six_n) * share, rel=1e-12)


@pytest.mark.parametrize("flash", [True, False])
def test_gemma3_mix_lands_between(flash: bool) -> None:
    """Five local layers to one global: without a pipeline the compute is exactly the mix (27/32 windowed) of the
    all-windowed and all-full models; with pipelines that divide the layers the busiest stage holds at least its
    share of full layers, so the step lies between the two and at or above the model-wide mix."""
    seq, w = 32768, 4096
    full = scenario(seq=seq, global_batch=64, flash=flash)
    local = scenario(seq=seq, window=w, global_batch=64, flash=flash)
    mixed = scenario(seq=seq, window=w, layer_types=tuple(GEMMA3_32), global_batch=64, flash=flash)
    a, b, c = (evaluate(x, FLAT) for x in (full, local, mixed))
    phi = 27 / 32
    np.testing.assert_allclose(c.parts["compute"], (1 - phi) * a.parts["compute"] + phi * b.parts["compute"],
                               rtol=1e-12)
    assert np.all(b.step_time_s < c.step_time_s) and np.all(c.step_time_s < a.step_time_s)
    piped = candidates(tp=[1, 2, 4], pp=[2, 4, 8], dp=[32, 8, 2], micro_batch=1, recompute="none", zero_stage=1,
                       sp=[False, True, True])
    a, b, c = (evaluate(x, piped) for x in (full, local, mixed))
    assert np.all(b.step_time_s < c.step_time_s) and np.all(c.step_time_s < a.step_time_s)
    assert np.all(c.parts["compute"] >= (1 - phi) * a.parts["compute"] + phi * b.parts["compute"] * (1 - 1e-12))


def test_unfused_memory_shrinks_with_the_window() -> None:
    """Without flash attention a windowed model stores s x w scores instead of s x s: less memory per GPU, and
    less attention time; with flash attention the memory is the same."""
    seq, w = 8192, 1024
    c = candidates(tp=[8, 8, 4], pp=[1, 2, 4], dp=[8, 4, 4], micro_batch=1, recompute="none", zero_stage=1, sp=True)
    a = evaluate(scenario(seq=seq, flash=False, global_batch=64), c)
    b = evaluate(scenario(seq=seq, window=w, flash=False, global_batch=64), c)
    assert np.all(b.memory.activations_bytes < a.memory.activations_bytes)
    assert np.all(b.memory.total_bytes < a.memory.total_bytes)
    assert np.all(b.parts["compute"] < a.parts["compute"])
    fa = evaluate(scenario(seq=seq, global_batch=64), c)
    fb = evaluate(scenario(seq=seq, window=w, global_batch=64), c)
    np.testing.assert_array_equal(fa.memory.total_bytes, fb.memory.total_bytes)


def test_report_counts_the_windowed_attention() -> None:
    """The report's model FLOPs are the windowed model's (so MFU counts the attention the model computes), and
    the hardware FLOPs add recompute on top of the same windowed attention (HFU >= MFU)."""
    seq, w = 32768, 4096
    s = scenario(seq=seq, window=w, layer_types=tuple(GEMMA3_32), global_batch=64)
    c = candidates(tp=8, pp=1, dp=8, micro_batch=1, recompute=["none", "selective", "full"], zero_stage=1, sp=True)
    a = evaluate(s, c)
    for i in range(len(c)):
        r = perf.step_report(s, c, a, i)
        assert r.model_flops_per_token == model_flops_per_token(s.model, seq)
        assert r.model_flops_per_token < model_flops_per_token(scenario(seq=seq).model, seq)
        assert r.hfu >= r.mfu
