"""What every GPU does over a simulated iteration (sim.activity): the stages' parts, weighted by the GPUs each
simulated stage stands for, moment by moment."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from supercluster.sim.activity import ActivityTimeline, activity_timeline, replica_weights
from supercluster.sim.engine import Streams
from supercluster.sim.graph import Graph, IterationCosts, StageCosts, build_graph


def _graph(pp: int, m: int, *, optimizer_s: float = 0.0, slow: list[float] | None = None,
           ep_s: float = 0.0) -> Graph:
    """1F1B on ``pp`` equal stages, a forward 1 s and a backward 2 s, no sends; ``ep_s`` of exposed expert
    all-to-all per micro-batch."""
    chunk = StageCosts(fwd_s=1.0, bwd_s=2.0, recompute_s=0.0, comm_fwd_s={"ep": ep_s / 3.0},
                       comm_bwd_s={"ep": 2.0 * ep_s / 3.0}, layers=1)
    costs = IterationCosts(pp=pp, v=1, m=m, chunks=tuple((chunk,) for _ in range(pp)), pp_send_s=0.0, zero_stage=1,
                           dp_hide=0.0, fsdp_prefetch=0.0, zero3_by_layer=True, grad_s=0.0, buckets=1.0,
                           gather_s=0.0, gather_layer_s=0.0, scatter_layer_s=0.0, tensor_layer_s=0.0,
                           optimizer_s=optimizer_s, offload_s=0.0)
    g = build_graph(costs, [slow or [1.0] * pp], [0])
    Streams(g.tasks, len(g.streams)).run()
    return g


def test_every_gpu_is_somewhere_at_every_moment() -> None:
    """Over every segment the parts hold all the GPUs the stages stand for (4 stages of 10 GPUs), the edges run
    from 0 to the step's end, and averaged over the GPUs the parts are each stage's: 8 micro-batches of 3 s of
    compute, the rest of the 33 s step (the 1F1B fill and drain, 3 x 3 s) in the bubble."""
    g = _graph(4, 8)
    tl = activity_timeline(g, {0: 10.0}, 0.0)
    total = sum(tl.gpus.values())
    assert np.allclose(total, 40.0) and tl.num_gpus == 40.0
    assert tl.edges_s[0] == 0.0 and tl.edges_s[-1] == pytest.approx(33.0) and np.all(np.diff(tl.edges_s) > 0)
    parts, host = tl.mean_breakdown()
    assert parts["compute"] == pytest.approx(24.0) and parts["pipeline_bubble"] == pytest.approx(9.0)
    assert host == 0.0
    assert tl.segment(0) == {**dict.fromkeys(tl.gpus, 0.0), "compute": 10.0, "pipeline_bubble": 30.0}


def test_the_compute_waits_for_exposed_collectives_and_the_host() -> None:
    """An exposed all-to-all (0.3 s a micro-batch) is the stage's ep_comm, not its bubble; the last 0.2 s of a 0.5 s
    optimizer is the host's work: both stages step together after the gradient norm (stage 0 is the last to finish
    its backwards), so both end the step waiting for the host."""
    g = _graph(2, 4, optimizer_s=0.5, ep_s=0.3)
    tl = activity_timeline(g, {0: 1.0}, 0.2)
    parts, host = tl.mean_breakdown()
    assert parts["ep_comm"] == pytest.approx(4 * 0.3) and parts["optimizer"] == pytest.approx(0.5)
    assert host == pytest.approx(0.2)
    last = len(tl.durations_s) - 1
    assert tl.host_wait_gpus[last] == 2.0 and tl.segment(last)["optimizer"] == 2.0
    assert tl.segment(last)["pipeline_bubble"] == 0.0
    assert tl.durations_s[last] == pytest.approx(0.2)


def test_a_slow_stage_leaves_the_others_waiting() -> None:
    """Stage 3 at half speed: the others wait for it, so more GPU-time is spent in the bubble; every stage computes
    at once for 1 s instead of the 15 s of the even pipeline's steady state, one alone for 12 s instead of 6."""
    even = activity_timeline(_graph(4, 8), {0: 1.0}, 0.0)
    slow = activity_timeline(_graph(4, 8, slow=[1.0, 1.0, 1.0, 2.0]), {0: 1.0}, 0.0)
    assert slow.mean_breakdown()[0]["pipeline_bubble"] > even.mean_breakdown()[0]["pipeline_bubble"]
    def time_s(tl: ActivityTimeline, computing: float) -> float:
        return float(tl.durations_s[tl.gpus["compute"] == computing].sum())

    assert (time_s(even, 4.0), time_s(even, 1.0)) == pytest.approx((15.0, 6.0))
    assert (time_s(slow, 4.0), time_s(slow, 1.0)) == pytest.approx((1.0, 12.0))


def test_the_stages_weigh_as_the_gpus_they_stand_for() -> None:
    """Two simulated replicas standing for 1 and 7 replicas count 1 and 7 times their stages' GPUs."""
    assert replica_weights([0], 8, "symmetric") == [8]
    assert replica_weights([5, -1], 8, "symmetric") == [1, 7]
    assert replica_weights(list(range(8)), 8, "full") == [1] * 8
    g = _graph(2, 4)
    one = activity_timeline(g, {0: 3.0}, 0.0)
    g2 = replace(g, streams=[(7 if i >= 4 else 0, st, name) for i, (_, st, name) in enumerate(g.streams)])
    two = activity_timeline(g2, {0: 3.0, 7: 5.0}, 0.0)
    assert two.num_gpus == 8.0 and one.num_gpus == 6.0
    assert np.allclose(two.gpus["compute"][0], 3.0)  # stage 0 (replica 0's) computes first, stage 1 (7's) waits
