"""plan(): the fastest fitting configuration (= brute force), given fields fixed, deterministic, located errors;
and the GPT-3 175B / 1,024 A100 / 34 days cross-check of Narayanan et al. SC'21."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest

from supercluster import InfeasibleError, build_scenario, perf, plan
from supercluster.perf.step import candidate_memory, memory_fits
from supercluster.search import enumerate_space
from supercluster.search.space import offload_variants
from supercluster.spec.calibration import default_calibration
from supercluster.spec.scenario import Scenario
from supercluster.workload.flops import lm_head_flops_per_token

DAY_S = 86400.0


def small(parallelism: dict[str, Any] | None = None, **training: Any) -> Scenario:
    """Llama 3 8B on 64 H100 (8-GPU NVLink nodes, 400G RoCE)."""
    return build_scenario({
        "name": "llama3-8b-64",
        "cluster": {"base": "llama3-16k", "num_gpus": 64},
        "model": "llama3-8b",
        "training": {"tokens": 1.0e12, "global_batch": 256, **training},
        "parallelism": parallelism or "auto",
    })


def brute_force(s: Scenario) -> tuple[perf.Candidates, perf.StepArrays, int]:
    """Every configuration of the space evaluated at once, and again with the searched offloads those that do not
    fit; the fastest that fits (less memory, then order, on ties)."""
    space = enumerate_space(s)
    arrays = perf.evaluate(s, space, default_calibration())
    m = arrays.memory
    hopeful = ~arrays.fits & (m.total_bytes - m.optimizer_bytes - m.weights_bytes - m.gradients_bytes
                              - m.activations_bytes <= arrays.hbm_budget_bytes)
    variants = offload_variants(s.parallelism, space, ~hopeful)
    if variants is not None:  # the search times only the variants whose memory fits
        variants = variants.take(np.flatnonzero(memory_fits(s, candidate_memory(s, variants))))
        space = perf.Candidates.concat([space, variants])
        arrays = perf.evaluate(s, space, default_calibration())
    t = np.where(arrays.fits, arrays.step_time_s, np.inf)
    assert np.isfinite(t).any()
    fastest = np.flatnonzero(t == t.min())
    best = fastest[np.argmin(arrays.memory.total_bytes[fastest])]
    return space, arrays, int(best)


def same_parallelism(report_par: dict[str, Any], row: dict[str, Any]) -> bool:
    return all(report_par[k] == v for k, v in row.items())


@pytest.mark.parametrize("parallelism", [None, {"tp": 2}, {"recompute": "selective", "micro_batch": 2},
                                         {"order": "auto"}])
def test_plan_equals_brute_force(parallelism: dict[str, Any] | None) -> None:
    """plan() returns exactly the fastest fitting configuration that brute-force evaluation of the space finds."""
    s = small(parallelism)
    space, arrays, best = brute_force(s)
    r = plan(s).step
    assert r.fits
    assert r.step_time_s == float(arrays.step_time_s[best])
    assert same_parallelism(r.parallelism, space.row(best)), (r.parallelism, space.row(best))
    assert np.all(arrays.step_time_s[arrays.fits] >= r.step_time_s)


def test_given_fields_stay_fixed() -> None:
    """Every parallelism field the scenario gives appears unchanged in the plan."""
    given = {"tp": 4, "pp": 2, "micro_batch": 1, "recompute": "selective", "zero_stage": 1,
             "sequence_parallel": True, "virtual_stages": 2}
    r = plan(small(given)).step
    for k, v in given.items():
        assert r.parallelism[k] == v, k
    p = r.parallelism
    assert p["tp"] * p["pp"] * p["dp"] * p["cp"] == 64


def test_plan_is_deterministic() -> None:
    """Planning the same scenario twice gives identical reports (apart from the search wall time)."""
    s = small()
    a, b = plan(s).model_dump(), plan(s).model_dump()
    for d in (a, b):
        d["search"].pop("seconds", None)
    assert a == b


def test_infeasible_names_the_memory_needed() -> None:
    """Llama 3 405B on 8 GPUs fits in no configuration: InfeasibleError says how many GiB the leanest needs."""
    s = build_scenario({"name": "405b-on-8", "cluster": {"base": "llama3-16k", "num_gpus": 8},
                        "model": "llama3-405b", "training": {"tokens": 1.0e12, "global_batch": 64}})
    with pytest.raises(InfeasibleError, match=r"needs \d+(\.\d+)? GiB per GPU") as info:
        plan(s)
    text = str(info.value)
    need = float(text.split("needs ")[1].split(" GiB")[0])
    host = float(text.split(" and ")[1].split(" GiB")[0]) if "host memory" in text else 0.0
    # the states alone (2 + 4 + 12 bytes x 405.9e9 / 8 GPUs under ZeRO-3) are ~850 GiB per GPU, on the GPU or,
    # offloaded, in host memory
    assert need + host > 18 * 405.8e9 / 8 / 2**30 * 0.99


# GPT-3 175B on 1,024 A100 (Narayanan et al. SC'21, arXiv:2104.04473, §5.1 and Table 1): 140 TFLOP/s per GPU in
# Megatron's convention, 300B tokens in "about 34 days".
PAPER_DAYS = 34.0
PAPER_TFLOPS = 140e12
GPUS = 1024
TOKENS = 300e9
LAYERS, HIDDEN, SEQ, VOCAB = 96, 12288, 2048, 51200  # Megatron pads the GPT-2 vocabulary to 51,200


def megatron_flops_per_token(layers: int, hidden: int, seq: int, vocab: int) -> float:
    """Megatron-LM SC'21 Eq. 3 per token: 96*l*h^2*(1 + s/6h + V/16lh) (full recompute counted, LM head included)."""
    return 96 * layers * hidden**2 * (1 + seq / (6 * hidden) + vocab / (16 * layers * hidden))


def test_megatron_gpt3_days_from_paper_formula() -> None:
    """300B tokens x Megatron's FLOPs per token at 140 TFLOP/s on 1,024 A100 is about 34 days (the paper's figure)."""
    days = TOKENS * megatron_flops_per_token(LAYERS, HIDDEN, SEQ, VOCAB) / (GPUS * PAPER_TFLOPS) / DAY_S
    assert days == pytest.approx(PAPER_DAYS, rel=0.03)
    # the paper's own shortcut, 8*T*P/(n*X), gives the same within 3%
    shortcut = 8 * TOKENS * 175e9 / (GPUS * PAPER_TFLOPS) / DAY_S
    assert shortcut == pytest.approx(days, rel=0.03)


@cache
def gpt3_report() -> perf.StepReport:
    s = build_scenario({
        "name": "gpt3-175b-1024-a100",
        "cluster": {"name": "a100-1024", "accelerator": "A100-SXM4-80GB", "num_gpus": GPUS, "gpus_per_node": 8,
                    "scale_out_bandwidth_per_gpu_bytes_per_s": 25.0e9, "fabric": "infiniband"},  # HDR 200G per GPU
        "model": "gpt3-175b",
        "training": {"tokens": TOKENS, "global_batch": 1536, "seq_len": SEQ, "precision": "fp16",
                     "flash_attention": False},  # 2021: Megatron-LM had no fused attention yet
        "parallelism": {"tp": 8, "pp": 8, "dp": 16, "recompute": "full", "sequence_parallel": False,
                        "zero_stage": 0},  # as in 2021: no sequence parallelism, no distributed optimizer
    })
    return plan(s).step


def test_gpt3_hardware_flops_match_megatron_convention() -> None:
    """Our hardware FLOPs (PaLM + full recompute) + LM head equal Megatron's Eq. 3 per token within 1e-4 (norms)."""
    r = gpt3_report()
    assert r.parallelism["recompute"] == "full"
    from supercluster.spec.catalog import entry
    from supercluster.spec.model import Model
    model = Model.model_validate(entry("models", "gpt3-175b"))
    ours = r.hardware_flops_per_token + lm_head_flops_per_token(model)
    theirs = megatron_flops_per_token(model.layers, model.hidden, SEQ, model.vocab)
    assert ours == pytest.approx(theirs, rel=1e-4)
    assert r.hardware_flops_per_token == pytest.approx(4 / 3 * r.model_flops_per_token, rel=1e-12)


def test_gpt3_plan_time_to_train_near_34_days() -> None:
    """Our plan for GPT-3 175B on 1,024 A100 (tp 8, pp 8, dp 16, full recompute) is within 25% of SC'21's 34 days."""
    r = gpt3_report()
    assert r.fits
    assert (r.parallelism["tp"], r.parallelism["pp"], r.parallelism["dp"]) == (8, 8, 16)
    assert r.time_to_train_s / DAY_S == pytest.approx(PAPER_DAYS, rel=0.25)


def test_empty_space_error_names_the_factorisations() -> None:
    """When no configuration exists, the error factorises the GPU count and the global batch."""
    from supercluster.search.plan import _factorise

    assert _factorise(110592) == "2^12 * 3^3"
    assert _factorise(1) == "1"
    s = build_scenario({
        "name": "odd", "cluster": {"base": "colossus-2-gb200"}, "model": "llama3-405b",
        "training": {"tokens": 1e12, "global_batch": 4096, "seq_len": 8192},
        "parallelism": {"pp": 2},
    })
    with pytest.raises(InfeasibleError, match=r"110,592 GPUs \(= 2\^12 \* 3\^3\).*4096 = 2\^12"):
        plan(s)


def test_auto_search_may_split_layers_unevenly_but_never_below_one_per_chunk() -> None:
    """With pp left to the search, 126 layers may go on 16 stages (ceil split), and pp * v never exceeds layers."""
    s = build_scenario({
        "name": "uneven", "cluster": {"base": "llama3-16k", "num_gpus": 1024}, "model": "llama3-405b",
        "training": {"tokens": 1e12, "global_batch": 512, "seq_len": 4096},
        "parallelism": {"tp": 8, "cp": 1},
    })
    space = enumerate_space(s)
    assert (np.mod(126, space.pp) != 0).any()
    assert (space.pp * space.virtual_stages <= 126).all()
    fixed = build_scenario({**s.model_dump(mode="json", exclude={"parallelism"}),
                            "parallelism": {"tp": 8, "cp": 1, "pp": 2}})
    assert set(enumerate_space(fixed).pp) == {2}


def test_order_auto_searches_the_layouts() -> None:
    """order: auto takes the faster of Megatron's and Llama 3's layouts, and says which."""
    from supercluster.spec.training import SEARCHED_ORDERS

    best = {o: plan(small({"order": o})).step for o in SEARCHED_ORDERS}
    auto = plan(small({"order": "auto"})).step
    assert auto.parallelism["order"] in SEARCHED_ORDERS
    assert auto.step_time_s == min(r.step_time_s for r in best.values())
    for o, r in best.items():
        assert r.parallelism["order"] == o


def test_interval_sensitivity_searches_the_checkpoint_interval() -> None:
    """plan(interval_sensitivity=True): the reliability ledger carries goodput against the checkpoint interval
    (the interval used the best simulated one); the plain plan keeps Daly's interval and no curve; the step and the
    fabric are the same."""
    s = small()
    plain, rich = plan(s), plan(s, interval_sensitivity=True)
    assert plain.reliability is not None and rich.reliability is not None
    assert plain.reliability.interval_sensitivity == []
    assert len(rich.reliability.interval_sensitivity) > 3
    assert rich.reliability.interval_best_simulated_s == rich.reliability.interval_used_s
    assert rich.step == plain.step and rich.fabric == plain.fabric and rich.fabric is not None
