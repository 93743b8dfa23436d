"""Parameter counts against published figures, a by-name tensor count, and the GPT closed form 12*L*h^2 + 2*V*h."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from supercluster.spec.catalog import entries, entry
from supercluster.spec.hf import model_from_hf_config
from supercluster.spec.model import Model
from supercluster.workload import ParamCounts, param_counts
from supercluster.workload.params import layer_small_tensors

HF = Path(__file__).resolve().parent.parent / "data" / "hf"


def catalog_model(name: str) -> Model:
    return Model.model_validate(entry("models", name))


def gpt_style(**changes: Any) -> Model:
    """A GPT-2/3-style model: GeLU, full MHA, f = 4h, untied embeddings, no biases."""
    body: dict[str, Any] = dict(name="gpt-style", layers=12, hidden=768, ffn_hidden=4 * 768, heads=12, vocab=50257,
                                seq_len=1024, activation="gelu", tied_embeddings=False, attention="mha",
                                position_embedding="learned")
    body.update(changes)
    return Model.model_validate(body)


# How a publisher counts active parameters: with every embedding ("active"), without the input embedding (gpt-oss's
# model card), or without the input embedding and the LM head ("non_embedding", the N of MFU).
CONVENTIONS = {
    "active": lambda pc: pc.active,
    "without_input_embedding": lambda pc: pc.active_without_input_embedding,
    "non_embedding": lambda pc: pc.non_embedding_active,
}

# (model, published total, tolerance, published active or None, tolerance on active, the publisher's convention)
PUBLISHED = [
    # Llama Team 2024 (arXiv:2407.21783) and the HF count of meta-llama/Llama-3.1-405B: 405,853,388,800.
    ("llama3-405b", 405.8e9, 0.01, None, None, None),
    # Brown et al. 2020 (arXiv:2005.14165) Table 2.1.
    ("gpt3-175b", 175e9, 0.01, None, None, None),
    # xai-org/grok-1 README: 314B.
    ("grok-1", 314e9, 0.02, None, None, None),
    # Mistral AI, 'Mixtral of experts': 46.7B total, 12.9B per token (embeddings included).
    ("mixtral-8x7b", 46.7e9, 0.01, 12.9e9, 0.01, "active"),
    # DeepSeek-V3 technical report (arXiv:2412.19437): 671B total, 37B activated (embeddings included).
    ("deepseek-v3", 671e9, 0.01, 37e9, 0.02, "active"),
    # Mistral AI, 'Cheaper, Better, Faster, Stronger': 141B total, 39B active (embeddings included).
    ("mixtral-8x22b", 141e9, 0.01, 39e9, 0.02, "active"),
    # Qwen3 technical report (arXiv:2505.09388): 235B total, 22B activated (embeddings included).
    ("qwen3-235b-a22b", 235e9, 0.01, 22e9, 0.02, "active"),
    # Meta's Llama 4 Maverick model card: 400B total, 17B active (the embeddings included: 17.19B; 16.15B without
    # the input embedding).
    ("llama4-maverick", 400e9, 0.01, 17e9, 0.02, "active"),
    # OpenAI's gpt-oss model card: 116.83B total, 5.13B active, counted without the input embedding.
    ("gpt-oss-120b", 116.83e9, 0.01, 5.13e9, 0.02, "without_input_embedding"),
    # Kimi K2 (arXiv:2507.20534, model card): 1T total, 32B activated. '1T' is one significant figure (1.026T
    # counted), hence 3%; the 32B is closest to the count without the input embedding (31.69B).
    ("kimi-k2", 1e12, 0.03, 32e9, 0.02, "without_input_embedding"),
    # NVIDIA's Nemotron 3 Nano release: 31.6B total, 3.2B active (the count without the input embedding: 3.23B).
    ("nemotron-3-nano", 31.6e9, 0.01, 3.2e9, 0.02, "without_input_embedding"),
]
# A published total stated to fewer figures than 2% resolves: the tolerance it allows.
ROUNDED_TOTALS = {"kimi-k2": 0.03}


@pytest.mark.parametrize(("name", "total", "tol", "active", "active_tol", "convention"), PUBLISHED,
                         ids=[row[0] for row in PUBLISHED])
def test_published_parameter_counts(name: str, total: float, tol: float, active: float | None,
                                    active_tol: float | None, convention: str | None) -> None:
    """The counted total (and active, in the publisher's convention) parameters of a catalog model are within
    tolerance of the published figure."""
    model = catalog_model(name)
    pc = param_counts(model)
    assert pc.total == pytest.approx(total, rel=tol)
    if active is not None:
        assert convention is not None
        assert CONVENTIONS[convention](pc) == pytest.approx(active, rel=active_tol)
    if model.moe is None:
        assert pc.active == pc.total  # a dense model activates every parameter


# Catalog models whose published active count is not checked to 2%, and why.
ACTIVE_UNCHECKED = {
    "grok-1": "xAI's 78.5B is '25% of the weights', rounded; the count is 83.8B",
    "gpt4-moe": "an analyst's estimate whose shapes were derived to reproduce it (an estimate: true entry)",
}


def test_every_catalog_model_with_a_published_active_count_is_checked() -> None:
    """Each catalog model that states published_active_params has a row above, or a reason not to (a new entry
    cannot be left out)."""
    stated = {n for n, body in entries("models").items() if body.get("published_active_params") is not None}
    checked = {row[0] for row in PUBLISHED if row[3] is not None}
    assert stated - set(ACTIVE_UNCHECKED) == checked


@pytest.mark.parametrize("name", sorted(entries("models")))
def test_catalog_published_params_agree_with_arithmetic(name: str) -> None:
    """Every catalog model's own published_params is within 2% of the architecture arithmetic (more only where the
    publisher rounds harder: ROUNDED_TOTALS)."""
    model = catalog_model(name)
    assert model.published_params is not None
    assert param_counts(model).total == pytest.approx(model.published_params, rel=ROUNDED_TOTALS.get(name, 0.02))


def llama4_vision_tower(config: dict[str, Any]) -> int:
    """The weight matrices of a Llama 4 config's vision tower and projector, written out here from its vision_config
    (34 ViT layers of attention 4h^2 and MLP 2hf, the patch embedding, the pixel-shuffle MLP and the projector to the
    text width): what Meta's total counts beside the language model."""
    v, text_hidden = config["vision_config"], config["text_config"]["hidden_size"]
    h, f = v["hidden_size"], v["intermediate_size"]
    layers = v["num_hidden_layers"] * (4 * h * h + 2 * h * f)
    patch = v["num_channels"] * v["patch_size"] ** 2 * h
    shuffled = int(h / v["pixel_shuffle_ratio"] ** 2)
    adapter = shuffled * v["projector_input_dim"] + v["projector_input_dim"] * v["projector_output_dim"]
    return layers + patch + adapter + v["vision_output_dim"] * text_hidden


# (config fixture, published total, tolerance, published active, tolerance, convention, the source of the figures)
PUBLISHED_HF = [
    ("Llama-4-Maverick-17B-128E", 400e9, 0.01, 17e9, 0.02, "active", "Meta, Llama 4 model card"),
    ("GLM-4.5", 355e9, 0.01, 32e9, 0.02, "non_embedding", "GLM-4.5 report (arXiv:2508.06471) Table 1"),
    ("gpt-oss-120b", 116.83e9, 0.01, 5.13e9, 0.02, "without_input_embedding", "OpenAI gpt-oss model card"),
    ("Qwen2-57B-A14B", 57e9, 0.01, 14e9, 0.02, "active", "Qwen2 technical report (arXiv:2407.10671)"),
    ("Qwen1.5-MoE-A2.7B", 14.3e9, 0.01, 2.7e9, 0.02, "active", "Qwen blog, 'Qwen1.5-MoE' (2024-03-28)"),
    ("DeepSeek-V3", 671e9, 0.01, 37e9, 0.02, "active", "arXiv:2412.19437"),
    ("Kimi-K2-Base", 1e12, 0.03, 32e9, 0.02, "without_input_embedding", "arXiv:2507.20534; '1T' to one figure"),
    # Gemma 3 report (arXiv:2503.19786) Table 1: 1B = 302M embedding + 698M non-embedding; 27B = 1,416M + 25,600M
    # (the 417M vision encoder apart). Tied embeddings: every parameter is active.
    ("gemma-3-1b-pt", 1.0e9, 0.01, 698e6, 0.02, "non_embedding", "Gemma 3 report Table 1"),
    ("gemma-3-27b-pt", 27.016e9, 0.01, 25.6e9, 0.02, "non_embedding", "Gemma 3 report Table 1"),
]


@pytest.mark.parametrize(("name", "total", "tol", "active", "active_tol", "convention", "cited"), PUBLISHED_HF,
                         ids=[row[0] for row in PUBLISHED_HF])
def test_hf_config_parameter_counts(name: str, total: float, tol: float, active: float, active_tol: float,
                                    convention: str, cited: str) -> None:
    """A model read from its published config.json counts within 1% of the published total (3% for a figure stated
    to one significant figure) and within 2% of the published active count in the publisher's convention."""
    pc = param_counts(Model.model_validate(model_from_hf_config(HF / name / "config.json")))
    assert pc.total == pytest.approx(total, rel=tol), cited
    assert CONVENTIONS[convention](pc) == pytest.approx(active, rel=active_tol), cited


def test_llama4_scout_is_metas_total_less_its_vision_tower() -> None:
    """Llama 4 Scout's language model plus its vision tower (counted here from vision_config) is Meta's 109B total
    within 1%, and its active parameters (embeddings included) Meta's 17B within 2%: the language model alone is
    107.8B, the vision tower the rest."""
    path = HF / "Llama-4-Scout-17B-16E" / "config.json"
    pc: ParamCounts = param_counts(Model.model_validate(model_from_hf_config(path)))
    vision = llama4_vision_tower(json.loads(path.read_text(encoding="utf-8")))
    assert 0.8e9 < vision < 1.0e9
    assert pc.total + vision == pytest.approx(109e9, rel=0.01)
    assert pc.active == pytest.approx(17e9, rel=0.02)


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


def test_layer_small_tensors_count_biases_and_norms() -> None:
    """A GPT layer has 4 weight matrices, 4 biases and 2 LayerNorms of a weight and a bias each; a LLaMA layer 2
    RMSNorm weights beside its matrices; a stated norm or bias overrides what the activation implies."""
    gpt = Model.model_validate(dict(name="tiny", layers=2, hidden=64, ffn_hidden=256, heads=4, vocab=100, seq_len=32,
                                    activation="gelu"))
    llama = gpt.model_copy(update={"activation": "swiglu"})
    assert gpt.norm_and_bias == ("layernorm", True) and llama.norm_and_bias == ("rmsnorm", False)
    assert layer_small_tensors(gpt, 4) == 8
    assert layer_small_tensors(llama, 4) == 2
    assert layer_small_tensors(llama.model_copy(update={"linear_bias": True}), 4) == 6
    assert layer_small_tensors(gpt.model_copy(update={"norm": "rmsnorm"}), 4) == 6
