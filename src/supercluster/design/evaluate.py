"""One design's figures: the cheap ones from counts (capex, peak power, a bound on its time) and the planned ones
(best parallelism, time to train without and with failures, the facility ledger), as a row.

Work is shared where the figures do not depend on a part: the step (best parallelism) of a cluster is the same for
every facility and every storage tier it could be built with, and its failure model the same for every facility:
a *shape* (accelerator option, scale-up domain, GPU count, fabric) is planned once for all its designs. A design
that runs several workloads plans each on its shape (its best parallelism, its failure model, its ledger) and sums
them with their weights (rows.DesignRow); workloads that differ in their tokens alone share their space and memory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InfeasibleError, SuperclusterError
from ..facility.ledger import FacilityReport, build_figures, facility_ledger
from ..network.report import FabricReport, fabric_report
from ..perf.report import StepReport
from ..reliability.report import PLAN_RUNS, ReliabilityReport, wall_cost_usd
from ..search.plan import SharedWork, best_step, cost_per_hour_usd, run_reliability
from ..spec.load import build_scenario
from ..spec.scenario import Scenario
from ..workload.flops import model_flops_per_token
from .rows import DesignRow, WorkloadFigures
from .spec import CAPEX_PARTS, Design, DesignPoint, Workload, budget_capex


def _name(value: Any) -> str:
    """An option as a reader writes it: its catalog name, else its JSON ("scenario" where the design keeps the base
    scenario's part)."""
    if value is None:
        return "scenario"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def scenario_data(d: Design, p: DesignPoint, w: int = 0) -> dict[str, Any]:
    """The scenario of design ``p`` running workload ``w`` as a dict (the base with the workload's model and
    training and the design's parts laid over it)."""
    cluster = {**d.options[p.option], "num_gpus": p.num_gpus, "scale_up_domain_gpus": p.domain}
    if d.fabrics[p.fabric] is not None:
        cluster["fabric"] = d.fabrics[p.fabric]
    if d.storage[p.storage] is not None:
        cluster["storage"] = d.storage[p.storage]
    return {**d.base, **d.workloads[w].part, "cluster": cluster, "facility": d.facilities[p.facility]}


def workload_label(workloads: list[Workload], w: int) -> str:
    """What a reason says to name workload ``w`` ("" when the design has one workload)."""
    return f"workload {workloads[w].name!r}: " if len(workloads) > 1 else ""


class Builder:
    """Scenarios of a design's points, validated once per combination of options and workload (a GPU count is a
    copy)."""

    def __init__(self, design: Design) -> None:
        self.design = design
        self._made: dict[tuple[int, int, int, int, int, int], Scenario | SuperclusterError] = {}
        self._fabrics: dict[tuple[int, int, int, int], FabricReport] = {}

    def scenario(self, p: DesignPoint, w: int = 0) -> Scenario:
        """Design ``p`` running workload ``w``."""
        key = (p.option, p.domain, p.fabric, p.facility, p.storage, w)
        if key not in self._made:
            try:
                self._made[key] = build_scenario(scenario_data(self.design, p, w), file=self.design.file,
                                                 base_dir=Path(self.design.base_dir), check_rules=False)
            except SuperclusterError as exc:  # a combination of options that breaks a rule: a row
                self._made[key] = exc
        made = self._made[key]
        if isinstance(made, SuperclusterError):
            raise made
        if made.cluster.num_gpus == p.num_gpus:
            return made
        return made.model_copy(update={"cluster": made.cluster.model_copy(update={"num_gpus": p.num_gpus})})

    def scenarios(self, p: DesignPoint) -> list[Scenario]:
        """Design ``p`` running each of its workloads (the cluster and facility the same in all)."""
        return [self.scenario(p, w) for w in range(len(self.design.workloads))]

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
    w = 0
    try:
        ss = []
        for w in range(len(d.workloads)):
            ss.append(b.scenario(p, w))
        s = ss[0]
        fab = b.fabric(p, s)
    except SuperclusterError as exc:
        return row.model_copy(update={"status": "infeasible", "reason": workload_label(d.workloads, w) + str(exc)})
    c = s.cluster
    peak, capex, missing = build_figures(s, fab)
    row = row.model_copy(update={
        "accelerator": c.accelerator.name, "gpus_per_node": c.gpus_per_node, "transport": c.fabric.transport,
        "tiers": len(fab.tiers), "oversubscription": json.dumps(c.fabric.oversubscription),
        "fabric": c.fabric.name if d.fabrics[p.fabric] is None else row.fabric,
        "facility": s.facility.name if s.facility else row.facility,
        "pue": s.facility.pue if s.facility else None,
        "bound_time_s": math.fsum(wl.weight * bound_time_s(x) for wl, x in zip(d.workloads, ss, strict=True)),
        "capex_usd": capex["total"], "facility_peak_power_w": peak.facility_w,
        "budget_capex_usd": budget_capex(capex, d.constraints.budget_parts),
        **{f"capex_{k}_usd": capex.get(k) for k in CAPEX_PARTS}})
    if missing:
        return row.model_copy(update={"status": "infeasible",
                                      "reason": f"capex unknown: the catalog lacks {', '.join(missing)}"})
    return row


Shape = tuple[list[list[Scenario]], list[int], list[DesignRow]]  # per design: its workloads' scenarios; tiers; rows


def plan_group(shapes: list[Shape], workloads: list[Workload]) -> list[DesignRow]:
    """Plan shapes that differ in their fabric alone (same accelerator option, domain and GPU count): the space,
    the memory of every configuration and the offload variants found once for all of them (and for the workloads
    that differ in their tokens alone)."""
    shared = {w.shares: SharedWork() for w in workloads}
    return [r for scenarios, storage, rows in shapes
            for r in plan_shape(scenarios, storage, rows, workloads, [shared[w.shares] for w in workloads])]


@dataclass(frozen=True)
class _Run:
    """One workload on one design: its facility ledger and its failure model (or why it has none)."""

    ledger: FacilityReport
    failures: ReliabilityReport | SuperclusterError


def _mean(values: list[float], times: list[float]) -> float:
    """``values`` weighted by ``times`` (the one value itself, when there is one)."""
    if len(values) == 1:
        return values[0]
    return math.fsum(v * t for v, t in zip(values, times, strict=True)) / math.fsum(times)


def _total(values: Sequence[float | None], weights: list[float]) -> float | None:
    """The weighted sum, or None when a value is unknown."""
    known = [v for v in values if v is not None]
    if len(known) < len(values):
        return None
    return math.fsum(w * v for w, v in zip(weights, known, strict=True))


def plan_shape(scenarios: list[list[Scenario]], storage: list[int], rows: list[DesignRow],
               workloads: list[Workload], shared: list[SharedWork] | None = None) -> list[DesignRow]:
    """Plan the designs of one shape (same accelerator option, domain, GPU count and fabric; ``scenarios`` holds
    each design's scenario per workload, ``storage`` numbers each design's storage tier): each workload's best
    parallelism once, its failure model once per storage tier, its facility ledger per design; the design's figures
    are the weighted totals (see rows.DesignRow). ``shared``: per workload, the work its search shares. Never
    raises for a design: a configuration that does not fit or a job that cannot progress (of any workload) is a
    row with its reason."""
    steps = []
    for w in range(len(workloads)):
        try:
            steps.append(best_step(scenarios[0][w], shared=shared[w] if shared else None))
        except InfeasibleError as exc:
            reason = f"no configuration: {workload_label(workloads, w)}{exc.message}"
            return [row.model_copy(update={"status": "infeasible", "reason": reason}) for row in rows]
    fab = fabric_report(scenarios[0][0].cluster)
    failures: dict[tuple[int, int], ReliabilityReport | SuperclusterError] = {}
    weights = [wl.weight for wl in workloads]
    out: list[DesignRow] = []
    for ss, tier, row in zip(scenarios, storage, rows, strict=True):
        runs = []
        for w, s in enumerate(ss):
            step = steps[w][0]
            ledger = facility_ledger(s, step, fab)
            assert ledger is not None  # a design has a facility (load_design)
            if (tier, w) not in failures and s.cluster.storage is None:
                failures[tier, w] = SuperclusterError(
                    "the cluster names no checkpoint storage (cluster.storage), which the failure model needs")
            if (tier, w) not in failures:  # the failure model reads the step and the storage, not the site
                try:
                    failures[tier, w] = run_reliability(s, step, None, runs=PLAN_RUNS, sizes=(), search_runs=0)
                except SuperclusterError as exc:  # failures outpace restarts (InfeasibleError)
                    failures[tier, w] = exc
            runs.append(_Run(ledger, failures[tier, w]))
        out.append(_design_row(row, [st for st, _ in steps], [summary.candidates for _, summary in steps], runs,
                               workloads, weights))
    return out


def _design_row(row: DesignRow, steps: list[StepReport], candidates: list[int], runs: list[_Run],
                workloads: list[Workload], weights: list[float]) -> DesignRow:
    """A design's row from each workload's step and run: the weighted totals (rows.DesignRow)."""
    times = [st.time_to_train_s for st in steps]
    run_times = [w * t for w, t in zip(weights, times, strict=True)]  # the time the cluster spends on each
    ledgers = [r.ledger for r in runs]
    waters = [x.water_m3_per_day for x in ledgers if x.water_m3_per_day is not None]
    figures = [WorkloadFigures(name=wl.name, weight=wl.weight, parallelism=st.parallelism,
                               step_time_s=st.step_time_s, mfu=st.mfu, time_to_train_s=st.time_to_train_s)
               for wl, st in zip(workloads, steps, strict=True)]
    row = row.model_copy(update={
        "configurations": sum(candidates),
        "parallelism": json.dumps(steps[0].parallelism, sort_keys=True), "step_time_s": steps[0].step_time_s,
        "mfu": _mean([st.mfu for st in steps], run_times), "time_to_train_s": _total(times, weights),
        "facility_average_power_w": _mean([x.average.facility_w for x in ledgers], run_times),
        "water_m3_per_day": max(waters) if len(waters) == len(ledgers) else None,  # the site supplies it every day
        "run_energy_facility_j": _total([x.run_energy_facility_j for x in ledgers], weights),
        "run_co2_kg": _total([x.run_co2_kg for x in ledgers], weights),
        "run_cost_usd": _total([x.run_cost_usd for x in ledgers], weights),
        "workloads": _figures_json(figures)})
    for w, r in enumerate(runs):
        if isinstance(r.failures, SuperclusterError):
            reason = workload_label(workloads, w) + getattr(r.failures, "message", str(r.failures))
            return row.model_copy(update={"status": "infeasible", "reason": f"failures outpace progress: {reason}"
                                          if isinstance(r.failures, InfeasibleError) else reason})
    rels = [r.failures for r in runs if not isinstance(r.failures, SuperclusterError)]
    with_failures = [rel.time_to_train_s["p50"] for rel in rels]
    costs = []
    for r, ttt in zip(runs, with_failures, strict=True):  # priced as the reliability ledger prices a run
        per_hour = cost_per_hour_usd(r.ledger)
        costs.append(wall_cost_usd(per_hour, ttt) if per_hour else None)
    figures = [f.model_copy(update={"time_to_train_with_failures_s": t}) for f, t in zip(figures, with_failures,
                                                                                          strict=True)]
    return row.model_copy(update={
        "time_to_train_with_failures_s": _total(with_failures, weights),
        "goodput": _mean([rel.goodput["mean"] for rel in rels],
                         [w * t for w, t in zip(weights, with_failures, strict=True)]),
        "run_cost_with_failures_usd": _total(costs, weights), "workloads": _figures_json(figures)})


def _figures_json(figures: list[WorkloadFigures]) -> str:
    return json.dumps([f.model_dump() for f in figures], sort_keys=True)
