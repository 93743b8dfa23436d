"""Simulate one configuration's iterations and report them as plan reports a step (perf.report.StepReport's parts).

The op costs are perf.step's for that one candidate (evaluate(...).ops, with each axis's contention factor applied
before the overlap rules); sim.graph lays them out as tasks, sim.engine runs them. The breakdown is read off the
simulated timeline of the busiest simulated stage (the most busy time): its compute, recompute, exposed
collectives per axis and sends, the data-parallel time its stream waited for, the optimizer and offload; the
pipeline bubble is the rest of the iteration, so the parts sum to the step time. What every GPU does over the
iteration (sim.activity: the input of the step's power trace) is read off the same timeline on request
(SimResult.timeline).
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import InputError
from ..perf.candidates import OFFLOAD_BITS, Candidates
from ..perf.step import PARTS, OpCosts, evaluate
from ..spec.calibration import Calibration
from ..spec.layout import expand_layout, stage_chunks
from ..spec.model import moe_layers_among
from ..spec.scenario import Scenario
from ..spec.training import Schedule, pipeline_accounting
from ..workload.memory import stage_layer_counts
from .activity import KIND_PARTS, ActivityTimeline, activity_timeline, replica_weights
from .contention import ContentionSummary
from .engine import Streams
from .graph import Graph, IterationCosts, StageCosts, build_graph
from .variability import Straggler, gpu_slowdown, group_slowdown, representatives

Detail = Literal["symmetric", "full"]
MAX_FULL_GPUS = 4096  # --detail full simulates every pipeline replica: at most this many GPUs
COMM_AXES = ("tp", "cp", "ep")


class IterationStats(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    iterations: int
    min_s: float
    median_s: float
    p95_s: float
    max_s: float


class SimPower(BaseModel):
    """The cluster's draw over the simulated step (W): its lowest, time-weighted average and highest level and the
    swing between them, at the IT boundary and at the facility (x PUE), and the floor of a stopped job (every GPU
    idle: a checkpoint stall, a restart). Set by search.sim_power from the step's activity timeline with
    facility.power's model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_it_w: float
    average_it_w: float
    max_it_w: float
    swing_it_w: float  # max - min within the step
    min_facility_w: float
    average_facility_w: float
    max_facility_w: float
    swing_facility_w: float
    stopped_it_w: float
    stopped_facility_w: float


class SimReport(BaseModel):
    """One configuration simulated: the first iteration's step and its breakdown (PARTS, summing to
    ``step_time_s``), the analytic model's figure for the same input, and the spread over the iterations."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: str
    num_gpus: int
    parallelism: dict[str, int | str | bool]
    detail: Detail
    seed: int
    jitter_sigma: float
    stragglers: list[str]
    comm_factors: dict[str, float] | None
    replicas_simulated: int
    stages: int
    microbatches: int
    step_time_s: float
    breakdown: dict[str, float]
    analytic_step_time_s: float
    rel_difference: float  # simulated / analytic - 1
    busiest_stage: int
    tasks: int
    events: int
    distribution: IterationStats
    contention: ContentionSummary | None = None  # set by sim.contended: the fabric's flows behind comm_factors
    power: SimPower | None = None  # set by search.sim_power; None without a facility (no PUE), as facility's


@dataclass(frozen=True)
class SimResult:
    report: SimReport
    graph: Graph  # the first iteration's tasks, with their start and end times
    wall_s: float  # the whole call
    events: int  # over every iteration
    engine_s: float  # building and running the graphs (what events/s is measured on)
    stage_gpus: dict[int, float]  # per simulated replica (its label), the GPUs each of its stages stands for
    host_wait_s: float  # of the optimizer part, the host's work of the step (the GPUs wait)
    power_trace: tuple[np.ndarray, np.ndarray] | None = None  # set by search.sim_power: times, IT W from each on

    @property
    def events_per_s(self) -> float:
        return self.events / max(self.engine_s, 1e-9)

    def timeline(self) -> ActivityTimeline:
        """What every GPU does over the first iteration (sim.activity)."""
        return activity_timeline(self.graph, self.stage_gpus, self.host_wait_s)


def candidate_from_parallelism(par: dict[str, int | str | bool]) -> Candidates:
    """The one-row candidate batch of a plan report's parallelism (perf.candidates.Candidates.row, inverted)."""
    names = ("tp", "pp", "dp", "cp", "ep", "etp", "micro_batch", "virtual_stages", "recompute", "zero_stage", "order")
    cols = {k: [par[k]] for k in names}
    if "schedule" in par:
        cols["schedule"] = [str(par["schedule"])]
    cols["sp"] = [bool(par["sequence_parallel"])]
    cols["offload"] = [sum(bit for k, bit in OFFLOAD_BITS.items() if par.get(k))]
    return Candidates.from_columns(**cols)


def iteration_costs(s: Scenario, par: dict[str, int | str | bool], ops: OpCosts, *,
                    extra_layers_first: bool = False) -> IterationCosts:
    """Plain per-chunk costs of candidate 0 of ``ops``: each chunk's actual dense and MoE layers. An uneven split
    gives the last L mod pp stages one layer more (the analytic model's busiest stage: ceil(L/pp) layers and the
    LM head), or the first ones with ``extra_layers_first`` (away from the head: a better balance). Under DualPipe
    the expert all-to-all is the unhidden one (no overlap knob: the pairs hide it as they run)."""
    pp, v = int(par["pp"]), int(par["virtual_stages"])
    schedule = cast(Schedule, str(par.get("schedule", "1f1b")))
    ep_key = "ep_raw" if schedule == "dualpipe" else "ep"
    m_float = float(ops.microbatches[0])
    m = int(round(m_float))
    if m < 1 or abs(m - m_float) > 1e-9:
        raise InputError(f"the simulator needs a whole number of micro-batches, got {m_float:g}",
                         field="training.global_batch")
    moe_flags = s.model.moe_layer_flags  # where the model places its MoE layers
    per_layer = {k: {a: float(x[0]) for a, x in attrs.items()} for k, attrs in ops.layer.items()}
    e, lo = (int(x) for x in pipeline_accounting(s.training, pp))  # the embedding and the loss counted as layers
    counts = [stage_layer_counts(n, v, extra_first=True)  # a stage's layers over its chunks, the first ones fuller
              for n in stage_layer_counts(s.model.layers, pp, extra_first=extra_layers_first, embedding=e, loss=lo)]
    heads = [[int(st == pp - 1 and c == v - 1) for c in range(v)] for st in range(pp)]  # LM-head passes a chunk
    layout = s.training.pipeline_layout
    if layout is not None and len(expand_layout(layout)) == pp * v:  # the run's own placement (spec.layout)
        placed = stage_chunks(layout, pp)
        counts = [[ch.layers for ch in row] for row in placed]  # an MTP module computed as a layer
        heads = [[ch.heads for ch in row] for row in placed]
    first_layer = {}
    i = 0
    for k in range(pp * v):  # model chunk c of stage s is the (c * pp + s)-th block of layers
        c, st = divmod(k, pp)
        first_layer[(st, c)] = i
        i += counts[st][c]
    head_f, head_b, head_w = float(ops.head_fwd_s[0]), float(ops.head_bwd_s[0]), float(ops.head_wgrad_s[0])
    chunks = []
    for st in range(pp):
        row = []
        for c in range(v):
            n = counts[st][c]
            lo = first_layer[(st, c)]
            n_dense = n - moe_layers_among(moe_flags, lo, n)
            mix = {"dense": n_dense, "moe": n - n_dense}

            def total(attr: str, mix: dict[str, int] = mix) -> float:
                return sum(k * per_layer[kind][attr] for kind, k in mix.items() if k)

            head = heads[st][c]
            fwd = total("fwd") + head * head_f
            bwd = total("bwd") + head * head_b
            share = fwd / max(fwd + bwd, 1e-300)  # the forward's share of the collectives (perf.step's rule)
            comm = {a: total(ep_key if a == "ep" else a) for a in COMM_AXES}
            row.append(StageCosts(fwd_s=fwd, bwd_s=bwd, recompute_s=total("recompute"),
                                  comm_fwd_s={a: share * x for a, x in comm.items()},
                                  comm_bwd_s={a: (1.0 - share) * x for a, x in comm.items()}, layers=n,
                                  wgrad_s=total("wgrad") + head * head_w))
        chunks.append(tuple(row))
    present = [r for r in ops.replicas if bool(r.present[0])]

    def dp(attr: str) -> float:
        return sum(float(getattr(r, attr)[0]) for r in present)

    return IterationCosts(
        pp=pp, v=v, m=m, chunks=tuple(chunks), pp_send_s=float(ops.pp_send_s[0]), zero_stage=int(ops.zero_stage[0]),
        dp_hide=float(ops.dp_hide), fsdp_prefetch=float(ops.fsdp_prefetch), zero3_by_layer=ops.zero3_by_layer,
        grad_s=dp("grad_s"), buckets=dp("buckets"), gather_s=dp("gather_s"), gather_layer_s=dp("gather_layer_s"),
        scatter_layer_s=dp("scatter_layer_s"), tensor_layer_s=dp("tensor_layer_s"),
        optimizer_s=float(ops.optimizer_s[0]), offload_s=float(ops.offload_s[0]),
        schedule=schedule, dp_after_flush=ops.dp_after_flush, flushes=s.training.pipeline_flushes)


def _breakdown(g: Graph) -> tuple[float, dict[str, float], int]:
    """Step time, its parts and the busiest stage, read off a run graph."""
    busy: dict[tuple[int, int], dict[str, float]] = {}
    end_before_opt = 0.0
    step = 0.0
    for t, kind in zip(g.tasks, g.kinds, strict=True):
        rep, st, _ = g.streams[t.stream]
        parts = busy.setdefault((rep, st), {})
        parts[kind] = parts.get(kind, 0.0) + t.duration_s
        if kind == "optimizer":
            end_before_opt = max(end_before_opt, t.start_s)
        step = max(step, t.end_s)
    names = {k: KIND_PARTS[k] for k in ("compute", "recompute", "tp", "cp", "ep", "pp")}  # the busy kinds
    keys = sorted(busy, key=lambda k: (-sum(v for kk, v in busy[k].items() if kk in names), k))
    index = {lab: i for i, lab in enumerate(dict.fromkeys(r for r, _, _ in g.streams))}
    rep, st = keys[0]
    r_i = index[rep]
    out = dict.fromkeys(PARTS, 0.0)
    for kind, part in names.items():
        out[part] = busy[(rep, st)].get(kind, 0.0)
    out["dp_comm"] = sum(max(0.0, g.tasks[d].end_s - g.tasks[c].end_s) for c, d in g.joins.get((r_i, st), []))
    for chain, comm, ep_share in g.hidden.get((r_i, st), []):  # DualPipe pairs: the comm the compute left exposed
        exposed = max(0.0, g.tasks[comm].end_s - g.tasks[chain].end_s)
        out["ep_comm"] += ep_share * exposed
        out["pp_comm"] += (1.0 - ep_share) * exposed
    out["optimizer"] = busy[(rep, st)].get("optimizer", 0.0)
    out["offload"] = busy[(rep, st)].get("offload", 0.0)
    used = sum(out[p] for p in names.values()) + out["dp_comm"]
    out["pipeline_bubble"] = end_before_opt - used
    return step, out, st


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def check_detail(detail: str, num_gpus: int) -> None:
    """A detail level the simulator has, and full detail only up to MAX_FULL_GPUS: one located line."""
    if detail not in ("symmetric", "full"):
        raise InputError(f"expected symmetric or full, got {detail!r}", field="--detail")
    if detail == "full" and num_gpus > MAX_FULL_GPUS:
        raise InputError(f"--detail full simulates every replica of at most {MAX_FULL_GPUS:,} GPUs; this cluster "
                         f"has {num_gpus:,} (use --detail symmetric)", field="--detail")


def simulate(s: Scenario, cal: Calibration, par: dict[str, int | str | bool], *, detail: Detail = "symmetric",
             seed: int = 0, iterations: int = 1, jitter_sigma: float = 0.0, stragglers: tuple[Straggler, ...] = (),
             comm_factors: dict[str, float] | None = None, extra_layers_first: bool = False) -> SimResult:
    """Simulate ``iterations`` iterations of the configuration ``par`` (a plan report's parallelism)."""
    check_detail(detail, s.cluster.num_gpus)
    start = time.perf_counter()
    c = candidate_from_parallelism(par)
    arrays = evaluate(s, c, cal, comm_factors=comm_factors)
    assert arrays.ops is not None
    costs = iteration_costs(s, par, arrays.ops, extra_layers_first=extra_layers_first)
    work = [sum(ch.fwd_s + ch.bwd_s + ch.recompute_s for ch in stage) for stage in costs.chunks]
    if costs.schedule == "dualpipe":  # rank r runs stage r and stage pp - 1 - r
        work = [work[r] + work[costs.pp - 1 - r] for r in range(costs.pp)]
    times, events, first = [], 0, None
    engine_start = time.perf_counter()
    for it in range(iterations):
        groups = group_slowdown(gpu_slowdown(s, sigma=jitter_sigma, seed=seed, iteration=it, stragglers=stragglers),
                                par)
        if detail == "full":
            labels, slow = list(range(groups.shape[0])), groups.tolist()
        else:
            labels, slow = representatives(groups, work)
        with _no_gc():  # millions of small objects, none cyclic: the collector's passes only cost time
            g = build_graph(costs, slow, labels)
            streams = Streams(g.tasks, len(g.streams))
            streams.run()
        events += streams.engine.events
        step, parts, busiest = _breakdown(g)
        times.append(step)
        if first is None:
            first = (g, step, parts, busiest, streams.engine.events, labels)
    assert first is not None
    engine_s = time.perf_counter() - engine_start
    g, step, parts, busiest, n_events, labels = first
    per_stage = s.cluster.num_gpus / (int(par["dp"]) * costs.pp)
    stage_gpus = {lab: w * per_stage for lab, w in zip(labels, replica_weights(labels, int(par["dp"]), detail),
                                                        strict=True)}
    analytic = float(arrays.step_time_s[0])
    t = np.array(times)
    report = SimReport(
        scenario=s.name, num_gpus=s.cluster.num_gpus, parallelism=par, detail=detail, seed=seed,
        jitter_sigma=jitter_sigma, stragglers=[str(x) for x in stragglers], comm_factors=comm_factors,
        replicas_simulated=len({r for r, _, _ in g.streams}), stages=costs.pp, microbatches=costs.m,
        step_time_s=step, breakdown=parts, analytic_step_time_s=analytic, rel_difference=step / analytic - 1.0,
        busiest_stage=busiest, tasks=len(g.tasks), events=n_events,
        distribution=IterationStats(iterations=iterations, min_s=float(t.min()), median_s=float(np.median(t)),
                                    p95_s=float(np.percentile(t, 95)), max_s=float(t.max())))
    return SimResult(report=report, graph=g, wall_s=time.perf_counter() - start, events=events, engine_s=engine_s,
                     stage_gpus=stage_gpus, host_wait_s=min(float(arrays.host_wait_s), costs.optimizer_s))
