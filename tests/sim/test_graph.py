"""The task graph executes perf.schedule's orders: with equal stages and nothing but compute and sends, the
simulated iteration is the analytic pipeline time (1F1B, interleaved, fewer micro-batches than stages)."""

from __future__ import annotations

import pytest

from supercluster.sim.engine import Streams
from supercluster.sim.graph import IterationCosts, StageCosts, build_graph


def _costs(pp: int, v: int, m: int, send_s: float, **dp: float) -> IterationCosts:
    chunk = StageCosts(fwd_s=1.0 / v, bwd_s=2.0 / v, recompute_s=0.0, comm_fwd_s={}, comm_bwd_s={}, layers=1)
    fields = {"zero_stage": 1, "dp_hide": 0.0, "grad_s": 0.0, "buckets": 1.0, "gather_s": 0.0} | dp
    return IterationCosts(pp=pp, v=v, m=m, chunks=tuple(tuple(chunk for _ in range(v)) for _ in range(pp)),
                          pp_send_s=send_s, fsdp_prefetch=0.0, zero3_by_layer=True, gather_layer_s=0.0,
                          scatter_layer_s=0.0, tensor_layer_s=0.0, optimizer_s=0.0, offload_s=0.0,
                          **fields)  # type: ignore[arg-type]


def _analytic(pp: int, v: int, m: int, send_s: float) -> float:
    t_mb = 3.0 + 2 * v * send_s
    t_crit = max(3.0 * pp + 2 * (pp * v - 1) * send_s, t_mb)
    return max(m * t_mb + (t_crit - t_mb) / v, t_crit + (m - 1) * t_mb / v)


@pytest.mark.parametrize("pp, v, m", [(4, 1, 8), (4, 2, 8), (4, 2, 4), (4, 2, 2), (4, 1, 2), (8, 4, 16),
                                      (16, 7, 16), (8, 8, 32)])
def test_schedules_take_the_analytic_pipeline_time(pp: int, v: int, m: int) -> None:
    """Without sends the executed schedule ends exactly at the closed form; with sends within 1.5% (the last and
    first stages send one fewer per micro-batch than the closed form charges)."""
    bare = Streams(build_graph(_costs(pp, v, m, 0.0), [[1.0] * pp], [0]).tasks, 4 * pp).run()
    assert bare == pytest.approx(_analytic(pp, v, m, 0.0), rel=1e-12)
    sent = Streams(build_graph(_costs(pp, v, m, 0.05), [[1.0] * pp], [0]).tasks, 4 * pp).run()
    assert sent == pytest.approx(_analytic(pp, v, m, 0.05), rel=0.015)


@pytest.mark.parametrize("hide", [0.0, 0.3, 1.0])
def test_gradient_buckets_expose_what_the_backward_does_not_hide(hide: float) -> None:
    """One stage, one micro-batch: the reduction exposes max(T - hide * B, 0) after the backward (perf.step's rule),
    however many buckets it is cut into."""
    g = build_graph(_costs(1, 1, 1, 0.0, grad_s=1.5, buckets=5.0, dp_hide=hide), [[1.0]], [0])
    end = Streams(g.tasks, 4).run()
    assert end == pytest.approx(3.0 + max(1.5 - hide * 2.0, 0.0), rel=1e-12)
