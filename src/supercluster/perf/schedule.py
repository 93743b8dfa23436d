"""The analytic pipeline schedule of one iteration, drawn block by block: which stage runs which micro-batch's
forward or backward when, under every schedule the step model prices (perf.pipeline):

- 1F1B (Narayanan et al. SC'21, §2.2: PipeDream-Flush) and its interleaved form with v virtual stages (the same
  paper's §2.2.1, the order Megatron-LM runs);
- ZB-H1 (Qi et al. 2023, arXiv:2401.10241, §3.1; torch.distributed.pipelining ScheduleInterleavedZeroBubble with one
  stage per rank): the backward split into its input-gradient pass (``backward_input``, on the critical path) and
  its weight-gradient pass (``backward_weight``), 1F1B's warm-up, stage s deferring its first s weight-gradient
  passes, which then fill the cool-down;
- DualPipe (DeepSeek-V3 report, arXiv:2412.19437 §3.2.1; the order of deepseek-ai/DualPipe dualpipe.py at
  3da1bbea, its steps 1-8): m micro-batches, half entering at stage 0 (direction 0) and half at the last stage
  (direction 1), every rank holding the stage of either direction; in the steady state a rank runs one
  micro-batch's forward overlapped with another's backward (a pair: two blocks with the same times, ``overlapped``).

``stage_ops`` gives a stage's operations in the order it issues them (the event-driven simulator runs the same
orders). Every stage is taken as the busiest one (the step model's t_max per micro-batch, split into its forward
and backward, the backward's weight-gradient share apart), each of its v chunks taking 1/v of that; a block starts
when its stage is free and its input is ready (the previous stage's forward, the next stage's backward or
input-gradient pass, its own input-gradient pass for a weight-gradient pass). With equal stages the iteration ends
at the step model's pipeline time (perf.pipeline); the step model's own figure also counts uneven stages and
stage-to-stage hops, which this drawing does not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from ..spec.training import Schedule, pipeline_group
from .report import PipelineReport

Kind = Literal["forward", "backward", "backward_input", "backward_weight"]
Phase = Literal["warm-up", "steady", "cool-down"]


@dataclass(frozen=True)
class StageOp:
    """One operation a stage issues: a chunk of one micro-batch's forward, backward (whole), input-gradient or
    weight-gradient pass. ``direction`` (DualPipe): 0 for micro-batches entering at stage 0, 1 for those entering at
    the last stage. ``overlaps`` (DualPipe): the other micro-batch's backward this forward runs overlapped with."""

    kind: Kind
    phase: Phase
    microbatch: int
    chunk: int = 0
    direction: int = 0
    overlaps: StageOp | None = None


@dataclass(frozen=True)
class ScheduleBlock:
    """One chunk of one micro-batch's forward or backward on one stage."""

    stage: int
    microbatch: int
    chunk: int  # virtual stage on this stage (0 without interleaving)
    kind: Kind
    phase: Phase  # warm-up forwards, steady one-forward-one-backward, cool-down backwards
    start_s: float
    end_s: float
    direction: int = 0  # DualPipe: 0 entering at stage 0, 1 entering at the last stage
    overlapped: bool = False  # DualPipe: runs together with another micro-batch's block of the same times


def _group(m: int, pp: int, v: int) -> int:
    """The interleaved schedule's micro-batch group (spec.training.microbatch_group), pp for one chunk a stage."""
    return int(pipeline_group(m, pp)) if v > 1 else pp


def _order(m: int, pp: int, v: int, backward: bool) -> list[tuple[int, int]]:
    """(micro-batch, chunk) in the order a stage runs its forwards (backwards: chunks last to first): groups of g
    micro-batches (the interleaved schedule's group, pp where pp divides m), each group through every chunk before
    the next (a last group may hold fewer)."""
    out: list[tuple[int, int]] = []
    g = _group(m, pp, v)
    for j0 in range(0, m, g):
        group = range(j0, min(j0 + g, m))
        for c in range(v):
            out.extend((j, v - 1 - c if backward else c) for j in group)
    return out


def _one_f_one_b(stage: int, m: int, pp: int, v: int) -> list[StageOp]:
    """1F1B and interleaved: warm-up forwards, then one forward and one backward in turn, then the remaining
    backwards."""
    fwd, bwd = _order(m, pp, v, False), _order(m, pp, v, True)
    total = m * v
    warm = min(pp - stage - 1, m) if v == 1 else min(2 * (pp - stage - 1) + (v - 1) * _group(m, pp, v), total)
    ops = [StageOp("forward", "warm-up", *fwd[k]) for k in range(warm)]
    for k in range(warm, total):
        ops.append(StageOp("forward", "steady", *fwd[k]))
        ops.append(StageOp("backward", "steady", *bwd[k - warm]))
    ops.extend(StageOp("backward", "cool-down", *bwd[k]) for k in range(total - warm, total))
    return ops


def _zb_h1(stage: int, m: int, pp: int) -> list[StageOp]:
    """ZB-H1: 1F1B's warm-up; in the steady state a forward and an input-gradient pass, then a weight-gradient
    pass of the oldest pending micro-batch once ``stage`` of them are pending; in the cool-down an input-gradient
    and a weight-gradient pass in turn, then the pending weight-gradient passes."""
    warm = min(pp - stage - 1, m)
    ops = [StageOp("forward", "warm-up", j) for j in range(warm)]
    pending: list[int] = []
    b = 0
    for j in range(warm, m):
        ops.append(StageOp("forward", "steady", j))
        ops.append(StageOp("backward_input", "steady", b))
        pending.append(b)
        b += 1
        if len(pending) > stage:
            ops.append(StageOp("backward_weight", "steady", pending.pop(0)))
    for j in range(b, m):
        ops.append(StageOp("backward_input", "cool-down", j))
        pending.append(j)
        if len(pending) > stage:
            ops.append(StageOp("backward_weight", "cool-down", pending.pop(0)))
    ops.extend(StageOp("backward_weight", "cool-down", j) for j in pending)
    return ops


def _dualpipe(rank: int, m: int, pp: int) -> list[StageOp]:
    """DualPipe's steps 1-8 (dualpipe.py DualPipe.step): phase 0 is direction 0 on the first half of the ranks and
    direction 1 on the second; a backward 'with zero bubble' defers its weight-gradient pass to a FIFO that the
    weight-gradient steps drain."""
    half_ranks, half_m = pp // 2, m // 2
    h = min(rank, pp - 1 - rank)
    middle = rank in (half_ranks - 1, half_ranks)
    direction = (0, 1) if rank < half_ranks else (1, 0)  # by phase
    nxt_f, nxt_b = [0, 0], [0, 0]
    queue: list[tuple[int, int]] = []  # (direction, micro-batch) of deferred weight-gradient passes
    ops: list[StageOp] = []

    def forward(phase: int, step: Phase) -> StageOp:
        op = StageOp("forward", step, nxt_f[phase], direction=direction[phase])
        nxt_f[phase] += 1
        return op

    def backward(phase: int, step: Phase, zb: bool = False) -> StageOp:
        op = StageOp("backward_input" if zb else "backward", step, nxt_b[phase], direction=direction[phase])
        if zb:
            queue.append((direction[phase], nxt_b[phase]))
        nxt_b[phase] += 1
        return op

    def weight(step: Phase) -> StageOp:
        d, j = queue.pop(0)
        return StageOp("backward_weight", step, j, direction=d)

    def pair(f_phase: int, b_phase: int) -> StageOp:
        b = backward(b_phase, "steady")
        f = forward(f_phase, "steady")
        return StageOp(f.kind, f.phase, f.microbatch, direction=f.direction, overlaps=b)

    ops += [forward(0, "warm-up") for _ in range((half_ranks - h - 1) * 2)]  # step 1
    for _ in range(h + 1):  # step 2
        ops += [forward(0, "warm-up"), forward(1, "warm-up")]
    for _ in range(half_ranks - h - 1):  # step 3
        ops.append(backward(1, "warm-up", zb=True))
        ops.append(weight("warm-up"))
        ops.append(forward(1, "warm-up"))
    for i in range(half_m - pp + h + 1):  # step 4
        if i == 0 and middle:  # not overlapped, to shorten the bubble (dualpipe.py)
            ops += [forward(0, "steady"), backward(1, "steady")]
        else:
            ops.append(pair(0, 1))
        ops.append(pair(1, 0))
    for _ in range(half_ranks - h - 1):  # step 5
        ops.append(backward(1, "steady"))
        ops.append(pair(1, 0))
    zb = False
    for i in range(h + 1):  # step 6: the second half of these backwards defer their weight gradients
        if i == (h + 1) // 2 and h % 2 == 1:
            zb = True
        ops.append(backward(1, "cool-down", zb))
        if i == (h + 1) // 2 and h % 2 == 0:
            zb = True
        ops.append(backward(0, "cool-down", zb))
    for _ in range(half_ranks - h - 1):  # step 7
        ops.append(weight("cool-down"))
        ops.append(backward(0, "cool-down", zb=True))
    ops += [weight("cool-down") for _ in range(h + 1)]  # step 8
    if queue:  # every deferred weight-gradient pass is drained by dualpipe.py's steps 7 and 8
        raise RuntimeError(f"DualPipe order left {len(queue)} weight-gradient passes (pp {pp}, m {m})")
    return ops


def _one_schedule(schedule: Schedule, stage: int, m: int, pp: int, v: int) -> list[StageOp]:
    if schedule == "zb-h1":
        return _zb_h1(stage, m, pp)
    if schedule == "dualpipe":
        return _dualpipe(stage, m, pp)
    return _one_f_one_b(stage, m, pp, v)


def _shifted(op: StageOp, by: int) -> StageOp:
    pair = None if op.overlaps is None else _shifted(op.overlaps, by)
    return replace(op, microbatch=op.microbatch + by, overlaps=pair)


def stage_ops(schedule: Schedule, stage: int, m: int, pp: int, v: int = 1, flushes: int = 1) -> list[StageOp]:
    """The operations stage ``stage`` of ``pp`` issues for ``m`` micro-batches, in order (``v`` chunks a stage:
    the interleaved schedule only). DualPipe's ``m`` counts both directions' micro-batches. ``flushes``: the step
    runs that many schedules of m / flushes micro-batches back to back (training.pipeline_flushes), the k-th on
    micro-batches numbered from k m / flushes."""
    if flushes == 1:
        return _one_schedule(schedule, stage, m, pp, v)
    if m % flushes:
        raise ValueError(f"{m} micro-batches do not split into {flushes} pipeline schedules")
    per = m // flushes
    one = _one_schedule(schedule, stage, per, pp, v)
    return [_shifted(op, k * per) for k in range(flushes) for op in one]


def dependency(op: StageOp, stage: int, pp: int, v: int) -> tuple[str, int, int, int, int] | None:
    """The block ``op`` waits for, as (kind, stage, micro-batch, chunk, direction); None for the first forward.
    A backward waits for the next stage's gradient ("grad": its whole backward, or its input-gradient pass under
    ZB-H1 and DualPipe); a weight-gradient pass for its own input-gradient pass."""
    j, c, d = op.microbatch, op.chunk, op.direction
    step = 1 if d == 0 else -1  # the way direction d's forwards travel over the stages
    first, last = (0, pp - 1) if d == 0 else (pp - 1, 0)
    if op.kind == "forward":
        if stage != first:
            return ("forward", stage - step, j, c, d)
        return ("forward", last, j, c - 1, d) if c > 0 else None
    if op.kind == "backward_weight":
        return ("grad", stage, j, c, d)
    if stage != last:
        return ("grad", stage + step, j, c, d)
    return ("grad", first, j, c + 1, d) if c < v - 1 else ("forward", stage, j, c, d)


def pipeline_schedule(p: PipelineReport) -> list[ScheduleBlock]:
    """Every block of one iteration's pipeline, in the order they were placed (deterministic)."""
    pp, v, m, schedule = p.stages, p.virtual_stages, p.microbatches, p.schedule
    f, b, w = p.forward_s / v, p.backward_s / v, p.weight_gradient_s / v
    fb = p.overlapped_pair_s or f + b
    ops = [stage_ops(schedule, s, m, pp, v, p.flushes) for s in range(pp)]
    done: dict[tuple[str, int, int, int, int], float] = {}  # (kind, stage, micro-batch, chunk, direction) -> end
    duration = {"forward": f, "backward": b, "backward_input": b - w, "backward_weight": w}
    free = [0.0] * pp
    nxt = [0] * pp
    blocks: list[ScheduleBlock] = []
    remaining = sum(len(o) for o in ops)
    while remaining:
        progressed = False
        for s in range(pp):
            while nxt[s] < len(ops[s]):
                op = ops[s][nxt[s]]
                parts = [op] if op.overlaps is None else [op, op.overlaps]
                deps = [dependency(x, s, pp, v) for x in parts]
                if any(dep is not None and dep not in done for dep in deps):
                    break
                start = max([free[s], *(done[dep] for dep in deps if dep is not None)])
                end = start + (fb if op.overlaps is not None else duration[op.kind])
                for x in parts:
                    key = (x.kind, s, x.microbatch, x.chunk, x.direction)
                    done[key] = end
                    if x.kind in ("backward", "backward_input"):  # what the previous stage's backward waits for
                        done[("grad", s, x.microbatch, x.chunk, x.direction)] = end
                    blocks.append(ScheduleBlock(stage=s, microbatch=x.microbatch, chunk=x.chunk, kind=x.kind,
                                                phase=x.phase, start_s=start, end_s=end, direction=x.direction,
                                                overlapped=op.overlaps is not None))
                free[s] = end
                nxt[s] += 1
                remaining -= 1
                progressed = True
        if not progressed:  # cannot happen for the orders above; a guard against an endless loop
            raise RuntimeError(f"pipeline schedule stalled ({schedule}, pp {pp}, v {v}, m {m})")
    return blocks
