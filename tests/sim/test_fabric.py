"""The fabric's links and routes (ECMP vs adaptive), and the contention factors of each axis's collective."""

from __future__ import annotations

import numpy as np
import pytest

from supercluster.sim.contention import (
    AXES,
    axis_contention,
    contention_factors,
    group_members,
    pattern_flows,
)
from supercluster.sim.fabric import FatTree, compact, ecmp_port, route
from supercluster.sim.flows import FlowSet, run_flows

from .conftest import fabric, par, scenario

S4K = scenario(4096)
F4K = fabric(S4K)  # leaves of 64 down / 64 up, a leaf block = 64 nodes x 8 rails = 512 GPUs, a pod = 4096 GPUs


def links_of(fab: FatTree, a: int, b: int, routing: str = "ecmp") -> list[int]:
    r = route(fab, np.array([a]), np.array([b]), routing=routing)
    return sorted(int(k) >> 40 for k in r.key)


def test_rail_optimised_leaves() -> None:
    """NIC j of 64 consecutive nodes shares a leaf; the next 64 nodes are on the next block's leaves."""
    leaf = F4K.leaf(np.array([0, 8, 1, 63 * 8, 64 * 8]))
    assert leaf.tolist() == [0, 0, 1, 0, 8]


def test_route_climbs_to_the_lowest_common_tier() -> None:
    """Inside a node: no link; same rail under one leaf: the two NICs; across leaf blocks of a pod: up and down
    through the spine; across pods: through the core (link kinds: 0/1 NIC up/down, 2t/2t+1 tier t up/down)."""
    assert links_of(F4K, 0, 7) == []
    assert links_of(F4K, 0, 8) == [0, 1]
    assert links_of(F4K, 0, 512) == [0, 1, 2, 3]
    big = fabric(scenario(8192))
    assert links_of(big, 0, 4096) == [0, 1, 2, 3, 4, 5]


def test_pxn_sends_on_the_destination_rail() -> None:
    """GPU 0 to GPU 9 (node 1, local 1) leaves through the NIC of GPU 1 and stays under rail 1's leaf."""
    r = route(F4K, np.array([0]), np.array([9]), routing="ecmp")
    assert sorted((int(k) >> 40, int(k) & ((1 << 40) - 1)) for k in r.key) == [(0, 1), (1, 9)]


def test_adaptive_bundles_have_the_ports_capacity() -> None:
    """Adaptive routing spreads a flow over the leaf's 64 up-ports: one link of 64 ports' capacity."""
    r = route(F4K, np.array([0]), np.array([512]), routing="adaptive")
    port = F4K.port_bytes_per_s
    assert sorted(r.capacity.tolist()) == [port, port, 64 * port, 64 * port]


def test_ecmp_hash_is_seeded_and_deterministic() -> None:
    """The same seed picks the same ports, bit for bit; another seed other ports; every port in range."""
    src, dst = np.arange(10_000), np.arange(10_000)[::-1] + 7
    a, b, c = ecmp_port(0, src, dst, 1, 64), ecmp_port(0, src, dst, 1, 64), ecmp_port(1, src, dst, 1, 64)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() == 0 and a.max() == 63
    assert abs(np.bincount(a).mean() - 10_000 / 64) < 1e-9 and np.bincount(a).min() > 100  # spread, not skewed


def test_not_rail_optimised() -> None:
    """Without rails a leaf takes consecutive GPUs, so two GPUs of different nodes on one leaf meet there."""
    fab = fabric(scenario(4096, "cluster.fabric.rail_optimized=false"))
    assert fab.leaf(np.array([0, 63, 64])).tolist() == [0, 0, 1]
    assert links_of(fab, 0, 9) == [0, 1]


def test_group_members_and_ring_channels() -> None:
    """Groups of 4 ranks 2 apart in 16 GPUs; a ring of 4 per-node pairs runs one channel per member of a node."""
    m = group_members(16, 4, 2)
    assert m.tolist() == [[0, 2, 4, 6], [1, 3, 5, 7], [8, 10, 12, 14], [9, 11, 13, 15]]
    src, dst, gid = pattern_flows(np.array([[0, 4, 8, 12, 16, 20, 24, 28]]), "ring", 8)
    assert list(zip(src.tolist(), dst.tolist(), strict=True)) == [(0, 8), (4, 12), (8, 16), (12, 20), (16, 24),
                                                                   (20, 28), (24, 0), (28, 4)]
    src, dst, _ = pattern_flows(np.array([[0, 8, 16]]), "p2p", 8)
    assert (src.tolist(), dst.tolist()) == ([0, 8], [8, 16])
    src, dst, _ = pattern_flows(np.array([[0, 4, 8, 12]]), "ring_p2p", 8)  # ring attention: every rank to the next
    assert (src.tolist(), dst.tolist()) == ([0, 4, 8, 12], [4, 8, 12, 0])


def test_inside_a_domain_nothing_is_shared() -> None:
    """tp = 8 on 8-GPU nodes: no flow leaves a node, the factor is 1.0 exactly."""
    assert contention_factors(S4K, par(tp=8, dp=512))["tp"] == 1.0


def test_non_oversubscribed_adaptive_is_free() -> None:
    """A non-blocking fat tree with adaptive routing: every axis at 1.0 exactly, even groups spanning pods."""
    s = scenario(8192)
    f = contention_factors(s, par(tp=4, cp=2, pp=8, dp=128, ep=8, etp=1))
    assert set(f) == set(AXES)
    assert all(v == 1.0 for v in f.values()), f


def test_oversubscribed_leaf_slows_a_pipeline_by_its_ratio() -> None:
    """4:1 at the leaf (102 ports down, 26 up) and every GPU sending to the next stage in another leaf block:
    102 flows share 26 ports, 102/26 slower than a pipeline alone, even with perfect adaptive routing."""
    s = scenario(8192, "cluster.fabric.oversubscription=4")
    f = contention_factors(s, par(tp=8, pp=8, dp=128, order="tp-cp-ep-dp-pp"))
    assert f["pp"] == pytest.approx(102 / 26, rel=1e-12)
    assert f["tp"] == 1.0


def test_ecmp_collisions_cost_more_than_adaptive() -> None:
    """ECMP's hash collisions make the same step slower than adaptive routing, never faster; the same seed gives
    the same factors bit for bit."""
    s = scenario(8192)
    p = par(tp=8, pp=8, dp=128)
    ecmp = contention_factors(s, p, routing="ecmp", seed=3)
    adaptive = contention_factors(s, p, routing="adaptive")
    assert all(ecmp[a] >= adaptive[a] >= 1.0 for a in AXES)
    assert ecmp["pp"] > 2.0
    assert ecmp == contention_factors(s, p, routing="ecmp", seed=3)


@pytest.mark.parametrize("routing", ["ecmp", "adaptive"])
def test_closed_form_matches_the_event_driven_run(routing: str) -> None:
    """The factor's closed form (largest link load) equals the event-driven max-min run of the same flows."""
    s = scenario(8192, "cluster.fabric.oversubscription=2")
    for axis, size, stride in (("pp", 8, 1024), ("dp", 128, 8), ("ep", 16, 4)):
        closed = axis_contention(s, axis, size, stride, routing=routing, seed=1)
        run = axis_contention(s, axis, size, stride, routing=routing, seed=1, simulate=True)
        assert run.all_s == pytest.approx(closed.all_s, rel=1e-9), axis
        assert run.alone_s == pytest.approx(closed.alone_s, rel=1e-9), axis


def test_routes_solve_as_flows() -> None:
    """Routed flows compact to a flow set whose max-min rates never exceed a port."""
    fab = fabric(scenario(8192, "cluster.fabric.oversubscription=2"))
    src = np.arange(0, 8192, 8)
    r = route(fab, src, (src + 4096) % 8192, routing="ecmp")
    ids, cap = compact(r.key, r.capacity)
    fs = FlowSet(flow=r.flow, link=ids, capacity=cap, flows=r.flows)
    run = run_flows(fs, np.full(r.flows, fab.port_bytes_per_s))
    assert run.finish_s.min() >= 1.0 - 1e-12


def test_chunks_do_not_change_the_factors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The closed form summed over chunks of a few groups gives the factors of one pass, exactly."""
    from supercluster.sim import contention

    s = scenario(8192, "cluster.fabric.oversubscription=2")
    p = par(tp=2, cp=2, ep=4, etp=2, pp=8, dp=64)
    whole = {r: contention_factors(s, p, routing=r, seed=5) for r in ("ecmp", "adaptive")}
    monkeypatch.setattr(contention, "CHUNK_FLOWS", 100)
    assert whole == {r: contention_factors(s, p, routing=r, seed=5) for r in ("ecmp", "adaptive")}
    assert whole["ecmp"]["pp"] > 1.0


def test_unknown_routing_is_refused() -> None:
    """A routing other than ecmp or adaptive is refused by name, even when no axis leaves a node."""
    with pytest.raises(ValueError, match="routing must be one of ecmp, adaptive, not 'spray'"):
        contention_factors(S4K, par(tp=8, dp=512), routing="spray")


def test_the_analytic_model_charges_an_oversubscribed_leaf_as_the_flows_see_it() -> None:
    """4:1 at the leaf, every GPU sending to the next stage in another leaf block: network/cost.py's load term and
    the flow-level factor agree (102/26), so nothing is left to multiply the analytic times by."""
    from supercluster.sim import analytic_factors, excess_factors

    s = scenario(8192, "cluster.fabric.oversubscription=4")
    p = par(tp=8, pp=8, dp=128)
    assert analytic_factors(s, p)["pp"] == pytest.approx(102 / 26, rel=1e-12)
    assert excess_factors(s, p)["pp"] == pytest.approx(1.0, rel=1e-12)
    assert analytic_factors(s, p)["tp"] == 1.0


def test_excess_is_the_flow_factor_over_the_analytic_one() -> None:
    """With the core oversubscribed, pairs 1,024 ranks apart: the excess factor is the flow-level factor divided
    by what the analytic model already charges."""
    from supercluster.sim import analytic_factors, excess_factors

    s = scenario(8192, "cluster.fabric.oversubscription=[1,2]")
    p = par(tp=8, pp=8, dp=128)
    for routing in ("ecmp", "adaptive"):
        ex = excess_factors(s, p, routing=routing, seed=2)
        flow, analytic = contention_factors(s, p, routing=routing, seed=2), analytic_factors(s, p)
        assert ex == {a: flow[a] / analytic[a] for a in AXES}
