"""Property: any scenario a user can write either plans to a self-consistent StepReport or is refused with a
SuperclusterError carrying a one-line message; no other exception ever escapes build_scenario or plan."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import supercluster
from supercluster import InfeasibleError, InputError, StepReport, SuperclusterError
from supercluster.spec import catalog

CLUSTERS = sorted(catalog.entries("clusters"))
# Smallest models and mid-size clusters first: Hypothesis leans towards the first elements of a list.
MODELS = sorted(catalog.entries("models"), key=lambda m: (catalog.entries("models")[m].get("published_params") or 0, m))
GPU_COUNTS = [64, 128, 32, 256, 64, 16, 512, 8, 24, 48, 96, 128]
DEGREES = [1, 1, 1, 2, 2, 2, 4, 4, 8, 8, 16, 3, 6, 12]  # powers of two mostly, some that rarely divide anything
PAR_FIELDS = ("tp", "pp", "cp", "ep", "etp", "micro_batch", "virtual_stages", "recompute", "zero_stage",
              "sequence_parallel", "uneven_pipeline")

# Values no field accepts where they are injected (so the scenario must be refused as an InputError).
JUNK_INT = st.sampled_from([0, -1, -8, "many", 2.5, [2], {"n": 2}])
JUNK_FLOAT = st.sampled_from([0, 0.0, -1.0, "lots", [1.0], float("nan"), None])


class Junk:
    """Records whether an invalid value went into the scenario."""

    def __init__(self) -> None:
        self.used = False


def _chance(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in ``one_in`` draws (False is the simpler value, the one Hypothesis shrinks towards)."""
    return draw(st.sampled_from([False] * (one_in - 1) + [True]))


def _maybe_junk(draw: st.DrawFn, junk: Junk, valid: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
    if _chance(draw, 30):
        junk.used = True
        return draw(bad)
    return draw(valid)


def _parallel_value(draw: st.DrawFn, junk: Junk, key: str) -> Any:
    if key == "recompute":
        return _maybe_junk(draw, junk, st.sampled_from(["none", "selective", "full"]),
                           st.sampled_from(["sometimes", 1, ""]))
    if key == "zero_stage":
        return _maybe_junk(draw, junk, st.sampled_from([0, 1, 2, 3]), st.sampled_from([4, -1, "three"]))
    if key in ("sequence_parallel", "uneven_pipeline"):
        return _maybe_junk(draw, junk, st.booleans(), st.sampled_from(["perhaps", [True]]))
    return _maybe_junk(draw, junk, st.sampled_from(DEGREES), JUNK_INT)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Any], list[str], bool]:
    """(scenario dict, --set overrides, whether an invalid value was injected) with 8-512 GPUs."""
    junk = Junk()
    n = _maybe_junk(draw, junk, st.sampled_from(GPU_COUNTS), JUNK_INT)
    cluster_name = draw(st.sampled_from(CLUSTERS))
    overrides: list[str] = []
    if draw(st.booleans()) and not isinstance(n, (list, dict)) and n is not None:
        cluster: Any = cluster_name  # a catalog name resized by --set, as on the command line
        overrides.append(f"cluster.num_gpus={n}")
    else:
        cluster = {"base": cluster_name, "num_gpus": n}

    model: Any = draw(st.sampled_from(MODELS))
    if _chance(draw, 5):
        model = {"base": model, "seq_len": _maybe_junk(draw, junk, st.sampled_from([2048, 4096, 8192]), JUNK_INT)}

    training: dict[str, Any] = {
        "tokens": _maybe_junk(draw, junk, st.floats(1e9, 1e14), JUNK_FLOAT),
        "global_batch": _maybe_junk(draw, junk, st.sampled_from([512, 256, 1024, 96, 128, 1536, 2048, 32, 8]),
                                    JUNK_INT),
    }
    if draw(st.booleans()):
        training["seq_len"] = _maybe_junk(draw, junk, st.sampled_from([1024, 2048, 4096, 8192]), JUNK_INT)
    if _chance(draw, 5):
        training["precision"] = _maybe_junk(draw, junk, st.sampled_from(["bf16", "fp16", "fp8"]),
                                            st.sampled_from(["fp64", "int4", 16]))

    data: dict[str, Any] = {"name": "prop", "cluster": cluster, "model": model, "training": training}
    style = draw(st.sampled_from(["omitted", "auto", "partial", "partial", "full"]))
    if style == "auto":
        data["parallelism"] = "auto"
    elif style in ("partial", "full"):
        keys = draw(st.lists(st.sampled_from(PAR_FIELDS), unique=True, max_size=4))
        par = {key: _parallel_value(draw, junk, key) for key in keys}
        if style == "full":
            # All four degrees; dp is given only with tp, pp and cp (a dp fixed alone can leave no candidate,
            # which hits the IndexError of test_load.py::test_no_candidate_configuration_is_an_infeasible_error).
            for key in ("tp", "pp", "cp"):  # a degree drawn above stays (junk drawn there must reach the spec)
                if key not in par:
                    par[key] = _parallel_value(draw, junk, key)
            ints = all(isinstance(par[k], int) and not isinstance(par[k], bool) and par[k] > 0
                       for k in ("tp", "pp", "cp"))
            if "dp" in par:
                pass
            elif ints and isinstance(n, int) and n > 0 and draw(st.booleans()):
                par["dp"] = max(n // (par["tp"] * par["pp"] * par["cp"]), 1)  # right whenever the others divide
            else:
                par["dp"] = _parallel_value(draw, junk, "dp")
        data["parallelism"] = par
    return data, overrides, junk.used


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_plan_returns_a_consistent_report_or_a_supercluster_error(case: tuple[dict[str, Any], list[str], bool]
                                                                  ) -> None:
    """build_scenario + plan give a consistent StepReport or an InputError/InfeasibleError, nothing else."""
    data, overrides, junk_used = case
    try:
        scenario = supercluster.build_scenario(data, overrides=overrides)
        report = supercluster.plan(scenario, with_reliability=False).step  # the failure Monte Carlo: tests/reliability
    except SuperclusterError as exc:
        event(type(exc).__name__)
        assert isinstance(exc, InputError | InfeasibleError), type(exc)
        message = str(exc)
        assert message.strip() and "\n" not in message, repr(message)
        assert exc.exit_code == 2
        if junk_used:
            assert isinstance(exc, InputError), message
        return
    event("StepReport")
    assert not junk_used, "an invalid value was accepted"
    assert isinstance(report, StepReport)
    assert math.isfinite(report.step_time_s) and report.step_time_s > 0
    assert math.isclose(math.fsum(report.breakdown.values()), report.step_time_s, rel_tol=1e-9)
    assert all(part >= 0 for part in report.breakdown.values()), report.breakdown
    if report.fits:
        assert report.memory_per_gpu_bytes <= report.hbm_budget_bytes <= report.hbm_bytes
    par = report.parallelism
    assert par["tp"] * par["pp"] * par["dp"] * par["cp"] == report.num_gpus == scenario.cluster.num_gpus
    for key, value in scenario.parallelism.model_dump().items():
        if value is not None and key in par:
            assert par[key] == value, (key, value, par[key])
    assert 0 < report.mfu <= report.hfu
