"""LoRA fine-tuning: frozen base weights (no weight gradients, no gradients or optimizer state for them), adapters
counted by their shapes, the MFU's FLOPs, and the scenario field refused where it is wrong."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supercluster.errors import SuperclusterError
from supercluster.search.plan import best_step
from supercluster.spec.catalog import entry
from supercluster.spec.load import build_scenario
from supercluster.spec.model import Model
from supercluster.spec.training import LoRA
from supercluster.workload.flops import attention_flops_per_token, model_flops_per_token
from supercluster.workload.lora import adapter_params, trainable_shares
from supercluster.workload.params import param_counts

FIXED = {"tp": 4, "pp": 1, "cp": 2, "micro_batch": 1, "recompute": "none", "zero_stage": 1, "virtual_stages": 1,
         "sequence_parallel": True, "offload_optimizer": False, "offload_weights": False, "offload_activations": False}


def llama2_70b() -> Model:
    return Model.model_validate(entry("models", "llama2-70b"))


def scenario(lora: dict[str, Any] | None, **par: Any) -> Any:
    training: dict[str, Any] = {"tokens": 1.0e9, "global_batch": 64, "seq_len": 8192, "precision": "bf16"}
    if lora is not None:
        training["lora"] = lora
    return build_scenario({"name": "lora", "cluster": {"base": "eos", "num_gpus": 64}, "model": "llama2-70b",
                           "training": training, "parallelism": {**FIXED, **par}})


def test_adapters_of_fused_qkv_and_output_projections() -> None:
    """Llama 2 70B (hidden 8192, 64 heads of 128, 8 KV heads, 80 layers), rank 16 on the fused QKV projection
    (8192 -> 10240) and the output one (8192 -> 8192): 16 x (8192 + 10240) + 16 x (8192 + 8192) per layer."""
    non_expert, expert = adapter_params(llama2_70b(), LoRA(rank=16, targets=["attention"]))
    assert non_expert == 80 * 16 * ((8192 + 10240) + (8192 + 8192)) == 44_564_480
    assert expert == 0.0
    mlp, _ = adapter_params(llama2_70b(), LoRA(rank=8, targets=["mlp"]))
    assert mlp == 80 * 8 * ((8192 + 2 * 28672) + (28672 + 8192))  # gate+up fused, down


def test_mfu_counts_no_weight_gradient_for_frozen_weights() -> None:
    m = llama2_70b()
    lora = LoRA(rank=16, targets=["attention"])
    n = param_counts(m).non_embedding_active
    adapters, _ = adapter_params(m, lora)
    full, tuned = model_flops_per_token(m, 4096), model_flops_per_token(m, 4096, lora)
    assert full - tuned == pytest.approx(2.0 * n - 6.0 * adapters)
    assert tuned == pytest.approx(4.0 * n + 6.0 * adapters + 3.0 * attention_flops_per_token(m, 4096))


def test_lora_step_keeps_weights_but_no_gradients_or_optimizer_state() -> None:
    full, _ = best_step(scenario(None), require_fit=False)
    tuned, _ = best_step(scenario({"rank": 16}), require_fit=False)
    assert tuned.parallelism["tp"] == full.parallelism["tp"] == 4  # the same configuration, fixed
    mem_full, mem_tuned = full.memory_breakdown, tuned.memory_breakdown
    assert mem_tuned["weights"] == mem_full["weights"]
    share, _ = trainable_shares(llama2_70b(), LoRA())
    assert share < 1e-3
    assert mem_tuned["gradients"] == pytest.approx(mem_full["gradients"] * share, rel=1e-9)
    assert mem_tuned["optimizer"] == pytest.approx(mem_full["optimizer"] * share, rel=1e-9)
    # no weight-gradient GEMMs: the backward's GEMMs halve, the attention core and the forward do not
    assert tuned.breakdown["compute"] < 0.8 * full.breakdown["compute"]
    assert tuned.breakdown["compute"] > 0.55 * full.breakdown["compute"]
    assert tuned.breakdown["dp_comm"] <= full.breakdown["dp_comm"]
    assert tuned.breakdown["optimizer"] < full.breakdown["optimizer"]
    assert tuned.model_flops_per_token < full.model_flops_per_token


def test_expert_adapters_train_the_expert_share() -> None:
    m = Model.model_validate(entry("models", "mixtral-8x7b"))
    dense, experts = trainable_shares(m, LoRA(targets=["attention", "experts"]))
    assert 0.0 < dense < 0.01 and 0.0 < experts < 0.01
    assert trainable_shares(m, LoRA(targets=["attention"]))[1] == 0.0
    assert trainable_shares(m, None) == (1.0, 1.0)


@pytest.mark.parametrize(("lora", "field"), [
    ({"rank": 0}, "rank"),
    ({"targets": ["everything"]}, "targets"),
    ({"targets": []}, "targets"),
    ({"alpha": 32}, "alpha"),
])
def test_a_wrong_lora_block_is_refused_where_written(lora: dict[str, Any], field: str) -> None:
    with pytest.raises(SuperclusterError, match=f"training.lora.{field}"):
        scenario(lora)


def test_plan_takes_lora_from_the_scenario_file(tmp_path: Path, cli: Callable[..., Any]) -> None:
    path = tmp_path / "lora.yaml"
    path.write_text("name: lora\ncluster: {base: eos, num_gpus: 64}\nmodel: llama2-70b\n"
                    "training: {tokens: 1.0e9, global_batch: 64, seq_len: 8192, lora: {rank: 16}}\n")
    result = cli("plan", str(path), "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["step"]["lora"] == {"rank": 16, "targets": ["attention"]}
    result = cli("plan", str(path))
    assert "LoRA rank 16 on attention, base weights frozen" in result.out
    assert "4N for the frozen weights (no weight gradient) + 6 per LoRA adapter parameter" in result.out
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("rank: 16", "rank: -1"))
    cli("plan", str(bad)).one_error_line("training.lora.rank")
