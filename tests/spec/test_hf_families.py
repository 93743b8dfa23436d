"""The families read from config keys since issue 13 (Llama 4, GLM-4.5, gpt-oss, Gemma 3, Qwen2-MoE, Kimi K2,
multimodal configs, sliding windows), each assumption listed, and the hybrids not read (Zamba) refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from supercluster.errors import FileFormatError
from supercluster.spec import Model
from supercluster.spec.hf import model_from_hf_config, read_hf_config

DATA = Path(__file__).resolve().parent.parent / "data" / "hf"
FIXTURES = ["Llama-4-Scout-17B-16E", "Llama-4-Maverick-17B-128E", "GLM-4.5", "gpt-oss-120b", "Qwen2-57B-A14B",
            "gemma-3-1b-pt", "gemma-3-27b-pt", "Kimi-K2-Base"]
ALTERNATING = ["sliding_attention", "full_attention"]


def load(name: str) -> Model:
    return Model.model_validate(model_from_hf_config(DATA / name / "config.json"))


def raw(name: str) -> dict[str, Any]:
    return json.loads((DATA / name / "config.json").read_text(encoding="utf-8"))


def from_data(tmp_path: Path, data: dict[str, Any]) -> Model:
    path = tmp_path / "custom" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return Model.model_validate(model_from_hf_config(path))


def without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


@pytest.mark.parametrize("name", FIXTURES)
def test_every_new_fixture_is_a_valid_model_with_one_line_assumptions(name: str) -> None:
    """Every fixture maps to Model fields only; each assumption is one line and names what was modelled."""
    data = model_from_hf_config(DATA / name / "config.json")
    assert set(data) <= set(Model.model_fields)
    model = Model.model_validate(data)
    assert all(a.strip() and "\n" not in a for a in model.assumptions)
    assert model.family is not None


# --- Llama 4 ------------------------------------------------------------------------------------------------


def test_llama4_scout_reads_its_text_config_with_a_shared_expert() -> None:
    """Scout: the language model under text_config, 48 MoE layers of 16 experts (top-1) and one shared expert of
    intermediate_size 8192; the vision tower and the chunked attention are assumptions."""
    m = load("Llama-4-Scout-17B-16E")
    assert m.family == "llama4"
    assert (m.layers, m.hidden, m.heads, m.kv_heads, m.head_dim, m.vocab) == (48, 5120, 40, 8, 128, 202048)
    assert m.moe is not None
    assert (m.moe.experts, m.moe.top_k, m.moe.shared_experts, m.moe.moe_ffn_hidden) == (16, 1, 1, 8192)
    assert m.moe.dense_layers == 0 and m.ffn_hidden == 16384 and not m.tied_embeddings
    assert m.assumptions == [
        "multimodal config: the language model (text_config) is modelled; vision_config left out",
        "text_config.attention_chunk_size 8192: the chunked local attention of the RoPE layers is modelled as full "
        "attention",
    ]
    assert not m.estimate


def test_llama4_maverick_alternates_dense_and_moe_layers() -> None:
    """Maverick: interleave_moe_layer_step 2 is 24 MoE layers of 128 experts (the 2nd, 4th, ... 48th) and 24 dense
    layers of intermediate_size_mlp 16384 between them, placed as the model has them (moe.interleave_step)."""
    m = load("Llama-4-Maverick-17B-128E")
    assert m.moe is not None
    assert (m.moe.experts, m.moe.top_k, m.moe.shared_experts, m.moe.dense_layers, m.moe.interleave_step) == (
        128, 1, 1, 0, 2)
    assert m.moe_layers == 24 and [i for i, f in enumerate(m.moe_layer_flags) if f] == list(range(1, 48, 2))
    assert m.ffn_hidden == 16384 and m.moe.moe_ffn_hidden == 8192
    assert not any("interleaved" in a for a in m.assumptions)


def test_llama4_moe_layers_by_index_read_as_the_interleave_step(tmp_path: Path) -> None:
    """A text_config naming its MoE layers (moe_layers) gives the same model as interleave_moe_layer_step."""
    data = raw("Llama-4-Maverick-17B-128E")
    text = without(data["text_config"], "interleave_moe_layer_step")
    by_index = from_data(tmp_path, {**data, "text_config": {**text, "moe_layers": list(range(1, 48, 2))}})
    assert by_index.moe == load("Llama-4-Maverick-17B-128E").moe
    assert not any("interleaved" in a for a in by_index.assumptions)
    uneven = from_data(tmp_path, {**data, "text_config": {**text, "moe_layers": [1, 3, 4] + list(range(7, 48, 2))}})
    assert uneven.moe is not None and uneven.moe.interleave_step == 1 and uneven.moe.dense_layers == 24
    assert any("moe_layers names the 24 MoE layers" in a for a in uneven.assumptions)


def test_a_text_only_llama4_config_reads_the_same(tmp_path: Path) -> None:
    """Llama 4's text_config saved as its own config.json (llama4_text) is the same language model, without the
    multimodal assumption."""
    data = raw("Llama-4-Scout-17B-16E")
    text = {**data["text_config"], "tie_word_embeddings": False}
    m = from_data(tmp_path, text)
    full = load("Llama-4-Scout-17B-16E")
    assert (m.moe, m.ffn_hidden, m.layers, m.vocab) == (full.moe, full.ffn_hidden, full.layers, full.vocab)
    assert not any("multimodal" in a for a in m.assumptions)


def test_llama4_chunked_layer_types_are_full_attention_as_an_assumption(tmp_path: Path) -> None:
    """A Llama 4 text config that lists its layers as chunked_attention / full_attention (newer transformers) is
    read as full attention everywhere, saying so once, rather than refused."""
    text = without(raw("Llama-4-Scout-17B-16E")["text_config"], "attention_chunk_size")
    kinds = ["chunked_attention", "chunked_attention", "chunked_attention", "full_attention"] * 12
    m = from_data(tmp_path, {**text, "layer_types": kinds, "tie_word_embeddings": False})
    assert m.layer_types is None and m.sliding_window is None
    assert m.assumptions == ["layer_types: its chunked_attention layers are modelled as full attention"]


# --- GLM-4.5, Kimi K2, Qwen2-MoE ----------------------------------------------------------------------------


def test_glm45_reads_its_routed_and_shared_experts_and_dense_layers() -> None:
    """GLM-4.5: 92 layers, the first 3 dense (12288), 89 MoE of 160 routed experts (top-8, width 1536) and 1 shared;
    its multi-token-prediction layer is an assumption."""
    m = load("GLM-4.5")
    assert m.moe is not None
    assert (m.moe.experts, m.moe.top_k, m.moe.shared_experts, m.moe.moe_ffn_hidden) == (160, 8, 1, 1536)
    assert (m.moe.dense_layers, m.ffn_hidden, m.layers, m.heads, m.kv_heads, m.head_dim) == (3, 12288, 92, 96, 8, 128)
    assert m.assumptions == ["num_nextn_predict_layers 1: the multi-token-prediction module is not modelled"]


def test_glm45_without_hidden_act_is_swiglu_as_an_assumption(tmp_path: Path) -> None:
    """A GLM-4.5 config without hidden_act is modelled as SwiGLU (the GLM-4.5 report), listed as an assumption."""
    m = from_data(tmp_path, without(raw("GLM-4.5"), "hidden_act"))
    assert m.activation == "swiglu"
    assert ("hidden_act absent: a gated MLP, modelled as 'swiglu' (the GLM-4.5 report (arXiv:2508.06471) uses "
            "SwiGLU)") in m.assumptions


@pytest.mark.parametrize(("name", "key", "shared", "assumption"), [
    ("GLM-4.5", "n_shared_experts", 1, "n_shared_experts absent: 1 shared expert per MoE layer (the glm4_moe "
                                       "default)"),
    ("Kimi-K2-Base", "n_shared_experts", 1, "n_shared_experts absent: 1 shared expert per MoE layer (the kimi_k2 "
                                            "default)"),
    ("GLM-4.5", "first_k_dense_replace", 1, "first_k_dense_replace absent: no leading dense layers, every layer "
                                            "MoE"),
])
def test_a_left_out_moe_key_is_the_family_default_listed(tmp_path: Path, name: str, key: str, shared: int,
                                                         assumption: str) -> None:
    """A config without its shared-expert count or its leading dense layers is modelled on the family default, with
    that assumption listed."""
    m = from_data(tmp_path, without(raw(name), key))
    assert m.moe is not None and m.moe.shared_experts == shared
    assert assumption in m.assumptions


def test_kimi_k2_is_deepseek_v3_shaped_and_states_everything() -> None:
    """Kimi K2 (model_type kimi_k2): MLA, 384 routed experts top-8 + 1 shared, 1 dense layer; no assumption."""
    m = load("Kimi-K2-Base")
    assert m.attention == "mla" and m.moe is not None
    assert (m.moe.experts, m.moe.top_k, m.moe.shared_experts, m.moe.dense_layers) == (384, 8, 1, 1)
    assert (m.heads, m.vocab, m.family) == (64, 163840, "kimi_k2")
    assert m.assumptions == []


def test_qwen2_moe_shared_expert_of_its_own_width_and_no_window() -> None:
    """Qwen2-57B-A14B: 64 experts top-8 of 2560 and the shared experts as one MLP of 20480; use_sliding_window
    false leaves its sliding_window unused."""
    m = load("Qwen2-57B-A14B")
    assert m.moe is not None
    assert (m.moe.experts, m.moe.top_k, m.moe.moe_ffn_hidden) == (64, 8, 2560)
    assert (m.moe.shared_experts, m.moe.shared_ffn_hidden) == (1, 20480)
    assert m.sliding_window is None and m.layer_types is None and m.assumptions == []


def test_qwen2_moe_without_a_shared_width_is_the_class_default(tmp_path: Path) -> None:
    """A qwen2_moe config without shared_expert_intermediate_size gets Qwen2MoeConfig's 5632, as an assumption."""
    m = from_data(tmp_path, without(raw("Qwen2-57B-A14B"), "shared_expert_intermediate_size"))
    assert m.moe is not None and (m.moe.shared_experts, m.moe.shared_ffn_hidden) == (1, 5632)
    assert m.assumptions == ["shared_expert_intermediate_size absent: one shared expert of width 5632, the "
                             "qwen2_moe default"]


def test_a_known_moe_family_without_experts_is_refused(tmp_path: Path) -> None:
    """A mixtral config without num_local_experts is an error, not a dense model."""
    path = tmp_path / "m" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(without(raw("Mixtral-8x7B-v0.1"), "num_local_experts")), encoding="utf-8")
    with pytest.raises(FileFormatError) as info:
        model_from_hf_config(path)
    assert info.value.field == "num_local_experts" and "mixture of experts" in info.value.message


# --- sliding windows ----------------------------------------------------------------------------------------


def test_gpt_oss_layer_types_and_window_are_read() -> None:
    """gpt-oss-120b: 128 experts top-4 on every layer, window 128 on every other layer (layer_types as given)."""
    m = load("gpt-oss-120b")
    assert m.moe is not None and (m.moe.experts, m.moe.top_k, m.moe.moe_ffn_hidden) == (128, 4, 2880)
    assert m.sliding_window == 128 and m.layer_types == ALTERNATING * 18
    assert (m.head_dim, m.kv_heads, m.activation) == (64, 8, "swiglu") and m.assumptions == []
    assert m.glu_limit == 7.0 and m.norm_and_bias[1]  # swiglu_limit; attention_bias true (its experts' biases too)


@pytest.mark.parametrize("limit", [0, -7.0, "7", True])
def test_a_glu_clamp_that_is_no_positive_number_is_a_located_error(tmp_path: Path, limit: Any) -> None:
    data = raw("gpt-oss-120b")
    data["swiglu_limit"] = limit
    with pytest.raises(FileFormatError, match="swiglu_limit"):
        from_data(tmp_path, data)


def test_gpt_oss_without_layer_types_alternates_as_an_assumption(tmp_path: Path) -> None:
    """Without layer_types, gpt-oss alternates windowed and full layers from layer 0 (GptOssConfig), listed."""
    m = from_data(tmp_path, without(raw("gpt-oss-120b"), "layer_types"))
    assert m.layer_types == ALTERNATING * 18
    assert m.assumptions == ["layer_types absent: one layer in 2 full attention, the others windowed (the gpt_oss "
                             "pattern)"]


def test_gemma3_sliding_window_pattern_makes_every_sixth_layer_full() -> None:
    """Gemma 3 1B: sliding_window_pattern 6 is layers 5, 11, 17, 23 full and 22 layers windowed (512 tokens);
    tied by the family default, an assumption."""
    m = load("gemma-3-1b-pt")
    assert m.sliding_window == 512 and m.layer_types is not None
    assert [i for i, t in enumerate(m.layer_types) if t == "full_attention"] == [5, 11, 17, 23]
    assert (m.activation, m.tied_embeddings, m.head_dim, m.kv_heads) == ("swiglu", True, 256, 1)
    assert m.assumptions == ["tie_word_embeddings absent: tied input and output embeddings (the gemma3_text "
                             "default)"]


def test_gemma3_27b_multimodal_config_lists_every_default_it_rests_on() -> None:
    """Gemma 3 27B's published config leaves vocab, context, activation, tying and the window pattern to the
    configuration class: each default is used and listed, as is the vision tower left out."""
    m = load("gemma-3-27b-pt")
    assert (m.vocab, m.seq_len, m.layers, m.hidden, m.ffn_hidden) == (262208, 131072, 62, 5376, 21504)
    assert m.sliding_window == 1024 and m.layer_types is not None and m.layer_types.count("full_attention") == 10
    assert m.family == "gemma3" and m.name == "gemma3 (62 layers, hidden 5376)"
    assert m.assumptions == [
        "multimodal config: the language model (text_config) is modelled; vision_config left out",
        "text_config.vocab_size absent: 262208, the gemma3_text default",
        "text_config.max_position_embeddings absent: 131072, the gemma3_text default",
        "text_config.layer_types absent: one layer in 6 full attention, the others windowed (the gemma3_text "
        "pattern)",
        "text_config.hidden_act absent: a gated MLP, modelled as 'swiglu' (the gemma3_text family)",
        "text_config.tie_word_embeddings absent: tied input and output embeddings (the gemma3_text default)",
    ]


def test_mistral_sliding_window_covers_every_layer(tmp_path: Path) -> None:
    """Mistral's sliding_window applies to every layer (Mistral 7B), without an assumption."""
    data = {**raw("Meta-Llama-3-8B"), "model_type": "mistral", "sliding_window": 4096}
    m = from_data(tmp_path, data)
    assert m.sliding_window == 4096 and m.layer_types == ["sliding_attention"] * 32 and m.assumptions == []


def test_qwen_max_window_layers_window_the_later_layers(tmp_path: Path) -> None:
    """Qwen2 with use_sliding_window: layers from max_window_layers on are windowed; without the switch, none."""
    base = {**raw("Meta-Llama-3-8B"), "model_type": "qwen2", "sliding_window": 4096, "max_window_layers": 28}
    on = from_data(tmp_path / "on", {**base, "use_sliding_window": True})
    assert on.layer_types == ["full_attention"] * 28 + ["sliding_attention"] * 4
    off = from_data(tmp_path / "off", base)
    assert off.layer_types is None and off.sliding_window is None
    assert off.assumptions == ["use_sliding_window absent: sliding_window 4096 off (the qwen2 default), every layer "
                               "full attention"]


def test_a_window_with_only_full_layers_is_no_window(tmp_path: Path) -> None:
    """layer_types naming only full attention leaves sliding_window and layer_types unset."""
    m = from_data(tmp_path, {**raw("Meta-Llama-3-8B"), "layer_types": ["full_attention"] * 32,
                             "sliding_window": 4096})
    assert m.sliding_window is None and m.layer_types is None


# --- what a config leaves out --------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "assumption"), [
    ("tie_word_embeddings", "tie_word_embeddings absent: untied input and output embeddings (the llama default)"),
    ("hidden_act", "hidden_act absent: a gated MLP, modelled as 'swiglu' (the llama family)"),
    ("model_type", "no model_type: read as a decoder-only transformer from its Llama-style keys"),
])
def test_a_left_out_key_is_the_stated_default_listed(tmp_path: Path, key: str, assumption: str) -> None:
    """A Llama config without a key the count depends on is modelled on the default, with the assumption listed."""
    m = from_data(tmp_path, without(raw("Meta-Llama-3-8B"), key))
    assert assumption in m.assumptions


def test_assumptions_name_the_fields_they_concern() -> None:
    """read_hf_config says which Model fields each assumption concerns; overlaying them drops those assumptions."""
    reading = read_hf_config(DATA / "gemma-3-27b-pt" / "config.json")
    assert reading.assumed["text_config.tie_word_embeddings absent: tied input and output embeddings (the "
                           "gemma3_text default)"] == ("tied_embeddings",)
    kept = reading.overlaid({"tied_embeddings", "vocab", "activation"})["assumptions"]
    assert len(kept) == 3 and not any("tie_word" in a or "vocab_size" in a or "hidden_act" in a for a in kept)
    assert "assumptions" not in read_hf_config(DATA / "Meta-Llama-3-8B").overlaid(["hidden"])


# --- hybrids --------------------------------------------------------------------------------------------------


def test_zamba_hybrid_is_refused_saying_hybrids_are_not_modelled_yet(tmp_path: Path) -> None:
    """A hybrid family not read yet (Zamba2) is refused with one clear line naming its model_type."""
    data = {**raw("Meta-Llama-3-8B"), "model_type": "zamba2", "attn_layer_period": 8}
    path = tmp_path / "j" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(FileFormatError) as info:
        model_from_hf_config(path)
    assert (info.value.file, info.value.field) == (str(path), "model_type")
    assert "hybrids are not modelled yet" in info.value.message and "zamba2" in info.value.message


@pytest.mark.parametrize("key", ["hybrid_override_pattern", "attn_layer_period", "ssm_state_size"])
def test_a_hybrid_key_under_an_unknown_model_type_is_refused(tmp_path: Path, key: str) -> None:
    """A config with a hybrid's layer-pattern or state-space key is refused whatever its model_type says."""
    data = {**raw("Meta-Llama-3-8B"), "model_type": "brand_new", key: 4}
    path = tmp_path / "h" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(FileFormatError) as info:
        model_from_hf_config(path)
    assert info.value.field == key and "hybrids are not modelled yet" in info.value.message
