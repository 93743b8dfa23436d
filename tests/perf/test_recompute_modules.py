"""Selective recompute of named modules (training.recompute_modules, Megatron-Core --recompute-modules): the
backward runs those modules' forward again, and their activations are not kept."""

from __future__ import annotations

import pytest

from supercluster.errors import SpecError
from supercluster.search.plan import best_step
from supercluster.spec.load import load_scenario
from supercluster.spec.training import SELECTIVE_DEFAULT, selective_modules
from supercluster.workload.flops import attention_flops_per_token, recompute_flops_per_token
from supercluster.workload.params import param_counts

DEEPSEEK = "scenarios/deepseek-v3-2048-h800.yaml"
#: DeepSeek-V3 at one fixed configuration under 1F1B, selective recompute
FIXED = ["parallelism.schedule=1f1b", "parallelism.recompute=selective", "parallelism.micro_batch=1",
         "parallelism.virtual_stages=1", "parallelism.offload_activations=false",
         "parallelism.offload_optimizer=false", "parallelism.offload_weights=false"]


def _step(*modules: str):
    extra = [f"training.recompute_modules=[{', '.join(modules)}]"] if modules else []
    report, _ = best_step(load_scenario(DEEPSEEK, [*FIXED, *extra]), require_fit=False)
    return report


def test_the_default_is_the_attention_core() -> None:
    """No modules named: the attention core, as before the field existed (and naming it changes nothing)."""
    plain, named = _step(), _step("core_attn")
    assert plain.step_time_s == named.step_time_s
    assert plain.memory_per_gpu_bytes == named.memory_per_gpu_bytes
    assert selective_modules(load_scenario(DEEPSEEK, FIXED).training) == SELECTIVE_DEFAULT


def test_more_modules_cost_more_recompute_and_less_memory() -> None:
    """MLA's up-projections recomputed besides the attention core: more recompute time, fewer stored activations;
    the MoE layer whole repeats its dispatch and combine too (more expert all-to-all)."""
    core, up, moe = _step("core_attn"), _step("core_attn", "mla_up_proj"), _step("core_attn", "moe")
    assert up.breakdown["recompute"] > core.breakdown["recompute"]
    assert up.memory_per_gpu_bytes < core.memory_per_gpu_bytes
    assert up.breakdown["ep_comm"] == core.breakdown["ep_comm"]
    assert moe.breakdown["recompute"] > core.breakdown["recompute"]
    assert moe.breakdown["ep_comm"] >= core.breakdown["ep_comm"]
    assert moe.memory_per_gpu_bytes < core.memory_per_gpu_bytes
    # nothing named: no recompute at all under selective
    assert _step_empty().breakdown["recompute"] == 0.0


def _step_empty():
    report, _ = best_step(load_scenario(DEEPSEEK, [*FIXED, "training.recompute_modules=[]"]), require_fit=False)
    return report


def test_hardware_flops_count_the_recomputed_matmuls() -> None:
    """HFU's recompute FLOPs of selective recompute: the attention core's, and 2 x the parameters of each named
    module's matmuls a token passes (a dense layer's MLP, MLA's up-projections)."""
    model = load_scenario(DEEPSEEK).model
    pc = param_counts(model)
    seq = 4096
    core = recompute_flops_per_token(model, seq, "selective")
    assert core == attention_flops_per_token(model, seq)
    mlp = recompute_flops_per_token(model, seq, "selective", frozenset({"mlp"}))
    assert mlp == pytest.approx(2.0 * pc.dense_mlp_layer * 3)  # DeepSeek-V3's 3 dense layers
    m = model.mla
    assert m is not None
    up = (m.q_lora_rank or 0) * model.heads * (m.qk_nope_head_dim + m.qk_rope_head_dim) \
        + m.kv_lora_rank * model.heads * (m.qk_nope_head_dim + m.v_head_dim)
    assert recompute_flops_per_token(model, seq, "selective", frozenset({"core_attn", "mla_up_proj"})) == \
        pytest.approx(core + 2.0 * up * model.layers)
    assert recompute_flops_per_token(model, seq, "selective", frozenset()) == 0.0


def test_a_module_the_model_lacks_is_refused_with_its_field() -> None:
    with pytest.raises(SpecError) as err:
        load_scenario("scenarios/llama3-405b-16k.yaml", ["training.recompute_modules=[moe_act]"])
    assert err.value.field == "training.recompute_modules"
    assert "moe_act" in str(err.value) and "mixture of experts" in str(err.value)
