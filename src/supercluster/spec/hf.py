"""Hugging Face ``config.json`` → Model dict, offline and without ``transformers``.

Reads the key styles of Llama/Mistral/Qwen/Gemma (dense), GPT-2/GPT-J/GPT-NeoX (``n_layer``, ``n_embd``, ``n_head``,
``n_inner``, ``n_positions``), the mixture-of-experts families of :mod:`.hf_layers` (Mixtral, Grok-1, Qwen-MoE,
DeepSeek-V2/V3, Kimi K2, GLM-4.5, Llama 4, gpt-oss), DeepSeek's multi-head latent attention, and sliding-window
attention (``sliding_window``, ``layer_types``). A multimodal config (``text_config``, ``language_config``) is read
through its language model; the vision (or audio) tower is left out and says so. Mamba-2 / attention hybrids of
the families :mod:`.hf_hybrid` reads (Nemotron-H's Mamba-2, Jamba's Mamba-1) are read with their state-space
layers; other hybrids with recurrent or state-space layers (Zamba, Falcon-H1, RWKV, ...) are refused: they are not
modelled yet.

Keys it does not need are ignored: the file is someone else's format. A missing or mistyped key it does need is a
:class:`~supercluster.errors.FileFormatError` naming the file and the Hugging Face key. What the file leaves out and
the model rests on (an activation, whether the embeddings are tied, a shared-expert count, the placement of dense
layers, an unknown family read by its Llama-style keys, a part left out) is modelled on the stated default and
listed in ``Model.assumptions``, one line each; ``--strict`` refuses a model with any.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .base import error_message
from .hf_config import Findings, HfConfig, read_json
from .hf_hybrid import HYBRID_TYPES, read_hybrid
from .hf_layers import LAYER_TYPE_NAMES, LLAMA4_TYPES, MOE_TYPES, read_mla, read_moe, read_windows
from .model import Model

# Alternative spellings of one quantity, the preferred (Llama-style) key first.
LAYERS = ("num_hidden_layers", "n_layer", "num_layers")
HIDDEN = ("hidden_size", "n_embd")
HEADS = ("num_attention_heads", "n_head", "num_heads")
VOCAB = ("vocab_size", "padded_vocab_size")
SEQ_LEN = ("max_position_embeddings", "n_positions", "n_ctx", "seq_length", "max_sequence_length")
FFN = ("intermediate_size", "n_inner", "ffn_hidden_size", "ffn_dim")
LLAMA4_FFN = ("intermediate_size_mlp",)  # Llama 4's dense layers; its intermediate_size is the expert width
KV_HEADS = ("num_key_value_heads", "num_kv_heads", "n_head_kv")
ACTIVATION = ("hidden_act", "activation_function", "hidden_activation", "mlp_hidden_act")
DROPOUT = ("hidden_dropout", "resid_pdrop", "hidden_dropout_prob", "attention_dropout", "attn_pdrop",
           "embd_pdrop", "dropout")
LANGUAGE_BLOCKS = ("text_config", "language_config", "llm_config")  # a multimodal config's language model
INHERITED = ("tie_word_embeddings", "_name_or_path")  # read from the top level when the language block omits them
TOWER_MARKERS = ("vision", "visual", "audio", "speech", "image")  # blocks of a multimodal config's other towers
SOURCE_PREFIX = "Hugging Face config.json: "
SILU = ("silu", "swish", "swiglu")

# The norm's epsilon, named by the norm the family's code builds (RMSNorm first: Nemotron-H states both; Mamba's
# configs name an RMSNorm's epsilon layer_norm_epsilon beside rms_norm: true)
NORM_EPS = ("rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps", "layernorm_epsilon")
# Whether the attention or MLP projections carry biases (any of them true: the model's linear_bias)
LINEAR_BIAS = ("attention_bias", "mlp_bias", "use_bias", "bias")
# Families whose MLP is gated (three matrices) whatever its activation is called: modelled as 'swiglu'.
GATED_TYPES = frozenset({
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "deepseek", "deepseek_v2",
    "deepseek_v3", "kimi_k2", "gemma", "gemma2", "gemma3", "gemma3_text", "phi3", "olmo", "olmo2", "olmoe", "granite",
    "granitemoe", "internlm", "internlm2", "cohere", "cohere2", "stablelm", "yi", "baichuan", "exaone", "minicpm",
    "grok-1", "grok1", "glm", "glm4", "glm4_moe", "gpt_oss", "llama4", "llama4_text", "qwen2_vl", "qwen2_5_vl",
    "mistral3", "phimoe", "jamba",
})
# Families with a plain two-matrix MLP whose default FFN width is 4 * hidden when the key is null.
PLAIN_TYPES = frozenset({
    "gpt2", "gptj", "gpt_neo", "gpt_neox", "gpt_bigcode", "codegen", "opt", "bloom", "falcon", "starcoder2",
    "phi", "mpt", "nemotron", "nemotron_h",
})
FOUR_X_FFN_TYPES = frozenset({"gpt2", "gptj", "gpt_neo", "gpt_bigcode", "codegen", "bloom", "falcon"})
# Families whose config class defaults tie_word_embeddings to False (the transformers base default is True).
UNTIED_DEFAULT_TYPES = frozenset({
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "deepseek", "deepseek_v2",
    "deepseek_v3", "kimi_k2", "gpt_neox", "gptj", "phi", "phi3", "olmo", "olmo2", "olmoe", "codegen", "glm4_moe",
    "gpt_oss", "llama4", "llama4_text", "nemotron_h", "jamba",
})
# Wrappers around a language model of a known family (the family rules follow the language block's model_type).
MULTIMODAL_TYPES = frozenset({"llava", "llava_next", "llava_onevision", "idefics3", "deepseek_vl_v2", "paligemma"})
KNOWN_TYPES = GATED_TYPES | PLAIN_TYPES | MOE_TYPES | MULTIMODAL_TYPES
# Configuration-class defaults of a dimension a published config leaves out (Gemma 3's multimodal text_config omits
# them): transformers' Gemma3TextConfig, vocab_size 262,208 and max_position_embeddings 131,072 (the Gemma 3 report,
# arXiv:2503.19786, gives a 262k vocabulary and 128K context). Used only with an assumption saying so.
DIMENSION_DEFAULTS: dict[str, dict[str, int]] = {
    "gemma3_text": {"vocab_size": 262_208, "max_position_embeddings": 131_072},
}
# Where a family's gating is stated when its config omits the activation.
GATING_SOURCE = {
    "glm4_moe": "the GLM-4.5 report (arXiv:2508.06471) uses SwiGLU",
    "grok-1": "xai-org/grok-1 model.py gates its GELU MLP", "grok1": "xai-org/grok-1 model.py gates its GELU MLP",
}
# Layer kinds that are not attention, and keys and model_types of hybrids with recurrent / state-space layers.
RECURRENT_MARKERS = ("mamba", "jamba", "zamba", "rwkv", "falcon_h1", "nemotron_h", "recurrent_gemma", "xlstm",
                     "hymba", "granitemoehybrid", "lfm2")
HYBRID_KEYS = ("hybrid_override_pattern", "attn_layer_period", "attn_layer_offset", "layers_block_type",
               "mamba_d_state", "mamba_num_heads", "ssm_state_size", "block_types", "attn_type_list")
ATTENTION_LAYER_TYPES = frozenset(LAYER_TYPE_NAMES)


@dataclass(frozen=True)
class HfModel:
    """A config read into Model fields, and for each assumption the Model fields it concerns."""

    fields: dict[str, Any]
    assumed: dict[str, tuple[str, ...]]

    def overlaid(self, keys: Iterable[str]) -> dict[str, Any]:
        """The fields, without the assumptions that concern a field the caller sets itself (``keys``)."""
        given = set(keys)
        kept = [a for a in self.fields.get("assumptions", []) if not given & set(self.assumed.get(a, ()))]
        out = {k: v for k, v in self.fields.items() if k != "assumptions"}
        return {**out, "assumptions": kept} if kept else out


def _hybrid(where: str) -> str:
    return (f"{where} mixes attention with recurrent or state-space (Mamba) layers: hybrids are not modelled yet "
            "(transformer layers only)")


def _check_supported(configs: list[HfConfig]) -> None:
    """Refuse configs whose layers the Model cannot stand for, rather than misreading them."""
    for cfg in configs:
        if cfg.data.get("is_encoder_decoder") is True:
            raise cfg.error("encoder-decoder models are not supported (decoder-only transformers only)",
                            "is_encoder_decoder")
        model_type = (cfg.string("model_type") or "").lower()
        if model_type in HYBRID_TYPES:
            continue
        if any(marker in model_type for marker in RECURRENT_MARKERS):
            raise cfg.error(_hybrid(f"model_type {model_type!r}"), "model_type")
        key = cfg.present(HYBRID_KEYS)
        if key is not None:
            raise cfg.error(_hybrid(f"a config with {key!r}"), key)
        if cfg.data.get("cross_attention_layers"):
            raise cfg.error("cross-attention layers (a vision model's image layers) are not modelled",
                            "cross_attention_layers")
        layer_types = cfg.data.get("layer_types")
        if isinstance(layer_types, list):
            other = sorted({str(t) for t in layer_types} - ATTENTION_LAYER_TYPES)
            if other:
                raise cfg.error(_hybrid(f"a model with layers of type {', '.join(repr(t) for t in other)}"),
                                "layer_types")


def _language_model(top: HfConfig, found: Findings) -> HfConfig:
    """The config block that describes the language model: the top level, or a multimodal config's text block."""
    towers = [k for k, v in top.data.items() if isinstance(v, dict) and any(m in k for m in TOWER_MARKERS)]
    block = next((k for k in LANGUAGE_BLOCKS if isinstance(top.data.get(k), dict)), None)
    if block is None or any(k in top.data for k in LAYERS):
        if towers:
            found.assume(f"{', '.join(towers)} left out: the language model alone is modelled")
        return top
    inner = dict(top.data[block])
    for key in INHERITED:
        if inner.get(key) is None and top.data.get(key) is not None:
            inner[key] = top.data[key]
    left_out = f"; {', '.join(towers)} left out" if towers else ""
    found.assume(f"multimodal config: the language model ({block}) is modelled{left_out}")
    return HfConfig(inner, top.file, block)


def _activation(cfg: HfConfig, family: str, architectures: str, found: Findings) -> str:
    act_key = cfg.present(ACTIVATION)
    act = (cfg.string(act_key) or "").lower() if act_key else ""
    grok = "grok" in family or "grok" in architectures
    if family in GATED_TYPES or grok:
        gated = True
    elif family in PLAIN_TYPES:
        gated = False
    else:
        gated = act in SILU
        if gated:
            found.assume(f"model_type {family!r} is not a family supercluster knows: its {act} MLP is taken as "
                         "gated (SwiGLU, three matrices)", "activation")
    if not act:
        why = GATING_SOURCE.get(family, f"the {family} family" if family in KNOWN_TYPES else "a guess")
        kind = "a gated MLP, modelled as 'swiglu'" if gated else "a two-matrix MLP, modelled as 'gelu'"
        found.assume(f"{cfg.where(ACTIVATION[0])} absent: {kind} ({why})", "activation")
    if gated:
        if act and act not in SILU:
            found.note(f"gated {act} MLP modelled as 'swiglu' (same three matrices)")
        return "swiglu"
    if "relu" in act:
        if act != "relu":
            found.note(f"non-gated {act} MLP modelled as 'relu' (same two matrices)")
        return "relu"
    if act and "gelu" not in act:
        found.note(f"non-gated {act} MLP modelled as 'gelu' (same two matrices)")
    return "gelu"


def _tied(cfg: HfConfig, family: str, found: Findings) -> bool:
    tied = cfg.boolean("tie_word_embeddings")
    if tied is not None:
        return tied
    tied = family not in UNTIED_DEFAULT_TYPES
    whose = f"the {family} default" if family in KNOWN_TYPES else "the Hugging Face default"
    found.assume(f"{cfg.where('tie_word_embeddings')} absent: {'tied' if tied else 'untied'} input and output "
                 f"embeddings ({whose})", "tied_embeddings")
    return tied


def _dropout(cfg: HfConfig) -> tuple[float, str | None]:
    best, where = 0.0, None
    for key in DROPOUT:
        value = cfg.data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
            raise cfg.error(f"expected a dropout probability in [0, 1) for {key!r}, got {value!r}", key)
        if value > best:
            best, where = float(value), key
    return best, where


def _rope_note(cfg: HfConfig, seq_key: str, seq_len: int) -> str | None:
    scaling = cfg.data.get("rope_scaling") or cfg.data.get("rope_parameters")
    if not isinstance(scaling, dict):
        return None
    original = scaling.get("original_max_position_embeddings")
    if isinstance(original, int) and not isinstance(original, bool) and 0 < original < seq_len:
        return (f"seq_len is {seq_key}={seq_len}, reached by RoPE scaling from {original}; "
                "set training.seq_len for the pre-training context")
    return None


def _name(configs: list[HfConfig], family: str, out: dict[str, Any]) -> str:
    """``_name_or_path`` when the file has one; else the family and its shape (never the folder's name, which many
    files share: snapshots/<hash>/config.json, configs/config.json)."""
    for cfg in configs:
        name = cfg.data.get("_name_or_path")
        if isinstance(name, str) and name.strip():
            return name.strip()
    experts = f", {out['moe']['experts']} experts" if "moe" in out else ""
    return f"{family or 'transformer'} ({out['layers']} layers, hidden {out['hidden']}{experts})"


def read_hf_config(path: str | Path) -> HfModel:
    """Read a Hugging Face ``config.json`` (or a directory holding one) into Model fields and the fields each
    assumption concerns. The fields are validated as a :class:`Model` before they are returned; any problem is a
    :class:`FileFormatError` carrying the file and the Hugging Face key at fault."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    file = str(p)
    top = HfConfig(read_json(p, file), file)
    found = Findings()
    cfg = _language_model(top, found)
    configs = [top] if cfg is top else [top, cfg]
    _check_supported(configs)
    top_type = (top.string("model_type") or "").lower()
    family = (cfg.string("model_type") or "").lower() if cfg is not top else top_type
    family = family or top_type
    arch = top.data.get("architectures")
    architectures = " ".join(a for a in arch if isinstance(a, str)).lower() if isinstance(arch, list) else ""
    if family not in KNOWN_TYPES:
        what = f"model_type {family!r} is not a family supercluster knows" if family else "no model_type"
        found.assume(f"{what}: read as a decoder-only transformer from its Llama-style keys")

    origin: dict[str, str] = {}  # Model field -> the Hugging Face key it came from
    out: dict[str, Any] = {"source": f"{SOURCE_PREFIX}{file}"}
    defaults = DIMENSION_DEFAULTS.get(family, {})
    for field, keys in (("layers", LAYERS), ("hidden", HIDDEN), ("heads", HEADS), ("vocab", VOCAB),
                        ("seq_len", SEQ_LEN)):
        value, origin[field] = cfg.optional(keys)
        if value is None and keys[0] in defaults:
            value = defaults[keys[0]]
            found.assume(f"{cfg.where(keys[0])} absent: {value}, the {family} default", field)
        if value is None:
            raise cfg.missing(keys)
        out[field] = value
    hybrid = read_hybrid(cfg, family, found, origin)
    if hybrid is not None:
        out["layers"], mixers, out["ssm"] = hybrid
    layers, hidden, heads = out["layers"], out["hidden"], out["heads"]

    moe, moe_width, approximated = read_moe(cfg, family, layers, found, origin)
    ffn_keys = LLAMA4_FFN + FFN if family in LLAMA4_TYPES else FFN
    ffn, ffn_key = cfg.optional(ffn_keys)
    if ffn is None:
        if moe_width is not None:
            ffn, ffn_key = moe_width, origin["moe.moe_ffn_hidden"]
        elif family in FOUR_X_FFN_TYPES or "n_inner" in cfg.data:
            ffn, ffn_key = 4 * hidden, cfg.present(HIDDEN) or HIDDEN[0]
            found.assume(f"FFN width not given ({cfg.where('n_inner')} null): 4 * hidden = {ffn}, the "
                         f"{family or 'GPT-2'} default", "ffn_hidden")
        else:
            raise cfg.missing(ffn_keys)
    out["ffn_hidden"], origin["ffn_hidden"] = ffn, ffn_key
    if moe is not None:
        out["moe"] = moe

    mla = read_mla(cfg, origin)
    kv, kv_key = cfg.optional(KV_HEADS)
    if kv is None and cfg.boolean("multi_query"):
        kv, kv_key = 1, "multi_query"
    if kv is not None:
        if heads % kv:
            raise cfg.error(f"{kv_key}({kv}) must divide {origin['heads']}({heads})", kv_key)
        out["kv_heads"], origin["kv_heads"] = kv, kv_key
    if mla is not None:
        out["attention"], out["mla"] = "mla", mla
        origin["attention"] = origin["mla"] = "kv_lora_rank"
    else:
        head_dim, head_dim_key = cfg.optional(("head_dim", "attention_head_dim"))
        if head_dim is not None:
            out["head_dim"], origin["head_dim"] = head_dim, head_dim_key
        elif hidden % heads:
            raise cfg.error(f"{origin['heads']}({heads}) does not divide {origin['hidden']}({hidden}) "
                            "and no 'head_dim' is given", origin["heads"])
    window, layer_types = read_windows(cfg, family, layers, found, origin)
    if layer_types is not None:
        if hybrid is not None:
            raise cfg.error("sliding-window attention in a Mamba-2 hybrid is not modelled", "sliding_window")
        out["sliding_window"], out["layer_types"] = window, layer_types
    if hybrid is not None:
        out["layer_types"] = mixers

    out["activation"] = _activation(cfg, family, architectures, found)
    out["tied_embeddings"] = _tied(cfg, family, found)
    origin["tied_embeddings"] = "tie_word_embeddings"
    norm_key = cfg.present(NORM_EPS)
    if norm_key is not None:  # the epsilon's name says which norm the family's code builds
        rms = norm_key == NORM_EPS[0] or cfg.boolean("rms_norm") is True
        out["norm"], origin["norm"] = "rmsnorm" if rms else "layernorm", norm_key
    biases = {k: flag for k in LINEAR_BIAS if (flag := cfg.boolean(k)) is not None}
    if biases:
        out["linear_bias"], origin["linear_bias"] = any(biases.values()), next(iter(biases))
    limit = cfg.data.get("swiglu_limit")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0.0 < limit < math.inf:
            raise cfg.error(f"expected a positive clamp 'swiglu_limit', got {limit!r}", "swiglu_limit")
        out["glu_limit"], origin["glu_limit"] = float(limit), "swiglu_limit"
    dropout, dropout_key = _dropout(cfg)
    if dropout_key:
        out["dropout"], origin["dropout"] = dropout, dropout_key

    mtp, _ = cfg.optional(("num_nextn_predict_layers",), minimum=0)
    if mtp:
        found.assume(f"{cfg.where('num_nextn_predict_layers')} {mtp}: the multi-token-prediction "
                     f"module{'s are' if mtp > 1 else ' is'} not modelled")
    rope = _rope_note(cfg, origin["seq_len"], out["seq_len"])
    if rope:
        found.note(rope)
    if approximated:
        out["estimate"] = True
    if found.notes:
        out["notes"] = "; ".join(found.notes)
    if found.assumptions:
        out["assumptions"] = list(found.assumptions)
    out["name"] = _name(configs, top_type or family, out)
    origin["name"] = "_name_or_path"
    if top_type or family:
        out["family"] = top_type or family

    try:
        Model.model_validate(out)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"])
        key = origin.get(loc, loc.split(".")[0])
        raise cfg.error(f"does not describe a valid model: {error_message(first)}", key or None) from None
    fields = {field: out[field] for field in Model.model_fields if field in out}
    return HfModel(fields=fields, assumed=dict(found.assumptions))


def model_from_hf_config(path: str | Path) -> dict[str, Any]:
    """Read a Hugging Face ``config.json`` (or a directory holding one) into a dict of Model fields (see
    :func:`read_hf_config`)."""
    return read_hf_config(path).fields
