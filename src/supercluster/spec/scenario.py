"""A Scenario: one cluster, one model, one training run, its parallelism (possibly partial) and a facility."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, model_validator

from . import catalog
from .base import Spec
from .calibration import Calibration, default_calibration
from .hardware import Cluster, Facility
from .model import Model
from .reliability import Reliability
from .training import Parallelism, Training

ClaimMetric = Literal["mfu", "time_to_train_days", "gpu_hours", "tokens_per_s", "step_time_s", "num_gpus",
                      "params", "active_params", "facility_peak_power_w", "facility_average_power_w",
                      "homes_equivalent_peak", "water_m3_per_day", "gpu_capex_usd", "capex_usd", "goodput",
                      "time_to_train_with_failures_days", "job_mttf_h"]


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


DEFAULT_RELIABILITY = "llama3-405b-h100"


def default_reliability() -> Reliability:
    """The catalog's default failure statistics and restart policy (Llama 3 405B pre-training, 16K H100)."""
    return Reliability.model_validate(catalog.entry("reliability", DEFAULT_RELIABILITY))


class Scenario(Spec):
    name: str = "scenario"
    description: str | None = None
    cluster: Cluster
    model: Model
    training: Training
    parallelism: Parallelism = Field(default_factory=Parallelism)
    facility: Facility | None = None
    reliability: Reliability = Field(default_factory=lambda: default_reliability())
    claims: list[Claim] = Field(default_factory=list)
    calibration: dict[str, float | dict[str, float]] = Field(
        default_factory=dict, description="what-if overrides of the global knobs (catalog/calibration.yaml), e.g. "
        "{ep_comm_overlap: 1.0} for a schedule that hides the expert all-to-all (DeepSeek's DualPipe)")
    seed: int = 0

    @model_validator(mode="after")
    def _known_knobs(self) -> Scenario:
        known = set(Calibration.model_fields) - {"source"}
        unknown = sorted(set(self.calibration) - known)
        if unknown:
            raise ValueError(f"unknown calibration knob(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        try:
            self.calibrated(default_calibration())
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"calibration.{'.'.join(str(p) for p in first['loc'])}: {first['msg']} "
                             f"(got {first.get('input')!r})") from None
        return self

    def calibrated(self, base: Calibration) -> Calibration:
        """The global knobs with this scenario's overrides, validated."""
        if not self.calibration:
            return base
        return Calibration.model_validate({**base.model_dump(), **self.calibration})

    @property
    def seq_len(self) -> int:
        return self.training.seq_len or self.model.seq_len
