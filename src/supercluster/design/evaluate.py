"""One design's figures: the cheap ones from counts (capex, peak power, a bound on its time) and the planned ones
(best parallelism, time to train without and with failures, the facility ledger), as a row.

Work is shared where the figures do not depend on a part: the step (best parallelism) of a cluster is the same for
every facility and every storage tier it could be built with, and its failure model the same for every facility:
a *shape* (accelerator option, scale-up domain, GPU count, fabric) is planned once for all its designs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import InfeasibleError, SuperclusterError
from ..facility.ledger import build_figures, facility_ledger
from ..network.report import FabricReport, fabric_report
from ..reliability.report import PLAN_RUNS
from ..search.plan import best_step, run_reliability
from ..spec.load import build_scenario
from ..spec.scenario import Scenario
from ..units import SECONDS_PER_HOUR
from ..workload.flops import model_flops_per_token
from .spec import CAPEX_PARTS, Design, DesignPoint

# One row per design: SI values, the unit in every name.
COLUMNS: dict[str, str] = {
    "design": "BIGINT PRIMARY KEY",
    "status": "VARCHAR",  # ok | infeasible (a constraint, or no configuration) | pruned (cannot reach the front)
    "reason": "VARCHAR",
    "accelerator": "VARCHAR",
    "num_gpus": "BIGINT",
    "gpus_per_node": "BIGINT",
    "domain_gpus": "BIGINT",
    "fabric": "VARCHAR",
    "transport": "VARCHAR",
    "tiers": "BIGINT",
    "oversubscription": "VARCHAR",
    "facility": "VARCHAR",
    "pue": "DOUBLE",
    "storage": "VARCHAR",
    "bound_time_s": "DOUBLE",  # model FLOPs / the GPUs' dense peak: no design trains faster
    "capex_usd": "DOUBLE",
    **{f"capex_{k}_usd": "DOUBLE" for k in CAPEX_PARTS},
    "budget_capex_usd": "DOUBLE",
    "facility_peak_power_w": "DOUBLE",
    "parallelism": "VARCHAR",
    "step_time_s": "DOUBLE",
    "mfu": "DOUBLE",
    "time_to_train_s": "DOUBLE",
    "time_to_train_with_failures_s": "DOUBLE",
    "goodput": "DOUBLE",
    "facility_average_power_w": "DOUBLE",
    "water_m3_per_day": "DOUBLE",
    "run_energy_facility_j": "DOUBLE",
    "run_co2_kg": "DOUBLE",
    "run_cost_usd": "DOUBLE",
    "run_cost_with_failures_usd": "DOUBLE",
}


def _name(value: Any) -> str:
    """An option as a reader writes it: its catalog name, else its JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def scenario_data(d: Design, p: DesignPoint) -> dict[str, Any]:
    """The scenario of design ``p`` as a dict (the base with the design's parts laid over it)."""
    cluster = {**d.options[p.option], "num_gpus": p.num_gpus, "scale_up_domain_gpus": p.domain}
    if d.fabrics[p.fabric] is not None:
        cluster["fabric"] = d.fabrics[p.fabric]
    if d.storage[p.storage] is not None:
        cluster["storage"] = d.storage[p.storage]
    return {**d.base, "cluster": cluster, "facility": d.facilities[p.facility]}


class Builder:
    """Scenarios of a design's points, validated once per combination of options (a GPU count is a copy)."""

    def __init__(self, design: Design) -> None:
        self.design = design
        self._made: dict[tuple[int, int, int, int, int], Scenario | SuperclusterError] = {}
        self._fabrics: dict[tuple[int, int, int, int], FabricReport] = {}

    def scenario(self, p: DesignPoint) -> Scenario:
        key = (p.option, p.domain, p.fabric, p.facility, p.storage)
        if key not in self._made:
            try:
                self._made[key] = build_scenario(scenario_data(self.design, p), file=self.design.file,
                                                 base_dir=Path(self.design.base_dir), check_rules=False)
            except SuperclusterError as exc:  # a combination of options that breaks a rule: a row
                self._made[key] = exc
        made = self._made[key]
        if isinstance(made, SuperclusterError):
            raise made
        if made.cluster.num_gpus == p.num_gpus:
            return made
        return made.model_copy(update={"cluster": made.cluster.model_copy(update={"num_gpus": p.num_gpus})})

    def fabric(self, p: DesignPoint, s: Scenario) -> FabricReport:
        key = (p.option, p.domain, p.fabric, p.num_gpus)
        if key not in self._fabrics:
            self._fabrics[key] = fabric_report(s.cluster)
        return self._fabrics[key]


def bound_time_s(s: Scenario) -> float:
    """A time no configuration of the cluster beats: the run's model FLOPs at the GPUs' dense peak (MFU 1)."""
    peak = s.cluster.accelerator.peak_flops_per_s(s.training.precision)
    return s.training.tokens * model_flops_per_token(s.model, s.seq_len) / (s.cluster.num_gpus * peak)


def cheap_row(d: Design, index: int, p: DesignPoint, b: Builder) -> dict[str, Any]:
    """A design's row with what its counts give (no step timed): capex, peak power, the bound on its time."""
    row: dict[str, Any] = {k: None for k in COLUMNS}
    row.update(design=index, num_gpus=p.num_gpus, domain_gpus=p.domain, fabric=_name(d.fabrics[p.fabric]),
               facility=_name(d.facilities[p.facility]), storage=_name(d.storage[p.storage]), status="ok")
    try:
        s = b.scenario(p)
        fab = b.fabric(p, s)
    except SuperclusterError as exc:
        return {**row, "status": "infeasible", "reason": str(exc)}
    c = s.cluster
    row.update(accelerator=c.accelerator.name, gpus_per_node=c.gpus_per_node, transport=c.fabric.transport,
               tiers=len(fab.tiers), oversubscription=json.dumps(c.fabric.oversubscription),
               fabric=c.fabric.name if d.fabrics[p.fabric] is None else row["fabric"],
               pue=s.facility.pue if s.facility else None, bound_time_s=bound_time_s(s))
    peak, capex, missing = build_figures(s, fab)
    row.update(capex_usd=capex["total"], facility_peak_power_w=peak.facility_w,
               **{f"capex_{k}_usd": capex.get(k) for k in CAPEX_PARTS})
    if missing:
        row.update(status="infeasible", reason=f"capex unknown: the catalog lacks {', '.join(missing)}")
    return row


def plan_shape(d: Design, items: list[tuple[int, DesignPoint]], rows: list[dict[str, Any]]
               ) -> list[dict[str, Any]]:
    """Plan the designs of one shape (same accelerator option, domain, GPU count and fabric): the best
    parallelism once, the failure model once per storage tier, the facility ledger per design. Never raises for a
    design: a configuration that does not fit or a job that cannot progress is a row with its reason."""
    b = Builder(d)
    out: list[dict[str, Any]] = []
    s0 = b.scenario(items[0][1])
    try:
        step, _ = best_step(s0)
    except InfeasibleError as exc:
        return [{**row, "status": "infeasible", "reason": f"no configuration: {exc.message}"} for row in rows]
    fab = b.fabric(items[0][1], s0)
    failures: dict[int, Any] = {}
    for (_, p), row in zip(items, rows, strict=True):
        s = b.scenario(p)
        ledger = facility_ledger(s, step, fab)
        assert ledger is not None  # a design has a facility (load_design)
        row = {**row, "parallelism": json.dumps(step.parallelism, sort_keys=True), "step_time_s": step.step_time_s,
               "mfu": step.mfu, "time_to_train_s": step.time_to_train_s,
               "facility_average_power_w": ledger.average.facility_w, "water_m3_per_day": ledger.water_m3_per_day,
               "run_energy_facility_j": ledger.run_energy_facility_j, "run_co2_kg": ledger.run_co2_kg,
               "run_cost_usd": ledger.run_cost_usd}
        if p.storage not in failures and s.cluster.storage is None:
            failures[p.storage] = SuperclusterError(
                "the cluster names no checkpoint storage (cluster.storage), which the failure model needs")
        if p.storage not in failures:  # the failure model reads the step and the storage, not the site
            try:
                failures[p.storage] = run_reliability(s, step, None, runs=PLAN_RUNS, sizes=(), search_runs=0)
            except SuperclusterError as exc:  # failures outpace restarts (InfeasibleError)
                failures[p.storage] = exc
        rel = failures[p.storage]
        if isinstance(rel, SuperclusterError):
            reason = getattr(rel, "message", str(rel))
            out.append({**row, "status": "infeasible", "reason": f"failures outpace progress: {reason}"
                        if isinstance(rel, InfeasibleError) else reason})
            continue
        ttt = rel.time_to_train_s["p50"]
        per_hour = ledger.cost_per_hour_usd["total"] if ledger.run_cost_usd is not None else None
        out.append({**row, "time_to_train_with_failures_s": ttt, "goodput": rel.goodput["mean"],
                    # as the reliability ledger prices it: P50 wall time x the facility's cost per hour
                    "run_cost_with_failures_usd": per_hour * ttt / SECONDS_PER_HOUR if per_hour else None})
    return out


def objectives(row: dict[str, Any]) -> tuple[float, float, float]:
    """What the front minimises: time to train with failures, capex, facility peak power."""
    return (float(row["time_to_train_with_failures_s"]), float(row["capex_usd"]),
            float(row["facility_peak_power_w"]))


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
