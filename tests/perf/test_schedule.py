"""The analytic pipeline schedule of every schedule: every block once, dependencies kept, and the closed forms of
perf.pipeline (the step model's pipeline time) against the drawing."""

from __future__ import annotations

import numpy as np
import pytest

from supercluster.perf import PipelineReport, pipeline, pipeline_schedule
from supercluster.perf.schedule import StageOp, stage_ops


def _pipeline(pp: int, v: int, m: int, fwd: float = 1.0, bwd: float = 2.0) -> PipelineReport:
    t = fwd + bwd
    return PipelineReport(stages=pp, virtual_stages=v, microbatches=m, microbatch_s=t, forward_s=fwd,
                          backward_s=bwd, critical_path_s=pp * t, pipeline_s=m * t + (pp - 1) * t / v,
                          bubble_s=(pp - 1) * t / v)


@pytest.mark.parametrize(("pp", "v", "m"), [(1, 1, 4), (4, 1, 8), (4, 1, 2), (4, 2, 8), (2, 4, 8), (8, 2, 16),
                                            (4, 2, 6), (3, 3, 7)])
def test_every_block_once_in_dependency_order(pp: int, v: int, m: int) -> None:
    """Each (stage, micro-batch, chunk) runs one forward and one backward; a stage runs one block at a time; a
    forward follows the previous chunk's forward and a backward the next chunk's backward."""
    blocks = pipeline_schedule(_pipeline(pp, v, m))
    ends = {(b.kind, b.stage, b.microbatch, b.chunk): b for b in blocks}
    assert len(blocks) == len(ends) == 2 * pp * v * m
    for s in range(pp):
        mine = sorted((b for b in blocks if b.stage == s), key=lambda b: b.start_s)
        assert all(a.end_s <= b.start_s + 1e-12 for a, b in zip(mine, mine[1:], strict=False))
    for b in blocks:
        if b.kind == "forward" and b.stage > 0:
            assert ends[("forward", b.stage - 1, b.microbatch, b.chunk)].end_s <= b.start_s + 1e-12
        if b.kind == "backward":
            assert ends[("forward", b.stage, b.microbatch, b.chunk)].end_s <= b.start_s + 1e-12
            if b.stage < pp - 1:
                assert ends[("backward", b.stage + 1, b.microbatch, b.chunk)].end_s <= b.start_s + 1e-12


@pytest.mark.parametrize(("pp", "v", "m"), [(1, 1, 4), (4, 1, 8), (4, 2, 8), (2, 4, 8), (8, 2, 16)])
def test_equal_stages_end_at_the_step_models_pipeline_time(pp: int, v: int, m: int) -> None:
    """With equal stages and m a multiple of pp, the drawn iteration ends at m t + (pp - 1) t / v (perf.step)."""
    p = _pipeline(pp, v, m)
    end = max(b.end_s for b in pipeline_schedule(p))
    assert end == pytest.approx(p.pipeline_s)
    closed = pipeline.one_f_one_b_s(np.array(m), np.array(v), np.array(3.0), np.array(3.0 * pp))  # perf.pipeline
    assert end == pytest.approx(float(closed))


def test_phases() -> None:
    """1F1B: stage s warms up with pp - s - 1 forwards and cools down with as many backwards."""
    blocks = pipeline_schedule(_pipeline(4, 1, 8))
    for s in range(4):
        mine = [b for b in blocks if b.stage == s]
        assert sum(b.phase == "warm-up" for b in mine) == 3 - s
        assert sum(b.phase == "cool-down" for b in mine) == 3 - s
        assert all(b.kind == "forward" for b in mine if b.phase == "warm-up")


def _split(schedule: str, pp: int, m: int, fwd: float = 1.0, bwd: float = 2.0, wgrad: float = 0.7,
           pair: float | None = None) -> PipelineReport:
    """Equal stages under ZB-H1 or DualPipe (``pair``: DualPipe's overlapped forward and backward, None: f + b)."""
    t = fwd + bwd
    return PipelineReport(stages=pp, virtual_stages=1, schedule=schedule, microbatches=m, microbatch_s=pair or t,
                          forward_s=fwd, backward_s=bwd, critical_path_s=pp * t, pipeline_s=0.0, bubble_s=0.0,
                          weight_gradient_s=wgrad, overlapped_pair_s=pair)


@pytest.mark.parametrize(("schedule", "pp", "m"), [("zb-h1", 4, 8), ("zb-h1", 4, 2), ("zb-h1", 1, 3),
                                                   ("dualpipe", 2, 4), ("dualpipe", 4, 8), ("dualpipe", 8, 20)])
def test_split_schedules_run_every_pass_once_in_dependency_order(schedule: str, pp: int, m: int) -> None:
    """ZB-H1 and DualPipe: every micro-batch's forward once and its backward once on every stage (whole, or an
    input-gradient pass and a weight-gradient pass after it); a forward follows the previous stage's in its
    direction, an input gradient the next stage's; a stage runs one block (or one DualPipe pair) at a time."""
    blocks = pipeline_schedule(_split(schedule, pp, m, pair=2.5 if schedule == "dualpipe" else None))
    per_direction = m // 2 if schedule == "dualpipe" else m
    directions = (0, 1) if schedule == "dualpipe" else (0,)
    at = {(b.kind, b.stage, b.microbatch, b.direction): b for b in blocks}
    for d in directions:
        step, first, last = (1, 0, pp - 1) if d == 0 else (-1, pp - 1, 0)
        for s in range(pp):
            for j in range(per_direction):
                f = at[("forward", s, j, d)]
                whole = at.get(("backward", s, j, d))
                grad = whole or at[("backward_input", s, j, d)]
                assert (whole is None) == (("backward_input", s, j, d) in at)
                if whole is None:
                    assert at[("backward_weight", s, j, d)].start_s >= grad.end_s - 1e-12
                assert grad.start_s >= f.end_s - 1e-12
                if s != first:
                    assert f.start_s >= at[("forward", s - step, j, d)].end_s - 1e-12
                if s != last:
                    nxt = at.get(("backward", s + step, j, d)) or at[("backward_input", s + step, j, d)]
                    assert grad.start_s >= nxt.end_s - 1e-12
    assert len(at) == len(blocks)
    for s in range(pp):
        spans = sorted({(b.start_s, b.end_s) for b in blocks if b.stage == s})
        assert all(a[1] <= b[0] + 1e-12 for a, b in zip(spans, spans[1:], strict=False))


@pytest.mark.parametrize(("pp", "m"), [(2, 2), (4, 4), (4, 8), (4, 6), (8, 8), (8, 20), (3, 5)])
@pytest.mark.parametrize("wgrad", [0.3, 0.7, 1.0])
def test_zb_h1_ends_at_its_closed_form(pp: int, m: int, wgrad: float) -> None:
    """With equal stages and at least pp micro-batches, the drawn ZB-H1 iteration ends at m t + (pp - 1)(F + B - W)
    (Qi et al. 2023), perf.pipeline's closed form; 2(pp - 1)W earlier than 1F1B."""
    p = _split("zb-h1", pp, m, wgrad=wgrad)
    end = max(b.end_s for b in pipeline_schedule(p))
    arr = np.array
    closed = pipeline.zb_h1_s(arr(m), arr(3.0), arr(wgrad), arr(3.0 * pp), arr(wgrad * pp))
    assert end == pytest.approx(float(closed))
    assert end == pytest.approx(m * 3.0 + (pp - 1) * (1.0 + 2.0 - wgrad - wgrad))
    one_f_one_b = pipeline.one_f_one_b_s(arr(m), arr(1), arr(3.0), arr(3.0 * pp))
    assert float(one_f_one_b) - end == pytest.approx(2 * (pp - 1) * wgrad)


@pytest.mark.parametrize(("pp", "m"), [(4, 1), (4, 2), (8, 5), (16, 1), (16, 9)])
def test_zb_h1_with_fewer_microbatches_than_stages_ends_at_its_closed_form(pp: int, m: int) -> None:
    """Fewer micro-batches than stages: the drawing ends at the closed form's last micro-batch, t_crit - (pp - 1) W
    + (m - 1)(F + B), every stage's weight-gradient pass but the first's off the path; never under one
    micro-batch's path, t_crit - (pp - 1) W."""
    p = _split("zb-h1", pp, m)
    end = max(b.end_s for b in pipeline_schedule(p))
    closed = float(pipeline.zb_h1_s(np.array(m), np.array(3.0), np.array(0.7), np.array(3.0 * pp),
                                    np.array(0.7 * pp)))
    assert end == pytest.approx(closed)
    assert end == pytest.approx(3.0 * pp - (pp - 1) * 0.7 + (m - 1) * (3.0 - 0.7))
    assert closed >= 3.0 * pp - (pp - 1) * 0.7


@pytest.mark.parametrize(("pp", "m"), [(2, 4), (4, 8), (4, 12), (6, 12), (8, 16), (8, 40), (16, 32), (16, 120)])
@pytest.mark.parametrize(("fwd", "bwd", "wgrad", "pair"), [(1.0, 2.0, 0.7, None), (1.0, 2.0, 0.7, 2.5),
                                                           (1.0, 2.0, 0.5, 2.0), (0.8, 1.6, 0.6, 2.4),
                                                           (1.0, 3.0, 1.2, 3.2)])
def test_dualpipe_closed_form_is_at_most_three_percent_over_its_drawing(pp: int, m: int, fwd: float, bwd: float,
                                                                        wgrad: float, pair: float | None) -> None:
    """With equal stages, DualPipe's closed form (the report's bubble (pp/2 - 1)(F&B + B - 3W) plus the chunks it
    does not pair) is at or above the drawing of dualpipe.py's own order, by at most 3% (exact with pp = 2)."""
    p = _split("dualpipe", pp, m, fwd, bwd, wgrad, pair)
    end = max(b.end_s for b in pipeline_schedule(p))
    arr = np.array
    t = fwd + bwd
    closed = float(pipeline.dualpipe_s(arr(m), arr(pp), arr(t), arr(pair or t), arr(bwd), arr(wgrad), arr(pp * t)))
    assert end - 1e-9 <= closed <= 1.03 * end
    if pp == 2:
        assert closed == pytest.approx(end)


def test_stage_ops_of_1f1b_and_interleaved_are_unchanged() -> None:
    """The public op order of 1F1B is warm-up forwards, forward-backward pairs, cool-down backwards."""
    ops = stage_ops("1f1b", 1, 6, 4)
    assert [o.kind[0] for o in ops] == list("ff" + "fb" * 4 + "bb")
    assert stage_ops("interleaved", 0, 8, 4, 2)[:7] == [StageOp("forward", "warm-up", j, c) for c, j0 in
                                                        ((0, 0), (1, 0)) for j in range(4)][:7]
