"""The transformer being trained: dense or mixture-of-experts, MHA/GQA/MQA or MLA attention, full or sliding-window
(local) attention per layer, Mamba-2 state-space mixers in place of attention in some layers (hybrids such as
Nemotron-H), and the assumptions it rests on that its source does not state.

A layer is a token mixer (attention, or a Mamba-2 mixer where ``layer_types`` says "mamba") followed by an MLP.
Nemotron-H (arXiv:2504.03624 §2.1) stacks single-purpose blocks, Mamba-2, self-attention and MLP, each behind its
own norm; a mixer block and the MLP block after it make one layer here, and a mixer block followed directly by
another mixer is a layer without an MLP (``SSM.mlp_free_layers``, Mamba-2 layers; two norms a layer, one for
those). Nemotron 3's MLP blocks are mixtures of experts (its ``E`` blocks): a hybrid with a ``moe`` block whose every
MLP is MoE has its MLP-free layers among the MoE layers, without their experts, shared experts and router.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from .base import Activation, Attention, Cited, Name, NonNegativeInt, PositiveFloat, PositiveInt, Spec

MAX_ASSUMPTIONS = 64
MAX_ASSUMPTION_CHARS = 400


def _one_line(text: str) -> str:
    if "\n" in text or "\r" in text:
        raise ValueError("an assumption is one line (no line breaks)")
    return text


# One line a reader can act on: what the source does not state and what was modelled instead.
Assumption = Annotated[str, Field(min_length=1, max_length=MAX_ASSUMPTION_CHARS), AfterValidator(_one_line)]
# Hugging Face's names (config.json ``layer_types``); "mamba" marks a Mamba-2 mixer in place of attention.
LayerType = Literal["full_attention", "sliding_attention", "mamba"]


#: a layer's normalization and projection biases when the model does not state them, by activation: GELU layers as
#: GPT-2 and Megatron-LM's GPT build them (LayerNorm, biased projections: GPT-2/3, OPT, BLOOM, GPT-NeoX, MT-NLG;
#: GPT-2's config.json layer_norm_epsilon), the others as LLaMA and Nemotron-H (RMSNorm, no biases: their config.json
#: rms_norm_eps, attention_bias / mlp_bias false)
Norm = Literal["layernorm", "rmsnorm"]
IMPLIED_NORM: dict[str, tuple[Norm, bool]] = {"gelu": ("layernorm", True), "relu": ("rmsnorm", False),
                                              "swiglu": ("rmsnorm", False)}


class MoE(Spec):
    experts: PositiveInt
    top_k: PositiveInt
    shared_experts: NonNegativeInt = 0
    moe_ffn_hidden: PositiveInt = Field(description="FFN width of one routed (and shared) expert")
    dense_layers: NonNegativeInt = Field(default=0, description="leading layers with a dense MLP of ffn_hidden")
    interleave_step: PositiveInt = Field(
        default=1, description="after the leading dense layers, every interleave_step-th layer is MoE and the others "
        "dense (MLP of ffn_hidden): Llama 4 config.json interleave_moe_layer_step (Maverick 2), Qwen-MoE "
        "decoder_sparse_step; 1: every layer after the leading dense ones")
    shared_ffn_hidden: PositiveInt | None = Field(
        default=None, description="width of one shared expert when it differs from moe_ffn_hidden"
    )
    groups: PositiveInt | None = Field(
        default=None, description="group-limited routing (DeepSeek-V2/V3 config.json n_group): the experts split in "
        "this many groups, a token's top_k chosen inside its top_groups best groups")
    top_groups: PositiveInt | None = Field(
        default=None, description="the groups a token's experts may come from (config.json topk_group); with the "
        "groups laid out on nodes, the nodes a token reaches (DeepSeek-V3 report §2.1.2: at most 4)")

    @model_validator(mode="after")
    def _top_k_le_experts(self) -> MoE:
        if self.top_k > self.experts:
            raise ValueError(f"top_k({self.top_k}) exceeds experts({self.experts})")
        if (self.groups is None) != (self.top_groups is None):
            raise ValueError("groups and top_groups go together (group-limited routing)")
        if self.groups is not None and self.top_groups is not None:
            if self.experts % self.groups:
                raise ValueError(f"groups({self.groups}) does not divide experts({self.experts})")
            if self.top_groups > self.groups:
                raise ValueError(f"top_groups({self.top_groups}) exceeds groups({self.groups})")
        return self


@lru_cache(maxsize=256)
def moe_layer_pattern(layers: int, dense: int, step: int) -> tuple[bool, ...]:
    """Per layer, whether it is MoE: after ``dense`` leading dense layers, layer i when (i - dense + 1) is a multiple
    of ``step`` (Model.moe_layer_flags; evaluate() asks often, and a cache keyed by the three numbers, not by the
    model, stays right for a model copied with another moe block)."""
    return tuple(i >= dense and (i - dense + 1) % step == 0 for i in range(layers))


def moe_layers_among(flags: tuple[bool, ...], start: int, n: int) -> int:
    """MoE layers among the ``n`` layers from ``start`` of a model placed as ``flags`` (Model.moe_layer_flags); a
    layer past the last (a pipeline layout's multi-token-prediction module) counts as the last layer's kind."""
    last = len(flags) - 1
    return sum(flags[min(i, last)] for i in range(start, start + n))


class MLA(Spec):
    """DeepSeek multi-head latent attention, keys as in DeepSeek-V3's config.json."""

    q_lora_rank: PositiveInt | None = None
    kv_lora_rank: PositiveInt
    qk_nope_head_dim: PositiveInt
    qk_rope_head_dim: PositiveInt
    v_head_dim: PositiveInt


class SSM(Spec):
    """The state-space mixer of a hybrid's Mamba layers. Mamba-2 (``version`` 2; Dao & Gu 2024, "Transformers are
    SSMs", arXiv:2405.21060, §7 and Figure 6; keys as Nemotron-H's config.json states them): ``heads`` x
    ``head_dim`` is the inner width d_inner (expand * hidden), B and C shared by the heads of each of ``groups``
    groups (the paper's multi-value / grouped heads, §7.2), a state of ``state`` per head channel, a causal depthwise
    convolution of ``conv_kernel`` taps, the scan computed in chunks of ``chunk_size`` tokens (the SSD algorithm,
    §6). Mamba-1 (``version`` 1; Gu & Dao 2023, arXiv:2312.00752, §3; Jamba) is the same with a head per channel
    (``head_dim`` 1, ``heads`` = d_inner, one group: B and C shared by every channel, as the Mamba-2 paper reads it,
    §7.1) and dt through a low-rank projection of ``dt_rank``."""

    version: Literal[1, 2] = 2

    heads: PositiveInt = Field(description="SSM heads (mamba_num_heads)")
    head_dim: PositiveInt = Field(description="channels per SSM head (mamba_head_dim); heads*head_dim = d_inner")
    state: PositiveInt = Field(description="state size N per channel (ssm_state_size, d_state)")
    groups: PositiveInt = Field(default=1, description="groups sharing B and C (n_groups)")
    conv_kernel: PositiveInt = Field(default=4, description="taps of the causal depthwise convolution (d_conv)")
    chunk_size: PositiveInt = Field(default=256, description="tokens per chunk of the SSD scan (Q)")
    conv_bias: bool = True
    proj_bias: bool = False
    dt_rank: PositiveInt | None = Field(default=None, description="Mamba-1's rank of the dt projection")
    mlp_free_layers: NonNegativeInt = Field(
        default=0, description="Mamba-2 layers without an MLP (a Nemotron-H Mamba-2 block followed by another mixer; "
        "in a model whose every MLP is MoE, Nemotron 3's, they have no experts)")

    @property
    def inner(self) -> int:
        return self.heads * self.head_dim

    @model_validator(mode="after")
    def _groups_divide_heads(self) -> SSM:
        if self.heads % self.groups:
            raise ValueError(f"groups({self.groups}) must divide heads({self.heads})")
        if self.version == 1 and (self.dt_rank is None or self.head_dim != 1 or self.groups != 1):
            raise ValueError(f"a Mamba-1 mixer (version 1) has head_dim 1 (got {self.head_dim}), groups 1 (got "
                             f"{self.groups}) and a dt_rank (got {self.dt_rank})")
        if self.version == 2 and self.dt_rank is not None:
            raise ValueError("dt_rank is a Mamba-1 field (version 1)")
        return self


class Model(Cited):
    layers: PositiveInt
    hidden: PositiveInt
    ffn_hidden: PositiveInt
    heads: PositiveInt
    kv_heads: PositiveInt | None = None
    head_dim: PositiveInt | None = None
    vocab: PositiveInt
    seq_len: PositiveInt = Field(description="training context length")
    activation: Activation = "swiglu"
    tied_embeddings: bool = False
    attention: Attention = "mha"
    mla: MLA | None = None
    moe: MoE | None = None
    position_embedding: Literal["rope", "learned", "alibi", "none"] = "rope"
    norm: Norm | None = Field(
        default=None, description="the layers' normalization (LayerNorm: a weight and a bias; RMSNorm: a weight); "
        "absent: as the activation implies (norm_and_bias)")
    linear_bias: bool | None = Field(
        default=None, description="whether the attention and MLP projections carry biases; absent: as the "
        "activation implies (norm_and_bias)")
    glu_limit: PositiveFloat | None = Field(
        default=None, description="a clamped gated activation's limit: both halves of the GLU's input clamped to it "
        "before the gate (gpt-oss config.json swiglu_limit 7.0); None: no clamp")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    sliding_window: PositiveInt | None = Field(
        default=None, description="keys a query attends back in a windowed layer, itself included (Mistral 7B's W)")
    layer_types: list[LayerType] | None = Field(
        default=None, description="attention of each layer, Hugging Face's key; without it and with a "
        "sliding_window every layer is windowed")
    ssm: SSM | None = Field(default=None, description="the Mamba-2 mixer of the layers layer_types marks 'mamba'")
    published_params: PositiveFloat | None = Field(default=None, description="total parameters as published")
    published_active_params: PositiveFloat | None = None
    family: Name | None = Field(default=None, description="the Hugging Face model_type it was read from")
    assumptions: list[Assumption] = Field(
        default=[], max_length=MAX_ASSUMPTIONS,
        description="what the model rests on that its source does not state, one line each (--strict refuses them)")

    @property
    def norm_and_bias(self) -> tuple[Norm, bool]:
        """(normalization, projection biases), as stated, else as the activation implies (IMPLIED_NORM)."""
        norm, bias = IMPLIED_NORM[self.activation]
        return self.norm or norm, bias if self.linear_bias is None else self.linear_bias

    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads or self.heads

    @property
    def d_head(self) -> int:
        return self.head_dim or self.hidden // self.heads

    @property
    def windowed_layer_flags(self) -> tuple[bool, ...]:
        """Per layer, whether its attention is limited to the last ``sliding_window`` keys: every layer when only
        ``sliding_window`` is given (Mistral 7B v0.1), the layers ``layer_types`` marks sliding otherwise (Gemma 2/3,
        gpt-oss, OLMo 3)."""
        if self.sliding_window is None:
            return (False,) * self.layers
        if self.layer_types is None:
            return (True,) * self.layers
        return tuple(t == "sliding_attention" for t in self.layer_types)

    @property
    def windowed_layers(self) -> int:
        """How many layers attend over the sliding window only."""
        return sum(self.windowed_layer_flags)

    @property
    def moe_layer_flags(self) -> tuple[bool, ...]:
        """Per layer, whether its MLP is a mixture of experts: none without a ``moe`` block; else, after the
        ``moe.dense_layers`` leading dense layers, layer i is MoE when (i - dense_layers + 1) is a multiple of
        ``moe.interleave_step`` (Hugging Face Llama 4: moe_layers = range(step - 1, L, step); Qwen-MoE: (i + 1) %
        decoder_sparse_step == 0)."""
        if self.moe is None:
            return (False,) * self.layers
        return moe_layer_pattern(self.layers, self.moe.dense_layers, self.moe.interleave_step)

    @property
    def moe_layers(self) -> int:
        """How many layers route their tokens to experts."""
        return sum(self.moe_layer_flags)

    @property
    def ssm_layer_flags(self) -> tuple[bool, ...]:
        """Per layer, whether its mixer is a Mamba-2 state-space mixer instead of attention."""
        if self.layer_types is None:
            return (False,) * self.layers
        return tuple(t == "mamba" for t in self.layer_types)

    @property
    def ssm_layers(self) -> int:
        """How many layers mix tokens with a Mamba-2 mixer."""
        return sum(self.ssm_layer_flags)

    @property
    def attention_layers(self) -> int:
        """How many layers mix tokens with attention (full or windowed)."""
        return self.layers - self.ssm_layers

    @model_validator(mode="after")
    def _consistent(self) -> Model:
        if self.heads % self.n_kv_heads:
            raise ValueError(f"kv_heads({self.n_kv_heads}) must divide heads({self.heads})")
        if self.head_dim is None and self.attention == "mha" and self.hidden % self.heads:
            raise ValueError(f"heads({self.heads}) must divide hidden({self.hidden}) unless head_dim is given")
        if self.attention == "mla" and self.mla is None:
            raise ValueError("attention 'mla' needs an 'mla' block")
        if self.attention == "mha" and self.mla is not None:
            raise ValueError("an 'mla' block is only allowed with attention: mla")
        if self.moe is not None and self.moe.dense_layers > self.layers:
            raise ValueError(f"moe.dense_layers({self.moe.dense_layers}) exceeds layers({self.layers})")
        if self.layer_types is not None:
            if len(self.layer_types) != self.layers:
                raise ValueError(f"layer_types has {len(self.layer_types)} entries, expected one per layer: "
                                 f"layers({self.layers})")
            sliding = self.layer_types.count("sliding_attention")
            if sliding and self.sliding_window is None:
                raise ValueError(f"layer_types marks {sliding} layers 'sliding_attention' but sliding_window "
                                 "is not set")
        mamba = self.ssm_layers
        if mamba and self.ssm is None:
            raise ValueError(f"layer_types marks {mamba} layers 'mamba' but no 'ssm' block gives their mixer")
        if self.ssm is not None and not mamba:
            raise ValueError("an 'ssm' block needs layers marked 'mamba' in layer_types")
        if self.ssm is not None and self.ssm.mlp_free_layers:
            if self.moe is not None and self.moe_layers != self.layers:
                raise ValueError("ssm.mlp_free_layers with a 'moe' block is modelled when every MLP is a mixture of "
                                 f"experts (moe.dense_layers 0, interleave_step 1): this model has "
                                 f"{self.layers - self.moe_layers} dense layers")
            if self.ssm.mlp_free_layers > mamba:
                raise ValueError(f"ssm.mlp_free_layers({self.ssm.mlp_free_layers}) exceeds the layers marked 'mamba'"
                                 f"({mamba})")
        return self
