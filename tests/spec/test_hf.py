"""Hugging Face config.json → Model fields, for each supported family, and the errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from supercluster.errors import FileFormatError, InputError
from supercluster.spec import Model
from supercluster.spec.hf import model_from_hf_config

DATA = Path(__file__).resolve().parent.parent / "data" / "hf"
FAMILIES = ["Llama-3.1-405B", "Meta-Llama-3-8B", "Mixtral-8x7B-v0.1", "Qwen3-235B-A22B", "Qwen1.5-MoE-A2.7B",
            "DeepSeek-V3", "grok-1", "gpt2"]


def load(name: str) -> Model:
    return Model.model_validate(model_from_hf_config(DATA / name / "config.json"))


def raw(name: str) -> dict[str, Any]:
    return json.loads((DATA / name / "config.json").read_text(encoding="utf-8"))


def write(tmp_path: Path, data: Any, name: str = "custom") -> Path:
    path = tmp_path / name / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def llama(**changes: Any) -> dict[str, Any]:
    data = raw("Meta-Llama-3-8B")
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def error_for(path: Path) -> FileFormatError:
    with pytest.raises(FileFormatError) as info:
        model_from_hf_config(path)
    return info.value


# --- each family --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_every_fixture_yields_a_valid_model_of_model_fields_only(name: str) -> None:
    """Every published config maps to a dict whose keys are Model fields and which validates as a Model."""
    data = model_from_hf_config(DATA / name / "config.json")
    assert set(data) <= set(Model.model_fields)
    assert Model.model_validate(data).layers > 0


def test_llama_3_1_405b_is_a_dense_gqa_swiglu_model() -> None:
    """Llama-3.1-405B: 126 layers, 16384 hidden, 53248 ffn, 128 heads, 8 kv heads, untied, swiglu."""
    m = load("Llama-3.1-405B")
    assert (m.layers, m.hidden, m.ffn_hidden, m.heads, m.kv_heads) == (126, 16384, 53248, 128, 8)
    assert (m.vocab, m.seq_len) == (128256, 131072)
    assert m.activation == "swiglu" and m.attention == "mha"
    assert not m.tied_embeddings and m.moe is None and m.mla is None
    assert m.head_dim is None and m.d_head == 128
    assert m.notes is not None and "8192" in m.notes  # the RoPE-scaled context is flagged


def test_llama_3_8b_is_a_dense_gqa_model_with_its_context() -> None:
    """Llama-3-8B: 32 layers, 4096 hidden, 14336 ffn, 32 heads, 8 kv heads, vocab 128256, seq 8192; a config that
    states everything rests on no assumption."""
    m = load("Meta-Llama-3-8B")
    assert (m.layers, m.hidden, m.ffn_hidden, m.heads, m.kv_heads) == (32, 4096, 14336, 32, 8)
    assert (m.vocab, m.seq_len, m.activation, m.tied_embeddings) == (128256, 8192, "swiglu", False)
    assert m.notes is None and not m.estimate and m.assumptions == []
    assert m.family == "llama" and m.sliding_window is None and m.layer_types is None


def test_mixtral_intermediate_size_is_the_expert_width() -> None:
    """Mixtral-8x7B: 8 experts top-2, intermediate_size is both moe_ffn_hidden and ffn_hidden, no shared expert."""
    m = load("Mixtral-8x7B-v0.1")
    assert m.moe is not None
    assert (m.moe.experts, m.moe.top_k, m.moe.moe_ffn_hidden) == (8, 2, 14336)
    assert (m.moe.shared_experts, m.moe.dense_layers, m.moe.shared_ffn_hidden) == (0, 0, None)
    assert m.ffn_hidden == 14336 and m.kv_heads == 8 and m.seq_len == 32768 and m.vocab == 32000


def test_qwen3_moe_keeps_head_dim_and_moe_intermediate_size() -> None:
    """Qwen3-235B-A22B: 128 experts top-8 of width 1536, head_dim 128 (not hidden/heads), 4 kv heads."""
    m = load("Qwen3-235B-A22B")
    assert m.moe is not None
    assert (m.moe.experts, m.moe.top_k, m.moe.moe_ffn_hidden, m.moe.shared_experts) == (128, 8, 1536, 0)
    assert m.moe.dense_layers == 0
    assert (m.layers, m.hidden, m.heads, m.kv_heads, m.head_dim) == (94, 4096, 64, 4, 128)
    assert m.ffn_hidden == 12288 and m.seq_len == 40960 and m.vocab == 151936


def test_qwen2_moe_has_one_shared_expert_of_its_own_width() -> None:
    """Qwen1.5-MoE-A2.7B: 60 experts top-4 of width 1408 plus one shared expert of width 5632."""
    m = load("Qwen1.5-MoE-A2.7B")
    assert m.moe is not None
    assert (m.moe.experts, m.moe.top_k, m.moe.moe_ffn_hidden) == (60, 4, 1408)
    assert (m.moe.shared_experts, m.moe.shared_ffn_hidden, m.moe.dense_layers) == (1, 5632, 0)
    assert (m.layers, m.hidden, m.heads, m.kv_heads, m.ffn_hidden) == (24, 2048, 16, 16, 5632)


def test_deepseek_v3_maps_to_mla_with_dense_leading_layers() -> None:
    """DeepSeek-V3: MLA block from its ranks/dims, 256 experts top-8 + 1 shared, first 3 layers dense of 18432."""
    m = load("DeepSeek-V3")
    assert m.attention == "mla" and m.mla is not None
    assert (m.mla.q_lora_rank, m.mla.kv_lora_rank) == (1536, 512)
    assert (m.mla.qk_nope_head_dim, m.mla.qk_rope_head_dim, m.mla.v_head_dim) == (128, 64, 128)
    assert m.moe is not None
    assert (m.moe.experts, m.moe.top_k, m.moe.shared_experts, m.moe.moe_ffn_hidden) == (256, 8, 1, 2048)
    assert m.moe.dense_layers == 3 and m.moe.shared_ffn_hidden is None
    assert (m.layers, m.hidden, m.heads, m.kv_heads, m.ffn_hidden) == (61, 7168, 128, 128, 18432)
    assert (m.vocab, m.seq_len, m.activation, m.tied_embeddings) == (129280, 163840, "swiglu", False)
    assert m.head_dim is None
    assert m.assumptions == ["num_nextn_predict_layers 1: the multi-token-prediction module is not modelled"]


def test_grok1_is_a_gated_top2_moe_without_head_dim() -> None:
    """Grok-1: 64 layers, 6144 hidden, 48 heads, 8 kv heads, 8 experts top-2 of 32768, gated GELU as swiglu."""
    m = load("grok-1")
    assert (m.layers, m.hidden, m.heads, m.kv_heads, m.vocab, m.seq_len) == (64, 6144, 48, 8, 131072, 8192)
    assert m.moe is not None
    assert (m.moe.experts, m.moe.top_k, m.moe.moe_ffn_hidden, m.ffn_hidden) == (8, 2, 32768, 32768)
    assert m.activation == "swiglu" and m.tied_embeddings
    assert m.head_dim is None and m.d_head == 128


def test_grok1_with_local_experts_and_gelu_act_is_still_gated(tmp_path: Path) -> None:
    """A Grok-1 config written Mixtral-style (num_local_experts, hidden_act gelu) maps the same way."""
    data = raw("grok-1")
    del data["num_experts"]
    data.update(num_local_experts=8, hidden_act="gelu")
    m = Model.model_validate(model_from_hf_config(write(tmp_path, data)))
    assert m.moe is not None and (m.moe.experts, m.moe.top_k) == (8, 2)
    assert m.activation == "swiglu"


def test_gpt2_keys_map_with_four_x_ffn_and_tied_embeddings() -> None:
    """GPT-2: n_layer/n_embd/n_head/n_positions, FFN 4*hidden when n_inner is absent, gelu, tied, dropout 0.1."""
    m = load("gpt2")
    assert (m.layers, m.hidden, m.heads, m.ffn_hidden, m.vocab, m.seq_len) == (12, 768, 12, 3072, 50257, 1024)
    assert m.activation == "gelu" and m.tied_embeddings and m.dropout == pytest.approx(0.1)
    assert m.kv_heads is None


def test_gpt2_n_inner_is_the_ffn_width(tmp_path: Path) -> None:
    """An explicit n_inner is the FFN width."""
    data = {**raw("gpt2"), "n_inner": 2048}
    assert model_from_hf_config(write(tmp_path, data))["ffn_hidden"] == 2048


def test_gpt_neox_style_is_non_gated_gelu_and_untied(tmp_path: Path) -> None:
    """A GPT-NeoX (Pythia) config: gelu, non-gated, untied by that family's default, intermediate_size kept."""
    data = {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "hidden_act": "gelu",
            "hidden_size": 2560, "intermediate_size": 10240, "num_attention_heads": 32, "num_hidden_layers": 32,
            "max_position_embeddings": 2048, "vocab_size": 50432, "rotary_pct": 0.25}
    m = Model.model_validate(model_from_hf_config(write(tmp_path, data)))
    assert (m.activation, m.tied_embeddings, m.ffn_hidden, m.kv_heads) == ("gelu", False, 10240, None)


def test_bigcode_multi_query_means_one_kv_head(tmp_path: Path) -> None:
    """GPT-BigCode's multi_query: true is one kv head."""
    data = {"model_type": "gpt_bigcode", "n_layer": 40, "n_embd": 6144, "n_head": 48, "n_inner": 24576,
            "n_positions": 8192, "vocab_size": 49152, "multi_query": True, "activation_function": "gelu_pytorch_tanh"}
    m = Model.model_validate(model_from_hf_config(write(tmp_path, data)))
    assert (m.kv_heads, m.activation, m.ffn_hidden) == (1, "gelu", 24576)


def test_deepseek_v2_lite_without_q_lora_rank(tmp_path: Path) -> None:
    """A null q_lora_rank (DeepSeek-V2-Lite) leaves mla.q_lora_rank unset; a transformers head_dim is ignored."""
    data = {**raw("DeepSeek-V3"), "model_type": "deepseek_v2", "q_lora_rank": None, "head_dim": 64,
            "n_routed_experts": 64, "num_experts_per_tok": 6, "n_shared_experts": 2, "first_k_dense_replace": 1,
            "num_hidden_layers": 27, "hidden_size": 2048, "num_attention_heads": 16, "num_key_value_heads": 16}
    m = Model.model_validate(model_from_hf_config(write(tmp_path, data)))
    assert m.mla is not None and m.mla.q_lora_rank is None and m.head_dim is None
    assert m.moe is not None and (m.moe.shared_experts, m.moe.dense_layers) == (2, 1)


def test_qwen_mlp_only_leading_layers_are_dense_layers(tmp_path: Path) -> None:
    """mlp_only_layers [0, 1] are two leading dense layers, exactly."""
    data = {**raw("Qwen3-235B-A22B"), "mlp_only_layers": [0, 1]}
    m = Model.model_validate(model_from_hf_config(write(tmp_path, data)))
    assert m.moe is not None and m.moe.dense_layers == 2 and not m.estimate


def test_qwen_decoder_sparse_step_places_the_moe_layers(tmp_path: Path) -> None:
    """decoder_sparse_step 2 (layer i routes when (i + 1) % 2 == 0): every other layer MoE, the first dense, placed
    exactly (moe.interleave_step), not an estimate."""
    data = {**raw("Qwen1.5-MoE-A2.7B"), "decoder_sparse_step": 2}
    m = Model.model_validate(model_from_hf_config(write(tmp_path, data)))
    assert m.moe is not None and (m.moe.dense_layers, m.moe.interleave_step) == (0, 2)
    assert m.moe_layers == 12 and m.moe_layer_flags[:4] == (False, True, False, True)
    assert not m.estimate and m.assumptions == []


def test_irregular_dense_layers_are_counted_first_and_flagged(tmp_path: Path) -> None:
    """mlp_only_layers that follow no leading-then-every-k pattern keep the dense count, placed first, marked an
    estimate with an assumption saying where the dense layers really are."""
    data = {**raw("Qwen3-235B-A22B"), "mlp_only_layers": [0, 5, 6]}
    m = Model.model_validate(model_from_hf_config(write(tmp_path, data)))
    assert m.moe is not None and (m.moe.dense_layers, m.moe.interleave_step) == (3, 1)
    assert m.estimate and m.assumptions == [
        "the 3 dense layers are modelled as the first 3; in the model they are interleaved with the 91 MoE layers "
        "(mlp_only_layers names 3 dense layers)"]


def test_zero_experts_is_a_dense_model(tmp_path: Path) -> None:
    """num_experts 0 (or null) means no MoE block."""
    data = llama(num_experts=0, num_experts_per_tok=2)
    assert "moe" not in model_from_hf_config(write(tmp_path, data))


def test_silu_on_an_unknown_family_is_swiglu_and_gelu_is_gelu(tmp_path: Path) -> None:
    """Unknown model_type: read by its Llama-style keys, silu taken as a gated MLP ('swiglu'), gelu_new as plain
    'gelu'; each guess is an assumption."""
    silu = llama(model_type="brand_new", architectures=["BrandNewForCausalLM"])
    gelu = {**silu, "hidden_act": "gelu_new"}
    a = model_from_hf_config(write(tmp_path, silu, "a"))
    b = model_from_hf_config(write(tmp_path, gelu, "b"))
    assert (a["activation"], b["activation"]) == ("swiglu", "gelu")
    unknown = "model_type 'brand_new' is not a family supercluster knows: read as a decoder-only transformer from " \
              "its Llama-style keys"
    assert a["assumptions"] == [unknown, "model_type 'brand_new' is not a family supercluster knows: its silu MLP "
                                         "is taken as gated (SwiGLU, three matrices)"]
    assert b["assumptions"] == [unknown]


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    """Keys the model does not need (someone else's format) change nothing."""
    plain = model_from_hf_config(write(tmp_path / "a", llama(), "same"))
    noisy = model_from_hf_config(write(tmp_path / "b", llama(fancy_new_key={"a": [1, 2]}, torch_dtype="float8"),
                                       "same"))
    assert {**plain, "source": ""} == {**noisy, "source": ""}


# --- name, source, paths ------------------------------------------------------------------------------------


def test_name_prefers_name_or_path(tmp_path: Path) -> None:
    """_name_or_path, when present, is the model name."""
    path = write(tmp_path, llama(_name_or_path="meta-llama/Meta-Llama-3-8B"), "whatever")
    assert model_from_hf_config(path)["name"] == "meta-llama/Meta-Llama-3-8B"


@pytest.mark.parametrize(("name", "expected"), [
    ("Meta-Llama-3-8B", "llama (32 layers, hidden 4096)"),
    ("Mixtral-8x7B-v0.1", "mixtral (32 layers, hidden 4096, 8 experts)"),
    ("Llama-4-Scout-17B-16E", "llama4 (48 layers, hidden 5120, 16 experts)"),
])
def test_name_without_name_or_path_is_the_family_and_its_shape(name: str, expected: str) -> None:
    """Without _name_or_path the name is the model_type and the shape, never the folder's name (many configs share
    one: snapshots/<hash>/config.json); source cites the file."""
    path = DATA / name / "config.json"
    data = model_from_hf_config(path)
    assert data["name"] == expected
    assert data["source"] == f"Hugging Face config.json: {path}"


def test_a_bare_file_is_named_by_its_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A config file given by its bare name is named by its family and shape, not by the file."""
    (tmp_path / "tiny.json").write_text(json.dumps(llama()), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert model_from_hf_config("tiny.json")["name"] == "llama (32 layers, hidden 4096)"


def test_a_directory_reads_its_config_json() -> None:
    """A model directory stands for the config.json inside it."""
    assert model_from_hf_config(DATA / "Meta-Llama-3-8B") == model_from_hf_config(
        DATA / "Meta-Llama-3-8B" / "config.json")


# --- errors -------------------------------------------------------------------------------------------------


def test_malformed_json_is_a_file_format_error_with_the_file() -> None:
    """Broken JSON is a FileFormatError naming the file and where it broke."""
    path = DATA / "malformed" / "config.json"
    err = error_for(path)
    assert err.file == str(path) and "malformed JSON at line 6" in err.message
    assert str(path) in str(err)


def test_missing_layers_names_the_key_and_its_alternatives() -> None:
    """A config without num_hidden_layers is an error for that field naming the GPT-2 spelling too."""
    path = DATA / "missing-layers" / "config.json"
    err = error_for(path)
    assert (err.file, err.field) == (str(path), "num_hidden_layers")
    assert "expected an integer 'num_hidden_layers' (or 'n_layer'" in err.message


def test_missing_file_is_a_file_format_error(tmp_path: Path) -> None:
    """A path that does not exist is a FileFormatError (an InputError), not an OSError."""
    err = error_for(tmp_path / "nope" / "config.json")
    assert isinstance(err, InputError) and err.file == str(tmp_path / "nope" / "config.json")
    assert "not found" in err.message


@pytest.mark.parametrize("text", ["[1, 2, 3]", "\"llama\"", "", "\xff\xfe garbage"])
def test_non_object_or_undecodable_json_is_a_file_format_error(tmp_path: Path, text: str) -> None:
    """A top level that is not a JSON object, or not JSON at all, is a FileFormatError with the file."""
    path = write(tmp_path, text)
    if text.startswith("\xff"):
        path.write_bytes(b"\xff\xfe\x00garbage")
    assert error_for(path).file == str(path)


@pytest.mark.parametrize(("changes", "field", "text"), [
    ({"hidden_size": "4096"}, "hidden_size", "expected an integer 'hidden_size', got '4096'"),
    ({"num_hidden_layers": 0}, "num_hidden_layers", "positive integer"),
    ({"num_hidden_layers": True}, "num_hidden_layers", "expected an integer"),
    ({"intermediate_size": None}, "intermediate_size", "expected an integer 'intermediate_size'"),
    ({"max_position_embeddings": None}, "max_position_embeddings", "'max_position_embeddings' (or 'n_positions'"),
    ({"vocab_size": None}, "vocab_size", "expected an integer 'vocab_size'"),
    ({"num_key_value_heads": 5}, "num_key_value_heads", "must divide"),
    ({"num_attention_heads": 24}, "num_attention_heads", "does not divide"),
    ({"tie_word_embeddings": "no"}, "tie_word_embeddings", "true or false"),
    ({"attention_dropout": 1.5}, "attention_dropout", "dropout probability"),
    ({"num_local_experts": 8}, "num_experts_per_tok", "expected an integer 'num_experts_per_tok'"),
    ({"num_local_experts": 4, "num_experts_per_tok": 8}, "num_experts_per_tok", "exceeds"),
    ({"kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64}, "v_head_dim", "'v_head_dim'"),
    ({"num_experts": 8, "num_experts_per_tok": 2, "mlp_only_layers": "none"}, "mlp_only_layers",
     "list of layer indices"),
    ({"is_encoder_decoder": True}, "is_encoder_decoder", "encoder-decoder"),
    ({"layer_types": ["full_attention", "linear_attention"]}, "layer_types", "'linear_attention'"),
    ({"model_type": "zamba2"}, "model_type", "hybrids are not modelled yet"),
    ({"layer_types": ["full_attention"] * 31}, "layer_types", "lists 31 layers, the model has 32"),
    ({"layer_types": ["sliding_attention"] * 32}, "sliding_window", "no window size"),
    ({"moe_layers": [0, 40], "num_local_experts": 8, "num_experts_per_tok": 2}, "moe_layers", "from 0 to 31"),
    ({"cross_attention_layers": [3, 8]}, "cross_attention_layers", "cross-attention"),
])
def test_bad_values_name_the_hugging_face_key(tmp_path: Path, changes: dict[str, Any], field: str,
                                              text: str) -> None:
    """A missing, mistyped or inconsistent value is a FileFormatError carrying the file and the HF key."""
    path = write(tmp_path, llama(**changes))
    err = error_for(path)
    assert (err.file, err.field) == (str(path), field)
    assert text in err.message


def test_errors_inside_a_language_block_name_its_path(tmp_path: Path) -> None:
    """A bad key inside a multimodal config's text_config is located as text_config.KEY."""
    path = write(tmp_path, {"model_type": "llava", "text_config": llama(num_hidden_layers=None)})
    err = error_for(path)
    assert err.field == "text_config.num_hidden_layers" and "num_hidden_layers" in err.message


def test_an_unreadable_path_is_a_file_format_error() -> None:
    """A path the OS refuses (here an embedded NUL) is a FileFormatError, not a ValueError."""
    err = error_for(Path("bad\0name") / "config.json")
    assert err.file is not None and "cannot read file" in err.message


@pytest.mark.parametrize(("name", "norm", "bias"), [("gpt2", "layernorm", True), ("gpt-oss-120b", "rmsnorm", True),
                                                     ("Nemotron-H-8B-Base-8K", "rmsnorm", False),
                                                     ("Llama-3.1-405B", "rmsnorm", False)])
def test_norm_and_projection_biases_follow_the_config(name: str, norm: str, bias: bool) -> None:
    """The norm is named by its epsilon's key (Nemotron-H states both: RMSNorm), the biases by attention_bias /
    mlp_bias / use_bias; GPT-2 states no bias key and its GELU layers carry biases (Model.norm_and_bias)."""
    model = Model.model_validate(model_from_hf_config(DATA / name))
    assert model.norm_and_bias == (norm, bias)


def test_mamba_rms_norm_flag_beside_layer_norm_epsilon(tmp_path: Path) -> None:
    """Mamba's configs name an RMSNorm's epsilon layer_norm_epsilon, with rms_norm: true."""
    cfg = json.loads((DATA / "gpt2" / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "rms_norm": True}))
    assert model_from_hf_config(tmp_path)["norm"] == "rmsnorm"
