"""LoRA fine-tuning (Hu et al. 2021, arXiv:2106.09685): what freezing the base weights changes in the work.

Each targeted weight matrix W (d_out x d_in) keeps its GEMM, frozen, and gains two trainable ones: x A^T (A is
r x d_in) and (x A^T) B^T (B is d_out x r), the result added to W x. Per micro-batch and layer:

- forward: the base GEMMs as before, plus the adapters' (2 T r (d_in + d_out) FLOPs per target) and the add;
- backward: the input gradient of every GEMM (the chain rule needs it down to the first adapted layer), the weight
  gradient of the adapters alone: no frozen GEMM computes one (perf.compute.gemm_backward_s);
- gradients, their data-parallel reduction and the optimizer state (master copy and moments) exist for the adapter
  parameters alone; the frozen weights are stored as the run stores weights.

An adapter follows its base matrix's tensor-parallel split: on a column-parallel matrix B is split and A replicated,
on a row-parallel one A is split and B replicated (as NeMo's and Megatron-Bridge's LoRA adapters do); the shapes
below take each from the base GEMM's split dimensions. The adapters run in 16-bit even in an fp8 run. What the
backward keeps of the activations is taken as for full training (an assumption: a frozen linear layer's input is
needed only for its weight gradient, and a framework that drops it saves that memory).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..spec.model import Model
from ..spec.training import LoRA, LoRATarget
from .operators import ACT_BYTES, Gemm, LayerWork, layer_work
from .params import param_counts

# The base GEMMs (workload.operators names) each target adapts
TARGET_GEMMS: dict[LoRATarget, frozenset[str]] = {
    "attention": frozenset({"qkv_proj", "out_proj", "q_proj", "q_down", "q_up", "kv_down", "kv_up"}),
    "mlp": frozenset({"mlp_up", "mlp_down", "shared_up", "shared_down"}),
    "experts": frozenset({"expert_up", "expert_down"}),
}


def target_of(gemm_name: str) -> LoRATarget | None:
    for target, names in TARGET_GEMMS.items():
        if gemm_name in names:
            return target
    return None


def with_lora(work: LayerWork, lora: LoRA | None) -> LayerWork:
    """The layer's work with its weights frozen and the targeted ones adapted (``lora`` None: unchanged)."""
    if lora is None:
        return work
    gemms: list[Gemm] = []
    added = np.zeros_like(work.elementwise_bytes)
    adapted = 0
    for g in work.gemms:
        gemms.append(replace(g, trainable=False))
        if target_of(g.name) in lora.targets:
            r = np.full_like(np.asarray(g.m, dtype=np.float64), float(lora.rank))
            gemms.append(Gemm(f"{g.name}_lora_a", g.m, r, g.k, g.count, low_precision=False))
            gemms.append(Gemm(f"{g.name}_lora_b", g.m, g.n, r, g.count, low_precision=False))
            added = added + 3.0 * g.m * g.n * np.asarray(g.count) * ACT_BYTES  # W x + B A x: read two, write one
            adapted += 1
    return replace(work, gemms=gemms, elementwise_bytes=work.elementwise_bytes + added,
                   elementwise_kernels=work.elementwise_kernels + adapted)


def adapter_params(model: Model, lora: LoRA) -> tuple[float, float]:
    """(non-expert, expert) adapter parameters of the whole model: r (d_in + d_out) per targeted matrix."""
    one = np.ones(1)
    pc = param_counts(model)
    attention_share = model.attention_layers / model.layers  # Mamba layers have no attention projections
    non_expert = expert = 0.0
    for kind, layers in (("dense", pc.dense_layers), ("moe", pc.moe_layers)):
        if not layers:
            continue
        work = layer_work(model, kind, seq_len=1, micro_batch=one, tp=one, cp=one,  # type: ignore[arg-type]
                          sp=np.zeros(1, dtype=bool), ep=one, etp=one, precision="bf16")
        for g in work.gemms:
            target = target_of(g.name)
            if target not in lora.targets:
                continue
            count = float(np.asarray(g.count).ravel()[0])
            per_layer = lora.rank * float(g.n[0] + g.k[0]) * count
            if target == "experts":
                expert += layers * per_layer
            else:
                non_expert += layers * per_layer * (attention_share if target == "attention" else 1.0)
    return non_expert, expert


def trainable_shares(model: Model, lora: LoRA | None) -> tuple[float, float]:
    """Trainable parameters over stored ones, (non-expert, expert): (1, 1) without LoRA. Applied to a stage's
    parameters, the model-wide share (adapters are spread over the layers as the weights are)."""
    if lora is None:
        return 1.0, 1.0
    pc = param_counts(model)
    experts = float(pc.moe_routed_layer * pc.moe_layers)
    adapters, expert_adapters = adapter_params(model, lora)
    return adapters / (pc.total - experts), (expert_adapters / experts if experts else 0.0)


def adapter_active_params(model: Model, lora: LoRA) -> float:
    """Adapter parameters a token passes through (routed experts' adapters at top_k of the experts)."""
    non_expert, expert = adapter_params(model, lora)
    return non_expert + (expert * model.moe.top_k / model.moe.experts if model.moe else 0.0)
