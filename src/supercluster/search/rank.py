"""rank(): the K fastest configurations of a scenario, the Pareto front over step time, memory headroom and cost per
token, and why the fastest wins.

Every configuration of the pruned space is timed (perf.evaluate, in chunks); those that fit in memory are ranked by
step time (ties: less memory, then enumeration order — the same order as plan(), so the first is plan's choice).
Cost per token = the cluster's cost per hour (the facility ledger's, or GPUs x the accelerator's cited cloud price
without a facility) x step time / tokens per step: on one cluster it follows the step time, across sweeps it does
not. The Pareto front holds every fitting configuration that no other beats on step time and memory headroom
(budget - memory per GPU) at once, cost following step time.

"Why": for each parallel axis, the fastest fitting configuration that differs from the winner on that axis, how much
slower it is, and the parts of the step that account for the difference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import InfeasibleError
from ..facility.ledger import FacilityReport
from ..perf.candidates import RECOMPUTE_NAMES, Candidates
from ..perf.report import StepReport
from ..perf.step import PARTS
from ..spec.calibration import Calibration
from ..spec.scenario import Scenario
from ..spec.training import SCHEDULES
from ..workload.flops import model_flops_per_token
from ..workload.model_report import ModelReport
from .plan import evaluated_chunks, plan
from .space import enumerate_space

AXES = ("tp", "pp", "dp", "cp", "ep", "etp", "micro_batch", "virtual_stages", "schedule", "recompute", "zero_stage")
PARETO_LIMIT = 200  # rows of the front printed or returned (the front's size is reported)


class Ranked(BaseModel):
    """One configuration: its degrees and figures (SI)."""

    model_config = ConfigDict(frozen=True)

    rank: int
    parallelism: dict[str, Any]
    step_time_s: float
    mfu: float
    memory_per_gpu_bytes: float
    headroom_bytes: float
    cost_per_million_tokens_usd: float | None
    breakdown: dict[str, float]


class Reason(BaseModel):
    model_config = ConfigDict(frozen=True)

    axis: str
    winner: Any
    alternative: Any | None  # the value of the fastest fitting configuration with another value of the axis
    slower_by: float | None  # its step time / the winner's - 1
    parts: dict[str, float]  # its parts minus the winner's, seconds, largest first (at most 3)


class SearchReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    scenario: str
    model: ModelReport  # the model as it is counted, with its assumptions (the same as plan's)
    num_gpus: int
    candidates: int
    fitting: int
    cost_basis: str | None
    top: list[Ranked]
    pareto_size: int
    pareto: list[Ranked]
    why: list[Reason]
    best: StepReport


def _cost_per_hour(s: Scenario, facility: FacilityReport | None) -> tuple[float | None, str | None]:
    if facility is not None and facility.cost_per_gpu_hour_usd is not None:
        return float(facility.cost_per_hour_usd["total"]), "facility ledger (capex, power, water per hour)"
    price = s.cluster.accelerator.cloud_usd_per_gpu_hour
    if price is not None:
        return price * s.cluster.num_gpus, f"cloud price of the accelerator (${price:.2f} per GPU-hour)"
    return None, None


def rank(s: Scenario, *, top: int = 10, pareto: bool = False, calibration: Calibration | None = None
         ) -> SearchReport:
    """Time every configuration of the scenario's space; the ``top`` fastest that fit, and (``pareto``) the front."""
    if top < 1:
        raise ValueError("top must be at least 1")
    cal = s.calibrated(calibration)
    run = plan(s, calibration, with_reliability=False)  # raises InfeasibleError with its reasons if nothing fits
    space = enumerate_space(s)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("step", "mem", "fits", *PARTS)}
    chunks: list[Candidates] = []
    for _, chunk, arrays in evaluated_chunks(s, space, cal):  # the space, and the offloads of what did not fit
        chunks.append(chunk)
        cols["step"].append(arrays.step_time_s)
        cols["mem"].append(arrays.memory.total_bytes)
        cols["fits"].append(arrays.fits)
        for p in PARTS:
            cols[p].append(arrays.parts[p])
        budget = arrays.hbm_budget_bytes
    a = {k: np.concatenate(v) for k, v in cols.items()}
    space = Candidates.concat(chunks)
    fit = np.flatnonzero(a["fits"])
    if fit.size == 0:  # pragma: no cover - plan() raised already
        raise InfeasibleError(f"{s.name}: no configuration fits in memory")
    order = fit[np.lexsort((fit, a["mem"][fit], a["step"][fit]))]
    per_hour, basis = _cost_per_hour(s, run.facility)
    tokens_step = float(s.training.global_batch * s.seq_len)
    flops_step = model_flops_per_token(s.model, s.seq_len, s.training.lora) * tokens_step
    peak = s.cluster.num_gpus * s.cluster.accelerator.peak_flops_per_s(s.training.precision)

    def ranked(i: int, r: int) -> Ranked:
        row = space.row(int(i))
        step = float(a["step"][i])
        return Ranked(
            rank=r, parallelism=row, step_time_s=step, mfu=flops_step / (step * peak),
            memory_per_gpu_bytes=float(a["mem"][i]), headroom_bytes=float(budget - a["mem"][i]),
            cost_per_million_tokens_usd=(per_hour * step / 3600.0 / tokens_step * 1e6 if per_hour is not None
                                         else None),
            breakdown={p: float(a[p][i]) for p in PARTS})

    rank_of = np.empty(len(space), dtype=np.int64)
    rank_of[order] = np.arange(1, order.size + 1)
    front: list[Ranked] = []
    front_size = 0
    if pareto:  # sorted by step time, a configuration is on the front when it has more headroom than all before
        head = budget - a["mem"][order]
        on = head > np.maximum.accumulate(np.concatenate([[-np.inf], head[:-1]]))
        idx = order[on]
        front_size = int(idx.size)
        front = [ranked(i, int(rank_of[i])) for i in idx[:PARETO_LIMIT]]
    return SearchReport(
        scenario=s.name, model=run.model, num_gpus=s.cluster.num_gpus, candidates=len(space),
        fitting=int(fit.size),
        cost_basis=basis,
        top=[ranked(i, r + 1) for r, i in enumerate(order[:top])], pareto_size=front_size, pareto=front,
        why=_why(space, a, order), best=run.step)


def _why(space: Candidates, a: dict[str, np.ndarray], order: np.ndarray) -> list[Reason]:
    """Per axis: the fastest fitting configuration with another value than the winner's (``order`` is sorted)."""
    win = int(order[0])
    out = []
    for axis in AXES:
        col = getattr(space, axis)[order]
        other = np.flatnonzero(col != col[0])
        value = _value(axis, col[0])
        if other.size == 0:
            out.append(Reason(axis=axis, winner=value, alternative=None, slower_by=None, parts={}))
            continue
        j = int(order[other[0]])
        delta = {p: float(a[p][j] - a[p][win]) for p in PARTS}
        top3 = dict(sorted(delta.items(), key=lambda kv: -abs(kv[1]))[:3])
        out.append(Reason(axis=axis, winner=value, alternative=_value(axis, getattr(space, axis)[j]),
                          slower_by=float(a["step"][j] / a["step"][win] - 1.0), parts=top3))
    return out


def _value(axis: str, v: Any) -> Any:
    if axis == "schedule":
        return SCHEDULES[int(v)]
    return RECOMPUTE_NAMES[int(v)] if axis == "recompute" else int(v)
