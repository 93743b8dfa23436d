"""The Monte Carlo of whole runs: deterministic, accounted to the second, and in agreement with Daly's closed form
where that form holds."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from supercluster.errors import InfeasibleError
from supercluster.reliability.checkpoint import daly_expected_wall_s, daly_interval_s
from supercluster.reliability.montecarlo import RunModel, simulate

HOUR = 3600.0
BASE = RunModel(work_s=30 * 24 * HOUR, interval_s=1800.0, blocking_s=60.0, commit_lag_s=0.0,
                rates_per_s=(1 / (4 * HOUR), 1 / (20 * HOUR)), restart_s=(600.0, 300.0), planned=(False, True),
                needs_node_swap=(True, False), node_swap_s=0.0, node_repair_s=4 * HOUR, hot_spare_nodes=None)


def test_same_seed_same_result_bit_for_bit_and_another_seed_another_sample() -> None:
    a, b = simulate(BASE, runs=200, seed=7), simulate(BASE, runs=200, seed=7)
    for x, y in ((a.wall_s, b.wall_s), (a.events, b.events), (a.lost_work_s, b.lost_work_s)):
        assert np.array_equal(x, y)
    c = simulate(BASE, runs=200, seed=8)
    assert not np.array_equal(a.wall_s, c.wall_s)


def test_every_second_is_accounted_for() -> None:
    """Wall time = work + restarts + checkpoints + rolled-back work, run by run."""
    r = simulate(BASE, runs=300, seed=1)
    np.testing.assert_allclose(r.wall_s, BASE.work_s + r.restart_s + r.checkpoint_s + r.lost_work_s, rtol=1e-9)
    np.testing.assert_allclose(r.goodput, BASE.work_s / r.wall_s, rtol=1e-9)


def test_without_failures_only_checkpoints_cost() -> None:
    m = replace(BASE, rates_per_s=(0.0, 0.0))
    r = simulate(m, runs=3, seed=0)
    checkpoints = math.ceil(m.work_s / m.interval_s) - 1
    np.testing.assert_allclose(r.wall_s, m.work_s + checkpoints * m.blocking_s)
    assert r.events.sum() == 0


def test_agrees_with_dalys_expected_wall_time() -> None:
    """One class of exponential failures, a constant restart, synchronous checkpoints: the simulated mean is
    Daly's (2006) closed form, failures during restarts and checkpoints included."""
    mttf = 2 * HOUR
    tau = daly_interval_s(120.0, mttf)
    m = RunModel(work_s=10 * 24 * HOUR, interval_s=tau, blocking_s=120.0, commit_lag_s=0.0, rates_per_s=(1 / mttf,),
                 restart_s=(900.0,), planned=(False,), needs_node_swap=(False,), node_swap_s=0.0,
                 node_repair_s=HOUR, hot_spare_nodes=None)
    r = simulate(m, runs=2000, seed=3)
    expected = daly_expected_wall_s(m.work_s, interval_s=tau, blocking_s=120.0, restart_s=900.0, mttf_s=mttf)
    assert r.wall_s.mean() == pytest.approx(expected, rel=0.01)


def test_the_mean_count_of_events_is_rate_times_wall_time() -> None:
    r = simulate(BASE, runs=500, seed=2)
    expected = np.outer(r.wall_s, BASE.rates_per_s).sum(axis=0)
    np.testing.assert_allclose(r.events.sum(axis=0), expected, rtol=0.03)


def test_more_failures_less_goodput_and_async_helps() -> None:
    good = simulate(BASE, runs=300, seed=4).goodput.mean()
    worse = simulate(replace(BASE, rates_per_s=(2 / (4 * HOUR), 1 / (20 * HOUR))), runs=300, seed=4).goodput.mean()
    assert worse < good
    asy = simulate(replace(BASE, blocking_s=2.0, commit_lag_s=60.0), runs=300, seed=4).goodput.mean()
    assert asy > good


def test_planned_maintenance_loses_no_work() -> None:
    m = replace(BASE, rates_per_s=(0.0, 1 / HOUR))
    r = simulate(m, runs=50, seed=5)
    assert r.lost_work_s.max() == 0.0 and r.events[:, 1].min() > 0


def test_a_finite_spare_pool_costs_waits() -> None:
    """With no spare every node-replacing failure waits for a repair; a pool far above the nodes out for repair
    behaves as an unlimited one."""
    assert BASE.spare_free_probability == 1.0
    none = replace(BASE, hot_spare_nodes=0)
    assert none.spare_free_probability == 0.0
    big = replace(BASE, hot_spare_nodes=50)
    assert big.spare_free_probability == pytest.approx(1.0)
    one = replace(BASE, hot_spare_nodes=1)  # P(Poisson(m) = 0), m = rate x repair = 1
    assert one.spare_free_probability == pytest.approx(math.exp(-1.0))
    g = {k: simulate(mm, runs=300, seed=6).goodput.mean() for k, mm in (("none", none), ("big", big),
                                                                         ("inf", BASE))}
    assert g["none"] < g["big"] == pytest.approx(g["inf"], abs=2e-3)


def test_a_job_that_cannot_progress_is_refused() -> None:
    with pytest.raises(InfeasibleError, match="cannot make progress"):
        simulate(replace(BASE, rates_per_s=(1 / 10.0, 0.0)), runs=2, seed=0)
    with pytest.raises(InfeasibleError, match="asynchronous write"):
        simulate(replace(BASE, commit_lag_s=4000.0), runs=2, seed=0)
