"""Public claims, each judged against what supercluster computes for the same quantity, by one rule.

A claim states a range [low, high] in a unit (one bound for "more than" / "less than"; equal bounds for a point).
Its verdict: **holds** when the computed figure lies within the range widened by 15%, **loose** within 50%, **does
not hold** beyond, where the distance is relative to the nearest bound. A claim whose unit measures another kind of
quantity than its metric (MW per hour for a power) does not hold, whatever the number. A claim about a figure the
scenario takes as an input (the GPU count; the GPUs' price, from the catalog's unit price) gets the verdict
**input**: it is restated, not checked.

Lives above perf, facility, reliability and network because a claim may name a metric of any.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..facility.ledger import FacilityReport
from ..network.report import fabric_report
from ..network.topology import build_topology
from ..perf.report import StepReport
from ..reliability.report import ReliabilityReport
from ..spec.scenario import Claim, Scenario
from ..units import CLAIM_UNITS, SECONDS_PER_DAY

HOLDS, LOOSE = 0.15, 0.50  # relative distance from the claimed range
Verdict = Literal["holds", "loose", "does not hold", "input"]


class ClaimCheck(BaseModel):
    """A public claim beside what supercluster computes for it, in the claim's unit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    claim: str
    metric: str
    unit: str
    low: float | None
    high: float | None
    predicted: float | None  # None: the quantity has no finite value (a job that never finishes)
    predicted_unit: str  # the unit of ``predicted``: the claim's, or the quantity's own when the claim's is a unit error
    distance: float | None  # relative distance of ``predicted`` from the claimed range (0 inside)
    verdict: Verdict
    basis: str
    source: str


@dataclass(frozen=True)
class Computed:
    """What the checks read: the run's parts (the facility and reliability ledgers when computed)."""

    scenario: Scenario
    step: StepReport
    facility: FacilityReport | None
    reliability: ReliabilityReport | None
    reliability_note: str | None  # why there is no reliability ledger


@dataclass(frozen=True)
class Metric:
    unit: str  # the unit the value is computed in (a key of CLAIM_UNITS)
    value: Callable[[Computed, Claim], float | None]
    basis: str
    is_input: bool = False


def _facility(c: Computed) -> FacilityReport:
    assert c.facility is not None  # the scenario validator requires a facility for these metrics
    return c.facility


def _reliability(c: Computed) -> ReliabilityReport | None:
    return c.reliability  # None: the job cannot make progress (see reliability_note)


def _ratio(c: Computed, claim: Claim, flops: bool) -> float:
    assert claim.versus is not None  # the Claim validator requires it
    a, b = c.scenario.cluster, claim.versus
    prec = c.scenario.training.precision
    if not flops:
        return a.num_gpus / b.num_gpus
    return a.num_gpus * a.accelerator.peak_flops_per_s(prec) / (b.num_gpus * b.accelerator.peak_flops_per_s(prec))


def _capex(c: Computed, part: str) -> float | None:
    v = _facility(c).capex_usd.get(part)
    return None if v is None else float(v)


METRICS: dict[str, Metric] = {
    "mfu": Metric("fraction", lambda c, _: c.step.mfu, "model FLOPs per second over the GPUs' peak"),
    "time_to_train_days": Metric("days", lambda c, _: c.step.time_to_train_s / SECONDS_PER_DAY,
                                 "training tokens / tokens per second, without failures"),
    "gpu_hours": Metric("GPU-hours", lambda c, _: c.step.gpu_hours, "time to train x GPUs"),
    "tokens_per_s": Metric("tokens/s", lambda c, _: c.step.tokens_per_s, "tokens per step / step time"),
    "step_time_s": Metric("s", lambda c, _: c.step.step_time_s, "the step model"),
    "num_gpus": Metric("GPUs", lambda c, _: float(c.step.num_gpus), "the scenario's GPU count", is_input=True),
    "params": Metric("parameters", lambda c, _: c.step.params, "the model's parameter count"),
    "active_params": Metric("parameters", lambda c, _: c.step.active_params, "parameters a token touches"),
    "facility_peak_power_w": Metric("W", lambda c, _: _facility(c).peak.facility_w,
                                    "IT power with every GPU computing x PUE (facility ledger)"),
    "facility_average_power_w": Metric("W", lambda c, _: _facility(c).average.facility_w,
                                       "IT power during training x PUE (facility ledger)"),
    "homes_equivalent_peak": Metric("homes", lambda c, _: _facility(c).homes_equivalent_peak,
                                    "peak facility power / an average household's power"),
    "water_m3_per_day": Metric("m3/day", lambda c, _: _facility(c).water_m3_per_day,
                               "evaporative cooling water of the facility (ledger)"),
    "gpu_capex_usd": Metric("USD", lambda c, _: _capex(c, "gpus"),
                            "GPUs x the catalog's unit price (itself a press estimate)", is_input=True),
    "capex_usd": Metric("USD", lambda c, _: _capex(c, "total"), "GPUs, servers, fabric, storage and site"),
    "goodput": Metric("fraction", lambda c, _: (r.goodput["mean"] if (r := _reliability(c)) else None),
                      "failure Monte Carlo: useful time / wall time"),
    "time_to_train_with_failures_days": Metric(
        "days", lambda c, _: (r.time_to_train_s["p50"] / SECONDS_PER_DAY if (r := _reliability(c)) else None),
        "failure Monte Carlo, median run"),
    "job_mttf_h": Metric("h", lambda c, _: (r.mttf_unexpected_s / 3600.0 if (r := _reliability(c)) else None),
                         "1 / the job's unexpected interruption rate"),
    "fabric_tiers": Metric("tiers", lambda c, _: float(len(build_topology(c.scenario.cluster).tiers)),
                           "the fewest fat-tree tiers of the fabric's switches that hold the GPUs"),
    "fabric_switches": Metric("switches", lambda c, _: float(fabric_report(c.scenario.cluster).switches),
                              "switches of a non-blocking fat tree of the fabric's radix"),
    "gpu_count_ratio": Metric("x", lambda c, cl: _ratio(c, cl, flops=False), "GPU count over the other cluster's"),
    "peak_flops_ratio": Metric("x", lambda c, cl: _ratio(c, cl, flops=True),
                               "peak FLOP/s (training precision) over the other cluster's"),
}


def distance(value: float, low: float | None, high: float | None) -> float:
    """Relative distance of ``value`` from [low, high] (0 inside; a missing bound is open)."""
    if low is not None and value < low:
        return (low - value) / abs(low) if low else float("inf")
    if high is not None and value > high:
        return (value - high) / abs(high) if high else float("inf")
    return 0.0


def verdict(d: float) -> Verdict:
    """The one rule: holds within 15% of the claimed range, loose within 50%, does not hold beyond."""
    return "holds" if d <= HOLDS else "loose" if d <= LOOSE else "does not hold"


def check_claim(claim: Claim, computed: Computed) -> ClaimCheck:
    """One claim judged against the run."""
    m = METRICS[claim.metric]
    unit = claim.unit or m.unit
    value = m.value(computed, claim)
    common = {"claim": claim.claim, "metric": claim.metric, "unit": unit, "low": claim.low, "high": claim.high,
              "source": claim.source}
    claim_dim, claim_si = CLAIM_UNITS[unit]
    metric_dim, metric_si = CLAIM_UNITS[m.unit]
    if claim_dim != metric_dim:
        return ClaimCheck(**common, predicted=value, predicted_unit=m.unit, distance=None, verdict="does not hold",
                          basis=f"unit error: {unit} measures a {claim_dim}, {claim.metric} is a {metric_dim} "
                                f"({m.unit}); computed in {m.unit}: {m.basis}")
    if value is None:
        why = computed.reliability_note or "not computed"
        return ClaimCheck(**common, predicted=None, predicted_unit=unit, distance=None, verdict="does not hold",
                          basis=f"never: {why}")
    shown = value * metric_si / claim_si
    d = distance(shown, claim.low, claim.high)
    if m.is_input:
        return ClaimCheck(**common, predicted=shown, predicted_unit=unit, distance=d, verdict="input",
                          basis=f"an input of the scenario, restated: {m.basis}")
    return ClaimCheck(**common, predicted=shown, predicted_unit=unit, distance=d, verdict=verdict(d), basis=m.basis)


def check_claims(claims: list[Claim], computed: Computed) -> list[ClaimCheck]:
    """Every claim judged (none is skipped: a scenario's validator refuses a claim whose inputs it lacks)."""
    return [check_claim(c, computed) for c in claims]
