"""Public claims in a scenario, checked against its plan: the step report and, when present, the facility ledger
and the reliability model.

Lives above perf, facility and reliability because a claim may name a metric of any.
"""

from __future__ import annotations

from typing import Any

from ..perf.report import ClaimCheck, StepReport
from ..spec.scenario import Claim
from ..units import SECONDS_PER_DAY

_FACILITY_METRICS = {
    "facility_peak_power_w": ("peak", "facility_w"),
    "facility_average_power_w": ("average", "facility_w"),
    "homes_equivalent_peak": ("homes_equivalent_peak",),
    "water_m3_per_day": ("water_m3_per_day",),
    "gpu_capex_usd": ("capex_usd", "gpus"),
    "capex_usd": ("capex_usd", "total"),
}


_RELIABILITY_METRICS = {
    "goodput": ("goodput", "mean"),
    "time_to_train_with_failures_days": ("time_to_train_s", "p50"),
    "job_mttf_h": ("mttf_unexpected_s",),
}
_SCALE = {"time_to_train_with_failures_days": 1.0 / SECONDS_PER_DAY, "job_mttf_h": 1.0 / 3600.0}


def _lookup(value: Any, path: tuple[str, ...]) -> float | None:
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return float(value)


def metric_value(report: StepReport, metric: str) -> float | None:
    """A claim metric's predicted value (None when the facility ledger or the reliability model that holds it was
    not computed)."""
    if metric == "time_to_train_days":
        return report.time_to_train_s / SECONDS_PER_DAY
    if metric in _RELIABILITY_METRICS:
        v = _lookup(report.reliability, _RELIABILITY_METRICS[metric])
        return None if v is None else v * _SCALE.get(metric, 1.0)
    if metric == "num_gpus":
        return float(report.num_gpus)
    if metric in _FACILITY_METRICS:
        return _lookup(report.facility, _FACILITY_METRICS[metric])
    return float(getattr(report, metric))


def check_claims(report: StepReport, claims: list[Claim]) -> list[ClaimCheck]:
    """Each claim beside the predicted value of its metric (claims whose metric is not computed are skipped)."""
    out = []
    for c in claims:
        value = metric_value(report, c.metric)
        if value is None:
            continue
        out.append(ClaimCheck(claim=c.claim, metric=c.metric, low=c.low, high=c.high, predicted=value,
                              within=c.low <= value <= c.high, source=c.source))
    return out
