"""What a Hugging Face config says about a model's layers: which ones route to experts (and to how many, shared ones
included), multi-head latent attention, and which layers attend through a sliding window.

Mixture-of-experts keys by family (each read as the family's Hugging Face configuration class defines it):
- Mixtral, Grok-1, gpt-oss: ``num_local_experts`` (``num_experts``), ``num_experts_per_tok``; every layer MoE,
  ``intermediate_size`` is the expert width;
- Qwen1.5/2-MoE (Qwen2 technical report, arXiv:2407.10671, §2.2.2) and Qwen3-MoE: ``num_experts``,
  ``moe_intermediate_size``, ``decoder_sparse_step`` (layer i routes when (i+1) % step == 0), ``mlp_only_layers``;
  Qwen2-MoE adds always-on shared experts as one MLP of ``shared_expert_intermediate_size``;
- DeepSeek-V2/V3 (arXiv:2412.19437 §2.1.2), Kimi K2 (the DeepSeek-V3 architecture, moonshotai/Kimi-K2 model card)
  and GLM-4.5 (arXiv:2508.06471, Table 1): ``n_routed_experts``, ``n_shared_experts``, ``first_k_dense_replace``
  (the first k layers dense), ``moe_layer_freq``;
- Llama 4 (Meta's Llama 4 model cards and blog post, 2025-04-05: "MoE layers use 128 routed experts and a shared
  expert", alternating dense and MoE layers in Maverick): ``num_local_experts``, ``num_experts_per_tok``,
  ``interleave_moe_layer_step`` (every k-th layer MoE) or ``moe_layers`` (their indices); every MoE layer also has
  one shared expert of ``intermediate_size``, and dense layers an MLP of ``intermediate_size_mlp``.

The Model places its MoE layers after ``moe.dense_layers`` leading dense ones, every ``moe.interleave_step``-th of the
rest (Llama 4 Maverick's alternation, Jamba's every other layer); a config whose MoE layers follow no such pattern
(an arbitrary ``mlp_only_layers``) keeps the count of dense layers, placed first, and says so in an assumption.
"""

from __future__ import annotations

from typing import Any

from ..units import format_ordinal
from .hf_config import Findings, HfConfig
from .model import moe_layer_pattern

EXPERTS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
TOP_K = ("num_experts_per_tok", "num_selected_experts", "moe_top_k", "experts_per_token")
MOE_FFN = ("moe_intermediate_size", "intermediate_size")
SHARED_EXPERTS = ("n_shared_experts", "num_shared_experts")

LLAMA4_TYPES = frozenset({"llama4", "llama4_text"})
# Families whose layers are a mixture of experts by definition: a config of one that names no experts is refused.
MOE_TYPES = frozenset({"mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v3", "kimi_k2", "glm4_moe", "gpt_oss", "olmoe",
                       "granitemoe", "phimoe", "grok-1", "grok1"} | LLAMA4_TYPES)
# Families without shared experts (absence of the key is the architecture, not an omission).
UNSHARED_TYPES = frozenset({"mixtral", "qwen3_moe", "gpt_oss", "olmoe", "granitemoe", "phimoe", "grok-1", "grok1",
                            "jetmoe", "jamba"})
# The configuration classes' default shared-expert count, used (as an assumption) when the key is left out:
# DeepseekV3Config and Glm4MoeConfig in transformers both default n_shared_experts to 1.
SHARED_DEFAULTS = {"deepseek_v3": 1, "kimi_k2": 1, "glm4_moe": 1}
QWEN2_MOE_SHARED_DEFAULT = 5632  # Qwen2MoeConfig's default shared_expert_intermediate_size (Qwen1.5-MoE-A2.7B's)
# Families whose first layers are dense by first_k_dense_replace; leaving it out is an assumption.
FIRST_K_TYPES = frozenset({"deepseek_v2", "deepseek_v3", "kimi_k2", "glm4_moe"})

FULL, SLIDING = "full_attention", "sliding_attention"
# Hugging Face's layer kinds that are attention; Llama 4's chunked local attention is modelled as full (an
# assumption, read_windows).
LAYER_TYPE_NAMES = {"full_attention": FULL, "attention": FULL, "global": FULL, "chunked_attention": FULL,
                    "sliding_attention": SLIDING, "local": SLIDING}
# Families that alternate windowed and full layers without saying so in the file (the configuration class computes
# layer_types): Gemma 2 (arXiv:2408.00118 §2: local and global attention every other layer, layer 0 local),
# gpt-oss (OpenAI gpt-oss model card: alternating banded-window and dense layers; GptOssConfig), Gemma 3
# (arXiv:2503.19786 §2: five local layers for every global one), Cohere2 (one global layer in four).
WINDOW_PATTERN_DEFAULTS = {"gemma2": 2, "gpt_oss": 2, "gemma3": 6, "gemma3_text": 6, "cohere2": 4}
QWEN_WINDOW_TYPES = frozenset({"qwen2", "qwen2_moe", "qwen3", "qwen3_moe"})
ALL_WINDOWED_TYPES = frozenset({"mistral", "mixtral"})  # Mistral 7B (arXiv:2310.06825 §2): every layer windowed


def _routed_layers(cfg: HfConfig, layers: int) -> tuple[list[int], str, str]:
    """(indices of the layers that route to experts, the key deciding it, how the dense ones are placed)."""
    explicit = cfg.int_list("moe_layers", layers)  # Llama 4: the MoE layers by index
    if explicit is not None:
        routed = sorted(set(explicit))
        return routed, "moe_layers", f"moe_layers names the {len(routed)} MoE layers"
    first_k, _ = cfg.optional(("first_k_dense_replace",), minimum=0)
    freq, _ = cfg.optional(("moe_layer_freq",))
    step, step_key = cfg.optional(("interleave_moe_layer_step", "decoder_sparse_step"))
    mlp_only = set(cfg.int_list("mlp_only_layers", layers) or [])
    first_k, freq, step = first_k or 0, freq or 1, step or 1
    period, _ = cfg.optional(("expert_layer_period",))
    if period is not None:  # Jamba: layer i routes when i % expert_layer_period == expert_layer_offset
        offset, _ = cfg.optional(("expert_layer_offset",), minimum=0)
        routed = [i for i in range(layers) if i % period == (offset or 0)]
        return routed, "expert_layer_period", f"every {format_ordinal(period)} layer is MoE, expert_layer_period {period}"
    # DeepSeek: layer i routes when i >= first_k_dense_replace and i % moe_layer_freq == 0; Qwen and Llama 4: when
    # (i + 1) % step == 0 and i is not in mlp_only_layers. A family uses one set of keys or none, so they combine.
    routed = [i for i in range(layers)
              if i >= first_k and i % freq == 0 and (i + 1) % step == 0 and i not in mlp_only]
    if mlp_only:
        return routed, "mlp_only_layers", f"mlp_only_layers names {len(mlp_only)} dense layers"
    if step > 1:
        return routed, step_key, f"every {format_ordinal(step)} layer is MoE, {step_key} {step}"
    if freq > 1:
        return routed, "moe_layer_freq", f"every {format_ordinal(freq)} layer is MoE, moe_layer_freq {freq}"
    return routed, "first_k_dense_replace", f"first_k_dense_replace {first_k}"


def _interleaving(routed: list[int], layers: int) -> tuple[int | None, int]:
    """(leading dense layers d, step k) when the MoE layers are exactly those after d leading dense ones whose
    position (i - d + 1) is a multiple of k (spec.model.Model.moe_layer_flags), else (None, 1)."""
    step = routed[1] - routed[0] if len(routed) > 1 else 1
    lead = routed[0] - step + 1
    if lead >= 0 and routed == [i for i, moe in enumerate(moe_layer_pattern(layers, lead, step)) if moe]:
        return lead, step
    return None, 1


def _shared(cfg: HfConfig, family: str, width: int, moe: dict[str, Any], origin: dict[str, str],
            found: Findings) -> None:
    """The shared experts of each MoE layer, into ``moe``."""
    if family in LLAMA4_TYPES:  # Llama4TextMoe: one shared expert of intermediate_size beside the routed ones
        moe["shared_experts"] = 1
        origin["moe.shared_experts"] = "intermediate_size"
        return
    shared_width, shared_width_key = cfg.optional(("shared_expert_intermediate_size",
                                                   "moe_shared_expert_intermediate_size"), minimum=0)
    shared, shared_key = cfg.optional(SHARED_EXPERTS, minimum=0)
    if shared_width is None and shared is None and family == "qwen2_moe":
        shared_width = QWEN2_MOE_SHARED_DEFAULT
        found.assume(f"{cfg.where('shared_expert_intermediate_size')} absent: one shared expert of width "
                     f"{shared_width}, the qwen2_moe default", "moe")
    if shared_width:
        # Qwen2-MoE: the shared experts are one always-on MLP of this width (its scalar gate, h weights, is left out).
        moe["shared_experts"] = 1
        origin["moe.shared_experts"] = shared_width_key
        if shared_width != width:
            moe["shared_ffn_hidden"] = shared_width
            origin["moe.shared_ffn_hidden"] = shared_width_key
        if shared and shared != 1:
            found.note(f"{shared_key}={shared} read as one shared expert of {shared_width_key}={shared_width}")
        return
    if shared is None and family not in UNSHARED_TYPES:
        shared = SHARED_DEFAULTS.get(family, 0)
        default = f"the {family} default" if family in SHARED_DEFAULTS else "none modelled"
        count = f"{shared} shared expert{'' if shared == 1 else 's'}"
        found.assume(f"{cfg.where(SHARED_EXPERTS[0])} absent: {count} per MoE layer ({default})", "moe")
    if shared:
        moe["shared_experts"] = shared
        origin["moe.shared_experts"] = shared_key


def read_moe(cfg: HfConfig, family: str, layers: int, found: Findings, origin: dict[str, str]
             ) -> tuple[dict[str, Any] | None, int | None, bool]:
    """(moe block or None, expert width, whether the dense layers' placement is approximated)."""
    experts, experts_key = cfg.optional(EXPERTS, minimum=0)
    if experts is None and family in MOE_TYPES:
        raise cfg.error(f"model_type {family!r} is a mixture of experts: expected an integer {EXPERTS[0]!r} "
                        f"(or {', '.join(repr(k) for k in EXPERTS[1:])})", EXPERTS[0])
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
    _shared(cfg, family, width, moe, origin, found)
    groups, groups_key = cfg.optional(("n_group",), minimum=1)
    top_groups, top_groups_key = cfg.optional(("topk_group",), minimum=1)
    if groups and top_groups and groups > 1 and top_groups < groups:  # group-limited routing (DeepSeek-V2/V3)
        moe["groups"], moe["top_groups"] = groups, top_groups
        origin["moe.groups"], origin["moe.top_groups"] = groups_key, top_groups_key

    if family in FIRST_K_TYPES and cfg.present(("first_k_dense_replace",)) is None:
        found.assume(f"{cfg.where('first_k_dense_replace')} absent: no leading dense layers, every layer MoE", "moe")
    routed, dense_key, placement = _routed_layers(cfg, layers)
    dense = layers - len(routed)
    if not routed:
        found.note(f"no layer routes to experts ({dense_key}); modelled as a dense model")
        for key in [k for k in origin if k.startswith("moe.")]:
            del origin[key]
        return None, None, False
    lead, step = _interleaving(routed, layers)
    approximated = lead is None
    if lead is not None and step > 1:  # leading dense layers, then every step-th layer MoE: the model places them so
        moe["interleave_step"] = step
        origin["moe.interleave_step"] = dense_key
        dense = lead
    if dense:
        moe["dense_layers"] = dense
        origin["moe.dense_layers"] = dense_key
    if approximated:
        found.assume(f"the {dense} dense layers are modelled as the first {dense}; in the model they are "
                     f"interleaved with the {len(routed)} MoE layers ({placement})", "moe")
    return moe, width, approximated


def read_mla(cfg: HfConfig, origin: dict[str, str]) -> dict[str, Any] | None:
    """DeepSeek's multi-head latent attention block, when the config has ``kv_lora_rank``."""
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


def _layer_types(cfg: HfConfig, layers: int) -> list[str] | None:
    raw = cfg.data.get("layer_types")
    if raw is None:
        return None
    if not isinstance(raw, list) or any(not isinstance(t, str) for t in raw):
        raise cfg.error(f"expected a list of layer kinds 'layer_types', got {raw!r}", "layer_types")
    unknown = sorted({t for t in raw if t not in LAYER_TYPE_NAMES})
    if unknown:  # hf._check_supported refuses recurrent kinds first; what is left is an attention we do not know
        raise cfg.error(f"layers of type {', '.join(repr(t) for t in unknown)} are not supported (full or "
                        "sliding-window attention only)", "layer_types")
    if len(raw) != layers:
        raise cfg.error(f"'layer_types' lists {len(raw)} layers, the model has {layers}", "layer_types")
    return [LAYER_TYPE_NAMES[t] for t in raw]


def read_windows(cfg: HfConfig, family: str, layers: int, found: Findings, origin: dict[str, str]
                 ) -> tuple[int | None, list[str] | None]:
    """(sliding_window, layer_types): the window size and each layer's attention, both None when no layer is
    windowed. ``layer_types`` as Hugging Face writes it; when a config gives only ``sliding_window`` it follows the
    family: every k-th layer full for ``sliding_window_pattern`` k (Gemma 3), the family's alternation, Qwen's
    ``max_window_layers`` (layers from that index on windowed, only with ``use_sliding_window``), or every layer."""
    chunk, chunk_key = cfg.optional(("attention_chunk_size",))
    raw = cfg.data.get("layer_types")
    if chunk is not None:  # Llama 4: three layers in four attend within chunks of this size (iRoPE), one globally
        found.assume(f"{cfg.where(chunk_key)} {chunk}: the chunked local attention of the RoPE layers is modelled "
                     "as full attention", "layer_types", "sliding_window")
    elif isinstance(raw, list) and "chunked_attention" in raw:
        found.assume(f"{cfg.where('layer_types')}: its chunked_attention layers are modelled as full attention",
                     "layer_types", "sliding_window")
    use = cfg.boolean("use_sliding_window")
    if use is False:
        return None, None
    window, window_key = cfg.optional(("sliding_window",))
    types = _layer_types(cfg, layers)
    if types is not None:
        if SLIDING in types and window is None:
            raise cfg.error("'layer_types' has sliding_attention layers but no window size: expected an integer "
                            "'sliding_window'", "sliding_window")
        origin["layer_types"] = "layer_types"
    elif window is None:
        return None, None
    elif family in QWEN_WINDOW_TYPES:
        if use is None:
            found.assume(f"{cfg.where('use_sliding_window')} absent: sliding_window {window} off (the {family} "
                         "default), every layer full attention", "sliding_window", "layer_types")
            return None, None
        first, key = cfg.optional(("max_window_layers",), minimum=0)
        if first is None:
            raise cfg.missing(("max_window_layers",))
        types = [SLIDING if i >= first else FULL for i in range(layers)]
        origin["layer_types"] = key
    else:
        pattern, pattern_key = cfg.optional(("sliding_window_pattern",))
        if pattern is None and family in WINDOW_PATTERN_DEFAULTS:
            pattern = WINDOW_PATTERN_DEFAULTS[family]
            found.assume(f"{cfg.where('layer_types')} absent: one layer in {pattern} full attention, the others "
                         f"windowed (the {family} pattern)", "layer_types")
        if pattern is not None:
            # Hugging Face (Gemma 2/3, gpt-oss): layer i is windowed unless (i + 1) % pattern == 0.
            types = [FULL if (i + 1) % pattern == 0 else SLIDING for i in range(layers)]
            origin["layer_types"] = pattern_key
        else:
            if family not in ALL_WINDOWED_TYPES:
                found.assume(f"{cfg.where('sliding_window')} {window} without 'layer_types': every layer windowed",
                             "layer_types")
            types = [SLIDING] * layers
            origin["layer_types"] = window_key
    if SLIDING not in types:
        origin.pop("layer_types", None)
        return None, None
    origin["sliding_window"] = window_key
    return window, types
