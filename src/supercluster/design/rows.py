"""DesignRow: one design's figures, typed, as the search records it (one DuckDB/Parquet row, one JSON object)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Status = Literal["ok", "infeasible", "pruned"]


class WorkloadFigures(BaseModel):
    """One workload of a planned design: its best parallelism and its times (for one run of it: ``weight`` runs
    count in the design's totals)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    weight: float
    parallelism: dict[str, Any]
    step_time_s: float
    mfu: float
    time_to_train_s: float
    time_to_train_with_failures_s: float | None = None  # None: its failures outpace its progress


class DesignRow(BaseModel):
    """SI values, the unit in every name. ``status``: ok (planned and within every constraint), infeasible (a
    constraint it breaks, or no configuration, with the reason), pruned (its bound shows a design of the front
    beats it: never planned).

    A design that runs several workloads (design.spec): times, energy, CO2 and run costs are the weighted sums over
    them (the cluster runs them in turn), average power, MFU and goodput their time-weighted means, water the most
    any of them needs a day; the bound is the weighted sum of the workloads' bounds; ``parallelism`` and
    ``step_time_s`` are the first workload's; ``workloads`` (JSON) holds each one's figures (WorkloadFigures)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    design: int
    status: Status = "ok"
    reason: str | None = None
    accelerator: str | None = None
    num_gpus: int
    gpus_per_node: int | None = None
    domain_gpus: int
    fabric: str
    transport: str | None = None
    tiers: int | None = None
    oversubscription: str | None = None
    facility: str
    pue: float | None = None
    storage: str
    bound_time_s: float | None = None  # model FLOPs / the GPUs' dense peak: no configuration trains faster
    capex_usd: float | None = None
    capex_gpus_usd: float | None = None
    capex_servers_usd: float | None = None
    capex_switches_usd: float | None = None
    capex_nics_usd: float | None = None
    capex_optics_usd: float | None = None
    capex_storage_usd: float | None = None
    capex_facility_usd: float | None = None
    budget_capex_usd: float | None = None  # the capex the budget pays for
    facility_peak_power_w: float | None = None
    configurations: int | None = None  # parallel configurations its plan searched (offload variants not counted)
    parallelism: str | None = None  # JSON
    step_time_s: float | None = None
    mfu: float | None = None
    time_to_train_s: float | None = None
    time_to_train_with_failures_s: float | None = None
    goodput: float | None = None
    facility_average_power_w: float | None = None
    water_m3_per_day: float | None = None
    run_energy_facility_j: float | None = None
    run_co2_kg: float | None = None
    run_cost_usd: float | None = None
    run_cost_with_failures_usd: float | None = None
    workloads: str | None = None  # JSON: a WorkloadFigures per workload

    @property
    def planned(self) -> bool:
        return self.time_to_train_with_failures_s is not None

    def workload_figures(self) -> list[WorkloadFigures]:
        """Each workload's figures (none before the design is planned)."""
        return [WorkloadFigures(**w) for w in json.loads(self.workloads)] if self.workloads else []

    def objectives(self) -> tuple[float, float, float]:
        """What the front minimises: time to train with failures, capex, facility peak power."""
        assert self.time_to_train_with_failures_s is not None and self.capex_usd is not None \
            and self.facility_peak_power_w is not None
        return self.time_to_train_with_failures_s, self.capex_usd, self.facility_peak_power_w


_SQL = {int: "BIGINT", float: "DOUBLE", str: "VARCHAR"}


def _sql(annotation: object) -> str:
    for py, sql in _SQL.items():
        if annotation is py or py.__name__ in str(annotation):
            return sql
    return "VARCHAR"


COLUMNS: dict[str, str] = {name: ("BIGINT PRIMARY KEY" if name == "design" else _sql(f.annotation))
                           for name, f in DesignRow.model_fields.items()}
