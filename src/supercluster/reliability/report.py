"""The reliability ledger of a run: failure rates on the job, checkpoint and restart costs, the best checkpoint
interval, a Monte Carlo of the whole run (time-to-train P10/P50/P90, interruptions by cause, goodput, energy
wasted), and its sensitivity to the checkpoint interval and to the cluster size."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import InfeasibleError, SpecError
from ..perf.report import StepReport
from ..spec.scenario import Scenario
from ..units import SECONDS_PER_DAY, SECONDS_PER_HOUR
from .checkpoint import (
    CheckpointCost,
    checkpoint_cost,
    daly_expected_wall_s,
    daly_interval_s,
    young_interval_s,
)
from .montecarlo import RunModel, RunSamples, check_progress, simulate
from .rates import ClassRate, class_rates, job_mttf_s

INTERVAL_FACTORS = (0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0)  # x Daly's optimum, for the interval search
SIZE_SWEEP_GPUS = (16_384, 25_000, 100_000, 200_000)
DEFAULT_RUNS = 1000
PLAN_RUNS = 100  # the summary `plan` attaches
MAX_RUNS = 1_000_000
SEARCH_RUNS = 200  # runs per candidate interval (common random numbers: the same seed for each)
SWEEP_RUNS = 200


class FailureRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    cause: str
    per: str
    planned: bool
    needs_node_swap: bool
    per_unit_per_hour: float
    component_mtbf_years: float | None
    units: float
    per_day: float  # expected on this job
    simulated_per_run: float  # mean count per simulated run


class IntervalPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    interval_s: float
    goodput: float  # simulated mean
    daly_goodput: float  # Daly's closed form (mean restart, synchronous cost)


class SizePoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    gpus: int
    mttf_h: float
    interruptions_per_day: float
    interval_s: float
    goodput: float
    time_to_train_days: float | None  # failure-free time scaled as 1/GPUs, / goodput (None: no progress)


class ReliabilityReport(BaseModel):
    """SI inside (s, bytes, J); days and hours in the names where used."""

    model_config = ConfigDict(frozen=True)

    scenario: str
    profile: str
    num_gpus: int
    runs: int
    seed: int
    failures: list[FailureRow]
    mttf_unexpected_s: float
    mttf_all_s: float
    interruptions_per_day: float
    checkpoint_bytes: float
    checkpoint_per_gpu_bytes: float
    checkpoint_write_s: float
    checkpoint_read_s: float
    checkpoint_snapshot_s: float
    checkpoint_blocking_s: float
    async_checkpoint: bool
    restart_s: dict[str, float]  # unexpected (mean over classes, by rate), planned
    spare_free_probability: float
    interval_young_s: float
    interval_daly_s: float
    interval_best_simulated_s: float | None
    interval_used_s: float
    interval_source: str
    failure_free_s: float
    time_to_train_s: dict[str, float]  # mean, p10, p50, p90
    goodput: dict[str, float]  # mean, p10, p50, p90
    lost_time_s: dict[str, float]  # mean per run: restart, checkpoint, lost_work
    energy_wasted_j: float | None  # mean over runs: (wall time - failure-free time) x average facility power
    run_energy_facility_with_failures_j: float | None  # P50 wall time x average facility power
    run_cost_with_failures_usd: float | None  # P50 wall time x the facility ledger's cost per hour
    interval_sensitivity: list[IntervalPoint]
    size_sensitivity: list[SizePoint]
    estimate: bool
    source: str


def run_model(s: Scenario, rates: list[ClassRate], ck: CheckpointCost, *, gpus: int, work_s: float,
               interval_s: float) -> RunModel:
    """The simulation inputs of a job of ``gpus`` GPUs: its class rates, and each class's restart = detection
    (unplanned only) + relaunch + initialisation (linear in GPUs) + reading the checkpoint back."""
    rel = s.reliability
    base = rel.relaunch_s + rel.init_s_per_1k_gpus * gpus / 1000.0 + ck.read_s
    return RunModel(
        work_s=work_s, interval_s=interval_s, blocking_s=ck.blocking_s, commit_lag_s=ck.commit_lag_s,
        rates_per_s=tuple(r.rate_per_s for r in rates),
        restart_s=tuple(base + (0.0 if r.failure.planned else rel.detection_s) for r in rates),
        planned=tuple(r.failure.planned for r in rates),
        needs_node_swap=tuple(r.failure.needs_node_swap for r in rates),
        node_swap_s=rel.node_swap_s, node_repair_s=rel.node_repair_s, hot_spare_nodes=rel.hot_spare_nodes)


def _usable_daly_s(ck: CheckpointCost, mttf_s: float) -> float:
    """Daly's interval, but never shorter than an asynchronous write (or a second)."""
    return max(daly_interval_s(ck.blocking_s, mttf_s), ck.commit_lag_s, 1.0)


def _mean_restart_s(m: RunModel, *, planned: bool) -> float:
    pairs = [(r, c) for r, c, p in zip(m.rates_per_s, m.restart_s, m.planned, strict=True) if p == planned]
    total = sum(r for r, _ in pairs)
    return sum(r * c for r, c in pairs) / total if total > 0 else 0.0


def _daly_goodput(m: RunModel, interval_s: float) -> float:
    lam = sum(r for r, p in zip(m.rates_per_s, m.planned, strict=True) if not p)
    if lam == 0:
        return m.work_s / (m.work_s + m.blocking_s * max(np.ceil(m.work_s / interval_s) - 1, 0))
    wall = daly_expected_wall_s(m.work_s, interval_s=interval_s, blocking_s=m.blocking_s,
                                restart_s=_mean_restart_s(m, planned=False), mttf_s=1.0 / lam)
    return m.work_s / wall


def _search_interval(m: RunModel, daly_s: float, *, seed: int, runs: int) -> tuple[float, list[IntervalPoint]]:
    """The interval with the best simulated mean goodput among multiples of Daly's (the same seed for each)."""
    points = []
    for f in INTERVAL_FACTORS:
        tau = max(daly_s * f, m.commit_lag_s, 1.0)
        sm = replace(m, interval_s=tau)
        try:
            good = float(simulate(sm, runs=runs, seed=seed).goodput.mean())
        except InfeasibleError:  # no progress with slices this long (Daly's interval was checked to make progress)
            good = 0.0
        points.append(IntervalPoint(interval_s=tau, goodput=good, daly_goodput=_daly_goodput(sm, tau)))
    best = max(points, key=lambda p: (p.goodput, -p.interval_s))
    return best.interval_s, points


def _percentiles(x: np.ndarray) -> dict[str, float]:
    p10, p50, p90 = np.percentile(x, [10, 50, 90])
    return {"mean": float(x.mean()), "p10": float(p10), "p50": float(p50), "p90": float(p90)}


def wall_cost_usd(cost_per_hour_usd: float, wall_s: float) -> float:
    """What a run costs: its wall time (the P50 with failures) at the cluster's cost per hour."""
    return cost_per_hour_usd * wall_s / SECONDS_PER_HOUR


def reliability_report(s: Scenario, step: StepReport, *, runs: int = DEFAULT_RUNS, seed: int | None = None,
                       sizes: tuple[int, ...] = SIZE_SWEEP_GPUS, search_runs: int = SEARCH_RUNS,
                       sweep_runs: int = SWEEP_RUNS, facility_w: float | None = None,
                       cost_per_hour_usd: float | None = None) -> ReliabilityReport:
    """The reliability ledger of the scenario's run with the parallelism ``step`` reports. ``facility_w``, the
    site's average power during the run, and ``cost_per_hour_usd``, what an hour of the cluster costs (both from the
    facility ledger, when the scenario names a facility), price the time failures add.

    Raises InfeasibleError when the job cannot make progress at Daly's interval: the same answer whether or not the
    interval is then searched (plan's summary does not search it)."""
    if runs < 1:
        raise SpecError(f"runs must be at least 1, got {runs}", field="runs")
    seed = s.seed if seed is None else seed
    rel = s.reliability
    gpus = step.num_gpus
    per_gpu = step.memory_breakdown["weights"] + step.memory_breakdown["optimizer"]
    ck = checkpoint_cost(s.model, s.cluster, rel, gpus=gpus, per_gpu_state_bytes=per_gpu)
    rates = class_rates(rel, s.cluster, gpus)
    mttf = job_mttf_s(rates)
    work = step.time_to_train_s
    m = run_model(s, rates, ck, gpus=gpus, work_s=work, interval_s=1.0)
    young = young_interval_s(ck.blocking_s, mttf)
    daly = _usable_daly_s(ck, mttf)
    check_progress(replace(m, interval_s=daly))
    if search_runs > 0:
        best, points = _search_interval(m, daly, seed=seed, runs=min(runs, search_runs))
        found = "best simulated"
    else:  # no search asked for (plan's summary): Daly's optimum
        best, points, found = daly, [], "Daly's optimum (no simulated search)"
    if rel.checkpoint_interval_s is not None:
        used, how = rel.checkpoint_interval_s, "given (reliability.checkpoint_interval_s)"
    else:
        used, how = best, found
    samples = simulate(replace(m, interval_s=used), runs=runs, seed=seed)
    wasted_j = energy_j = cost_usd = None
    wall_p50 = float(np.percentile(samples.wall_s, 50))
    if facility_w is not None:
        wasted_j = float((samples.wall_s - work).mean()) * facility_w
        energy_j = wall_p50 * facility_w
    if cost_per_hour_usd is not None:
        cost_usd = wall_cost_usd(cost_per_hour_usd, wall_p50)
    return ReliabilityReport(
        scenario=s.name, profile=rel.name, num_gpus=gpus, runs=runs, seed=seed,
        failures=_failure_rows(rates, samples),
        mttf_unexpected_s=mttf, mttf_all_s=job_mttf_s(rates, unexpected_only=False),
        interruptions_per_day=m.total_rate_per_s * SECONDS_PER_DAY,
        checkpoint_bytes=ck.bytes, checkpoint_per_gpu_bytes=ck.per_gpu_bytes, checkpoint_write_s=ck.write_s,
        checkpoint_read_s=ck.read_s, checkpoint_snapshot_s=ck.snapshot_s, checkpoint_blocking_s=ck.blocking_s,
        async_checkpoint=rel.async_checkpoint,
        restart_s={"unexpected": _mean_restart_s(m, planned=False), "planned": _mean_restart_s(m, planned=True)},
        spare_free_probability=m.spare_free_probability,
        interval_young_s=young, interval_daly_s=daly, interval_best_simulated_s=best if search_runs > 0 else None, interval_used_s=used,
        interval_source=how, failure_free_s=work,
        time_to_train_s=_percentiles(samples.wall_s), goodput=_percentiles(samples.goodput),
        lost_time_s={"restart": float(samples.restart_s.mean()), "checkpoint": float(samples.checkpoint_s.mean()),
                     "lost_work": float(samples.lost_work_s.mean())},
        energy_wasted_j=wasted_j, run_energy_facility_with_failures_j=energy_j, run_cost_with_failures_usd=cost_usd,
        interval_sensitivity=points,
        size_sensitivity=_size_sweep(s, step, sizes, per_gpu, seed=seed, runs=min(runs, sweep_runs)),
        estimate=rel.estimate, source=rel.source)


def _failure_rows(rates: list[ClassRate], samples: RunSamples) -> list[FailureRow]:
    per_run = samples.events.mean(axis=0)
    rows = []
    for r, n in zip(rates, per_run, strict=True):
        per_unit_h = r.per_unit_per_s * SECONDS_PER_HOUR
        rows.append(FailureRow(
            cause=r.failure.cause, per=r.failure.per, planned=r.failure.planned,
            needs_node_swap=r.failure.needs_node_swap, per_unit_per_hour=per_unit_h,
            component_mtbf_years=(1.0 / per_unit_h / 8766.0 if per_unit_h > 0 and r.failure.per != "job" else None),
            units=r.units, per_day=r.rate_per_s * SECONDS_PER_DAY, simulated_per_run=float(n)))
    return rows


def _size_sweep(s: Scenario, step: StepReport, sizes: tuple[int, ...], per_gpu_bytes: float, *, seed: int,
                runs: int) -> list[SizePoint]:
    """Goodput at other job sizes on the same kind of cluster: counts, storage and initialisation scale with the
    GPUs; the failure-free time scales as 1/GPUs (same per-GPU throughput) and each GPU keeps its shard size. No
    sizes asked for (plan's summary): none, not even the job's own (its simulation is the report's)."""
    if not sizes:
        return []
    out = []
    for n in sorted({*sizes, step.num_gpus}):
        n = max(s.cluster.gpus_per_node, n - n % s.cluster.gpus_per_node)
        cluster = s.cluster.model_copy(update={"num_gpus": n})
        try:
            rates = class_rates(s.reliability, cluster, n)
        except SpecError:
            continue  # the fabric spec cannot hold this many GPUs
        ck = checkpoint_cost(s.model, cluster, s.reliability, gpus=n, per_gpu_state_bytes=per_gpu_bytes)
        work = step.time_to_train_s * step.num_gpus / n
        mttf = job_mttf_s(rates)
        tau = _usable_daly_s(ck, mttf)
        sm = run_model(s, rates, ck, gpus=n, work_s=work, interval_s=tau)
        try:
            good = float(simulate(sm, runs=runs, seed=seed).goodput.mean())
        except InfeasibleError:  # no progress at this size
            good = 0.0
        out.append(SizePoint(gpus=n, mttf_h=mttf / SECONDS_PER_HOUR,
                             interruptions_per_day=sm.total_rate_per_s * SECONDS_PER_DAY, interval_s=tau,
                             goodput=good, time_to_train_days=work / good / SECONDS_PER_DAY if good > 0 else None))
    return out
