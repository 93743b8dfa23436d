"""A simulated iteration on a contended fabric: the flow model's factors, less what the analytic op costs charge,
slow the simulated communication; the report holds them beside the step without them."""

from __future__ import annotations

import pytest

from supercluster.search.plan import best_step
from supercluster.sim.contended import simulate_contended
from supercluster.sim.contention import AXES
from supercluster.sim.run import simulate
from supercluster.sim.slowlink import parse_slow_link
from supercluster.sim.trace import link_events, trace_events
from supercluster.spec import load_scenario

SMALL = ["cluster.num_gpus=2048", "training.global_batch=64"]  # tp 4 cp 8 ep 16 pp 16 dp 4: runs in a second


@pytest.fixture(scope="module")
def small() -> tuple:
    s = load_scenario("scenarios/memphis.yaml", SMALL)
    cal = s.calibrated(None)
    return s, cal, best_step(s, cal)[0].parallelism


def test_a_healthy_adaptive_fabric_changes_nothing(small) -> None:
    """Adaptive routing on a non-blocking fat tree: every factor 1.0, the simulated step unchanged."""
    s, cal, par = small
    r = simulate_contended(s, cal, par).report
    assert r.contention is not None
    assert r.contention.routing == "adaptive" and r.contention.slow_links == []
    assert r.contention.applied_factors == dict.fromkeys(AXES, 1.0)
    assert r.step_time_s == r.contention.uncontended_step_time_s == simulate(s, cal, par).report.step_time_s


def test_ecmp_slows_the_step_by_the_applied_factors(small) -> None:
    """ECMP's collisions: the factors applied are the flow factors over what the analytic model charges, the
    report's comm_factors are those, and the step is the plain simulation with them, slower than without; the same
    seed gives the same report."""
    s, cal, par = small
    r = simulate_contended(s, cal, par, routing="ecmp", seed=0).report
    c = r.contention
    assert c is not None and c.routing == "ecmp"
    for a in AXES:
        assert c.applied_factors[a] == pytest.approx(c.flow_factors[a] / c.analytic_factors[a], rel=1e-12)
    assert r.comm_factors == c.applied_factors and max(c.applied_factors.values()) > 1.0
    assert r.step_time_s == simulate(s, cal, par, comm_factors=c.applied_factors).report.step_time_s
    assert r.step_time_s > c.uncontended_step_time_s
    assert simulate_contended(s, cal, par, routing="ecmp", seed=0).report.model_dump_json() == r.model_dump_json()


def test_a_slow_nic_holds_the_step_back(small) -> None:
    """Node 1's NICs at half speed: the axes whose flows leave through them run at half speed (the whole step
    waits for their slowest flow), the step grows; the report names the link."""
    s, cal, par = small
    r = simulate_contended(s, cal, par, slow_links=(parse_slow_link("node=1:0.5", s),)).report
    c = r.contention
    assert c is not None and c.slow_links == ["node=1:0.5"]
    assert c.flow_factors["dp"] == pytest.approx(2.0) and c.flow_factors["tp"] == 1.0  # tp 4 stays in the node
    assert r.step_time_s > c.uncontended_step_time_s


def test_no_contention_report_without_the_fabric(small) -> None:
    """A plain simulation carries no contention section."""
    s, cal, par = small
    assert simulate(s, cal, par).report.contention is None


def test_the_trace_has_a_track_per_busy_link_class(small) -> None:
    """Under ECMP the trace gains a "fabric" process after the GPUs', one thread per axis crossing the fabric named
    by its most loaded link class and factor, holding that axis's collectives on the busiest stage."""
    s, cal, par = small
    r = simulate_contended(s, cal, par, routing="ecmp")
    c = r.report.contention
    assert c is not None and set(c.bottlenecks) <= set(AXES) and "dp" in c.bottlenecks
    tracks = c.link_tracks()
    assert tracks["dp"] == f"dp: {c.bottlenecks['dp']}, {c.flow_factors['dp']:.2f}x"
    events = link_events(r.graph, tracks, r.report.busiest_stage)
    gpus = {e["pid"] for e in trace_events(r.graph)}
    (pid,) = {e["pid"] for e in events}
    assert pid == max(gpus) + 1
    names = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert sorted(names.values()) == sorted(tracks.values())
    spans = [e for e in events if e["ph"] == "X"]
    assert {e["cat"] for e in spans} <= set(tracks) and any(e["cat"] == "dp" for e in spans)
    assert link_events(r.graph, {}, 0) == []
