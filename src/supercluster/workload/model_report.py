"""ModelReport: what a run's figures count for its model — the layers (dense, mixture-of-experts, windowed,
state-space), the parameters with and without the input embedding, the N that MFU is computed from, the published
totals, and every assumption the model rests on. Pure accounting over :func:`~supercluster.workload.params.param_counts`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ..spec import catalog
from ..spec.model import Model
from ..units import format_ordinal
from .params import param_counts

# The N of MFU's model FLOPs (workload.flops.model_flops_per_token): PaLM's 6N + 12·L·H·Q·T, Chowdhery et al. 2022,
# Appendix B, with N the parameters a token activates outside the input embedding and the LM head.
MFU_PARAMS_BASIS = ("N of PaLM's 6N + 12·L·H·Q·T model FLOPs per token: the active parameters without the input "
                    "embedding and the LM head")


class ModelReport(BaseModel):
    """The model as the run counts it. Parameter counts are exact integers of the architecture arithmetic
    (workload.params); ``published_*`` are the source's own figures, in its own convention."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    family: str  # the Hugging Face model_type it was read from, "catalog" or "user input"
    source: str
    estimate: bool
    layers: int
    dense_layers: int
    moe_layers: int
    layer_pattern: str  # how the dense and MoE layers are laid out, experts and shared experts
    attention: str  # heads, KV heads, latent attention, and which layers attend through a window
    windowed_layers: int
    sliding_window: int | None
    ssm_layers: int = 0  # layers whose mixer is a Mamba (state-space) mixer instead of attention
    params: int
    params_without_input_embedding: int
    active_params: int
    active_params_without_input_embedding: int
    mfu_params: int  # the N of MFU (MFU_PARAMS_BASIS)
    mfu_params_basis: str
    published_params: float | None
    published_active_params: float | None
    assumptions: list[str]


def _family(model: Model) -> str:
    if model.family:
        return model.family
    entry = catalog.entries("models").get(model.name)
    return "catalog" if entry is not None and entry.get("source") == model.source else "user input"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _mixers(model: Model) -> str:
    """A hybrid's mixers and its layers without an MLP (empty for a transformer)."""
    if model.ssm is None:
        return ""
    bare = model.ssm.mlp_free_layers
    return (f": {model.ssm_layers} Mamba-{model.ssm.version}, {model.attention_layers} attention"
            + (f"; {bare} without an MLP" if bare else ""))


def _layer_pattern(model: Model, dense: int, moe_layers: int) -> str:
    if model.moe is None:
        return _plural(dense, "dense layer") + _mixers(model)
    m = model.moe
    experts = f"{m.experts} routed experts, {m.top_k} active"
    if m.shared_experts:
        width = f" of width {m.shared_ffn_hidden}" if m.shared_ffn_hidden else ""
        experts += f", + {_plural(m.shared_experts, 'shared expert')}{width}"
    lead, step = m.dense_layers, m.interleave_step
    if step > 1:
        layout = (f"first {lead} dense, then " if lead else "") + \
            f"every {format_ordinal(step)} layer MoE ({moe_layers} MoE, {dense} dense)"
    else:
        layout = f"first {dense} dense, then {moe_layers} MoE" if dense else f"all {moe_layers} MoE"
    widths = f"expert width {m.moe_ffn_hidden}" + (f", dense width {model.ffn_hidden}" if dense else "")
    return f"{layout}{_mixers(model)} ({experts}; {widths})"


def _attention(model: Model) -> tuple[str, int]:
    if model.attention == "mla":
        assert model.mla is not None  # guaranteed by Model validation
        text = f"MLA: {model.heads} heads, KV latent {model.mla.kv_lora_rank}"
    else:
        kv = model.n_kv_heads
        kind = "MHA" if kv == model.heads else "MQA" if kv == 1 else "GQA"
        text = f"{kind}: {model.heads} heads, {_plural(kv, 'KV head')}, head dim {model.d_head}"
    windowed = sum(t == "sliding_attention" for t in model.layer_types or [])
    if model.ssm is not None:
        s = model.ssm
        shape = (f"d_inner {s.inner}, state {s.state}, dt rank {s.dt_rank}" if s.version == 1 else
                 f"{s.heads} heads x {s.head_dim}, state {s.state}, {s.groups} groups, SSD chunk {s.chunk_size}")
        text += (f"; {model.ssm_layers} of {model.layers} layers Mamba-{s.version} instead ({shape}), "
                 f"{model.attention_layers} attention"
                 + (f", {s.mlp_free_layers} layers without an MLP" if s.mlp_free_layers else ""))
    if windowed:
        text += (f"; {windowed} of {model.layers} layers windowed ({model.sliding_window:,} tokens), "
                 f"{model.layers - windowed} full")
    return text, windowed


def model_report(model: Model) -> ModelReport:
    """The model's layers, parameter counts and assumptions."""
    pc = param_counts(model)
    attention, windowed = _attention(model)
    return ModelReport(
        name=model.name, family=_family(model), source=model.source, estimate=model.estimate, layers=model.layers,
        dense_layers=pc.dense_layers, moe_layers=pc.moe_layers,
        layer_pattern=_layer_pattern(model, pc.dense_layers, pc.moe_layers), attention=attention,
        windowed_layers=windowed, sliding_window=model.sliding_window if windowed else None,
        ssm_layers=model.ssm_layers,
        params=pc.total, params_without_input_embedding=pc.total_without_input_embedding,
        active_params=pc.active, active_params_without_input_embedding=pc.active_without_input_embedding,
        mfu_params=pc.non_embedding_active, mfu_params_basis=MFU_PARAMS_BASIS,
        published_params=model.published_params, published_active_params=model.published_active_params,
        assumptions=list(model.assumptions))
