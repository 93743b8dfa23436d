"""Published runs as scenarios: the optional software facts a row states reach the model."""

from __future__ import annotations

import copy

import yaml

from supercluster.search.plan import best_step
from supercluster.validate import HELDOUT_FILE, run_to_scenario


def _row(run_id: str) -> dict:
    runs = yaml.safe_load(HELDOUT_FILE.read_text(encoding="utf-8"))["runs"]
    return next(r for r in runs if r["id"] == run_id)


def test_a_run_that_reduces_in_bf16_holds_half_the_gradient_bytes() -> None:
    """`grad_accum_fp32: false` (NeMo's performance mode) reaches the training spec: the gradient buffers are
    16-bit, half the fp32 ones, and the rest of the memory is unchanged."""
    stated = _row("dgxc250504-llama31-405b-512xh100-bf16")
    assert stated["training"]["grad_accum_fp32"] is False
    fp32 = copy.deepcopy(stated)
    fp32["training"]["grad_accum_fp32"] = True
    reports = []
    for i, run in enumerate((stated, fp32)):
        s = run_to_scenario(run, file="runs.yaml", index=i)
        assert s.training.grad_accum_fp32 is run["training"]["grad_accum_fp32"]
        reports.append(best_step(s, None, require_fit=False)[0])
    bf16, full = (r.memory_breakdown for r in reports)
    assert bf16["gradients"] * 2 == full["gradients"]
    assert bf16["weights"] == full["weights"]
    assert reports[0].fits and not reports[1].fits  # the 405B layout the recipe ran fits only with bf16 gradients
