"""What the run does (Training) and how it is spread over GPUs (Parallelism)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import Fraction, PositiveFloat, PositiveInt, Recompute, Spec, TrainingPrecision


class Training(Spec):
    tokens: PositiveFloat = Field(description="tokens to train on")
    global_batch: PositiveInt = Field(description="sequences per optimizer step")
    seq_len: PositiveInt | None = Field(default=None, description="defaults to the model's seq_len")
    precision: TrainingPrecision = "bf16"
    grad_accum_fp32: bool | None = Field(
        default=None, description="fp32 gradient buffers and reduction; None: as Megatron-LM does, fp32 for bf16 and "
        "fp8 runs (it forces accumulate_allreduce_grads_in_fp32 with bf16), 16-bit for fp16 runs")
    flash_attention: bool = Field(default=True, description="fused attention: no s x s score matrix stored")
    memory_reserve_fraction: Fraction = Field(
        default=0.9, description="share of HBM the run may plan to use; the rest is context, NCCL, fragmentation"
    )


DEFAULT_ORDER = "tp-cp-ep-dp-pp"  # Megatron-LM's rank layout, innermost first
# Layouts `order: auto` searches: Megatron-LM's default (data parallel inside pipeline stages) and the Llama 3
# layout (pipeline inside, data parallel outermost, across pods; Llama 3 paper Sec. 3.3.2).
SEARCHED_ORDERS = (DEFAULT_ORDER, "tp-cp-ep-pp-dp")


class Parallelism(Spec):
    """Every field left out (None) is chosen by the search; ``parallelism: auto`` leaves all out.

    Degrees: tp tensor, pp pipeline, dp data, cp context, ep expert, etp expert-tensor.
    tp * pp * dp * cp = GPUs; experts are spread over ep * etp ranks carved out of tp * cp * dp.
    """

    tp: PositiveInt | None = None
    pp: PositiveInt | None = None
    dp: PositiveInt | None = None
    cp: PositiveInt | None = None
    ep: PositiveInt | None = None
    etp: PositiveInt | None = None
    micro_batch: PositiveInt | None = None
    virtual_stages: PositiveInt | None = None
    recompute: Recompute | None = None
    zero_stage: Literal[0, 1, 2, 3] | None = None
    sequence_parallel: bool | None = None
    order: str = Field(default=DEFAULT_ORDER, description="layout of the parallel axes over ranks, innermost "
                       "first (Megatron-LM's default: tensor parallel inside a node, pipeline outermost); 'auto' "
                       "searches the common layouts (SEARCHED_ORDERS)")
    uneven_pipeline: bool = Field(
        default=False, description="allow pp not dividing layers (the slowest stage gets ceil(layers/pp))"
    )


    @field_validator("order")
    @classmethod
    def _order_is_permutation(cls, v: str) -> str:
        if v == "auto":
            return v
        axes = v.split("-")
        if sorted(axes) != sorted(["tp", "cp", "ep", "dp", "pp"]):
            raise ValueError(f"order must arrange tp, cp, ep, dp and pp once each, separated by '-', got {v!r}")
        return v



def grads_in_fp32(training: Training) -> bool:
    """Whether gradients are accumulated and reduced in fp32 (see ``Training.grad_accum_fp32``)."""
    if training.grad_accum_fp32 is not None:
        return training.grad_accum_fp32
    return training.precision != "fp16"
