"""The analytic pipeline schedule: every block once, dependencies kept, and the step model's pipeline time."""

from __future__ import annotations

import pytest

from supercluster.perf import PipelineReport, pipeline_schedule


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


def test_phases() -> None:
    """1F1B: stage s warms up with pp - s - 1 forwards and cools down with as many backwards."""
    blocks = pipeline_schedule(_pipeline(4, 1, 8))
    for s in range(4):
        mine = [b for b in blocks if b.stage == s]
        assert sum(b.phase == "warm-up" for b in mine) == 3 - s
        assert sum(b.phase == "cool-down" for b in mine) == 3 - s
        assert all(b.kind == "forward" for b in mine if b.phase == "warm-up")
