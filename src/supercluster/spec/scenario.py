"""A Scenario: one cluster, one model, one training run, its parallelism (possibly partial) and a facility."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Spec
from .hardware import Cluster, Facility
from .model import Model
from .training import Parallelism, Training

ClaimMetric = Literal["mfu", "time_to_train_days", "gpu_hours", "tokens_per_s", "step_time_s", "num_gpus",
                      "params", "active_params"]


class Claim(Spec):
    """A public figure the scenario's result can be checked against, e.g. "90-100 days on ~25,000 A100"."""

    claim: str
    metric: ClaimMetric
    low: float
    high: float
    source: str

    @model_validator(mode="after")
    def _ordered(self) -> Claim:
        if self.low > self.high:
            raise ValueError(f"low({self.low}) exceeds high({self.high})")
        return self


class Scenario(Spec):
    name: str = "scenario"
    description: str | None = None
    cluster: Cluster
    model: Model
    training: Training
    parallelism: Parallelism = Field(default_factory=Parallelism)
    facility: Facility | None = None
    claims: list[Claim] = Field(default_factory=list)
    seed: int = 0

    @property
    def seq_len(self) -> int:
        return self.training.seq_len or self.model.seq_len
