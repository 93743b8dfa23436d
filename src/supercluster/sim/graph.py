"""The task graph of one training iteration, from the analytic model's op costs (perf.step.OpCosts).

For every simulated pipeline replica and stage, four streams: compute, comm (the tensor-, context- and
expert-parallel collectives, as much of them as the framework leaves exposed under perf's overlap rules: the
compute waits for them), pp (stage-to-stage sends: the sender waits, as Megatron-LM's blocking p2p does, and the
receiver's op depends on the send) and dp (data-parallel collectives).

The order a stage issues its forwards and backwards is perf.schedule's (1F1B, or interleaved with v chunks, with
fewer micro-batches than stages too): one source for each schedule. A schedule that splits work further adds an op
kind here and its order there (ZB-H1's weight-gradient op would be a third kind after "backward").

Layers: L layers over pp stages, the last L mod pp stages holding ceil(L/pp) and the rest floor(L/pp) (sim.run;
the first ones on request); a stage's layers over its v chunks, the first ones one larger; model chunk c of stage s is the (c * pp + s)-th block of consecutive
layers (Megatron-LM's interleaving), so the dense layers of an MoE model (the first ones) sit on stage 0 and the
LM head on the last chunk of the last stage.

Data parallel, the rule of perf.step as a timeline: a reduction that may hide behind a share h of some compute C
starts once (1 - h) C has run (ZeRO-1's parameter gather: starts with the op, and the last (1 - h) C waits for
it); with the gradients in buckets, bucket i is released h C / n after bucket i - 1, as the backward produces them.
A collective starts when every simulated replica has reached it. The step ends with each stage's optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..perf.schedule import Schedule, stage_ops
from .engine import Task

STREAMS = ("compute", "comm", "pp", "dp")
MAX_BUCKET_TASKS = 8  # buckets of one chunk drawn as at most this many tasks (their total time is kept)


@dataclass(frozen=True)
class StageCosts:
    """One chunk of one stage for one micro-batch (seconds, before any slowdown)."""

    fwd_s: float
    bwd_s: float
    recompute_s: float
    comm_fwd_s: dict[str, float]  # exposed tp / cp / ep collectives of the forward
    comm_bwd_s: dict[str, float]
    layers: int


@dataclass(frozen=True)
class IterationCosts:
    """What the graph needs, for one configuration (plain floats; built by sim.run from perf's OpCosts)."""

    pp: int
    v: int
    m: int
    chunks: tuple[tuple[StageCosts, ...], ...]  # [stage][chunk]
    pp_send_s: float
    zero_stage: int
    dp_hide: float
    fsdp_prefetch: float
    zero3_by_layer: bool
    grad_s: float  # per step, all weight kinds
    buckets: float
    gather_s: float
    gather_layer_s: float
    scatter_layer_s: float
    tensor_layer_s: float
    optimizer_s: float
    offload_s: float


@dataclass
class Graph:
    tasks: list[Task] = field(default_factory=list)
    streams: list[tuple[int, int, str]] = field(default_factory=list)  # (replica, stage, stream name)
    kinds: list[str] = field(default_factory=list)  # per task: compute, recompute, tp, cp, ep, pp, dp, optimizer...
    # per (replica, stage): (chain task, dp task) pairs where the stage's chain waited on data-parallel work
    joins: dict[tuple[int, int], list[tuple[int, int]]] = field(default_factory=dict)
    finals: dict[tuple[int, int], int] = field(default_factory=dict)  # the last task before the optimizer

    def add(self, name: str, stream: int, duration_s: float, deps: list[int], kind: str) -> int:
        self.tasks.append(Task(name=name, stream=stream, duration_s=duration_s, deps=[d for d in deps if d >= 0]))
        self.kinds.append(kind)
        return len(self.tasks) - 1


def build_graph(costs: IterationCosts, slowdown: list[list[float]], replica_labels: list[int]) -> Graph:
    """The iteration's tasks for the replicas whose per-stage compute slowdowns (>= 1 slower) are given."""
    pp, v, m = costs.pp, costs.v, costs.m
    g = Graph()
    n_rep = len(slowdown)
    sid = {}
    for r in range(n_rep):
        for s in range(pp):
            for name in STREAMS:
                sid[(r, s, name)] = len(g.streams)
                g.streams.append((replica_labels[r], s, name))
    schedule: Schedule = "interleaved" if v > 1 else "1f1b"
    orders = [[(o.kind, o.phase, o.microbatch, o.chunk) for o in stage_ops(schedule, s, m, pp, v)]
              for s in range(pp)]
    last_op: dict[tuple[int, str, int], int] = {}  # (stage, kind, chunk) -> index of its last micro-batch's op
    first_op: dict[tuple[int, str, int], int] = {}
    for s, ops in enumerate(orders):
        for k, (kind, _, _, c) in enumerate(ops):
            last_op[(s, kind, c)] = k
            first_op.setdefault((s, kind, c), k)
    tail = {(r, s): -1 for r in range(n_rep) for s in range(pp)}
    dp_last = dict(tail)  # the last data-parallel task of each replica's stage
    send: dict[tuple[int, str, int, int, int], int] = {}  # (replica, kind, stage, mb, chunk) -> its send task
    pos = [0] * pp
    # Issue ops across stages in an order that respects the dependencies (dependencies only on earlier tasks)
    total = sum(len(o) for o in orders)
    issued = 0
    while issued < total:
        progressed = False
        for s in range(pp):
            while pos[s] < len(orders[s]):
                kind, _, j, c = orders[s][pos[s]]
                dep = _input(kind, s, j, c, pp, v)
                if dep is not None and (0, *dep) not in send:
                    break
                sync = [_op(g, costs, sid, r, s, kind, j, c, pos[s], slowdown[r][s], tail, send, dep, last_op,
                            first_op, dp_last) for r in range(n_rep)]
                for i in range(len(sync[0])):  # a collective starts when every replica has reached it
                    for q in range(n_rep):
                        g.tasks[sync[q][i][0]].deps.extend(sync[p][i][1] for p in range(n_rep)
                                                           if p != q and sync[p][i][1] >= 0)
                pos[s] += 1
                issued += 1
                progressed = True
        if not progressed:
            raise RuntimeError(f"schedule stalled (pp {pp}, v {v}, m {m})")
    for r in range(n_rep):
        for s in range(pp):
            last = dp_last[(r, s)]
            g.finals[(r, s)] = tail[(r, s)]
            if last >= 0 and costs.zero_stage <= 1:
                g.joins.setdefault((r, s), []).append((tail[(r, s)], last))
            opt = g.add(f"optimizer stage{s}", sid[(r, s, "compute")], costs.optimizer_s,
                        [tail[(r, s)], last], "optimizer")
            if costs.offload_s > 0.0:
                g.add(f"offload stage{s}", sid[(r, s, "compute")], costs.offload_s, [opt], "offload")
    return g


def _input(kind: str, s: int, j: int, c: int, pp: int, v: int) -> tuple[str, int, int, int] | None:
    """The send an op waits for (kind, stage, micro-batch, chunk), None: none (perf.schedule's dependencies)."""
    if kind == "forward":
        return ("forward", s - 1, j, c) if s > 0 else ("forward", pp - 1, j, c - 1) if c > 0 else None
    if s < pp - 1:
        return ("backward", s + 1, j, c)
    return ("backward", 0, j, c + 1) if c < v - 1 else None


def _op(g: Graph, costs: IterationCosts, sid: dict[tuple[int, int, str], int], r: int, s: int, kind: str, j: int,
        c: int, k: int, slow: float, tail: dict[tuple[int, int], int],
        send: dict[tuple[int, str, int, int, int], int], dep: tuple[str, int, int, int] | None,
        last_op: dict[tuple[int, str, int], int], first_op: dict[tuple[int, str, int], int],
        dp_last: dict[tuple[int, int], int]) -> list[tuple[int, int]]:
    """Issue one op of one replica's stage; the (data-parallel task, the task it waits for) pairs it made."""
    pp, v, zero = costs.pp, costs.v, costs.zero_stage
    sync: list[tuple[int, int]] = []
    ch = costs.chunks[s][c]
    label = f"mb{j} chunk{c} stage{s}"
    compute, comm, pps, dps = (sid[(r, s, n)] for n in STREAMS)
    prev = tail[(r, s)]
    deps = [prev] + ([send[(r, *dep)]] if dep is not None else [])
    fwd = kind == "forward"
    if not fwd and ch.recompute_s > 0.0:
        deps = [g.add(f"R {label}", compute, ch.recompute_s * slow, deps, "recompute")]
    work_s = (ch.fwd_s if fwd else ch.bwd_s) * slow
    letter = "F" if fwd else "B"
    # data-parallel work this op carries: (seconds, share of the op's compute hiding it, before the op or after)
    dp_s, hide, pre, pieces = 0.0, 0.0, False, 1
    if fwd and zero in (1, 2) and k == first_op[(s, kind, c)] and costs.gather_s > 0.0:
        dp_s, hide, pre = costs.gather_s / v, costs.dp_hide, True
    elif fwd and zero == 3 and costs.zero3_by_layer:
        dp_s, hide, pre = ch.layers * costs.gather_layer_s, costs.fsdp_prefetch, True
    elif not fwd and zero == 3:
        dp_s, hide = ((ch.layers * (costs.gather_layer_s + costs.scatter_layer_s), costs.fsdp_prefetch)
                      if costs.zero3_by_layer else (ch.layers * costs.tensor_layer_s, 0.0))
    elif not fwd and (zero == 2 or (zero <= 1 and k == last_op[(s, kind, c)])):
        dp_s, hide = costs.grad_s / v, costs.dp_hide
        pieces = max(1, min(MAX_BUCKET_TASKS, round(costs.buckets / v))) if hide > 0.0 else 1
    if dp_s > 0.0:
        if pre:  # gather first, the op's last (1 - hide) waits for it
            d = g.add(f"gather {label}", dps, dp_s, [prev], "dp")
            sync.append((d, prev))
            dp_last[(r, s)] = d
            a = g.add(f"{letter} {label}", compute, hide * work_s, deps, "compute")
            end = g.add(f"{letter} {label} (after gather)", compute, (1.0 - hide) * work_s, [a, d], "compute")
            g.joins.setdefault((r, s), []).append((a, d))
        else:  # the op's first (1 - hide), then the buckets as the rest produces them
            a = g.add(f"{letter} {label}", compute, (1.0 - hide) * work_s, deps, "compute")
            ready, last = [a], -1
            for i in range(1, pieces):
                ready.append(g.add(f"{letter} {label} part{i}", compute, hide * work_s / pieces, [ready[-1]],
                                   "compute"))
            end = g.add(f"{letter} {label} part{pieces}", compute, hide * work_s / pieces, [ready[-1]], "compute") \
                if hide > 0.0 else a
            for i in range(pieces):
                last = g.add(f"reduce {label} bucket{i}", dps, dp_s / pieces, [ready[i]], "dp")
                sync.append((last, ready[i]))
            dp_last[(r, s)] = last
            if zero >= 2:  # the next op waits for this micro-batch's reduction
                g.joins.setdefault((r, s), []).append((end, last))
                end = _join(g, compute, end, last, label)
    else:
        end = g.add(f"{letter} {label}", compute, work_s, deps, "compute")
    for axis, t_s in (ch.comm_fwd_s if fwd else ch.comm_bwd_s).items():
        if t_s > 0.0:
            end = g.add(f"{axis} {label}", comm, t_s, [end], axis)
    if (fwd and not (s == pp - 1 and c == v - 1)) or (not fwd and not (s == 0 and c == 0)):
        end = send[(r, kind, s, j, c)] = g.add(f"send {letter} {label}", pps, costs.pp_send_s, [end], "pp")
    else:
        send[(r, kind, s, j, c)] = end
    tail[(r, s)] = end
    return sync


def _join(g: Graph, compute: int, end: int, dp: int, label: str) -> int:
    """A zero-length mark on the compute stream after both ``end`` and ``dp``: the chain waits for the reduction."""
    return g.add(f"wait dp {label}", compute, 0.0, [end, dp], "wait")
