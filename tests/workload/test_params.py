"""Parameter counts against published figures, a by-name tensor count, and the GPT closed form 12*L*h^2 + 2*V*h."""

from __future__ import annotations

from typing import Any

import pytest

from supercluster.spec.catalog import entries, entry
from supercluster.spec.model import Model
from supercluster.workload import param_counts


def catalog_model(name: str) -> Model:
    return Model.model_validate(entry("models", name))


def gpt_style(**changes: Any) -> Model:
    """A GPT-2/3-style model: GeLU, full MHA, f = 4h, untied embeddings, no biases."""
    body: dict[str, Any] = dict(name="gpt-style", layers=12, hidden=768, ffn_hidden=4 * 768, heads=12, vocab=50257,
                                seq_len=1024, activation="gelu", tied_embeddings=False, attention="mha",
                                position_embedding="learned")
    body.update(changes)
    return Model.model_validate(body)


# (model, published total, tolerance, published active or None, tolerance on active)
PUBLISHED = [
    # Llama Team 2024 (arXiv:2407.21783) and the HF count of meta-llama/Llama-3.1-405B: 405,853,388,800.
    ("llama3-405b", 405.8e9, 0.01, None, None),
    # Brown et al. 2020 (arXiv:2005.14165) Table 2.1.
    ("gpt3-175b", 175e9, 0.01, None, None),
    # xai-org/grok-1 README: 314B.
    ("grok-1", 314e9, 0.02, None, None),
    # Mistral AI, 'Mixtral of experts': 46.7B total, 12.9B per token.
    ("mixtral-8x7b", 46.7e9, 0.01, 12.9e9, 0.01),
    # DeepSeek-V3 technical report (arXiv:2412.19437): 671B total, 37B activated.
    ("deepseek-v3", 671e9, 0.01, 37e9, 0.03),
    # Qwen3 technical report (arXiv:2505.09388): 235B total, 22B activated.
    ("qwen3-235b-a22b", 235e9, 0.01, 22e9, 0.02),
]


@pytest.mark.parametrize(("name", "total", "tol", "active", "active_tol"), PUBLISHED,
                         ids=[row[0] for row in PUBLISHED])
def test_published_parameter_counts(name: str, total: float, tol: float, active: float | None,
                                    active_tol: float | None) -> None:
    """The counted total (and active) parameters of a catalog model are within tolerance of the published figure."""
    model = catalog_model(name)
    pc = param_counts(model)
    assert pc.total == pytest.approx(total, rel=tol)
    if active is not None:
        assert pc.active == pytest.approx(active, rel=active_tol)
    if model.moe is None:
        assert pc.active == pc.total  # a dense model activates every parameter


@pytest.mark.parametrize("name", sorted(entries("models")))
def test_catalog_published_params_agree_with_arithmetic(name: str) -> None:
    """Every catalog model's own published_params is within 2% of the architecture arithmetic."""
    model = catalog_model(name)
    assert model.published_params is not None
    assert param_counts(model).total == pytest.approx(model.published_params, rel=0.02)


def llama_tensors(model: Model) -> dict[str, tuple[int, ...]]:
    """Shapes of every tensor of a Llama checkpoint by Hugging Face name (written out, not from the package)."""
    h, f, V = model.hidden, model.ffn_hidden, model.vocab
    d = h // model.heads
    kv = model.n_kv_heads * d
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (V, h)}
    for i in range(model.layers):
        p = f"model.layers.{i}."
        shapes[p + "self_attn.q_proj.weight"] = (h, h)
        shapes[p + "self_attn.k_proj.weight"] = (kv, h)
        shapes[p + "self_attn.v_proj.weight"] = (kv, h)
        shapes[p + "self_attn.o_proj.weight"] = (h, h)
        shapes[p + "mlp.gate_proj.weight"] = (f, h)
        shapes[p + "mlp.up_proj.weight"] = (f, h)
        shapes[p + "mlp.down_proj.weight"] = (h, f)
        shapes[p + "input_layernorm.weight"] = (h,)
        shapes[p + "post_attention_layernorm.weight"] = (h,)
    shapes["model.norm.weight"] = (h,)
    shapes["lm_head.weight"] = (V, h)
    return shapes


def numel(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


@pytest.mark.parametrize(("name", "hf_count"), [("llama3-8b", 8_030_261_248), ("llama3-405b", 405_853_388_800)])
def test_llama_count_by_tensor_names(name: str, hf_count: int) -> None:
    """param_counts of a Llama equals the sum of its checkpoint's tensors by name, and the Hugging Face count."""
    model = catalog_model(name)
    tensors = llama_tensors(model)
    by_name = sum(numel(s) for s in tensors.values())
    assert by_name == hf_count
    pc = param_counts(model)
    assert pc.total == by_name
    assert pc.embedding == numel(tensors["model.embed_tokens.weight"])
    assert pc.lm_head == numel(tensors["lm_head.weight"])
    per_layer = sum(numel(s) for k, s in tensors.items() if k.startswith("model.layers.0."))
    assert pc.dense_layer == per_layer


@pytest.mark.parametrize(("layers", "hidden", "heads", "vocab"),
                         [(12, 768, 12, 50257), (96, 12288, 96, 50257), (2, 64, 4, 100)])
def test_gpt_style_closed_form(layers: int, hidden: int, heads: int, vocab: int) -> None:
    """An untied GeLU MHA model with f = 4h has exactly 12*L*h^2 + 2*V*h parameters plus its 2L+1 norm vectors."""
    model = gpt_style(layers=layers, hidden=hidden, ffn_hidden=4 * hidden, heads=heads, vocab=vocab)
    norms = (2 * layers + 1) * hidden
    assert param_counts(model).total == 12 * layers * hidden**2 + 2 * vocab * hidden + norms


def test_tied_embeddings_drop_the_head() -> None:
    """Tying the embeddings removes exactly V*h parameters (the LM head) and nothing else."""
    untied, tied = gpt_style(), gpt_style(tied_embeddings=True)
    assert param_counts(untied).total - param_counts(tied).total == untied.vocab * untied.hidden
    assert param_counts(tied).lm_head == 0


def test_moe_active_counts_top_k_experts() -> None:
    """A MoE layer's total and active counts differ by exactly (E - k) experts, for every MoE layer."""
    model = catalog_model("mixtral-8x7b")
    pc = param_counts(model)
    assert model.moe is not None
    expert = 3 * model.hidden * model.moe.moe_ffn_hidden  # SwiGLU: gate, up, down
    assert pc.total - pc.active == pc.moe_layers * (model.moe.experts - model.moe.top_k) * expert
    assert pc.moe_layers == model.layers and pc.dense_layers == 0
