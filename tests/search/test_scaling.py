"""The GPU-count sweep: the same scenario planned at a few counts around its own."""

from __future__ import annotations

import pytest

from supercluster import build_scenario, plan
from supercluster.search.scaling import gpu_count_sweep


def _scenario(gpus: int = 64, **parallelism: int):
    return build_scenario({"name": "scaling", "cluster": {"base": "llama3-16k", "num_gpus": gpus},
                           "model": "llama3-8b", "training": {"tokens": 1.0e12, "global_batch": 256},
                           "parallelism": parallelism or "auto"})


def test_points_around_the_given_count() -> None:
    """Counts n/4 .. 4n ascending; the given count's point is the plan's own step; each point is planned on its
    own count."""
    s = _scenario()
    run = plan(s, with_reliability=False)
    points = gpu_count_sweep(s, given=run.step)
    assert [p.num_gpus for p in points] == [16, 32, 64, 128, 256]
    own = points[2]
    assert (own.step_time_s, own.mfu, own.parallelism) == (run.step.step_time_s, run.step.mfu, run.step.parallelism)
    for p in points:
        assert p.note is None and p.mfu is not None and p.tokens_per_s is not None
        assert p.parallelism is not None
        assert p.parallelism["tp"] * p.parallelism["pp"] * p.parallelism["dp"] * p.parallelism["cp"] == p.num_gpus
    assert points[0].tokens_per_s < points[-1].tokens_per_s  # type: ignore[operator]


def test_a_refused_count_is_a_point_with_a_note() -> None:
    """A count the fixed degrees do not divide (tp 8 x pp 8 on 4 or 32 GPUs) is a point that says why, and the
    sweep goes on."""
    s = _scenario(tp=8, pp=8)
    points = gpu_count_sweep(s, factors=(1 / 16, 0.5, 1.0))
    assert [p.num_gpus for p in points] == [4, 32, 64]
    for p in points[:2]:
        assert p.note and p.mfu is None and p.parallelism is None
    assert "pp(8)" in (points[1].note or "")
    assert points[2].note is None and points[2].mfu == pytest.approx(plan(s, with_reliability=False).step.mfu)


def test_a_fixed_dp_follows_the_gpu_count() -> None:
    """The data-parallel degree a scenario fixes is the one that follows the count; the other fixed degrees stay."""
    points = gpu_count_sweep(_scenario(tp=8, dp=8), factors=(0.5, 2.0))
    assert [(p.num_gpus, p.parallelism and p.parallelism["tp"], p.parallelism and p.parallelism["dp"])
            for p in points] == [(32, 8, 4), (128, 8, 16)]
