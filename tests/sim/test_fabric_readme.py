"""The contention figures README.md quotes for Memphis are the figures contention_factors gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from supercluster import load_scenario, plan
from supercluster.sim import contention_factors

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
SECTION = re.sub(r"\s+", " ", README.split("## Contention", 1)[1].split("\n## ", 1)[0])
MEMPHIS = "scenarios/memphis.yaml"


@pytest.fixture(scope="module")
def memphis():
    return plan(load_scenario(MEMPHIS), with_reliability=False).step


def _numbers(pattern: str) -> list[float]:
    m = re.search(pattern, SECTION)
    assert m, pattern
    return [float(g) for g in m.groups()]


def test_memphis_ecmp_figures(memphis) -> None:
    """ECMP on the shipped fabric: the dp factor and the pp factor at seed 0 (what they cost the step is simulated,
    tests/sim/test_sim_readme.py)."""
    f = contention_factors(load_scenario(MEMPHIS), memphis.parallelism, routing="ecmp", seed=0)
    (dp,) = _numbers(r"the data-parallel ring takes ([\d.]+)x")
    assert dp == round(f["dp"], 2)
    (low, _) = _numbers(r"the pipeline's sends ([\d.]+)x to ([\d.]+)x")
    assert f["pp"] == low


def test_memphis_oversubscribed_leaf(memphis) -> None:
    """4:1 at the leaf with adaptive routing: the dp ring untouched, the pipeline's sends at the quoted factor."""
    s = load_scenario(MEMPHIS, ["cluster.fabric.oversubscription=4"])
    f = contention_factors(s, memphis.parallelism, routing="adaptive")
    (_, four) = _numbers(r"([\d.]+)x and ([\d.]+)x at the leaf")
    assert four == round(f["pp"], 2)
    assert f["dp"] == 1.0

