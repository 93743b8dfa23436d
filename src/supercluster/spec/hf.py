"""Hugging Face ``config.json`` → Model dict, offline and without ``transformers``.

Reads the key styles of Llama/Mistral/Qwen (dense), Mixtral and Grok-1 (every layer MoE, ``intermediate_size``
is the expert width), Qwen2-MoE/Qwen3-MoE (``moe_intermediate_size``, a shared expert, ``decoder_sparse_step``,
``mlp_only_layers``), DeepSeek-V2/V3 (``n_routed_experts``, ``first_k_dense_replace``, multi-head latent
attention) and GPT-2/GPT-J/GPT-NeoX (``n_layer``, ``n_embd``, ``n_head``, ``n_inner``, ``n_positions``).
Keys it does not need are ignored: the file is someone else's format. A missing or mistyped key it does need
is a :class:`~supercluster.errors.FileFormatError` naming the file and the Hugging Face key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import FileFormatError
from .model import Model
from .safe_yaml import MAX_INPUT_BYTES

# Alternative spellings of one quantity, the preferred (Llama-style) key first.
LAYERS = ("num_hidden_layers", "n_layer", "num_layers")
HIDDEN = ("hidden_size", "n_embd")
HEADS = ("num_attention_heads", "n_head", "num_heads")
VOCAB = ("vocab_size", "padded_vocab_size")
SEQ_LEN = ("max_position_embeddings", "n_positions", "n_ctx", "seq_length", "max_sequence_length")
FFN = ("intermediate_size", "n_inner", "ffn_hidden_size", "ffn_dim")
KV_HEADS = ("num_key_value_heads", "num_kv_heads", "n_head_kv")
EXPERTS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
TOP_K = ("num_experts_per_tok", "num_selected_experts", "moe_top_k")
MOE_FFN = ("moe_intermediate_size", "intermediate_size")
SHARED_EXPERTS = ("n_shared_experts", "num_shared_experts")
DROPOUT = ("hidden_dropout", "resid_pdrop", "hidden_dropout_prob", "attention_dropout", "attn_pdrop",
           "embd_pdrop", "dropout")

# Families whose MLP is gated (three matrices) whatever its activation is called: modelled as 'swiglu'.
GATED_TYPES = frozenset({
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "deepseek", "deepseek_v2",
    "deepseek_v3", "gemma", "gemma2", "gemma3_text", "phi3", "olmo", "olmo2", "olmoe", "granite", "granitemoe",
    "internlm", "internlm2", "cohere", "stablelm", "yi", "baichuan", "exaone", "minicpm", "grok-1", "grok1",
})
# Families with a plain two-matrix MLP whose default FFN width is 4 * hidden when the key is null.
PLAIN_TYPES = frozenset({
    "gpt2", "gptj", "gpt_neo", "gpt_neox", "gpt_bigcode", "codegen", "opt", "bloom", "falcon", "starcoder2",
    "phi", "mpt", "nemotron",
})
FOUR_X_FFN_TYPES = frozenset({"gpt2", "gptj", "gpt_neo", "gpt_bigcode", "codegen", "bloom", "falcon"})
# Families whose config class defaults tie_word_embeddings to False (the transformers base default is True).
UNTIED_DEFAULT_TYPES = frozenset({
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "deepseek", "deepseek_v2",
    "deepseek_v3", "gpt_neox", "gptj", "phi", "phi3", "olmo", "olmo2", "olmoe", "codegen",
})
# Layer kinds the Model can stand for: attention (full or windowed) plus an MLP.
ATTENTION_LAYER_TYPES = frozenset({"full_attention", "sliding_attention", "attention", "global", "local"})
RECURRENT_MARKERS = ("mamba", "jamba", "zamba", "rwkv", "falcon_h1", "nemotron_h", "recurrent_gemma", "xlstm")


class _Config:
    """A parsed config.json with typed getters whose errors name the file and the key."""

    def __init__(self, data: dict[str, Any], file: str) -> None:
        self.data = data
        self.file = file

    def error(self, message: str, key: str | None) -> FileFormatError:
        return FileFormatError(message, file=self.file, field=key)

    def present(self, keys: Sequence[str]) -> str | None:
        """The first of ``keys`` present with a non-null value."""
        return next((k for k in keys if self.data.get(k) is not None), None)

    def missing(self, keys: Sequence[str], what: str = "an integer") -> FileFormatError:
        alternatives = f" (or {', '.join(repr(k) for k in keys[1:])})" if len(keys) > 1 else ""
        return self.error(f"expected {what} {keys[0]!r}{alternatives}", keys[0])

    def optional(self, keys: Sequence[str], *, minimum: int = 1, what: str = "an integer"
                 ) -> tuple[int | None, str]:
        """(value, key it came from) for the first present key; ``(None, keys[0])`` when none is."""
        key = self.present(keys)
        if key is None:
            return None, keys[0]
        value = self.data[key]
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected {what} {key!r}, got {value!r}", key)
        if value < minimum:
            bound = "a positive integer" if minimum == 1 else f"an integer >= {minimum} for"
            raise self.error(f"expected {bound} {key!r}, got {value}", key)
        return value, key

    def need(self, keys: Sequence[str], *, what: str = "an integer") -> tuple[int, str]:
        """(value, key it came from) for the first present key; missing is an error naming ``keys[0]``."""
        value, key = self.optional(keys, what=what)
        if value is None:
            raise self.missing(keys, what)
        return value, key

    def boolean(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.error(f"expected true or false for {key!r}, got {value!r}", key)
        return value

    def string(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(f"expected a string {key!r}, got {value!r}", key)
        return value

    def int_list(self, key: str) -> list[int]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise self.error(f"expected a list of layer indices {key!r}, got {value!r}", key)
        return list(value)


def _read(path: Path, file: str) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise FileFormatError(f"is {size:,} bytes; supercluster reads files of at most {MAX_INPUT_BYTES:,}",
                                  file=file)
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError("file not found", file=file) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise FileFormatError(f"cannot read file ({exc.__class__.__name__}: {reason})", file=file) from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                              file=file) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise FileFormatError(f"not a UTF-8 JSON file ({exc.__class__.__name__})", file=file) from None
    except RecursionError:
        raise FileFormatError("malformed JSON: nested too deeply", file=file) from None
    if not isinstance(data, dict):
        raise FileFormatError(f"expected a JSON object at the top level, got {type(data).__name__}", file=file)
    return data


def _check_supported(cfg: _Config, model_type: str) -> None:
    """Refuse configs whose layers the Model cannot stand for, rather than misreading them."""
    if cfg.data.get("is_encoder_decoder") is True:
        raise cfg.error("encoder-decoder models are not supported (decoder-only transformers only)",
                        "is_encoder_decoder")
    if cfg.present(LAYERS) is None and isinstance(cfg.data.get("text_config"), dict):
        raise cfg.error("the language model is nested under 'text_config' (a multimodal config); "
                        "save that block as its own config.json", "text_config")
    if any(marker in model_type for marker in RECURRENT_MARKERS):
        raise cfg.error(f"model_type {model_type!r} has recurrent/state-space layers, which are not supported",
                        "model_type")
    layer_types = cfg.data.get("layer_types")
    if isinstance(layer_types, list):
        other = sorted({str(t) for t in layer_types} - ATTENTION_LAYER_TYPES)
        if other:
            raise cfg.error(f"layers of type {', '.join(repr(t) for t in other)} are not supported "
                            "(attention layers only)", "layer_types")


def _activation(cfg: _Config, model_type: str, architectures: str, notes: list[str]) -> str:
    act_key = cfg.present(("hidden_act", "activation_function", "hidden_activation"))
    act = (cfg.string(act_key) or "").lower() if act_key else ""
    grok = "grok" in model_type or "grok" in architectures
    if model_type in GATED_TYPES or grok:
        gated = True
    elif model_type in PLAIN_TYPES:
        gated = False
    else:
        gated = act in ("silu", "swish", "swiglu")
        if gated and model_type:
            notes.append(f"model_type {model_type!r} is not a known family: its {act} MLP is taken as gated")
    if gated:
        if act and act not in ("silu", "swish", "swiglu"):
            notes.append(f"gated {act} MLP modelled as 'swiglu' (same three matrices)")
        elif not act and grok:
            notes.append("Grok-1's gated GELU MLP modelled as 'swiglu' (same three matrices)")
        return "swiglu"
    if "relu" in act:
        if act != "relu":
            notes.append(f"non-gated {act} MLP modelled as 'relu'")
        return "relu"
    if act and "gelu" not in act:
        notes.append(f"non-gated {act} MLP modelled as 'gelu' (same two matrices)")
    return "gelu"


def _tied(cfg: _Config, model_type: str, notes: list[str]) -> bool:
    tied = cfg.boolean("tie_word_embeddings")
    if tied is not None:
        return tied
    if model_type in UNTIED_DEFAULT_TYPES:
        return False
    if model_type not in GATED_TYPES | PLAIN_TYPES:
        notes.append("tie_word_embeddings absent: assumed the Hugging Face default (tied)")
    return True


def _dropout(cfg: _Config) -> tuple[float, str | None]:
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


def _moe(cfg: _Config, layers: int, notes: list[str], origin: dict[str, str]
         ) -> tuple[dict[str, Any] | None, int | None, bool]:
    """(moe block or None, ffn width when only the MoE keys give it, whether the layout is approximated)."""
    experts, experts_key = cfg.optional(EXPERTS, minimum=0)
    if not experts:
        return None, None, False
    origin["moe.experts"] = experts_key
    top_k, top_k_key = cfg.need(TOP_K)
    origin["moe.top_k"] = top_k_key
    if top_k > experts:
        raise cfg.error(f"{top_k_key}({top_k}) exceeds {experts_key}({experts})", top_k_key)
    width, width_key = cfg.need(MOE_FFN, what="an integer expert width")
    origin["moe.moe_ffn_hidden"] = width_key
    moe: dict[str, Any] = {"experts": experts, "top_k": top_k, "moe_ffn_hidden": width}

    shared_width, shared_width_key = cfg.optional(("shared_expert_intermediate_size",), minimum=0)
    shared, shared_key = cfg.optional(SHARED_EXPERTS, minimum=0)
    if shared_width:
        # Qwen2-MoE: one always-on expert of this width (its scalar gate is negligible).
        moe["shared_experts"] = 1
        origin["moe.shared_experts"] = shared_width_key
        if shared_width != width:
            moe["shared_ffn_hidden"] = shared_width
            origin["moe.shared_ffn_hidden"] = shared_width_key
        if shared and shared != 1:
            notes.append(f"{shared_key}={shared} read as one shared expert of {shared_width_key}={shared_width}")
    elif shared:
        moe["shared_experts"] = shared
        origin["moe.shared_experts"] = shared_key

    # Which layers route: DeepSeek (first_k_dense_replace, moe_layer_freq), Qwen (decoder_sparse_step,
    # mlp_only_layers). Families use one set of keys or none, so the conditions combine.
    first_k, _ = cfg.optional(("first_k_dense_replace",), minimum=0)
    freq, _ = cfg.optional(("moe_layer_freq",))
    step, _ = cfg.optional(("decoder_sparse_step",))
    mlp_only = set(cfg.int_list("mlp_only_layers"))
    first_k, freq, step = first_k or 0, freq or 1, step or 1
    routed = [i for i in range(layers)
              if i >= first_k and i % freq == 0 and (i + 1) % step == 0 and i not in mlp_only]
    dense = layers - len(routed)
    dense_key = ("first_k_dense_replace" if first_k else "mlp_only_layers" if mlp_only
                 else "decoder_sparse_step" if step > 1 else "moe_layer_freq")
    if not routed:
        notes.append(f"no layer routes to experts ({dense_key}); modelled as a dense model")
        for key in [k for k in origin if k.startswith("moe.")]:
            del origin[key]
        return None, None, False
    approximated = sorted(set(range(layers)) - set(routed)) != list(range(dense))
    if dense:
        moe["dense_layers"] = dense
        origin["moe.dense_layers"] = dense_key
    if approximated:
        notes.append(f"{dense} of {layers} layers have a dense MLP interleaved with the MoE layers "
                     f"({dense_key}); modelled as the first {dense}")
    return moe, width, approximated


def _mla(cfg: _Config, origin: dict[str, str]) -> dict[str, Any] | None:
    kv_lora_rank, key = cfg.optional(("kv_lora_rank",))
    if kv_lora_rank is None:
        return None
    mla: dict[str, Any] = {"kv_lora_rank": kv_lora_rank}
    origin["mla.kv_lora_rank"] = key
    q_lora_rank, key = cfg.optional(("q_lora_rank",))
    if q_lora_rank is not None:
        mla["q_lora_rank"] = q_lora_rank
        origin["mla.q_lora_rank"] = key
    for name in ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
        value, key = cfg.need((name,))
        mla[name] = value
        origin[f"mla.{name}"] = key
    return mla


def _rope_note(cfg: _Config, seq_key: str, seq_len: int) -> str | None:
    scaling = cfg.data.get("rope_scaling") or cfg.data.get("rope_parameters")
    if not isinstance(scaling, dict):
        return None
    original = scaling.get("original_max_position_embeddings")
    if isinstance(original, int) and not isinstance(original, bool) and 0 < original < seq_len:
        return (f"seq_len is {seq_key}={seq_len}, reached by RoPE scaling from {original}; "
                "set training.seq_len for the pre-training context")
    return None


def _name(cfg: _Config, path: Path) -> str:
    name = cfg.data.get("_name_or_path")
    if isinstance(name, str) and name.strip():
        return name.strip()
    return path.parent.name or path.stem or "model"


def model_from_hf_config(path: str | Path) -> dict[str, Any]:
    """Read a Hugging Face ``config.json`` (or a directory holding one) into a dict of Model fields.

    The dict is validated as a :class:`Model` before it is returned; any problem is a
    :class:`FileFormatError` carrying the file and the Hugging Face key at fault.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    file = str(p)
    cfg = _Config(_read(p, file), file)
    model_type = (cfg.string("model_type") or "").lower()
    arch = cfg.data.get("architectures")
    architectures = " ".join(a for a in arch if isinstance(a, str)).lower() if isinstance(arch, list) else ""
    _check_supported(cfg, model_type)

    notes: list[str] = []
    origin: dict[str, str] = {}  # Model field -> the Hugging Face key it came from
    out: dict[str, Any] = {"name": _name(cfg, p), "source": f"Hugging Face config.json: {file}"}
    origin["name"] = "_name_or_path"
    for field, keys in (("layers", LAYERS), ("hidden", HIDDEN), ("heads", HEADS), ("vocab", VOCAB),
                        ("seq_len", SEQ_LEN)):
        out[field], origin[field] = cfg.need(keys)
    layers, hidden, heads = out["layers"], out["hidden"], out["heads"]

    moe, moe_width, approximated = _moe(cfg, layers, notes, origin)
    ffn, ffn_key = cfg.optional(FFN)
    if ffn is None:
        if moe_width is not None:
            ffn, ffn_key = moe_width, origin["moe.moe_ffn_hidden"]
        elif model_type in FOUR_X_FFN_TYPES or "n_inner" in cfg.data:
            ffn, ffn_key = 4 * hidden, cfg.present(HIDDEN) or HIDDEN[0]
            notes.append(f"FFN width not given: 4 * hidden = {ffn}")
        else:
            raise cfg.missing(FFN)
    out["ffn_hidden"], origin["ffn_hidden"] = ffn, ffn_key
    if moe is not None:
        out["moe"] = moe

    mla = _mla(cfg, origin)
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
        head_dim, head_dim_key = cfg.optional(("head_dim",))
        if head_dim is not None:
            out["head_dim"], origin["head_dim"] = head_dim, head_dim_key
        elif hidden % heads:
            raise cfg.error(f"{origin['heads']}({heads}) does not divide {origin['hidden']}({hidden}) "
                            "and no 'head_dim' is given", origin["heads"])

    out["activation"] = _activation(cfg, model_type, architectures, notes)
    out["tied_embeddings"] = _tied(cfg, model_type, notes)
    origin["tied_embeddings"] = "tie_word_embeddings"
    dropout, dropout_key = _dropout(cfg)
    if dropout_key:
        out["dropout"], origin["dropout"] = dropout, dropout_key

    mtp, _ = cfg.optional(("num_nextn_predict_layers",), minimum=0)
    if mtp:
        notes.append(f"num_nextn_predict_layers={mtp} multi-token-prediction module(s) not modelled")
    rope = _rope_note(cfg, origin["seq_len"], out["seq_len"])
    if rope:
        notes.append(rope)
    if approximated:
        out["estimate"] = True
    if notes:
        out["notes"] = "; ".join(notes)

    try:
        Model.model_validate(out)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise cfg.error(f"does not describe a valid model: {message}", origin.get(loc, loc) or None) from None
    return {field: out[field] for field in Model.model_fields if field in out}
