"""Max-min fair sharing of links by progressive filling, and the event-driven run of flows of given sizes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from supercluster.sim.flows import FlowSet, max_min_rates, run_flows


def test_two_flows_share_a_link_equally() -> None:
    """Two flows on one 10-unit link get 5 each."""
    fs = FlowSet.from_paths([[0], [0]], [10.0])
    assert max_min_rates(fs).tolist() == [5.0, 5.0]


def test_classic_three_link_example() -> None:
    """The textbook line network: a long flow crosses links of capacity 1, 2 and 3, each link also carries one
    local flow. Link 1 saturates first (1/2 each); the local flows of links 2 and 3 take what the long flow
    leaves: 1.5 and 2.5."""
    fs = FlowSet.from_paths([[0, 1, 2], [0], [1], [2]], [1.0, 2.0, 3.0])
    assert max_min_rates(fs).tolist() == [0.5, 0.5, 1.5, 2.5]


def test_unequal_bottlenecks_fill_in_rounds() -> None:
    """A long flow crossing a 1-unit and a 3-unit link: it and its rival on the small link get 1/2; the two flows
    left on the big link share what the long flow leaves there, 1.25 each."""
    fs = FlowSet.from_paths([[0, 1], [0], [1], [1]], [1.0, 3.0])
    assert max_min_rates(fs).tolist() == [0.5, 0.5, 1.25, 1.25]


def test_flow_without_links_is_unconstrained() -> None:
    """A flow crossing no link has an infinite rate and finishes when it starts."""
    fs = FlowSet.from_paths([[], [0]], [2.0])
    assert max_min_rates(fs).tolist() == [np.inf, 2.0]
    assert run_flows(fs, np.array([5.0, 4.0])).finish_s.tolist() == [0.0, 2.0]


def test_a_flow_ending_frees_capacity() -> None:
    """Two flows of 1 and 3 units on a 2-unit link: both at 1 until the small one ends at t=1, then the big one
    alone at 2 for its last 2 units: done at 2."""
    fs = FlowSet.from_paths([[0], [0]], [2.0])
    run = run_flows(fs, np.array([1.0, 3.0]))
    assert run.finish_s.tolist() == [1.0, 2.0]
    assert run.events == 2


def test_freed_capacity_goes_only_where_a_bottleneck_allows() -> None:
    """Flow 0 crosses links 0 and 1 (capacity 1 each), flow 1 link 0, flow 2 link 1; sizes 1, 0.5, 2. All run at
    1/2 until flow 1 ends at t=1; flow 0 stays at 1/2 (link 1 still shared) and ends at 2; flow 2, alone from
    then, ends at 3."""
    fs = FlowSet.from_paths([[0, 1], [0], [1]], [1.0, 1.0])
    assert run_flows(fs, np.array([1.0, 0.5, 2.0])).finish_s.tolist() == [2.0, 1.0, 3.0]


def test_a_late_start_slows_the_others() -> None:
    """A flow of 2 units alone on a 1-unit link from t=0; a second of 1 unit joins at t=1: both at 1/2, the second
    ends at 3, the first (1 unit left at t=1) too."""
    fs = FlowSet.from_paths([[0], [0]], [1.0])
    run = run_flows(fs, np.array([2.0, 1.0]), np.array([0.0, 1.0]))
    assert run.finish_s.tolist() == [3.0, 3.0]


def test_symmetric_flows_end_in_one_event() -> None:
    """10,000 identical flows on 100 identical links finish together, in one event."""
    n = 10_000
    fs = FlowSet(flow=np.arange(n, dtype=np.int64), link=np.arange(n, dtype=np.int64) % 100,
                 capacity=np.ones(100), flows=n)
    run = run_flows(fs, np.ones(n))
    assert run.events == 1
    assert np.all(run.finish_s == 100.0)


@st.composite
def flow_sets(draw: st.DrawFn) -> FlowSet:
    links = draw(st.integers(1, 6))
    cap = draw(st.lists(st.floats(0.5, 10.0), min_size=links, max_size=links))
    paths = draw(st.lists(st.lists(st.integers(0, links - 1), min_size=1, max_size=4, unique=True),
                          min_size=1, max_size=12))
    return FlowSet.from_paths(paths, cap)


@settings(max_examples=200, deadline=None)
@given(flow_sets())
def test_max_min_properties(fs: FlowSet) -> None:
    """No link over its capacity, and every flow crosses a saturated link on which no flow is faster (the
    bottleneck characterisation of max-min fairness, Bertsekas & Gallager 6.5.2)."""
    rate = max_min_rates(fs)
    load = np.bincount(fs.link, weights=rate[fs.flow], minlength=fs.links)
    assert np.all(load <= fs.capacity * (1 + 1e-9))
    saturated = load >= fs.capacity * (1 - 1e-9)
    fastest = np.zeros(fs.links)
    np.maximum.at(fastest, fs.link, rate[fs.flow])
    for f in range(fs.flows):
        on = fs.link[fs.flow == f]
        assert np.any(saturated[on] & (rate[f] >= fastest[on] * (1 - 1e-9))), f


def naive_run(fs: FlowSet, size: np.ndarray, start: np.ndarray) -> np.ndarray:
    """The reference: every active flow re-solved at every start and end, one flow-set-wide loop."""
    remaining, finish, t = size.copy(), np.full(fs.flows, np.nan), 0.0
    while np.isnan(finish).any():
        active = np.isnan(finish) & (start <= t)
        later = start[np.isnan(finish) & (start > t)]
        if not active.any():
            t = float(later.min())
            continue
        rate = max_min_rates(fs, active)
        dt = float((remaining[active] / rate[active]).min())
        if later.size and later.min() < t + dt:
            dt = float(later.min()) - t
        remaining[active] -= rate[active] * dt
        t += dt
        ended = active & (remaining <= 1e-9 * size)
        finish[ended] = t
    return finish


@settings(max_examples=100, deadline=None)
@given(flow_sets(), st.integers(0, 2**32 - 1))
def test_run_properties(fs: FlowSet, seed: int) -> None:
    """Flows of random sizes starting at random times: each finishes no sooner than its size over its path's
    smallest capacity after its start, as a reference run re-solving every flow at every event has it, and the
    same twice, bit for bit."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(0.1, 5.0, fs.flows)
    start = np.where(rng.random(fs.flows) < 0.5, 0.0, rng.integers(0, 4, fs.flows).astype(np.float64))
    run = run_flows(fs, size, start)
    for f in range(fs.flows):
        assert run.finish_s[f] >= start[f] + size[f] / fs.capacity[fs.link[fs.flow == f]].min() * (1 - 1e-9)
    np.testing.assert_allclose(run.finish_s, naive_run(fs, size, start), rtol=1e-7)
    assert np.array_equal(run.finish_s, run_flows(fs, size, start).finish_s)


@settings(max_examples=200, deadline=None)
@given(flow_sets())
def test_equal_flows_end_at_the_largest_link_load(fs: FlowSet) -> None:
    """Equal flows starting together end, under max-min sharing, when the most loaded link has carried its load:
    the closed form sim/contention relies on."""
    run = run_flows(fs, np.ones(fs.flows))
    load = np.bincount(fs.link, minlength=fs.links) / fs.capacity
    assert run.makespan_s == np.float64(load.max()) or abs(run.makespan_s / load.max() - 1) < 1e-9
