"""The rules frameworks enforce on a parallel configuration (spec.rules): a scenario that breaks one is refused with
a located line naming it; the search only returns configurations that keep every rule; configurations frameworks do
run (ZeRO-3 with a pipeline, as torchtitan runs FSDP) are accepted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from supercluster import SpecError, build_scenario, load_scenario, plan
from supercluster.search import enumerate_space
from supercluster.spec.load import check_parallelism
from supercluster.spec.rules import feasible_mask, rules_for
from supercluster.spec.training import SCHEDULES, microbatch_group
from supercluster.workload.memory import in_flight_chunks

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def scenario(parallelism: dict[str, Any], model: str = "llama3-8b", seq_len: int = 4096, gpus: int = 64,
             global_batch: int = 256) -> Any:
    return build_scenario({"name": "rules", "cluster": {"base": "llama3-16k", "num_gpus": gpus}, "model": model,
                           "training": {"tokens": 1e12, "global_batch": global_batch, "seq_len": seq_len},
                           "parallelism": parallelism})


def test_memphis_interleaving_with_one_microbatch_is_refused_naming_the_rule() -> None:
    """The configuration the search once exploited (one micro-batch, 24 virtual stages on 5 stages) is refused:
    the interleaved schedule needs at least pp micro-batches (Megatron-Core's groups of at least pp)."""
    sets = ["parallelism.tp=2", "parallelism.pp=5", "parallelism.cp=4", "parallelism.ep=16",
            "parallelism.micro_batch=3", "parallelism.virtual_stages=24", "parallelism.uneven_pipeline=true"]
    with pytest.raises(SpecError) as err:
        load_scenario(SCENARIOS / "memphis.yaml", sets)
    assert err.value.field == "parallelism.virtual_stages"
    assert "interleaved schedule" in str(err.value) and "m = global_batch(7500)" in str(err.value)
    assert "memphis.yaml" in str(err.value)


@pytest.mark.parametrize("name", ["memphis.yaml", "million-gpu.yaml"])
def test_plan_picks_a_configuration_every_rule_allows(name: str) -> None:
    """plan's choice, written back into the scenario as fixed degrees, passes every rule and plans the same."""
    s = load_scenario(SCENARIOS / name)
    best = plan(s, with_reliability=False).step
    par = {k: best.parallelism[k] for k in ("tp", "pp", "dp", "cp", "ep", "etp", "micro_batch", "virtual_stages",
                                            "recompute", "zero_stage", "sequence_parallel", "order")}
    par["uneven_pipeline"] = True  # as the search may (Megatron's first/last stage layer counts, or its layout)
    fixed = s.model_copy(update={"parallelism": s.parallelism.model_copy(update=par)})
    check_parallelism(fixed)
    m = s.training.global_batch // (par["dp"] * par["micro_batch"])
    group = microbatch_group(m, par["pp"])
    assert par["virtual_stages"] == 1 or (m >= par["pp"] and (m % group == 0 or m % group >= par["pp"]))
    assert plan(fixed, with_reliability=False).step.step_time_s == pytest.approx(best.step_time_s, rel=1e-12)


def test_every_searched_configuration_keeps_every_rule() -> None:
    """The pruned space equals the rules' mask over it: nothing the rules refuse is ever timed."""
    s = load_scenario(SCENARIOS / "memphis.yaml", ["cluster.num_gpus=4096", "training.global_batch=1024"])
    space = enumerate_space(s)
    assert len(space) > 0
    rules = rules_for(s.model, s.cluster, s.training, uneven_pipeline=True)
    assert feasible_mask(rules, space.as_arrays()).all()


@pytest.mark.parametrize(("parallelism", "field", "words"), [
    ({"tp": 1, "pp": 4, "dp": 16, "micro_batch": 2, "virtual_stages": 2}, "parallelism.virtual_stages",
     "at least pp"),  # m = 256 / 32 = 8 >= 4: allowed; see the next row
    ({"tp": 1, "pp": 4, "dp": 16, "micro_batch": 16, "virtual_stages": 2}, "parallelism.virtual_stages",
     "at least pp"),  # m = 1 < pp
    ({"tp": 1, "pp": 1, "cp": 8, "dp": 8}, "parallelism.cp", "2 * cp"),  # seq 4104 is not a multiple of 16
    ({"tp": 8, "cp": 1, "sequence_parallel": True}, "parallelism.sequence_parallel", "tp(8)"),  # 4100 % 8
])
def test_framework_rules_refuse_with_a_located_line(parallelism: dict[str, Any], field: str, words: str) -> None:
    """Interleaving with fewer micro-batches than stages, cp not splitting the sequence into 2*cp chunks, sequence
    parallelism not splitting the tokens over tp: one located line each."""
    seq = {"parallelism.cp": 4104, "parallelism.sequence_parallel": 4100}.get(field, 4096)
    if parallelism.get("micro_batch") == 2:  # the allowed case
        scenario(parallelism, seq_len=seq)
        return
    with pytest.raises(SpecError) as err:
        scenario(parallelism, seq_len=seq)
    assert err.value.field == field and words in str(err.value)


def test_cp_needs_only_the_2cp_split_and_sp_only_the_tp_split() -> None:
    """cp 4 on 4104 tokens (8 chunks of 513) and sequence parallelism off on 4100 tokens are allowed."""
    scenario({"tp": 1, "pp": 1, "cp": 4, "dp": 16}, seq_len=4104)
    scenario({"tp": 8, "cp": 1, "sequence_parallel": False}, seq_len=4100)


def test_moe_with_tensor_parallelism_needs_sequence_parallelism() -> None:
    """Megatron-Core's MoE layer refuses tp > 1 without sequence parallelism."""
    with pytest.raises(SpecError) as err:
        scenario({"tp": 2, "sequence_parallel": False}, model="mixtral-8x7b")
    assert err.value.field == "parallelism.sequence_parallel" and "mixture-of-experts" in str(err.value)
    scenario({"tp": 2, "sequence_parallel": True}, model="mixtral-8x7b")


def test_zero3_with_a_pipeline_runs_as_torchtitan_runs_fsdp() -> None:
    """ZeRO-3 with pp > 1 is accepted (torchtitan runs FSDP under a pipeline) and costs what ZeRO-1 costs: the
    parameters stay gathered from the first forward to the last backward, the gradients reduce once."""
    common = {"tp": 2, "pp": 4, "dp": 8, "cp": 1, "micro_batch": 1, "virtual_stages": 1, "recompute": "none"}
    three = plan(scenario({**common, "zero_stage": 3}), require_fit=False, with_reliability=False).step
    one = plan(scenario({**common, "zero_stage": 1}), require_fit=False, with_reliability=False).step
    assert three.parallelism["zero_stage"] == 3
    assert three.step_time_s == one.step_time_s
    assert three.memory_per_gpu_bytes == one.memory_per_gpu_bytes


def test_search_under_a_pipeline_does_not_time_zero_2_or_3_twice() -> None:
    """With pp > 1, ZeRO-2/3 behave as ZeRO-1, so the search leaves them out there; without a pipeline it keeps
    all four stages."""
    space = enumerate_space(scenario({}))
    assert not np.any((space.pp > 1) & (space.zero_stage >= 2))
    assert set(np.unique(space.zero_stage[space.pp == 1])) == {0, 1, 2, 3}


def _on(framework: str, parallelism: dict[str, Any], gpus: int = 64) -> Any:
    return build_scenario({"name": "rules", "cluster": {"base": "llama3-16k", "num_gpus": gpus},
                           "model": "llama3-8b",
                           "training": {"tokens": 1e12, "global_batch": 256, "seq_len": 4096,
                                        "framework": framework},
                           "parallelism": parallelism})


@pytest.mark.parametrize(("framework", "parallelism", "gpus", "words"), [
    ("megatron-lm", {"pp": 4, "schedule": "zb-h1"}, 64, "is not one training.framework(megatron-lm) runs"),
    ("pytorch", {"pp": 4, "schedule": "dualpipe"}, 64, "it runs 1f1b, interleaved, zb-h1"),
    ("megatron-lm", {"pp": 4, "virtual_stages": 1, "schedule": "interleaved"}, 64, "virtual_stages(1)"),
    ("megatron-lm", {"pp": 4, "virtual_stages": 2, "schedule": "1f1b"}, 64, "virtual_stages(2)"),
    ("pytorch", {"pp": 1, "schedule": "zb-h1"}, 64, "needs a pipeline, got pp(1)"),
    ("hai-llm", {"tp": 1, "cp": 1, "pp": 3, "dp": 16, "micro_batch": 1, "schedule": "dualpipe"}, 48, "even pp(3)"),
    ("hai-llm", {"tp": 1, "cp": 1, "pp": 8, "dp": 8, "micro_batch": 4, "schedule": "dualpipe"}, 64,
     "= 8 of at least 2 * pp"),
])
def test_a_schedule_the_framework_or_the_pipeline_cannot_run_is_one_located_line(
        framework: str, parallelism: dict[str, Any], gpus: int, words: str) -> None:
    """A schedule the framework does not run (catalog/software.yaml), a chunking that does not match it, ZB-H1 or
    DualPipe without a pipeline, DualPipe with an odd pp or fewer than 2 pp micro-batches (deepseek-ai/DualPipe):
    refused at parallelism.schedule, naming the factors."""
    with pytest.raises(SpecError) as err:
        _on(framework, parallelism, gpus)
    assert err.value.field == "parallelism.schedule"
    assert words in str(err.value)


@pytest.mark.parametrize(("framework", "offered"), [("megatron-lm", {"1f1b", "interleaved"}),
                                                    ("megatron-deepspeed", {"1f1b", "interleaved"}),
                                                    ("pytorch", {"1f1b", "interleaved", "zb-h1"}),
                                                    ("hai-llm", {"1f1b", "interleaved", "zb-h1", "dualpipe"})])
def test_the_search_offers_a_schedule_only_where_the_framework_runs_it(framework: str, offered: set[str]) -> None:
    """The space holds exactly the schedules the framework runs, each only where its rules hold (DualPipe: even
    pp, an even m >= 2 pp; one chunk a stage but for interleaved)."""
    s = _on(framework, {})
    space = enumerate_space(s)
    names = {space.row(i)["schedule"] for i in range(len(space))}
    assert names == offered
    m = 256 // (space.dp * space.micro_batch)
    dual = space.schedule == SCHEDULES.index("dualpipe")
    assert np.all((space.pp[dual] % 2 == 0) & (m[dual] % 2 == 0) & (m[dual] >= 2 * space.pp[dual]))
    assert np.array_equal(space.virtual_stages > 1, space.schedule == SCHEDULES.index("interleaved"))


def test_the_deepseek_v3_scenario_runs_dualpipe_with_no_overlap_knob() -> None:
    """DeepSeek-V3 as published: DualPipe under DeepSeek's own framework, the all-to-all hidden by the schedule's
    overlap, not by overriding ep_comm_overlap."""
    s = load_scenario(SCENARIOS / "deepseek-v3-2048-h800.yaml")
    assert s.parallelism.schedule == "dualpipe" and s.training.framework == "hai-llm"
    assert s.calibration == {}


def test_where_megatron_runs_the_expert_all_to_all_overlap() -> None:
    """overlap_moe_expert_parallel_comm needs ep > 1, virtual stages under a pipeline, no full recompute
    (Megatron-Core TransformerConfig.__post_init__)."""
    from supercluster.spec.rules import ep_overlap_runs
    from supercluster.spec.training import Training, software_overlaps

    ep, pp, vs = np.array([1, 8, 8, 8, 8]), np.array([1, 1, 4, 4, 1]), np.array([1, 1, 1, 2, 1])
    full = np.array([False, False, False, False, True])
    assert ep_overlap_runs(ep, pp, vs, full).tolist() == [False, True, False, True, False]
    run = {"tokens": 1e9, "global_batch": 64}
    assert software_overlaps(Training.model_validate(run)).ep_overlap  # Megatron-LM, fused attention
    assert not software_overlaps(Training.model_validate({**run, "framework": "pytorch"})).ep_overlap
    assert not software_overlaps(Training.model_validate({**run, "flash_attention": False})).ep_overlap
    assert not software_overlaps(Training.model_validate({**run, "ep_overlap": False})).ep_overlap


def test_the_split_counts_the_embedding_and_the_loss_where_the_run_says_so() -> None:
    """Llama 3 405B's 126 layers split over 8 stages only with the embedding and the loss counted as layers
    (Megatron-Core get_num_layers_to_build: 128 slots); without them pp 8 is refused naming layers(126), and with them
    pp 7 is refused naming the 128 slots; pp 1 splits nothing."""
    par = {"tp": 8, "pp": 8, "cp": 1, "virtual_stages": 1, "micro_batch": 1}
    base = {"name": "split", "cluster": {"base": "llama3-16k", "num_gpus": 512}, "model": "llama3-405b",
            "training": {"tokens": 1e12, "global_batch": 512, "seq_len": 8192}}
    with pytest.raises(SpecError) as err:
        build_scenario({**base, "parallelism": par})
    assert err.value.field == "parallelism.pp" and "does not divide layers(126)" in str(err.value)
    counted = {**base["training"], "account_for_embedding_in_pipeline_split": True,
               "account_for_loss_in_pipeline_split": True}
    assert build_scenario({**base, "training": counted, "parallelism": {**par, "virtual_stages": 8}})
    with pytest.raises(SpecError) as err:
        build_scenario({**base, "cluster": {"base": "llama3-16k", "num_gpus": 448}, "training": counted,
                        "parallelism": {**par, "pp": 7}})
    assert "layers(126) + the embedding and the loss counted as layers" in str(err.value)


def test_the_interleaved_group_is_megatron_s_smallest_valid_one() -> None:
    """Megatron-Core runs any m >= pp interleaved, in groups of g in [pp, m] whose last group holds none or at least pp
    micro-batches (microbatch_group_size_per_vp_stage): pp where pp divides m, else the smallest such g; none below
    pp."""
    m = np.array([128, 120, 20, 17, 15, 30, 90])
    assert microbatch_group(m, 16).tolist()[:4] == [16, 20, 20, 17]
    assert np.isnan(microbatch_group(m, 16)[4])
    assert microbatch_group(30, 25) == 30 and microbatch_group(90, 25) == 30  # 90 % 30 = 0
    for mm, pp in ((120, 16), (37, 8), (63, 10), (1000, 24)):
        g = int(microbatch_group(mm, pp))
        assert pp <= g <= mm and (mm % g == 0 or mm % g >= pp)
        assert all(not (mm % h == 0 or mm % h >= pp) for h in range(pp, g))


def test_interleaving_runs_with_a_group_larger_than_pp() -> None:
    """120 micro-batches on 16 stages (DeepSeek-V3's batch on 2,048 GPUs) interleave in groups of 20: allowed, and
    the first stage holds (v - 1) g + 2 (pp - 1) + 1 chunks at its peak (workload.memory.in_flight_chunks)."""
    scenario({"tp": 1, "pp": 16, "dp": 4, "micro_batch": 1, "virtual_stages": 2}, global_batch=480)
    held = in_flight_chunks(np.array([16.0]), np.array([2.0]), np.array([120.0]), np.array([0.0]))
    assert held[0] == pytest.approx((20 + 2 * 15 + 1) / 2)
