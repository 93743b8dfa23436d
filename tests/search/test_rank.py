"""rank(): the K fastest configurations (the first is plan's), the Pareto front, and why the best wins."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_plan import brute_force, small

from supercluster import perf, plan
from supercluster.search import enumerate_space, rank
from supercluster.spec.calibration import default_calibration


def test_top_is_sorted_and_starts_with_plans_choice() -> None:
    s = small()
    r = rank(s, top=7)
    best = plan(s).step
    assert r.top[0].parallelism == {k: best.parallelism[k] for k in r.top[0].parallelism}
    assert r.top[0].step_time_s == best.step_time_s
    times = [x.step_time_s for x in r.top]
    assert times == sorted(times) and len(r.top) == 7
    space, arrays, _ = brute_force(s)
    assert r.candidates == len(space) and r.fitting == int(arrays.fits.sum())
    assert times == sorted(arrays.step_time_s[arrays.fits])[:7]


def test_pareto_front_is_exactly_the_non_dominated_set() -> None:
    """No configuration that fits is both faster and has more headroom than a front member, and every fitting
    configuration off the front is dominated (brute force over the space)."""
    s = small()
    r = rank(s, top=1, pareto=True)
    space, arrays, _ = brute_force(s)
    fit = np.flatnonzero(arrays.fits)
    t, head = arrays.step_time_s[fit], arrays.hbm_budget_bytes - arrays.memory.total_bytes[fit]
    dominated = np.array([np.any((t <= t[i]) & (head >= head[i]) & ((t < t[i]) | (head > head[i])))
                          for i in range(fit.size)])
    expected = sorted(zip(t[~dominated].tolist(), head[~dominated].tolist(), strict=True))
    got = sorted((p.step_time_s, p.headroom_bytes) for p in r.pareto)
    assert r.pareto_size == len(got) == len(set(expected))
    assert got == sorted(set(expected))


def test_why_names_a_slower_alternative_per_axis() -> None:
    r = rank(small(), top=3)
    axes = {w.axis: w for w in r.why}
    assert set(axes) >= {"tp", "pp", "dp", "micro_batch", "recompute", "zero_stage"}
    for w in r.why:
        if w.alternative is not None:
            assert w.alternative != w.winner and w.slower_by is not None and w.slower_by >= 0.0


def test_batch_evaluation_equals_one_at_a_time() -> None:
    """evaluate() times each distinct layer shape and group once and spreads the result: the same numbers as
    evaluating every configuration on its own."""
    s = small()
    space = enumerate_space(s)
    cal = default_calibration()
    batch = perf.evaluate(s, space, cal)
    for i in np.linspace(0, len(space) - 1, 40).astype(int):
        one = perf.evaluate(s, space.take(np.array([i])), cal)
        for part, values in batch.parts.items():
            assert one.parts[part][0] == pytest.approx(values[i], rel=1e-12, abs=1e-15), (part, space.row(i))
        assert one.memory.total_bytes[0] == pytest.approx(batch.memory.total_bytes[i], rel=1e-12)


def test_search_command(cli) -> None:
    result = cli("search", "scenarios/llama3-405b-16k.yaml", "--top", "3", "--pareto", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert len(data["top"]) == 3 and data["pareto_size"] >= 1 and data["why"]
    assert "seconds" not in data  # wall time belongs to the console, not the report
    assert data["model"]["name"] == "llama3-405b" and data["model"]["params"] == data["best"]["params"]
    again = cli("search", "scenarios/llama3-405b-16k.yaml", "--top", "3", "--pareto", "--json")
    assert again.out == result.out
    text = cli("search", "scenarios/llama3-405b-16k.yaml", "--top", "2")
    assert text.code == 0 and "why the best wins" in text.out
    assert text.out.index("N for MFU") < text.out.index("why the best wins")  # the model table comes first
    cli("search", "scenarios/llama3-405b-16k.yaml", "--top", "0").one_error_line("--top")


def test_plan_names_the_collective_algorithm_of_every_group() -> None:
    """The algorithm the step model chose for each axis's main collective (the fastest available, as NCCL's tuner
    picks) is in the report; a trivial group has none."""
    from supercluster.network.cost import ALGORITHMS

    r = plan(small({"tp": 8})).step
    assert r.groups["tp"]["algorithm"] in ALGORITHMS
    assert r.groups["pp"]["algorithm"] in ("direct", "-")
    for grp in r.groups.values():
        assert (grp["algorithm"] == "-") == (grp["size"] <= 1)
