"""Shared pydantic base and small typed vocabularies for every spec."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import ErrorDetails

from .safe_yaml import shorten

Precision = Literal["fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "fp4"]
TrainingPrecision = Literal["bf16", "fp16", "fp8", "fp4"]  # fp8: any fp8 scaling recipe; fp4: NVFP4
Fp8Recipe = Literal["delayed", "tensorwise", "mxfp8"]  # Megatron-Core --fp8-recipe names (workload/quantization.py)
Activation = Literal["gelu", "swiglu", "relu"]
Attention = Literal["mha", "mla"]
#: which fused-attention kernels a run's software chose (Megatron-Core --attention-backend words, and PyTorch's
#: FlexAttention; spec.training)
AttentionBackend = Literal["auto", "fused", "flash", "flex"]
Recompute = Literal["none", "selective", "full", "block", "op"]
#: what selective recompute runs again (Megatron-Core --recompute-modules, transformer_config.py)
RecomputeModule = Literal["core_attn", "layernorm", "mlp", "moe_act", "moe", "shared_experts", "mla_up_proj"]
Transport = Literal["infiniband", "roce", "ethernet"]

PositiveInt = Annotated[int, Field(gt=0)]
MAX_GPUS = 100_000_000  # a sanity bound: 100 million accelerators
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]

# Bounds on what a user's file may hold: a name is shown in every table, free text in reports; more than this is a
# mistake (or an attack: a 100 kB name took the text report 56 s to lay out).
MAX_NAME_CHARS = 128
MAX_TEXT_CHARS = 10_000
MAX_CLAIMS = 200
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]


class Spec(BaseModel):
    """Frozen, strict about unknown keys (a misspelt key is an error, never silently ignored) and about types: a
    number field takes a number, not ``true`` (which lax validation reads as 1) nor a string ("2048"); a text field
    takes text."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, strict=True)


class Cited(Spec):
    """A catalog entry: where its numbers come from, and whether they are an estimate."""

    name: Name
    source: Text = Field(default="user input", min_length=1)
    estimate: bool = False
    notes: Text | None = None


def error_message(error: ErrorDetails | dict[str, Any]) -> str:
    """One pydantic error as a sentence: a validator's own message as it is, a type or range error with the value
    it got (shortened: a wrong value may be megabytes long)."""
    msg = str(error["msg"])
    if error["type"] in ("value_error", "assertion_error"):
        return msg[len("Value error, "):] if msg.startswith("Value error, ") else msg
    if error["type"] == "missing":
        return "required field is missing"
    got = error.get("input")
    return f"{msg} (got {shorten(repr(got))})"
