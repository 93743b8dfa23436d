"""One design's figures: the cheap ones from counts (capex, peak power, a bound on its time) and the planned ones
(best parallelism, time to train without and with failures, the facility ledger), as a row.

Work is shared where the figures do not depend on a part: the step (best parallelism) of a cluster is the same for
every facility and every storage tier it could be built with, and its failure model the same for every facility:
a *shape* (accelerator option, scale-up domain, GPU count, fabric) is planned once for all its designs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InfeasibleError, SuperclusterError
from ..facility.ledger import build_figures, facility_ledger
from ..network.report import FabricReport, fabric_report
from ..reliability.report import PLAN_RUNS
from ..search.plan import SharedWork, best_step, run_reliability
from ..spec.load import build_scenario
from ..spec.scenario import Scenario
from ..units import SECONDS_PER_HOUR
from ..workload.flops import model_flops_per_token
from .rows import DesignRow
from .spec import CAPEX_PARTS, Design, DesignPoint, budget_capex


def _name(value: Any) -> str:
    """An option as a reader writes it: its catalog name, else its JSON ("scenario" where the design keeps the base
    scenario's part)."""
    if value is None:
        return "scenario"
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


def cheap_row(d: Design, index: int, p: DesignPoint, b: Builder) -> DesignRow:
    """A design's row with what its counts give (no step timed): capex, peak power, the bound on its time."""
    row = DesignRow(design=index, num_gpus=p.num_gpus, domain_gpus=p.domain, fabric=_name(d.fabrics[p.fabric]),
                    facility=_name(d.facilities[p.facility]), storage=_name(d.storage[p.storage]))
    try:
        s = b.scenario(p)
        fab = b.fabric(p, s)
    except SuperclusterError as exc:
        return row.model_copy(update={"status": "infeasible", "reason": str(exc)})
    c = s.cluster
    peak, capex, missing = build_figures(s, fab)
    row = row.model_copy(update={
        "accelerator": c.accelerator.name, "gpus_per_node": c.gpus_per_node, "transport": c.fabric.transport,
        "tiers": len(fab.tiers), "oversubscription": json.dumps(c.fabric.oversubscription),
        "fabric": c.fabric.name if d.fabrics[p.fabric] is None else row.fabric,
        "facility": s.facility.name if s.facility else row.facility,
        "pue": s.facility.pue if s.facility else None, "bound_time_s": bound_time_s(s),
        "capex_usd": capex["total"], "facility_peak_power_w": peak.facility_w,
        "budget_capex_usd": budget_capex(capex, d.constraints.budget_parts),
        **{f"capex_{k}_usd": capex.get(k) for k in CAPEX_PARTS}})
    if missing:
        return row.model_copy(update={"status": "infeasible",
                                      "reason": f"capex unknown: the catalog lacks {', '.join(missing)}"})
    return row


def plan_group(shapes: list[tuple[list[Scenario], list[int], list[DesignRow]]]) -> list[DesignRow]:
    """Plan shapes that differ in their fabric alone (same accelerator option, domain and GPU count): the space,
    the memory of every configuration and the offload variants found once for all of them."""
    shared = SharedWork()
    return [r for scenarios, storage, rows in shapes for r in plan_shape(scenarios, storage, rows, shared)]


def plan_shape(scenarios: list[Scenario], storage: list[int], rows: list[DesignRow],
               shared: SharedWork | None = None) -> list[DesignRow]:
    """Plan the designs of one shape (same accelerator option, domain, GPU count and fabric; ``storage`` numbers
    each design's storage tier): the best parallelism once, the failure model once per storage tier, the facility
    ledger per design. Never raises for a design: a configuration that does not fit or a job that cannot progress
    is a row with its reason."""
    out: list[DesignRow] = []
    s0 = scenarios[0]
    try:
        step, summary = best_step(s0, shared=shared)
    except InfeasibleError as exc:
        return [row.model_copy(update={"status": "infeasible", "reason": f"no configuration: {exc.message}"})
                for row in rows]
    fab = fabric_report(s0.cluster)
    failures: dict[int, Any] = {}
    for s, tier, row in zip(scenarios, storage, rows, strict=True):
        ledger = facility_ledger(s, step, fab)
        assert ledger is not None  # a design has a facility (load_design)
        row = row.model_copy(update={
            "configurations": summary.candidates,
            "parallelism": json.dumps(step.parallelism, sort_keys=True), "step_time_s": step.step_time_s,
            "mfu": step.mfu, "time_to_train_s": step.time_to_train_s,
            "facility_average_power_w": ledger.average.facility_w, "water_m3_per_day": ledger.water_m3_per_day,
            "run_energy_facility_j": ledger.run_energy_facility_j, "run_co2_kg": ledger.run_co2_kg,
            "run_cost_usd": ledger.run_cost_usd})
        if tier not in failures and s.cluster.storage is None:
            failures[tier] = SuperclusterError(
                "the cluster names no checkpoint storage (cluster.storage), which the failure model needs")
        if tier not in failures:  # the failure model reads the step and the storage, not the site
            try:
                failures[tier] = run_reliability(s, step, None, runs=PLAN_RUNS, sizes=(), search_runs=0)
            except SuperclusterError as exc:  # failures outpace restarts (InfeasibleError)
                failures[tier] = exc
        rel = failures[tier]
        if isinstance(rel, SuperclusterError):
            reason = getattr(rel, "message", str(rel))
            out.append(row.model_copy(update={"status": "infeasible", "reason": f"failures outpace progress: {reason}"
                                              if isinstance(rel, InfeasibleError) else reason}))
            continue
        ttt = rel.time_to_train_s["p50"]
        per_hour = ledger.cost_per_hour_usd["total"] if ledger.run_cost_usd is not None else None
        out.append(row.model_copy(update={
            "time_to_train_with_failures_s": ttt, "goodput": rel.goodput["mean"],
            # as the reliability ledger prices it: P50 wall time x the facility's cost per hour
            "run_cost_with_failures_usd": per_hour * ttt / SECONDS_PER_HOUR if per_hour else None}))
    return out
