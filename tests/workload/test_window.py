"""Sliding-window attention: the causal count over a window, the FLOPs of windowed layers, which layers are windowed
on a pipeline stage, and the scores unfused attention keeps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from supercluster.spec.model import Model
from supercluster.workload import layer_work, model_flops_per_token, param_counts, recompute_flops_per_token
from supercluster.workload.flops import attention_flops_per_token_layer
from supercluster.workload.memory import layer_activation_bytes, memory_per_gpu
from supercluster.workload.window import (
    causal_keys_per_query,
    effective_window,
    equivalent_key_len,
    windowed_in_first_and_last,
    windowed_on_busiest_stage,
)

GEMMA3 = ["sliding_attention"] * 5 + ["full_attention"]  # Gemma 3: five local layers to one global


def model(**changes: Any) -> Model:
    """A small GQA model (Mistral-like proportions) with the given changes."""
    body: dict[str, Any] = dict(name="windowed", layers=12, hidden=1024, ffn_hidden=3584, heads=16, kv_heads=4,
                                vocab=32000, seq_len=8192)
    body.update(changes)
    return Model.model_validate(body)


def brute_force_pairs(s: int, w: int | None) -> int:
    """Query-key pairs a causal mask limited to the last w keys keeps, by building the mask."""
    i = np.arange(s)[:, None]
    j = np.arange(s)[None, :]
    keep = j <= i
    if w is not None:
        keep &= j > i - w
    return int(keep.sum())


@pytest.mark.parametrize("s", [1, 2, 3, 7, 16, 33])
@pytest.mark.parametrize("w", [None, 1, 2, 5, 16, 40])
def test_causal_keys_per_query_counts_the_mask(s: int, w: int | None) -> None:
    """Mean keys per query = (w(w+1)/2 + (s-w)w)/s for s >= w, (s+1)/2 without a window: the mask's count / s."""
    assert causal_keys_per_query(s, w) == pytest.approx(brute_force_pairs(s, w) / s, rel=1e-15)


@pytest.mark.parametrize("s", [2, 7, 33, 4096])
def test_equivalent_key_length(s: int) -> None:
    """s_eq = s * k(s, w)/k(s, s): the full sequence exactly when the window covers it, less and rising with w below."""
    assert equivalent_key_len(s, None) == s
    assert equivalent_key_len(s, s) == s and equivalent_key_len(s, 10 * s) == s
    lengths = [equivalent_key_len(s, w) for w in range(1, s)]
    assert all(a < b for a, b in zip(lengths, lengths[1:] + [float(s)], strict=True))
    for w in (1, s // 2 or 1, s - 1):
        ratio = causal_keys_per_query(s, w) / causal_keys_per_query(s, None)
        assert equivalent_key_len(s, w) == pytest.approx(s * ratio, rel=1e-14)


@pytest.mark.parametrize(("s", "w"), [(16, 4), (33, 5), (200, 37)])
def test_windowed_layer_flops_are_the_masks_share(s: int, w: int) -> None:
    """A windowed layer's attention FLOPs over a full layer's = the pairs its mask keeps over a causal mask's."""
    m = model(sliding_window=w)
    ratio = attention_flops_per_token_layer(m, s, w) / attention_flops_per_token_layer(m, s)
    assert ratio == pytest.approx(brute_force_pairs(s, w) / brute_force_pairs(s, None), rel=1e-14)


def test_window_semantics() -> None:
    """sliding_window alone windows every layer; layer_types windows the layers marked sliding; neither, none."""
    assert model().windowed_layers == 0
    assert model(sliding_window=4096).windowed_layers == 12
    assert model(sliding_window=4096, layer_types=GEMMA3 * 2).windowed_layer_flags == (True,) * 5 + (False,) + \
        (True,) * 5 + (False,)
    assert model(sliding_window=4096, layer_types=GEMMA3 * 2).windowed_layers == 10
    assert model(layer_types=["full_attention"] * 12).windowed_layers == 0  # Qwen3's config: all full, no window


@pytest.mark.parametrize(("changes", "fragments"), [
    ({"sliding_window": 128, "layer_types": GEMMA3}, ["layer_types has 6 entries", "layers(12)"]),
    ({"layer_types": GEMMA3 * 2}, ["layer_types marks 10 layers 'sliding_attention'", "sliding_window"]),
    ({"sliding_window": 0}, ["sliding_window", "greater than 0"]),
    ({"sliding_window": 128, "layer_types": ["linear_attention"] * 12}, ["layer_types", "'sliding_attention'"]),
])
def test_inconsistent_window_is_refused(changes: dict[str, Any], fragments: list[str]) -> None:
    """layer_types of the wrong length, sliding layers without a window, a zero window, an unknown type: refused."""
    with pytest.raises(ValidationError) as err:
        model(**changes)
    assert all(f in str(err.value) for f in fragments), str(err.value)


def test_effective_window() -> None:
    """A window limits nothing when it covers the sequence or no layer is windowed."""
    assert effective_window(model(sliding_window=4096), 8192) == 4096
    assert effective_window(model(sliding_window=8192), 8192) is None
    assert effective_window(model(sliding_window=128, layer_types=["full_attention"] * 12), 8192) is None
    assert effective_window(model(), 8192) is None


@pytest.mark.parametrize(("types", "window", "ratio_of_windowed"), [
    (None, 4096, 1.0), (GEMMA3 * 2, 4096, 10 / 12), (["sliding_attention", "full_attention"] * 6, 128, 0.5)])
@pytest.mark.parametrize("seq", [2048, 32768])
def test_model_flops_count_the_window(types: list[str] | None, window: int, ratio_of_windowed: float,
                                      seq: int) -> None:
    """Model FLOPs per token = 6N + 3 x (full layers x PaLM's term + windowed layers x PaLM's term x mask share);
    a window covering the sequence gives PaLM's count to the bit; recompute counts the same windowed attention."""
    m = model(sliding_window=window, layer_types=types)
    full = model()
    six_n = 6.0 * param_counts(m).non_embedding_active
    palm = 3.0 * attention_flops_per_token_layer(full, seq)
    rows = np.arange(1, seq + 1)  # query i keeps min(i+1, w) keys: the mask counted row by row
    share = float(np.minimum(rows, window).sum()) / float(rows.sum())
    n_win = round(ratio_of_windowed * m.layers)
    expected = six_n + palm * ((m.layers - n_win) + n_win * share)
    assert model_flops_per_token(m, seq) == pytest.approx(expected, rel=1e-12)
    if window >= seq:
        assert model_flops_per_token(m, seq) == model_flops_per_token(full, seq)
    else:
        assert model_flops_per_token(m, seq) < model_flops_per_token(full, seq)
    attention = model_flops_per_token(m, seq) - six_n
    assert recompute_flops_per_token(m, seq, "selective") == pytest.approx(attention / 3, rel=1e-12)
    assert recompute_flops_per_token(m, seq, "full") == pytest.approx(model_flops_per_token(m, seq) / 3, rel=1e-12)


@pytest.mark.parametrize("flash", [True, False])
def test_windowed_operators_sum_to_model_flops(flash: bool) -> None:
    """tp=cp=1: full layers' and windowed layers' operator FLOPs (x3) add up to the model FLOPs of a mixed model."""
    m = model(sliding_window=1024, layer_types=GEMMA3 * 2)
    seq, one = 8192, np.array([1.0])
    common: dict[str, Any] = dict(seq_len=seq, micro_batch=one, tp=one, cp=one, sp=np.array([False]), ep=one,
                                  etp=one, precision="bf16", flash_attention=flash)
    full = layer_work(m, "dense", **common)
    local = layer_work(m, "dense", window=1024, **common)
    total = 3.0 * (2 * float(full.gemm_flops[0] + full.attention_model_flops[0])
                   + 10 * float(local.gemm_flops[0] + local.attention_model_flops[0]))
    norms = 2 * m.layers * m.hidden + m.hidden
    assert total + 6.0 * norms * seq == pytest.approx(model_flops_per_token(m, seq) * seq, rel=1e-12)
    if flash:  # executed causal FLOPs: half the PaLM count, as for a full layer
        assert float(local.attention_flops[0]) == pytest.approx(0.5 * float(local.attention_model_flops[0]))
    else:  # the unfused band: min(s, w) keys per query
        scores = {g.name: g for g in local.core_gemms}["attn_scores"]
        assert float(scores.n[0]) == 1024.0
        assert np.asarray(local.core_bytes)[0] / np.asarray(full.core_bytes)[0] == 1024 / seq


def test_a_window_covering_the_sequence_is_a_full_layer() -> None:
    """layer_work with a window >= s returns the full layer's numbers exactly."""
    m = model(sliding_window=8192)
    one = np.array([1.0, 2.0])
    common: dict[str, Any] = dict(seq_len=8192, micro_batch=one, tp=one, cp=one, sp=np.array([False, True]),
                                  ep=np.ones(2), etp=np.ones(2), precision="bf16", flash_attention=False)
    a, b = layer_work(m, "dense", **common), layer_work(m, "dense", window=8192, **common)
    np.testing.assert_array_equal(a.attention_model_flops, b.attention_model_flops)
    np.testing.assert_array_equal(a.core_bytes, b.core_bytes)
    assert [g.n.tolist() for g in a.core_gemms] == [g.n.tolist() for g in b.core_gemms]


def brute_force_stage_windows(flags: list[bool], pp: int) -> tuple[int, int, int]:
    """(windowed on the stage with the most full layers counted as ceil(L/pp) minus its full ones, windowed among
    the first ceil(L/pp) layers, among the last ceil(L/pp)), by walking the stages."""
    L = len(flags)
    lps = -(-L // pp)
    stages = [flags[k * lps:(k + 1) * lps] for k in range(pp)]
    most_full = max(sum(not f for f in st) for st in stages)
    return lps - most_full, sum(flags[:lps]), sum(flags[L - lps:])


@pytest.mark.parametrize("types", [GEMMA3 * 5 + ["sliding_attention"] * 2, ["sliding_attention", "full_attention"]
                                   * 16, ["full_attention"] * 3 + ["sliding_attention"] * 29])
@pytest.mark.parametrize("pp", [1, 2, 3, 4, 5, 8, 16, 32])
def test_windowed_layers_on_stages(types: list[str], pp: int) -> None:
    """The busiest stage's windowed layers and those of the first and last stages, against walking the stages."""
    m = model(layers=32, sliding_window=512, layer_types=types)
    flags = [t == "sliding_attention" for t in types]
    busiest, first, last = brute_force_stage_windows(flags, pp)
    assert windowed_on_busiest_stage(m, np.array([float(pp)]))[0] == busiest
    lps = np.array([float(-(-32 // pp))])
    got_first, got_last = windowed_in_first_and_last(m, lps)
    assert (got_first[0], got_last[0]) == (first, last)


def test_unfused_scores_shrink_with_the_window() -> None:
    """Without flash attention a windowed layer keeps s x w scores per head instead of s x s: the activation
    difference is exactly the score band's; with flash attention the window changes nothing stored."""
    seq, w = 8192, 1024
    m = model(sliding_window=w)
    one = np.array([1.0])
    common: dict[str, Any] = dict(seq_len=seq, micro_batch=one, tp=one, cp=one, sp=np.array([False]), ep=one,
                                  etp=one, recompute=np.array([0]), moe_layer=False)
    full = layer_activation_bytes(m, flash_attention=False, **common)
    local = layer_activation_bytes(m, flash_attention=False, window=w, **common)
    assert float(full[0] - local[0]) == pytest.approx(seq * (seq - w) * m.heads * 2.0, rel=1e-12)
    flash = layer_activation_bytes(m, flash_attention=True, **common)
    np.testing.assert_array_equal(flash, layer_activation_bytes(m, flash_attention=True, window=w, **common))


@pytest.mark.parametrize("flash", [True, False])
def test_memory_per_gpu_with_windowed_layers(flash: bool) -> None:
    """A stage's activations shrink by the score band of each of its windowed layers (unfused attention only);
    a window covering the sequence changes nothing, to the bit."""
    seq, w = 8192, 1024
    common: dict[str, Any] = dict(seq_len=seq, global_batch=64, flash_attention=flash, precision="bf16",
                                  tp=np.array([1.0, 2.0]), pp=np.array([1.0, 2.0]), dp=np.array([8.0, 2.0]),
                                  cp=np.ones(2), ep=np.ones(2), etp=np.ones(2), micro_batch=np.ones(2),
                                  virtual_stages=np.ones(2), recompute=np.array([0, 0]), zero_stage=np.array([1, 1]),
                                  sp=np.array([False, True]), stage="first")
    full = memory_per_gpu(model(), **common)
    covering = memory_per_gpu(model(sliding_window=seq), **common)
    np.testing.assert_array_equal(full.total_bytes, covering.total_bytes)
    mixed = memory_per_gpu(model(sliding_window=w, layer_types=GEMMA3 * 2), **common)
    every = memory_per_gpu(model(sliding_window=w), **common)
    if flash:
        np.testing.assert_array_equal(mixed.total_bytes, full.total_bytes)
        np.testing.assert_array_equal(every.total_bytes, full.total_bytes)
        return
    # first stage: pp=1 holds 10 windowed layers of 12, pp=2 the first 6 layers of which 5 are windowed; in flight
    # on the first stage under 1F1B: min(pp, microbatches) micro-batches
    tp = np.array([1.0, 2.0])
    band = seq * (seq - w) * model().heads / tp * 2.0
    inflight = np.array([1.0, 2.0])
    np.testing.assert_allclose(full.activations_bytes - mixed.activations_bytes,
                               np.array([10.0, 5.0]) * inflight * band, rtol=1e-12)
    assert np.all(every.activations_bytes < mixed.activations_bytes)
    assert np.all(every.transient_bytes < full.transient_bytes)  # the widest layer's scores and scratch

