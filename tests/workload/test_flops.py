"""Model FLOPs follow PaLM's 6N + 12*L*H*Q*T; recompute adds what it re-runs; operators add up to the model FLOPs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from supercluster.spec.catalog import entry
from supercluster.spec.model import Model
from supercluster.workload import layer_work, model_flops_per_token, param_counts, recompute_flops_per_token


def catalog_model(name: str) -> Model:
    return Model.model_validate(entry("models", name))


def gpt_style(**changes: Any) -> Model:
    body: dict[str, Any] = dict(name="gpt-style", layers=12, hidden=768, ffn_hidden=3072, heads=12, vocab=50257,
                                seq_len=1024, activation="gelu", tied_embeddings=False, attention="mha",
                                position_embedding="learned")
    body.update(changes)
    return Model.model_validate(body)


def norm_params(model: Model) -> int:
    """Parameters that are not GEMM weights: the two per-layer norms, the final norm, MLA's two latent norms."""
    n = 2 * model.layers * model.hidden + model.hidden
    if model.mla is not None:
        n += model.layers * ((model.mla.q_lora_rank or 0) + model.mla.kv_lora_rank)
    return n


def hand_non_embedding(model: Model, active: bool) -> int:
    """Non-embedding parameters counted here from the shapes (independent of workload.params)."""
    h, L, d = model.hidden, model.layers, model.d_head
    mats = 3 if model.activation == "swiglu" else 2
    attn = h * model.heads * d * 2 + 2 * h * model.n_kv_heads * d
    if model.moe is None:
        return L * (attn + mats * h * model.ffn_hidden) + norm_params(model)
    moe = model.moe
    experts = moe.top_k if active else moe.experts
    moe_layer = attn + experts * mats * h * moe.moe_ffn_hidden + h * moe.experts
    return L * moe_layer + norm_params(model)


@pytest.mark.parametrize("name", ["gpt3-175b", "llama3-8b", "llama3-405b"])
@pytest.mark.parametrize("seq", [1024, 2048, 8192])
def test_dense_palm_formula(name: str, seq: int) -> None:
    """Dense MHA/GQA: model FLOPs per token = 6N + 12*L*H*Q*T with N the non-embedding parameters (PaLM App. B)."""
    model = catalog_model(name)
    n = hand_non_embedding(model, active=False)
    expected = 6 * n + 12 * model.layers * model.heads * model.d_head * seq
    assert model_flops_per_token(model, seq) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", ["mixtral-8x7b", "grok-1", "qwen3-235b-a22b"])
def test_moe_uses_active_non_embedding_params(name: str) -> None:
    """MoE: N in 6N is the non-embedding parameters one token activates (top_k experts + router), not the total."""
    model = catalog_model(name)
    seq = 4096
    n_active = hand_non_embedding(model, active=True)
    assert n_active == param_counts(model).non_embedding_active
    expected = 6 * n_active + 12 * model.layers * model.heads * model.d_head * seq
    assert model_flops_per_token(model, seq) == pytest.approx(expected, rel=1e-12)
    assert model_flops_per_token(model, seq) < 6 * hand_non_embedding(model, active=False)


def test_mla_attention_term() -> None:
    """MLA: the attention term is 6*L*T*H*(d_qk + d_v) with d_qk = nope + rope dims (DeepSeek-V3: 192 and 128)."""
    model = catalog_model("deepseek-v3")
    seq = 4096
    n = param_counts(model).non_embedding_active
    attention = 6 * model.layers * seq * model.heads * (128 + 64 + 128)
    assert model_flops_per_token(model, seq) == pytest.approx(6 * n + attention, rel=1e-12)


@pytest.mark.parametrize("name", ["gpt3-175b", "llama3-8b", "mixtral-8x7b", "deepseek-v3"])
def test_recompute_flops(name: str) -> None:
    """Full recompute adds exactly 1/3 of the model FLOPs; selective adds the forward attention term only."""
    model = catalog_model(name)
    seq = 2048
    mflops = model_flops_per_token(model, seq)
    six_n = 6 * param_counts(model).non_embedding_active
    assert recompute_flops_per_token(model, seq, "full") == pytest.approx(mflops / 3, rel=1e-12)
    assert recompute_flops_per_token(model, seq, "selective") == pytest.approx((mflops - six_n) / 3, rel=1e-12)
    assert recompute_flops_per_token(model, seq, "none") == 0.0


OPERATOR_MODELS = [
    ("dense MHA", gpt_style()),
    ("dense GQA", catalog_model("llama3-8b")),
    ("MLA + MoE + dense layers", catalog_model("deepseek-v3")),
    ("MoE", catalog_model("mixtral-8x7b")),
    ("MoE, head_dim != h/H", catalog_model("qwen3-235b-a22b")),
]


@pytest.mark.parametrize(("label", "model"), OPERATOR_MODELS, ids=[m[0] for m in OPERATOR_MODELS])
@pytest.mark.parametrize(("micro_batch", "seq"), [(1, 2048), (2, 4096)])
def test_operators_sum_to_model_flops(label: str, model: Model, micro_batch: int, seq: int) -> None:
    """tp=cp=1: 3 x (GEMM + attention fwd FLOPs) over layers + 6 x norm params x tokens = model FLOPs x tokens."""
    one = np.array([1.0])
    pc = param_counts(model)
    total = 0.0
    for kind, count in (("dense", pc.dense_layers), ("moe", pc.moe_layers)):
        if count == 0:
            continue
        work = layer_work(model, kind, seq_len=seq, micro_batch=np.array([float(micro_batch)]), tp=one, cp=one,
                          sp=np.array([False]), ep=one, etp=one, precision="bf16")
        assert work.gemm_flops.shape == (1,)
        total += count * 3.0 * float(work.gemm_flops[0] + work.attention_model_flops[0])
    tokens = micro_batch * seq
    # PaLM's N includes the norm scale vectors, which are not GEMM weights: they enter 6N but no GEMM.
    total += 6.0 * norm_params(model) * tokens
    assert total == pytest.approx(model_flops_per_token(model, seq) * tokens, rel=1e-9)


@pytest.mark.parametrize("tp", [2, 4, 8])
def test_operators_split_over_tp(tp: int) -> None:
    """Tensor parallelism divides every GEMM and the attention FLOPs of a GQA layer by tp (heads divide)."""
    model = catalog_model("llama3-8b")
    common: dict[str, Any] = dict(seq_len=4096, micro_batch=np.array([1.0]), cp=np.array([1.0]),
                                  sp=np.array([True]), ep=np.array([1.0]), etp=np.array([1.0]), precision="bf16")
    w1 = layer_work(model, "dense", tp=np.array([1.0]), **common)
    wt = layer_work(model, "dense", tp=np.array([float(tp)]), **common)
    assert float(wt.gemm_flops[0]) * tp == pytest.approx(float(w1.gemm_flops[0]), rel=1e-12)
    assert float(wt.attention_model_flops[0]) * tp == pytest.approx(float(w1.attention_model_flops[0]), rel=1e-12)
    assert float(wt.attention_flops[0]) == pytest.approx(0.5 * float(wt.attention_model_flops[0]), rel=1e-12)
