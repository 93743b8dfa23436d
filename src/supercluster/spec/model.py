"""The transformer being trained: dense or mixture-of-experts, MHA/GQA/MQA or MLA attention, full or sliding-window
(local) attention per layer, and the assumptions it rests on that its source does not state."""

from __future__ import annotations

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
LayerType = Literal["full_attention", "sliding_attention"]  # Hugging Face's names (config.json ``layer_types``)


class MoE(Spec):
    experts: PositiveInt
    top_k: PositiveInt
    shared_experts: NonNegativeInt = 0
    moe_ffn_hidden: PositiveInt = Field(description="FFN width of one routed (and shared) expert")
    dense_layers: NonNegativeInt = Field(default=0, description="leading layers with a dense MLP of ffn_hidden")
    shared_ffn_hidden: PositiveInt | None = Field(
        default=None, description="width of one shared expert when it differs from moe_ffn_hidden"
    )

    @model_validator(mode="after")
    def _top_k_le_experts(self) -> MoE:
        if self.top_k > self.experts:
            raise ValueError(f"top_k({self.top_k}) exceeds experts({self.experts})")
        return self


class MLA(Spec):
    """DeepSeek multi-head latent attention, keys as in DeepSeek-V3's config.json."""

    q_lora_rank: PositiveInt | None = None
    kv_lora_rank: PositiveInt
    qk_nope_head_dim: PositiveInt
    qk_rope_head_dim: PositiveInt
    v_head_dim: PositiveInt


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
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    sliding_window: PositiveInt | None = Field(
        default=None, description="keys a query attends back in a windowed layer, itself included (Mistral 7B's W)")
    layer_types: list[LayerType] | None = Field(
        default=None, description="attention of each layer, Hugging Face's key; without it and with a "
        "sliding_window every layer is windowed")
    published_params: PositiveFloat | None = Field(default=None, description="total parameters as published")
    published_active_params: PositiveFloat | None = None
    family: Name | None = Field(default=None, description="the Hugging Face model_type it was read from")
    assumptions: list[Assumption] = Field(
        default=[], max_length=MAX_ASSUMPTIONS,
        description="what the model rests on that its source does not state, one line each (--strict refuses them)")

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
        return self
