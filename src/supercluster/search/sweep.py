"""Sweeps: a grid (or a list) of scenario variants, each planned for its best configuration, one row per point.

A sweep file names a base scenario and the fields to vary, by the same dotted paths as ``--set``::

    name: scaling
    scenario: memphis.yaml            # a scenario file (relative to the sweep file) or an inline scenario
    grid:                             # every combination, the first field outermost
      cluster.num_gpus: [1024, 16384, 131072]
      cluster.accelerator: [H100-SXM5-80GB, B200]
    points:                           # or (and) explicit variants
      - {cluster.num_gpus: 2048, model: llama3-405b}

Every point is independent and deterministic (its scenario's seed), so the rows do not depend on the backend or on
the order points finish in. Rows go to a DuckDB file as they complete (one transaction each; the point index is the
primary key), so an interrupted sweep resumes where it stopped; its ``meta`` table says whether it is complete.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InfeasibleError, InputError, SuperclusterError
from ..spec.load import build_scenario, read_base_scenario, read_spec_file
from .plan import plan

MAX_POINTS = 2_000  # more needs --yes

# One row per point: SI values, the unit in every name. Swept fields get a column each, "sweep." + the field's path
# (their values as JSON).
FIELD_PREFIX = "sweep."
COLUMNS: dict[str, str] = {
    "point": "BIGINT PRIMARY KEY",
    "overrides": "VARCHAR",
    "status": "VARCHAR",  # ok | infeasible (nothing fits, or no factorisation) | invalid (the variant breaks a rule)
    "error": "VARCHAR",
    "scenario": "VARCHAR",
    "num_gpus": "BIGINT",
    "accelerator": "VARCHAR",
    "model": "VARCHAR",
    "parallelism": "VARCHAR",
    "step_time_s": "DOUBLE",
    "mfu": "DOUBLE",
    "tokens_per_s": "DOUBLE",
    "time_to_train_s": "DOUBLE",
    "gpu_hours": "DOUBLE",
    "memory_per_gpu_bytes": "DOUBLE",
    "facility_peak_power_w": "DOUBLE",
    "facility_average_power_w": "DOUBLE",
    "water_m3_per_day": "DOUBLE",
    "run_energy_facility_j": "DOUBLE",
    "run_co2_kg": "DOUBLE",
    "run_cost_usd": "DOUBLE",
    "cost_per_gpu_hour_usd": "DOUBLE",
    "goodput": "DOUBLE",
    "time_to_train_with_failures_s": "DOUBLE",
    "job_mttf_s": "DOUBLE",
    "run_cost_with_failures_usd": "DOUBLE",
}


class SweepSpec(BaseModel):
    """A sweep file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="sweep", min_length=1)
    description: str | None = None
    scenario: str | dict[str, Any]
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    points: list[dict[str, Any]] = Field(default_factory=list)


class Sweep(BaseModel):
    """A loaded sweep: the base scenario as a dict, and every point's overrides in order."""

    model_config = ConfigDict(frozen=True)

    name: str
    file: str
    base: dict[str, Any]
    base_dir: str
    fields: list[str]
    points: list[dict[str, Any]]

    @property
    def digest(self) -> str:
        """Identity of the sweep's work (base scenario and points), to refuse resuming into another sweep's file."""
        text = json.dumps({"base": self.base, "points": self.points}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_sweep(path: str | Path) -> Sweep:
    """Read a sweep file, check every field and value against the base scenario; no point is planned yet."""
    p = Path(path)
    file = str(path)
    spec = read_spec_file(p, SweepSpec)
    base, base_dir, base_file = read_base_scenario(spec.scenario, p, file=file)
    build_scenario(base, file=base_file, base_dir=base_dir, check_rules=False)  # the base itself must be valid
    for name, values in spec.grid.items():
        if not values:
            raise InputError("an empty list of values: the grid would have no points", file=file,
                             field=f"grid.{name}")
    points: list[dict[str, Any]] = []
    if spec.grid:
        names = list(spec.grid)
        total = math.prod(len(v) for v in spec.grid.values())
        if total > 100 * MAX_POINTS:
            raise InputError(f"the grid has {total:,} points, more than {100 * MAX_POINTS:,}", file=file,
                             field="grid")
        points += [dict(zip(names, combo, strict=True)) for combo in itertools.product(*spec.grid.values())]
    points += [dict(pt) for pt in spec.points]
    if not points:
        raise InputError("no points: give a non-empty 'grid' or 'points'", file=file, field="grid")
    fields = list(dict.fromkeys(k for pt in points for k in pt))
    # Every field and every value, alone on the base, must make a valid scenario (a misspelt field, a wrong type,
    # an unknown catalog name are located here, before anything runs). Combinations can still break a rule: such a
    # point is recorded as invalid.
    seen: set[str] = set()
    for i, pt in enumerate(points):
        for key, value in pt.items():
            tag = f"{key}={json.dumps(value, sort_keys=True, default=str)}"
            if tag in seen:
                continue
            seen.add(tag)
            where = f"grid.{key}" if spec.grid and key in spec.grid else f"points.{i - _grid_len(spec)}.{key}"
            try:  # fields and types; the parallelism rules need the other fields too: checked per point
                build_scenario(base, file=base_file, base_dir=base_dir, overrides=[tag], check_rules=False)
            except InputError as exc:
                raise InputError(f"{key} = {value!r}: {exc.field + ': ' if exc.field else ''}{exc.message}",
                                 file=file, field=where) from None
    return Sweep(name=spec.name, file=file, base=base, base_dir=str(base_dir), fields=fields, points=points)


def _grid_len(spec: SweepSpec) -> int:
    return math.prod(len(v) for v in spec.grid.values()) if spec.grid else 0


def evaluate_point(base: dict[str, Any], base_dir: str, index: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """Plan one point; a row of COLUMNS (and the swept fields). Never raises for a bad variant: it is a row."""
    row: dict[str, Any] = {k: None for k in COLUMNS}
    row.update(point=index, overrides=json.dumps(overrides, sort_keys=True, default=str))
    for key, value in overrides.items():
        row[FIELD_PREFIX + key] = json.dumps(value, sort_keys=True, default=str)
    assignments = [f"{k}={json.dumps(v, default=str)}" for k, v in overrides.items()]
    try:
        s = build_scenario(base, base_dir=Path(base_dir), overrides=assignments)
        r = plan(s)
    except InfeasibleError as exc:
        return {**row, "status": "infeasible", "error": str(exc)}
    except SuperclusterError as exc:
        return {**row, "status": "invalid", "error": str(exc)}
    st = r.step
    row.update(status="ok", scenario=s.name, num_gpus=st.num_gpus, accelerator=st.accelerator, model=st.model,
               parallelism=json.dumps(st.parallelism, sort_keys=True), step_time_s=st.step_time_s, mfu=st.mfu,
               tokens_per_s=st.tokens_per_s, time_to_train_s=st.time_to_train_s, gpu_hours=st.gpu_hours,
               memory_per_gpu_bytes=st.memory_per_gpu_bytes)
    f = r.facility
    if f is not None:
        row.update(facility_peak_power_w=f.peak.facility_w, facility_average_power_w=f.average.facility_w,
                   water_m3_per_day=f.water_m3_per_day, run_energy_facility_j=f.run_energy_facility_j,
                   run_co2_kg=f.run_co2_kg, run_cost_usd=f.run_cost_usd,
                   cost_per_gpu_hour_usd=f.cost_per_gpu_hour_usd)
    rel = r.reliability
    if rel is not None:
        row.update(goodput=rel.goodput["mean"], time_to_train_with_failures_s=rel.time_to_train_s["p50"],
                   job_mttf_s=rel.mttf_unexpected_s, run_cost_with_failures_usd=rel.run_cost_with_failures_usd)
    elif r.reliability_infeasible:
        row.update(goodput=0.0, error=r.reliability_note)
    return row
