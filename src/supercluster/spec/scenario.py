"""A Scenario: one cluster, one model, one training run, its parallelism (possibly partial) and a facility."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from ..errors import InputError
from ..units import CLAIM_UNITS
from . import catalog
from .base import MAX_CLAIMS, Name, Spec, Text, error_message
from .calibration import Calibration, default_calibration, knob_names, load_calibration, overlay
from .hardware import Cluster, Facility
from .model import Model
from .reliability import Reliability
from .safe_yaml import shorten
from .training import Parallelism, Training

ClaimMetric = Literal["mfu", "time_to_train_days", "gpu_hours", "tokens_per_s", "step_time_s", "num_gpus",
                      "params", "active_params", "facility_peak_power_w", "facility_average_power_w",
                      "homes_equivalent_peak", "water_m3_per_day", "gpu_capex_usd", "capex_usd", "goodput",
                      "time_to_train_with_failures_days", "job_mttf_h", "fabric_tiers", "fabric_switches",
                      "gpu_count_ratio", "peak_flops_ratio"]
# What a claim's metric needs from the scenario (supercluster.search.claims computes them)
FACILITY_METRICS = frozenset({"facility_peak_power_w", "facility_average_power_w", "homes_equivalent_peak",
                              "water_m3_per_day", "gpu_capex_usd", "capex_usd"})
RELIABILITY_METRICS = frozenset({"goodput", "time_to_train_with_failures_days", "job_mttf_h"})
VERSUS_METRICS = frozenset({"gpu_count_ratio", "peak_flops_ratio"})  # this cluster against another (``versus``)


class Claim(Spec):
    """A public figure the scenario's result is checked against, e.g. "90-100 days on ~25,000 A100": a range
    [low, high] in ``unit`` (one bound: "more than low" / "less than high"; both equal: a point)."""

    claim: Text
    metric: ClaimMetric
    low: float | None = Field(default=None, allow_inf_nan=False)
    high: float | None = Field(default=None, allow_inf_nan=False)
    unit: str | None = Field(default=None, max_length=32, description="the unit the claim states its figure in "
                             "(default: the metric's own; one of supercluster.units.CLAIM_UNITS)")
    versus: Cluster | None = Field(default=None, description="the cluster a ratio metric compares this one with")
    source: Text

    @model_validator(mode="after")
    def _well_formed(self) -> Claim:
        if self.low is None and self.high is None:
            raise ValueError("a claim needs low, high or both")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low({self.low}) exceeds high({self.high})")
        if self.unit is not None and self.unit not in CLAIM_UNITS:
            raise ValueError(f"unknown unit {self.unit!r} (known: {', '.join(CLAIM_UNITS)})")
        if (self.versus is None) == (self.metric in VERSUS_METRICS):
            raise ValueError(f"{self.metric} {'needs' if self.versus is None else 'takes no'} a `versus` cluster")
        return self


DEFAULT_RELIABILITY = "llama3-405b-h100"


def default_reliability() -> Reliability:
    """The catalog's default failure statistics and restart policy (Llama 3 405B pre-training, 16K H100)."""
    return Reliability.model_validate(catalog.entry("reliability", DEFAULT_RELIABILITY))


class Scenario(Spec):
    name: Name = "scenario"
    description: Text | None = None
    cluster: Cluster
    model: Model
    training: Training
    parallelism: Parallelism = Field(default_factory=Parallelism)
    facility: Facility | None = None
    reliability: Reliability = Field(default_factory=lambda: default_reliability())
    claims: list[Claim] = Field(default_factory=list, max_length=MAX_CLAIMS,
                                description=f"public figures to check the result against (at most {MAX_CLAIMS})")
    calibration: dict[str, Any] | str = Field(
        default_factory=dict, description="a calibration file (written by `supercluster calibrate`, path relative to "
        "the scenario) or what-if overrides of the global knobs, e.g. {dp_comm_overlap: 1.0}: every gradient "
        "reduction hidden (a schedule that hides communication by overlap, as DualPipe, is parallelism.schedule, "
        "not a knob); {file: path, knob: value} does both")
    seed: int = 0

    @model_validator(mode="after")
    def _claims_computable(self) -> Scenario:
        for i, c in enumerate(self.claims):
            if c.metric in FACILITY_METRICS and self.facility is None:
                raise ValueError(f"claims.{i}.metric: {c.metric} needs a facility (the scenario names none)")
            if c.metric in RELIABILITY_METRICS and self.cluster.storage is None:
                raise ValueError(f"claims.{i}.metric: {c.metric} needs the cluster's checkpoint storage "
                                 "(cluster.storage), which the reliability model reads")
        return self

    @model_validator(mode="after")
    def _known_knobs(self) -> Scenario:
        if isinstance(self.calibration, dict) and not isinstance(self.calibration.get("file", ""), str):
            raise ValueError(f"calibration.file: expected the path of a calibration file, got "
                             f"{shorten(repr(self.calibration['file']))}")
        known = set(knob_names())
        unknown = sorted(shorten(str(k)) for k in set(self.calibration_overrides()) - known)
        if unknown:
            raise ValueError(f"unknown calibration knob(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        file = self.calibration_file()
        try:
            self.calibrated()
        except InputError as exc:
            raise ValueError(f"calibration file {file}: {exc.message}" + (f" ({exc.field})" if exc.field else "")
                             ) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"calibration.{'.'.join(str(p) for p in first['loc'])}: {error_message(first)}"
                             ) from None
        return self

    def calibration_file(self) -> str | None:
        """The calibration file the scenario names, if any."""
        if isinstance(self.calibration, str):
            return self.calibration
        file = self.calibration.get("file")
        return file if isinstance(file, str) else None

    def calibration_overrides(self) -> dict[str, Any]:
        """The scenario's what-if knob values (checked as knobs by ``calibrated``)."""
        if isinstance(self.calibration, str):
            return {}
        return {k: v for k, v in self.calibration.items() if k != "file"}

    def calibrated(self, base: Calibration | None = None) -> Calibration:
        """The global knobs in effect: ``base`` (a calibration given at run time, e.g. ``--calibration``), else the
        scenario's calibration file, else the shipped one; with the scenario's overrides laid over them."""
        if base is None:
            file = self.calibration_file()
            base = load_calibration(file) if file else default_calibration()
        overrides = self.calibration_overrides()
        if not overrides:
            return base
        return Calibration.model_validate(overlay(base, overrides))

    @property
    def seq_len(self) -> int:
        return self.training.seq_len or self.model.seq_len
