"""The training software's memory accounting: optimizer choices, master weights, the loss, a rule they imply."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from supercluster.errors import InputError
from supercluster.search import plan
from supercluster.spec.load import build_scenario
from supercluster.workload.software import SoftwareChoices

BASE: dict[str, Any] = {
    "name": "llama3-8b-on-8", "cluster": {"base": "selene", "num_gpus": 8}, "model": "llama3-8b",
    "training": {"tokens": 1e10, "global_batch": 8, "precision": "bf16"},
    "parallelism": {"tp": 1, "pp": 1, "dp": 8, "micro_batch": 1, "recompute": "full", "zero_stage": 0,
                    "offload_optimizer": False, "offload_weights": False, "offload_activations": False}}


def memory(**training: Any) -> dict[str, float]:
    data = copy.deepcopy(BASE)
    data["training"].update(training)
    report = plan(build_scenario(data), require_fit=False, with_reliability=False).step
    return {**report.memory_breakdown, "params": report.params}


def test_optimizer_state_per_parameter() -> None:
    """fp32 master (4) + Adam's moments: fp32 8, bf16 4, blockwise 8-bit ~2.03; Muon one momentum on matrices."""
    adam, bf16, int8 = memory(), memory(optimizer_state_dtype="bf16"), memory(optimizer_state_dtype="int8")
    n = adam["params"]
    assert adam["optimizer"] == pytest.approx(12 * n, rel=1e-3)
    assert bf16["optimizer"] == pytest.approx(8 * n, rel=1e-3)
    assert int8["optimizer"] == pytest.approx((4 + 2 + 8 / 256) * n, rel=1e-3)
    muon = memory(optimizer="muon")
    assert 8 * n < muon["optimizer"] < 9 * n  # Adam (12 B) on the embedding and output layer only
    assert memory(optimizer="adafactor")["optimizer"] == pytest.approx(4 * n, rel=1e-3)


def test_pure_bf16_training_has_16_bit_gradients_and_no_master() -> None:
    pure = memory(master_weights=False, optimizer_state_dtype="bf16")
    n = pure["params"]
    assert pure["gradients"] == pytest.approx(2 * n, rel=1e-3)
    assert pure["optimizer"] == pytest.approx(4 * n, rel=1e-3)


def test_loss_implementations_order() -> None:
    chunked, eager, fused = (memory(loss=x)["transient"] for x in ("chunked", "eager", "fused"))
    assert chunked < eager < fused


def test_optimizer_in_backward_frees_the_gradients_and_needs_one_micro_batch() -> None:
    assert memory(optimizer_in_backward=True)["gradients"] < 0.2 * memory()["gradients"]
    data = copy.deepcopy(BASE)
    data["training"].update(optimizer_in_backward=True, global_batch=16)
    with pytest.raises(InputError, match="one micro-batch"):
        build_scenario(data)


def test_pytorch_loss_backward_holds_the_saved_logits_and_their_gradient() -> None:
    """torchtune's fp32 logits: the loss's backward holds the saved fp32 tensor and the fp32 logit gradient (8 B a
    logit compiled), eagerly also nll_loss's dense gradient (12 B); chunked keeps 16-bit chunks and works one of 8."""
    from supercluster.spec import catalog
    from supercluster.spec.hardware import Accelerator
    from supercluster.workload.software import SoftwareChoices, framework_memory_options
    acc = Accelerator.model_validate({"name": "A100-SXM4-80GB", **catalog.entry("accelerators", "A100-SXM4-80GB")})

    def per_logit(**choices: Any) -> float:
        o = framework_memory_options("pytorch", accelerator=acc, precision="bf16",
                                     choices=SoftwareChoices(**choices))
        return o.loss_logit_bytes + o.loss_upcast_bytes / o.loss_chunks

    assert per_logit() == 12.0
    assert per_logit(compiled=True) == 8.0
    assert per_logit(compiled=True, loss="chunked") == pytest.approx(2.0 + 8.0 / 8)


def test_fp4_weights_keep_16_bits_and_a_smaller_quantized_cache() -> None:
    """Megatron-style fp8 without fp8 parameters keeps 16-bit weights + a 2 B quantized copy and transpose; an fp4
    run keeps 16-bit weights + the NVFP4 copy and transpose (2 x 0.5625 B), whatever fp8_params says; its gradient
    and master buffers are an fp8 run's."""
    from supercluster.spec.catalog import entry
    from supercluster.spec.hardware import Accelerator
    from supercluster.workload.software import framework_memory_options
    acc = Accelerator.model_validate(entry("accelerators", "GB200"))
    fp8 = framework_memory_options("megatron-lm", accelerator=acc, precision="fp8")
    fp4 = framework_memory_options("megatron-lm", accelerator=acc, precision="fp4")
    fp4_params = framework_memory_options("megatron-lm", accelerator=acc, precision="fp4",
                                          choices=SoftwareChoices(fp8_params=True))
    assert fp8.weight_bytes == pytest.approx(4.0)
    assert fp4.weight_bytes == fp4_params.weight_bytes == pytest.approx(2.0 + 2 * 0.5625)
    assert (fp4.grad_bytes, fp4.master_bytes) == (fp8.grad_bytes, fp8.master_bytes)
