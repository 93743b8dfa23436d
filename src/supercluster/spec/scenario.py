"""A Scenario: one cluster, one model, one training run, its parallelism (possibly partial) and a facility."""

from __future__ import annotations

from pydantic import Field

from .base import Spec
from .hardware import Cluster, Facility
from .model import Model
from .training import Parallelism, Training


class Scenario(Spec):
    name: str = "scenario"
    description: str | None = None
    cluster: Cluster
    model: Model
    training: Training
    parallelism: Parallelism = Field(default_factory=Parallelism)
    facility: Facility | None = None
    seed: int = 0

    @property
    def seq_len(self) -> int:
        return self.training.seq_len or self.model.seq_len
