"""The power trace of a simulated step (search.sim_power): facility.power's draw of what every GPU does, moment by
moment, over the iteration the simulator ran."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from supercluster import load_scenario
from supercluster.facility.power import gpu_activity, power
from supercluster.network.report import fabric_report
from supercluster.search.sim_power import simulated_power, with_power
from supercluster.search.space import enumerate_space
from supercluster.sim.run import SimResult, simulate
from supercluster.sim.trace import POWER_TRACK, write_trace
from supercluster.sim.variability import parse_straggler
from supercluster.spec.scenario import Scenario

MEMPHIS = str(Path(__file__).resolve().parents[2] / "scenarios" / "memphis.yaml")


def _small(global_batch: int = 32) -> Scenario:
    return load_scenario(MEMPHIS, ["cluster.num_gpus=512", f"training.global_batch={global_batch}"])


def _row(s: Scenario, pp: int, dp: int) -> dict[str, int | str | bool]:
    """The first 1F1B configuration of the space with ``pp`` stages, ``dp`` replicas, one sequence a micro-batch."""
    space = enumerate_space(s)
    rows = np.flatnonzero((space.pp == pp) & (space.dp == dp) & (space.micro_batch == 1)
                          & (space.virtual_stages == 1) & (space.schedule == 0))
    return space.row(int(rows[0]))


@pytest.fixture(scope="module")
def small() -> tuple[Scenario, dict, dict]:
    s = _small()
    return s, _row(s, 1, 32), _row(s, 4, 4)


def _run(s: Scenario, par: dict, **kwargs: object) -> SimResult:
    return with_power(s, simulate(s, s.calibrated(None), par, **kwargs))  # type: ignore[arg-type]


def _facility_w(s: Scenario, breakdown: dict[str, float], host_wait_s: float) -> float:
    assert s.facility is not None
    activity = gpu_activity(breakdown, s.cluster.accelerator, host_wait_s)
    return power(s.cluster, fabric_report(s.cluster), s.facility.pue, activity=activity).it_w


def test_one_stage_averages_what_facility_gives_from_the_breakdown(small) -> None:
    """Without a pipeline every GPU does what the simulated breakdown says: the trace's time-weighted average is
    facility.power's draw for that breakdown; its top is every GPU computing, its bottom every GPU waiting on the
    host at the step's end (the stopped floor); the facility figures are the IT ones x PUE."""
    s, one, _ = small
    r = _run(s, one)
    p = r.report.power
    assert p is not None and r.report.parallelism["pp"] == 1
    assert p.average_it_w == pytest.approx(_facility_w(s, r.report.breakdown, r.host_wait_s), rel=1e-9)
    assert p.max_it_w == pytest.approx(power(s.cluster, fabric_report(s.cluster), s.facility.pue,
                                             activity=1.0).it_w, rel=1e-12)
    assert p.min_it_w == pytest.approx(p.stopped_it_w, rel=1e-12)
    assert p.swing_it_w == pytest.approx(p.max_it_w - p.min_it_w)
    pue = s.facility.pue
    for name in ("min", "average", "max", "swing", "stopped"):
        assert getattr(p, f"{name}_facility_w") == pytest.approx(pue * getattr(p, f"{name}_it_w"), rel=1e-12)


def test_a_pipeline_averages_its_stages(small) -> None:
    """On 4 stages the average is facility.power's draw at the stages' mean activity, each stage's from its tasks'
    time by kind (counted here apart from the timeline), and below the busiest stage's breakdown's (the other
    stages wait longer in the bubble); every stage and replica simulated (full detail) gives the same trace."""
    s, _, four = small
    r = _run(s, four)
    p = r.report.power
    assert p is not None
    acc, step = s.cluster.accelerator, r.report.step_time_s
    activities = []
    for key in dict.fromkeys((rep, st) for rep, st, _ in r.graph.streams):
        busy = {"compute": 0.0, "recompute": 0.0, "optimizer": 0.0, "offload": 0.0}
        for t, kind in zip(r.graph.tasks, r.graph.kinds, strict=True):
            if r.graph.streams[t.stream][:2] == key and kind in busy:
                busy[kind] += t.duration_s
        rest = step - sum(busy.values())
        activities.append(gpu_activity({**busy, "pipeline_bubble": rest}, acc, r.host_wait_s))
    assert s.facility is not None
    expected = power(s.cluster, fabric_report(s.cluster), s.facility.pue, activity=float(np.mean(activities))).it_w
    assert p.average_it_w == pytest.approx(expected, rel=1e-9)
    assert p.average_it_w < _facility_w(s, r.report.breakdown, r.host_wait_s)
    full = _run(s, four, detail="full")
    assert full.report.replicas_simulated == 4
    assert r.timeline().num_gpus == full.timeline().num_gpus == s.cluster.num_gpus
    assert full.report.power is not None
    for name, value in p.model_dump().items():
        assert getattr(full.report.power, name) == pytest.approx(value, rel=1e-9), name


def _low_share(r: SimResult) -> float:
    """The share of the step the cluster draws less than halfway from its minimum to its maximum."""
    assert r.power_trace is not None and r.report.power is not None
    edges, it_w = r.power_trace
    dt = np.diff(edges)
    return float(dt[it_w < 0.5 * (r.report.power.min_it_w + r.report.power.max_it_w)].sum() / dt.sum())


@pytest.mark.parametrize("how", ["straggler on the last stage", "straggler on the first stage", "bigger bubble"])
def test_a_straggler_or_a_bigger_bubble_lowers_the_draw(small, how: str) -> None:
    """One GPU at half speed (its stage holds up the others, its replica the other replicas) or half the
    micro-batches on the same pipeline (its fill and drain a larger share of the step): the step's average draw
    falls and the cluster spends longer in the lower half of its swing; the swing does not narrow."""
    s, _, four = small
    base = _run(s, four)
    if how == "bigger bubble":
        other = _run(_small(16), four)
        assert other.report.microbatches == base.report.microbatches // 2
    else:
        gpu = 0 if "first" in how else 3 * four["tp"] * four["cp"] * four["dp"]  # layout tp-cp-ep-dp-pp
        other = _run(s, four, stragglers=(parse_straggler(f"gpu={gpu}:0.5", s),))
        assert other.report.replicas_simulated == 2
        assert other.timeline().num_gpus == s.cluster.num_gpus  # the slowest replica and 3 typical ones
    p, q = base.report.power, other.report.power
    assert p is not None and q is not None
    assert q.average_it_w < p.average_it_w - 0.01 * p.swing_it_w
    assert _low_share(other) > _low_share(base) + 0.02
    assert q.swing_it_w >= p.swing_it_w - 1e-6 and q.min_it_w <= p.min_it_w + 1e-6


def test_no_facility_no_power(small) -> None:
    """A scenario without a facility (no PUE) has no power figures and no power track, as `facility` has none."""
    s, one, _ = small
    bare = s.model_copy(update={"facility": None})
    r = simulate(bare, bare.calibrated(None), one)
    assert simulated_power(bare, r) is None
    out = with_power(bare, r)
    assert out.report.power is None and out.power_trace is None


def test_the_trace_draws_the_power(small, tmp_path: Path) -> None:
    """The Perfetto trace holds the "cluster power (MW)" counter: "C" events from 0 to the step's end at strictly
    increasing times, within the step's minimum and maximum, averaging (over time) the reported average."""
    s, _, four = small
    r = _run(s, four)
    assert r.power_trace is not None and r.report.power is not None
    path = tmp_path / "t.json"
    write_trace(str(path), r.graph, power=r.power_trace)
    events = json.loads(path.read_text())["traceEvents"]
    counter = [e for e in events if e["ph"] == "C"]
    assert counter and {e["name"] for e in counter} == {POWER_TRACK}
    assert len({e["pid"] for e in counter}) == 1
    names = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert names[counter[0]["pid"]] == "cluster"
    ts = np.array([e["ts"] for e in counter])
    mw = np.array([e["args"]["MW"] for e in counter])
    assert ts[0] == 0.0 and ts[-1] == pytest.approx(r.report.step_time_s * 1e6) and np.all(np.diff(ts) > 0)
    p = r.report.power
    assert mw.min() == pytest.approx(p.min_it_w / 1e6, abs=1e-3) and mw.max() == pytest.approx(p.max_it_w / 1e6,
                                                                                                abs=1e-3)
    assert float(mw[:-1] @ np.diff(ts)) / ts[-1] == pytest.approx(p.average_it_w / 1e6, abs=2e-3)
