"""The simulator figures README.md's Simulate section quotes are the figures the code gives, at the precision they
are printed: the power over Memphis's simulated step, the straggler and jitter row of the 100,000-GPU job, the
straggler cells of the 4,096- and 16,384-GPU rows (1,875 micro-batches on 64 stages: ~10 s each; their jitter cells,
five iterations each, are left to benchmarks/sim_examples.py, which prints both tables) and every row of the
contention table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from supercluster import load_scenario
from supercluster.facility.ledger import facility_ledger
from supercluster.search.plan import best_step
from supercluster.search.sim_power import with_power
from supercluster.sim.contended import simulate_contended
from supercluster.sim.run import simulate
from supercluster.sim.slowlink import parse_slow_link
from supercluster.sim.variability import parse_straggler

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Simulate", 1)[1].split("\n## ", 1)[0]
MEMPHIS = "scenarios/memphis.yaml"
FABRICS = {"1:1 (shipped)": [], "core 2:1": ["cluster.fabric.oversubscription=[1,2]"],
           "core 4:1": ["cluster.fabric.oversubscription=[1,4]"], "1:1, node 12's NICs at 50%": []}
SLOW = {"1:1, node 12's NICs at 50%": ("node=12:0.5",)}


def _rows(header: str) -> list[list[str]]:
    """The cells of the rows of the table whose header line starts with ``header``."""
    lines = SECTION.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def _pct(x: float) -> str:
    return f"{x:+.1%}"


@pytest.fixture(scope="module")
def memphis() -> tuple:
    s = load_scenario(MEMPHIS)
    cal = s.calibrated(None)
    par = best_step(s, cal)[0].parallelism
    return s, cal, par, simulate(s, cal, par).report.step_time_s


def _mw(w: float) -> str:
    return f"{w / 1e6:.1f} MW"


def test_the_power_of_the_memphis_step(memphis) -> None:
    """Memphis's simulated step: the IT draw's minimum, maximum and average, the facility's, both swings, and
    facility's (analytic) compute level, idle floor and the swing between them, as quoted."""
    s, cal, par, _ = memphis
    p = with_power(s, simulate(s, cal, par)).report.power
    assert p is not None
    text = " ".join(SECTION.split())
    assert (f"runs from {_mw(p.min_it_w)} to {_mw(p.max_it_w)}, {_mw(p.average_it_w)} on average "
            f"({p.min_facility_w / 1e6:.1f}, {p.average_facility_w / 1e6:.1f} and {_mw(p.max_facility_w)} at the "
            f"facility): a swing of {_mw(p.swing_it_w)} within the step ({_mw(p.swing_facility_w)} at the "
            "facility)") in text
    ledger = facility_ledger(s, best_step(s, cal)[0])
    assert ledger is not None
    sp = ledger.step_power
    assert (f"the {sp.swing_it_w / 1e6:.0f} MW between `facility`'s compute level ({sp.max_it_w / 1e6:.0f} MW) "
            f"and idle floor ({sp.min_it_w / 1e6:.0f} MW, a stopped job's draw)") in text
    assert sp.min_it_w == sp.stopped_it_w == p.stopped_it_w
    assert f"the {par['pp']} stages all compute at once" in text
    # every stage computes at once in the steady state, and all wait on the host together after the gradient norm
    assert p.max_it_w == pytest.approx(sp.max_it_w, rel=1e-12) and p.min_it_w == pytest.approx(p.stopped_it_w,
                                                                                                 rel=1e-12)


def test_the_100k_straggler_row(memphis) -> None:
    """Memphis at 100,000 GPUs: the step, GPU 0 and the last GPU at 80%, as quoted."""
    s, cal, par, step = memphis
    (row,) = [r for r in _rows("| GPUs |") if r[0] == "100,000"]
    assert row[1] == " ".join(f"{k} {par[k]}" for k in ("tp", "pp", "dp", "cp", "ep", "etp")) + \
        f" v {par['virtual_stages']}"
    assert row[2] == f"{step:.3f} s"
    for cell, gpu in ((row[3], 0), (row[4], s.cluster.num_gpus - 1)):
        slow = simulate(s, cal, par, stragglers=(parse_straggler(f"gpu={gpu}:0.8", s),)).report.step_time_s
        assert cell == _pct(slow / step - 1), gpu


@pytest.mark.parametrize("gpus", [4096, 16384])
def test_a_smaller_job_s_straggler_row(gpus: int) -> None:
    """Memphis's model and cluster at 4,096 and 16,384 GPUs: plan's configuration, the step, GPU 0 and the last
    GPU at 80%, as quoted."""
    s = load_scenario(MEMPHIS, [f"cluster.num_gpus={gpus}"])
    cal = s.calibrated(None)
    par = best_step(s, cal)[0].parallelism
    (row,) = [r for r in _rows("| GPUs |") if r[0] == f"{gpus:,}"]
    assert row[1] == " ".join(f"{k} {par[k]}" for k in ("tp", "pp", "dp", "cp", "ep", "etp")) + \
        f" v {par['virtual_stages']}"
    step = simulate(s, cal, par).report.step_time_s
    assert row[2] == f"{step:.3f} s"
    for cell, gpu in ((row[3], 0), (row[4], gpus - 1)):
        slow = simulate(s, cal, par, stragglers=(parse_straggler(f"gpu={gpu}:0.8", s),)).report.step_time_s
        assert cell == _pct(slow / step - 1), gpu


def test_the_100k_jitter_cell(memphis) -> None:
    """Memphis at 100,000 GPUs: a 2% jitter's median and p95 over 5 iterations (seed 1), as quoted."""
    s, cal, par, step = memphis
    (row,) = [r for r in _rows("| GPUs |") if r[0] == "100,000"]
    d = simulate(s, cal, par, jitter_sigma=0.02, iterations=5, seed=1).report.distribution
    assert row[5] == f"{_pct(d.median_s / step - 1)}, {_pct(d.p95_s / step - 1)}"


ROWS = _rows("| Memphis's fabric |")


def test_the_contention_table_has_every_example() -> None:
    """Both routings on the shipped fabric and an oversubscribed core at 2:1 and 4:1, and a slow node."""
    assert [(r[0], r[1]) for r in ROWS] == [(f, r) for r in ("adaptive", "ecmp") for f in list(FABRICS)[:3]] + [
        ("1:1, node 12's NICs at 50%", "adaptive")]


@pytest.mark.parametrize("row", ROWS, ids=[f"{r[0]}-{r[1]}" for r in ROWS])
def test_a_contention_row(memphis, row: list[str]) -> None:
    """`simulate --contention` on that fabric and routing (plan's configuration for it, seed 0): the flow factors,
    what the analytic model already charges, the simulated step and its cost over the shipped fabric's plain step."""
    label, routing, factors, step_cell, cost = row
    s = load_scenario(MEMPHIS, FABRICS[label])
    cal = s.calibrated(None)
    slow = tuple(parse_slow_link(x, s) for x in SLOW.get(label, ()))
    r = simulate_contended(s, cal, best_step(s, cal)[0].parallelism, routing=routing, slow_links=slow).report
    c = r.contention
    assert c is not None
    quoted = dict(re.findall(r"(\w+) ([\d.]+x(?: \([\d.]+x charged\))?)", factors))
    expected = {a: f"{f:.2f}x" + (f" ({c.analytic_factors[a]:.2f}x charged)" if c.analytic_factors[a] != 1.0 else "")
                for a, f in c.flow_factors.items() if f != 1.0}
    assert quoted == expected
    assert step_cell == f"{r.step_time_s:.3f} s"
    assert cost == _pct(r.step_time_s / memphis[3] - 1)
