"""The task graph of one training iteration, from the analytic model's op costs (perf.step.OpCosts).

For every simulated pipeline replica and stage, four streams: compute, comm (the tensor-, context- and
expert-parallel collectives, as much of them as the framework leaves exposed under perf's overlap rules: the
compute waits for them), pp (stage-to-stage sends: the sender waits, as Megatron-LM's blocking p2p does, and the
receiver's op depends on the send) and dp (data-parallel collectives).

The order a stage issues its forwards and backwards is perf.schedule's stage_ops (1F1B, or interleaved with v
chunks, with fewer micro-batches than stages too; ZB-H1; DualPipe): one source for each schedule. ZB-H1 and DualPipe
split a backward into its input-gradient pass (``backward_input``: the recompute, the backward less its
weight-gradient GEMMs and the backward's collectives and send, which the previous stage waits for) and its
weight-gradient pass (``backward_weight``: the GEMMs alone, no communication, run where the order puts it); the
data-parallel gradients are released by the pass that produces them (the whole backward, or the weight-gradient
one). DualPipe (direction 1: micro-batches entering at the last stage) runs on rank r the model's stage r for
direction 0 and stage pp - 1 - r for direction 1 (the second copy of the weights costs no time); its overlapped
pairs run one micro-batch's forward and another's backward on the compute stream (with the exposed tensor- and
context-parallel collectives) while the comm stream carries both chunks' expert all-to-alls, unhidden by any
overlap knob, and their pipeline sends; the pair ends when both streams have, so what the compute does not cover
is exposed by the execution. A chunk DualPipe does not pair runs as in 1F1B, its all-to-all unhidden.

Layers: L layers over pp stages, the last L mod pp stages holding ceil(L/pp) and the rest floor(L/pp)
(workload.memory.stage_layer_counts, as perf.step prices DualPipe's ranks; sim.run; the first ones on request); a
stage's layers over its v chunks, the first ones one larger; model chunk c of stage s is the (c * pp + s)-th block
of consecutive layers (Megatron-LM's interleaving), so the dense layers of an MoE model (the first ones) sit on stage 0 and the
LM head on the last chunk of the last stage.

Data parallel, the rule of perf.step as a timeline: a reduction that may hide behind a share h of some compute C
starts once (1 - h) C has run (ZeRO-1's parameter gather: starts with the op, and the last (1 - h) C waits for
it); with the gradients in buckets, bucket i is released h C / n after bucket i - 1, as the backward produces them.
A collective starts when every simulated replica has reached it. The step ends with each stage's optimizer, all
starting together after the gradient norm's all-reduce.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..perf.schedule import Schedule, StageOp, dependency, stage_ops
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
    wgrad_s: float = 0.0  # of bwd_s, the weight-gradient GEMMs (ZB-H1 and DualPipe run them apart)


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
    schedule: Schedule = "1f1b"  # 1F1B and interleaved alike (by v), ZB-H1, DualPipe
    dp_after_flush: bool = False  # ZeRO-0/1: every chunk's gradients reduced after the stage's last backward
    flushes: int = 1  # pipeline schedules a step, back to back (training.pipeline_flushes)


@dataclass
class Graph:
    tasks: list[Task] = field(default_factory=list)
    streams: list[tuple[int, int, str]] = field(default_factory=list)  # (replica, stage, stream name)
    kinds: list[str] = field(default_factory=list)  # per task: compute, recompute, tp, cp, ep, pp, dp, optimizer...
    # per (replica, stage): (chain task, dp task) pairs where the stage's chain waited on data-parallel work
    joins: dict[tuple[int, int], list[tuple[int, int]]] = field(default_factory=dict)
    finals: dict[tuple[int, int], int] = field(default_factory=dict)  # the last task before the optimizer
    # per (replica, stage): DualPipe pairs as (compute chain's last task, comm stream's last task, the all-to-all's
    # share of that comm): the comm's overrun of the chain is the pair's exposed communication
    hidden: dict[tuple[int, int], list[tuple[int, int, float]]] = field(default_factory=dict)

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
    schedule: Schedule = costs.schedule if costs.schedule in ("zb-h1", "dualpipe") else \
        "interleaved" if v > 1 else "1f1b"
    orders = [stage_ops(schedule, s, m, pp, v, costs.flushes) for s in range(pp)]
    marks: dict[tuple[str, int, int, int], int] = {}  # ("first", stage, chunk, direction): its first forward's
    for s, ops in enumerate(orders):  # index, ("last", ...): its last weight-gradient producer's
        for k, op in enumerate(ops):
            for x in _parts(op):
                if x.kind == "forward":
                    marks.setdefault(("first", s, x.chunk, x.direction), k)
                elif x.kind in GRADIENT_KINDS:
                    marks[("last", s, x.chunk, x.direction)] = k
                    marks[("flush", s, 0, 0)] = k  # the stage's last gradient producer
    tail = {(r, s): -1 for r in range(n_rep) for s in range(pp)}
    dp_last = dict(tail)  # the last data-parallel task of each replica's stage
    send: dict[tuple[int, str, int, int, int, int], int] = {}  # (replica, kind, stage, mb, chunk, dir) -> its send
    pos = [0] * pp
    # Issue ops across stages in an order that respects the dependencies (dependencies only on earlier tasks)
    total = sum(len(o) for o in orders)
    issued = 0
    while issued < total:
        progressed = False
        for s in range(pp):
            while pos[s] < len(orders[s]):
                op = orders[s][pos[s]]
                inputs = [d for x in _parts(op) if (d := _input(x, s, pp, v)) is not None]
                if any((0, *d) not in send for d in inputs):
                    break
                sync = [_op(g, costs, sid, r, s, op, pos[s], slowdown[r][s], tail, send, inputs, marks, dp_last)
                        for r in range(n_rep)]
                for i in range(len(sync[0])):  # a collective starts when every replica has reached it
                    for q in range(n_rep):
                        g.tasks[sync[q][i][0]].deps.extend(sync[p][i][1] for p in range(n_rep)
                                                           if p != q and sync[p][i][1] >= 0)
                pos[s] += 1
                issued += 1
                progressed = True
        if not progressed:
            raise RuntimeError(f"schedule stalled ({schedule}, pp {pp}, v {v}, m {m})")
    # The optimizer steps together: the gradient norm (clipping) is all-reduced over every stage and replica before
    # any stage steps (Megatron-LM optimizer.step: clip_grad_norm over the model- and data-parallel groups), a
    # zero-length mark after every stage's last backward and gradient reduction
    norm = g.add("gradient norm", sid[(0, 0, "dp")], 0.0,
                 [x for r in range(n_rep) for s in range(pp) for x in (tail[(r, s)], dp_last[(r, s)])], "dp")
    for r in range(n_rep):
        for s in range(pp):
            last = dp_last[(r, s)]
            g.finals[(r, s)] = tail[(r, s)]
            if last >= 0 and costs.zero_stage <= 1:
                g.joins.setdefault((r, s), []).append((tail[(r, s)], last))
            opt = g.add(f"optimizer stage{s}", sid[(r, s, "compute")], costs.optimizer_s,
                        [tail[(r, s)], last, norm], "optimizer")
            if costs.offload_s > 0.0:
                g.add(f"offload stage{s}", sid[(r, s, "compute")], costs.offload_s, [opt], "offload")
    return g


GRADIENT_KINDS = ("backward", "backward_weight")  # the passes that produce weight gradients
LETTERS = {"forward": "F", "backward": "B", "backward_input": "B", "backward_weight": "W"}
SendKey = tuple[str, int, int, int, int]  # ("forward" | "grad", stage, micro-batch, chunk, direction)


def _parts(op: StageOp) -> list[StageOp]:
    """The ops one entry of a stage's order runs: itself, or a DualPipe pair's backward and forward."""
    return [op] if op.overlaps is None else [op.overlaps, op]


def _input(op: StageOp, s: int, pp: int, v: int) -> SendKey | None:
    """The send ``op`` waits for, None: none. perf.schedule's dependency where it lies on another stage; one on the
    op's own stage (a weight-gradient pass's input-gradient pass, a last stage's backward's forward) the stage's
    order already puts first."""
    dep = dependency(op, s, pp, v)
    return dep if dep is not None and dep[1] != s else None


def _sends(op: StageOp, s: int, pp: int, v: int) -> bool:
    """Whether ``op`` sends to another stage (the last forward chunk and the first backward chunk do not)."""
    first, last = (0, pp - 1) if op.direction == 0 else (pp - 1, 0)
    if op.kind == "forward":
        return not (s == last and op.chunk == v - 1)
    return op.kind != "backward_weight" and not (s == first and op.chunk == 0)


def _chunk(costs: IterationCosts, s: int, op: StageOp) -> StageCosts:
    """The costs of the model chunk ``op`` runs on rank ``s`` (DualPipe's direction 1: the model's stage pp-1-s)."""
    return costs.chunks[s if op.direction == 0 else costs.pp - 1 - s][op.chunk]


def _op(g: Graph, costs: IterationCosts, sid: dict[tuple[int, int, str], int], r: int, s: int, op: StageOp,
        k: int, slow: float, tail: dict[tuple[int, int], int], send: dict[tuple[int, str, int, int, int, int], int],
        inputs: list[SendKey], marks: dict[tuple[str, int, int, int], int],
        dp_last: dict[tuple[int, int], int]) -> list[tuple[int, int]]:
    """Issue one op (or DualPipe pair) of one replica's stage; the (data-parallel task, the task it waits for)
    pairs it made."""
    pp, v, zero = costs.pp, costs.v, costs.zero_stage
    chunks = v * (2 if costs.schedule == "dualpipe" else 1)  # weight chunks a stage holds
    sync: list[tuple[int, int]] = []
    compute, comm, pps, dps = (sid[(r, s, n)] for n in STREAMS)
    prev = tail[(r, s)]
    deps = [prev] + [send[(r, *d)] for d in inputs]
    if op.overlaps is not None:
        end = _pair(g, costs, compute, comm, r, s, op, slow, deps)
        for x in _parts(op):
            send[(r, "forward" if x.kind == "forward" else "grad", s, x.microbatch, x.chunk, x.direction)] = end
        b = op.overlaps
        if marks.get(("last", s, b.chunk, b.direction)) == k and zero <= 1 and costs.grad_s > 0.0:
            last = g.add(f"reduce after mb{b.microbatch} stage{s}", dps, costs.grad_s / chunks, [end], "dp")
            sync.append((last, end))
            dp_last[(r, s)] = last
        tail[(r, s)] = end
        return sync
    kind, j, c = op.kind, op.microbatch, op.chunk
    ch = _chunk(costs, s, op)
    label = f"mb{j} chunk{c} stage{s}" + (f" dir{op.direction}" if costs.schedule == "dualpipe" else "")
    fwd = kind == "forward"
    if kind in ("backward", "backward_input") and ch.recompute_s > 0.0:
        deps = [g.add(f"R {label}", compute, ch.recompute_s * slow, deps, "recompute")]
    work_s = slow * {"forward": ch.fwd_s, "backward": ch.bwd_s, "backward_input": ch.bwd_s - ch.wgrad_s,
                     "backward_weight": ch.wgrad_s}[kind]
    letter = LETTERS[kind]
    # data-parallel work this op carries: (seconds, share of the op's compute hiding it, before the op or after)
    dp_s, hide, pre, pieces = 0.0, 0.0, False, 1
    if fwd and zero in (1, 2) and k == marks[("first", s, c, op.direction)] and costs.gather_s > 0.0:
        dp_s, hide, pre = costs.gather_s / chunks, costs.dp_hide, True
    elif fwd and zero == 3 and costs.zero3_by_layer:
        dp_s, hide, pre = ch.layers * costs.gather_layer_s, costs.fsdp_prefetch, True
    elif kind in ("backward", "backward_input") and zero == 3:
        dp_s, hide = ((ch.layers * (costs.gather_layer_s + costs.scatter_layer_s), costs.fsdp_prefetch)
                      if costs.zero3_by_layer else (ch.layers * costs.tensor_layer_s, 0.0))
    elif kind in GRADIENT_KINDS and zero <= 1 and costs.dp_after_flush:
        if k == marks[("flush", s, 0, 0)]:  # no bucket launched before the flush (perf.step)
            dp_s, hide = costs.grad_s, 0.0
    elif kind in GRADIENT_KINDS and zero != 3 and (zero == 2 or k == marks[("last", s, c, op.direction)]):
        dp_s, hide = costs.grad_s / chunks, costs.dp_hide
        pieces = max(1, min(MAX_BUCKET_TASKS, round(costs.buckets / chunks))) if hide > 0.0 else 1
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
    if kind != "backward_weight":
        for axis, t_s in (ch.comm_fwd_s if fwd else ch.comm_bwd_s).items():
            if t_s > 0.0:
                end = g.add(f"{axis} {label}", comm, t_s, [end], axis)
    key = (r, "forward" if fwd else "grad", s, j, c, op.direction)
    if _sends(op, s, pp, v):
        end = send[key] = g.add(f"send {letter} {label}", pps, costs.pp_send_s, [end], "pp")
    elif kind != "backward_weight":
        send[key] = end
    tail[(r, s)] = end
    return sync


def _pair(g: Graph, costs: IterationCosts, compute: int, comm: int, r: int, s: int, op: StageOp, slow: float,
          deps: list[int]) -> int:
    """A DualPipe pair: the backward's recompute and compute, the forward's compute and both chunks' exposed tensor-
    and context-parallel collectives on the compute stream; both all-to-alls and pipeline sends on the comm stream
    from the pair's start; the pair's end (what the next op and the neighbours' inputs wait for) after both."""
    b = op.overlaps
    assert b is not None
    cf, cb = _chunk(costs, s, op), _chunk(costs, s, b)
    label = f"mb{op.microbatch} dir{op.direction} + mb{b.microbatch} dir{b.direction} stage{s}"
    start = chain = g.add(f"pair {label}", compute, 0.0, deps, "wait")
    if cb.recompute_s > 0.0:
        chain = g.add(f"R mb{b.microbatch} dir{b.direction} stage{s}", compute, cb.recompute_s * slow, [chain],
                      "recompute")
    chain = g.add(f"F mb{op.microbatch} dir{op.direction} stage{s}", compute, cf.fwd_s * slow, [chain], "compute")
    chain = g.add(f"B mb{b.microbatch} dir{b.direction} stage{s}", compute, cb.bwd_s * slow, [chain], "compute")
    for axis in ("tp", "cp"):
        t_s = cf.comm_fwd_s.get(axis, 0.0) + cb.comm_bwd_s.get(axis, 0.0)
        if t_s > 0.0:
            chain = g.add(f"{axis} {label}", compute, t_s, [chain], axis)
    hidden = start
    ep_s = cf.comm_fwd_s.get("ep", 0.0) + cb.comm_bwd_s.get("ep", 0.0)
    if ep_s > 0.0:
        hidden = g.add(f"ep {label}", comm, ep_s, [hidden], "ep overlapped")
    sends_s = costs.pp_send_s * sum(_sends(x, s, costs.pp, costs.v) for x in (op, b))
    if sends_s > 0.0:
        hidden = g.add(f"send {label}", comm, sends_s, [hidden], "pp overlapped")
    g.hidden.setdefault((r, s), []).append((chain, hidden, ep_s / max(ep_s + sends_s, 1e-300)))
    return g.add(f"pair end {label}", compute, 0.0, [chain, hidden], "wait")


def _join(g: Graph, compute: int, end: int, dp: int, label: str) -> int:
    """A zero-length mark on the compute stream after both ``end`` and ``dp``: the chain waits for the reduction."""
    return g.add(f"wait dp {label}", compute, 0.0, [end, dp], "wait")
