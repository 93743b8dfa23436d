"""Bounds no configuration may cheat, over random scenarios and random configurations the search would explore.

A step is never shorter than the model FLOPs over the peak of every GPU, nor than one micro-batch's trip through
every layer of the model (the critical path no pipeline schedule can shorten), nor than the communication it
reports as exposed. Each bound is computed from pieces independent of the pipeline formula. The models are drawn
with and without sliding-window attention (every layer, alternate layers, Gemma 3's five local to one global), and
as Mamba-2 or Mamba-1 hybrids (seven layers in eight a state-space mixer, some Mamba-2 ones without an MLP when the
model is dense), and with selective recompute of named modules (training.recompute_modules), those the model lacks
included (they recompute nothing).
"""

from __future__ import annotations

from typing import Any, get_args

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_step import flat_pipeline  # the pipeline folded into data parallelism

from supercluster import build_scenario, perf
from supercluster.perf.candidates import SCHEDULE_CODES
from supercluster.search import enumerate_space
from supercluster.spec.base import RecomputeModule
from supercluster.spec.calibration import default_calibration
from supercluster.spec.catalog import entry
from supercluster.spec.scenario import Scenario
from supercluster.workload.flops import model_flops_per_token

MODELS = ["llama3-8b", "llama3-70b", "gpt3-175b", "mixtral-8x7b", "deepseek-v3", "qwen3-235b-a22b", "grok-1"]
CLUSTERS = ["llama3-16k", "colossus", "gpt4-a100", "colossus-2-gb200", "meta-24k-ib"]
COMM = ("tp_comm", "cp_comm", "ep_comm", "pp_comm", "dp_comm")
BUSY = ("compute", "recompute", "tp_comm", "cp_comm", "ep_comm", "pp_comm")


@st.composite
def cases(draw: st.DrawFn) -> dict[str, object]:
    """A scenario (catalog model and cluster, GPU count, batch, sequence, precision) and which configurations."""
    return {"model": draw(st.sampled_from(MODELS)), "cluster": draw(st.sampled_from(CLUSTERS)),
            "gpus": draw(st.sampled_from([64, 128, 256, 512, 1024, 4096])),
            "global_batch": draw(st.sampled_from([64, 256, 512, 1536, 2048])),
            "seq_len": draw(st.sampled_from([2048, 4096, 8192])),
            "precision": draw(st.sampled_from(["bf16", "fp8", "fp16", "fp4"])),
            "seed": draw(st.integers(0, 2**31)),
            "window": draw(st.sampled_from([None, None, 512, 4096])),
            "pattern": draw(st.sampled_from(["every", "alternate", "5:1"])),
            "hybrid": draw(st.sampled_from([0, 0, 2, 1])),  # no state-space layers, Mamba-2, Mamba-1
            "interleave": draw(st.sampled_from([1, 1, 2, 3])),  # an MoE model's every (2nd, 3rd) layer MoE
            "beyond_rules": draw(st.booleans()),
            "schedule": draw(st.sampled_from(["searched", "zb-h1", "dualpipe"])),
            "modules": draw(st.sampled_from([None, None, [], ["layernorm", "moe_act"], ["mla_up_proj", "mlp"],
                                             ["moe", "shared_experts"], list(get_args(RecomputeModule))]))}


def _every_mlp_alike(spec: dict[str, Any], model: dict[str, object]) -> bool:
    """Whether a hybrid may have MLP-free layers (spec.model): a dense model, or one whose every MLP is MoE."""
    moe = model.get("moe") or spec.get("moe")
    return not moe or (not moe.get("dense_layers") and moe.get("interleave_step", 1) == 1)  # type: ignore[union-attr]


def _space(case: dict[str, object]) -> tuple[Scenario, perf.Candidates]:
    """Up to 300 configurations of the scenario's search space; with ``beyond_rules``, their interleaving and
    micro-batch redrawn regardless of the rules (the formulas must hold wherever they are asked)."""
    model: dict[str, object] = {"base": case["model"]}
    if case["window"] is not None:
        model["sliding_window"] = case["window"]
        layers = int(entry("models", str(case["model"]))["layers"])
        local = {"every": lambda i: True, "alternate": lambda i: i % 2 == 0, "5:1": lambda i: i % 6 != 5}[
            str(case["pattern"])]
        model["layer_types"] = ["sliding_attention" if local(i) else "full_attention" for i in range(layers)]
    moe = entry("models", str(case["model"])).get("moe")
    if moe and case["interleave"] != 1:  # the MoE layers spread over the model (moe.interleave_step)
        model["moe"] = {**moe, "dense_layers": 0, "interleave_step": case["interleave"]}
    if case["hybrid"]:
        spec = entry("models", str(case["model"]))
        layers, hidden = int(spec["layers"]), int(spec["hidden"])
        kinds = list(model.get("layer_types") or ["full_attention"] * layers)  # type: ignore[call-overload]
        model["layer_types"] = ["mamba" if i % 8 != 3 else kinds[i] for i in range(layers)]
        if all(t != "sliding_attention" for t in model["layer_types"]):  # type: ignore[union-attr]
            model["sliding_window"] = None
        bare = layers // 8 if _every_mlp_alike(spec, model) else 0  # Mamba-2 layers without an MLP
        model["ssm"] = {"heads": 2 * hidden // 64, "head_dim": 64, "state": 128, "groups": 8, "chunk_size": 128,
                        "mlp_free_layers": bare} if case["hybrid"] == 2 else {
            "version": 1, "heads": 2 * hidden, "head_dim": 1, "state": 16, "dt_rank": -(-hidden // 16)}
    s = build_scenario({"name": "bounds", "cluster": {"base": case["cluster"], "num_gpus": case["gpus"]},
                        "model": model,
                        "training": {"tokens": 1e12, "global_batch": case["global_batch"],
                                     "seq_len": case["seq_len"], "precision": case["precision"],
                                     **({} if case["modules"] is None else {"recompute_modules": case["modules"]})},
                        "parallelism": {"order": "auto"}},
                       check_rules=False)  # fp8 on A100, fp4 before Blackwell: refused at load; fallbacks must hold
    space = enumerate_space(s)
    if len(space) == 0:
        return s, space
    rng = np.random.default_rng(int(case["seed"]))  # type: ignore[call-overload]
    c = space.take(np.sort(rng.choice(len(space), size=min(len(space), 300), replace=False)))
    if case["beyond_rules"]:
        cols = c.as_arrays()
        cols["virtual_stages"] = np.where(c.pp > 1, rng.choice([1, 2, 3, 4, 8, 24], size=len(c)), 1)
        mb = rng.choice([1, 2, 4, 8], size=len(c))
        cols["micro_batch"] = np.where(np.mod(int(case["global_batch"]), c.dp * mb) == 0, mb,  # type: ignore[call-overload]
                                       c.micro_batch)  # whole micro-batches only
        c = perf.Candidates(**cols)
    if case["schedule"] != "searched":  # every schedule's formula must hold wherever it is asked, rules or not
        cols = c.as_arrays()
        one_chunk = (c.pp > 1) & (c.virtual_stages == 1)
        cols["schedule"] = np.where(one_chunk, SCHEDULE_CODES[str(case["schedule"])], c.schedule)
        c = perf.Candidates(**cols)
    return s, c


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_step_respects_the_bounds_no_schedule_can_beat(case: dict[str, object]) -> None:
    """Over any configuration of the search space: step >= model FLOPs / (GPUs x peak); step >= the time of one
    micro-batch through every layer (the pipeline folded away, recompute other than block so the work is the
    same); step >= the exposed communication it reports; every part is non-negative; under every schedule (1F1B,
    interleaved, ZB-H1, DualPipe) the pipeline is never shorter than one micro-batch's critical path."""
    s, c = _space(case)
    if len(c) == 0:
        return
    cal = default_calibration()
    a = perf.evaluate(s, c, cal)
    step = a.step_time_s
    assert np.all(np.isfinite(step)) and np.all(step > 0)
    for p in perf.PARTS:
        assert np.all(a.parts[p] >= 0), p
    n = s.cluster.num_gpus
    tokens = s.training.global_batch * s.seq_len
    peak = s.cluster.accelerator.peak_flops_per_s(s.training.precision)
    flops_floor = tokens * model_flops_per_token(s.model, s.seq_len) / (n * peak)
    assert np.all(step >= flops_floor * (1 - 1e-12))
    comm = sum((a.parts[p] for p in COMM), start=np.zeros_like(step))
    assert np.all(step >= comm)
    # every schedule keeps the guard: its pipeline never shorter than one micro-batch's critical path (ZB-H1: less
    # the weight-gradient passes it takes off the path, all but those of one stage)
    off_path = _zb_h1_off_path_s(s, c, a)
    pipe = a.microbatches * a.microbatch_s + a.parts["pipeline_bubble"]
    assert np.all(pipe >= (a.critical_path_s - off_path) * (1 - 1e-12))
    same_work = c.recompute != 3  # block recompute's share depends on the memory left, which folding changes
    if same_work.any():
        sub = c.take(np.flatnonzero(same_work))
        flat = perf.evaluate(s, flat_pipeline(sub), cal)
        one_microbatch = sum((flat.parts[p] for p in BUSY), start=np.zeros(len(sub))) / flat.microbatches
        assert np.all(step[same_work] >= (one_microbatch - off_path[same_work]) * (1 - 1e-12))


def _zb_h1_off_path_s(s: Scenario, c: perf.Candidates, a: perf.StepArrays) -> np.ndarray:
    """Per candidate, the weight-gradient passes ZB-H1 may run off one micro-batch's critical path (0 under the
    other schedules): every layer's and the head's, less those of a stage of floor(L/pp) of the lightest layers
    (the one whose passes end the path), from the op costs (independent of the pipeline formula)."""
    assert a.ops is not None
    layers = s.model.layers
    counts = {"dense": layers - s.model.moe_layers, "moe": s.model.moe_layers}
    per_layer = {kind: x["wgrad"] for kind, x in a.ops.layer.items() if counts[kind] > 0}
    every = sum((counts[k] * w for k, w in per_layer.items()), start=a.ops.head_wgrad_s)
    lightest = np.minimum.reduce(list(per_layer.values()))
    off = every - (layers // c.pp) * lightest
    return np.where(c.schedule == SCHEDULE_CODES["zb-h1"], off, 0.0)
