"""Shared pydantic base and small typed vocabularies for every spec."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Precision = Literal["fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "fp4"]
TrainingPrecision = Literal["fp16", "bf16", "fp8"]
Activation = Literal["gelu", "swiglu", "relu"]
Attention = Literal["mha", "mla"]
Recompute = Literal["none", "selective", "full", "block", "op"]
Transport = Literal["infiniband", "roce", "ethernet"]

PositiveInt = Annotated[int, Field(gt=0)]
MAX_GPUS = 100_000_000  # a sanity bound: 100 million accelerators
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]


class Spec(BaseModel):
    """Frozen, strict about unknown keys: a misspelt key is an error, never silently ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class Cited(Spec):
    """A catalog entry: where its numbers come from, and whether they are an estimate."""

    name: str = Field(min_length=1)
    source: str = Field(default="user input", min_length=1)
    estimate: bool = False
    notes: str | None = None
