"""The analytic pipeline schedule of one iteration, drawn block by block: which stage runs which micro-batch's
forward or backward when, under 1F1B (Narayanan et al. SC'21, §2.2: PipeDream-Flush) or its interleaved form with
v virtual stages (the same paper's §2.2.1, the order Megatron-LM runs).

Every stage is taken as the busiest one (the step model's t_max per micro-batch, split into its forward and
backward), each of its v chunks taking 1/v of that; a block starts when its stage is free and its input is ready
(the previous chunk's forward, the next chunk's backward). With equal stages the iteration ends at
m * t_max + (pp - 1) * t_max / v, the step model's pipeline time when t_crit = pp * t_max (perf.step); the step
model's own figure also counts uneven stages and stage-to-stage hops, which this drawing does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .report import PipelineReport

Kind = Literal["forward", "backward"]
Phase = Literal["warm-up", "steady", "cool-down"]


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


def _order(m: int, pp: int, v: int, backward: bool) -> list[tuple[int, int]]:
    """(micro-batch, chunk) in the order a stage runs its forwards (backwards: chunks last to first): groups of pp
    micro-batches, each group through every chunk before the next (a last group may hold fewer)."""
    out: list[tuple[int, int]] = []
    for j0 in range(0, m, pp):
        group = range(j0, min(j0 + pp, m))
        for c in range(v):
            out.extend((j, v - 1 - c if backward else c) for j in group)
    return out


def _stage_ops(stage: int, m: int, pp: int, v: int) -> list[tuple[Kind, Phase, int, int]]:
    """A stage's operations in the order it runs them: warm-up forwards, then one forward and one backward in
    turn, then the remaining backwards."""
    fwd, bwd = _order(m, pp, v, False), _order(m, pp, v, True)
    total = m * v
    warm = min(pp - stage - 1, m) if v == 1 else min(2 * (pp - stage - 1) + (v - 1) * pp, total)
    ops: list[tuple[Kind, Phase, int, int]] = [("forward", "warm-up", *fwd[k]) for k in range(warm)]
    for k in range(warm, total):
        ops.append(("forward", "steady", *fwd[k]))
        ops.append(("backward", "steady", *bwd[k - warm]))
    ops.extend(("backward", "cool-down", *bwd[k]) for k in range(total - warm, total))
    return ops


def pipeline_schedule(p: PipelineReport) -> list[ScheduleBlock]:
    """Every block of one iteration's pipeline, in the order they were placed (deterministic)."""
    pp, v, m = p.stages, p.virtual_stages, p.microbatches
    f, b = p.forward_s / v, p.backward_s / v
    ops = [_stage_ops(s, m, pp, v) for s in range(pp)]
    done: dict[tuple[Kind, int, int, int], float] = {}  # (kind, stage, micro-batch, chunk) -> end
    free = [0.0] * pp
    nxt = [0] * pp
    blocks: list[ScheduleBlock] = []
    remaining = sum(len(o) for o in ops)
    while remaining:
        progressed = False
        for s in range(pp):
            while nxt[s] < len(ops[s]):
                kind, phase, j, c = ops[s][nxt[s]]
                if kind == "forward":
                    dep = ("forward", s - 1, j, c) if s > 0 else ("forward", pp - 1, j, c - 1) if c > 0 else None
                else:
                    dep = (("backward", s + 1, j, c) if s < pp - 1 else ("backward", 0, j, c + 1) if c < v - 1
                           else ("forward", s, j, c))
                if dep is not None and dep not in done:
                    break
                start = max(free[s], done[dep] if dep is not None else 0.0)
                end = start + (f if kind == "forward" else b)
                done[(kind, s, j, c)] = end
                free[s] = end
                blocks.append(ScheduleBlock(stage=s, microbatch=j, chunk=c, kind=kind, phase=phase, start_s=start,
                                            end_s=end))
                nxt[s] += 1
                remaining -= 1
                progressed = True
        if not progressed:  # cannot happen for the orders above; a guard against an endless loop
            raise RuntimeError(f"pipeline schedule stalled (pp {pp}, v {v}, m {m})")
    return blocks
