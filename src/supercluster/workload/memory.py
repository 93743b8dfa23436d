"""Memory per GPU: weights, gradients, optimizer states, activations, over arrays of parallel configurations.

- States (mixed-precision Adam, Rajbhandari et al. 2020 ZeRO §3, Megatron's distributed optimizer): 16-bit weights,
  gradients of 4 bytes (fp32 accumulation) or 2, and 12 bytes of fp32 master weight, momentum and variance.
  ZeRO-1 shards the optimizer, ZeRO-2 also the gradients, ZeRO-3 also the weights, over the data-parallel group
  (dp*cp ranks for dense weights, the expert data-parallel group tp*cp*dp/(ep*etp) for expert weights).
- Activations per layer and micro-batch after Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
  Transformer Models", §4, Eq. 1-4), generalised to GQA/MLA, gated MLPs, MoE, flash attention and CP:
  sbh*(10 + 24/t + 5*a*s/(h*t)) with TP; sbh/t*(34 + 5*a*s/h) with TP + SP; the s*s terms vanish with flash
  attention or selective recompute; 2*sbh (per layer input, /t with SP) with full recompute.
- Block recompute (Megatron-LM --recompute-granularity full --recompute-method block): full-layer recompute of
  only the first k layers of each stage, with k the fewest that bring the stage within the memory budget.
- Pipeline: the first stage holds the activations of pp micro-batches under 1F1B, times (1 + (pp-1)/(pp*v)) for
  the interleaved schedule with v virtual stages (Korthikanti §4.2.3); fewer if there are fewer micro-batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arrays import group_rows
from ..spec.model import Model
from .operators import ACT_BYTES, attention_dims
from .params import param_counts

WEIGHT_BYTES = 2
OPTIMIZER_BYTES = 12  # fp32 master weights, Adam m and v


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per GPU on the fullest pipeline stage; arrays over candidates."""

    weights_bytes: np.ndarray
    gradients_bytes: np.ndarray
    optimizer_bytes: np.ndarray
    activations_bytes: np.ndarray
    transient_bytes: np.ndarray  # one layer's recomputed activations, the logits of the loss
    recompute_fraction: np.ndarray  # share of each stage's layers whose activations are recomputed

    @property
    def total_bytes(self) -> np.ndarray:
        return (self.weights_bytes + self.gradients_bytes + self.optimizer_bytes + self.activations_bytes
                + self.transient_bytes)

    def parts(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_bytes, "gradients": self.gradients_bytes,
                "optimizer": self.optimizer_bytes, "activations": self.activations_bytes,
                "transient": self.transient_bytes}


def effective_zero_stage(zero_stage: np.ndarray, pp: np.ndarray) -> np.ndarray:
    """The ZeRO stage a configuration runs as: under a pipeline (pp > 1) ZeRO-2/3 keep the parameters gathered and
    the gradients whole from the first forward to the last backward, reducing them once per step, as torchtitan runs
    FSDP with pipeline parallelism (torchtitan distributed/fsdp.py, reshard_after_forward off under PP;
    torch.distributed.pipelining stage.py defers gradient sync to the last micro-batch): memory and traffic of
    ZeRO-1 (spec.rules)."""
    zero = np.asarray(zero_stage)
    return np.where((np.asarray(pp) > 1) & (zero >= 2), 1, zero)


def layers_per_stage(layers: int, pp: np.ndarray) -> np.ndarray:
    """Layers on the fullest stage (an uneven split gives the slowest stage ceil(L/pp))."""
    return np.ceil(layers / np.asarray(pp, dtype=np.float64))


def stage_params(model: Model, pp: np.ndarray, tp: np.ndarray, ep: np.ndarray, etp: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(non-expert, expert) parameters per GPU on the fullest stage."""
    pc = param_counts(model)
    pp, tp, ep, etp = (np.asarray(x, dtype=np.float64) for x in (pp, tp, ep, etp))
    lps = layers_per_stage(model.layers, pp)
    n_moe = np.minimum(lps, pc.moe_layers)
    n_dense = lps - n_moe
    dense_layer = (pc.attention_layer + pc.dense_mlp_layer) / tp + pc.norms_layer
    moe_shared = (pc.attention_layer + pc.moe_shared_layer) / tp + pc.norms_layer + pc.router_layer
    embed = pc.embedding / tp
    head = (pc.lm_head if pc.lm_head else pc.embedding) / tp  # a tied head is a copy on the last stage
    ends = np.where(pp > 1, np.maximum(embed, head + pc.final_norm), embed + pc.lm_head / tp + pc.final_norm)
    non_expert = n_dense * dense_layer + n_moe * moe_shared + ends
    expert = n_moe * pc.moe_routed_layer / (ep * etp)
    return non_expert, expert


def layer_activation_bytes(model: Model, *, seq_len: int, micro_batch: np.ndarray, tp: np.ndarray,
                           cp: np.ndarray, sp: np.ndarray, ep: np.ndarray, etp: np.ndarray, recompute: np.ndarray,
                           flash_attention: bool, moe_layer: bool, fp8: bool = False) -> np.ndarray:
    """Stored activation bytes of one layer for one micro-batch on one GPU (recompute: 0 none, 1 sel., 2 full).

    In an fp8 run, Transformer Engine keeps the fp8 copy of each linear layer's input for the backward pass:
    the inputs of the QKV, output, MLP-up and MLP-down GEMMs are stored at 1 byte instead of 2.
    """
    lin = 1.0 if fp8 else float(ACT_BYTES)  # bytes per stored GEMM-input element
    f64 = np.float64
    mb, tp, cp, ep, etp = (np.asarray(x, dtype=f64) for x in (micro_batch, tp, cp, ep, etp))
    rc = np.asarray(recompute)
    shard = np.where(np.asarray(sp, dtype=bool), tp, 1.0)
    s = float(seq_len)
    T = mb * s / cp
    h, H = float(model.hidden), float(model.heads)
    sbh = T * h
    d_qk, d_v = attention_dims(model)
    kv = float(model.n_kv_heads) if model.attention == "mha" else H
    kv_local = np.maximum(kv / tp, 1.0) if model.attention == "mha" else H / tp
    drop = model.dropout > 0

    # Unsharded-by-TP region (sharded by SP): two norm inputs, QKV input, MLP input, two dropout masks.
    replicated = ACT_BYTES * 2 * sbh + lin * 2 * sbh + (2 * sbh if drop else 0.0)  # masks: 1 byte each
    # Attention: Q, K, V and the attention output (= output projection input).
    attn = ACT_BYTES * T * (H / tp * d_qk + kv_local * (d_qk + d_v)) + lin * T * H / tp * d_v
    # The s x s score matrix without flash attention: softmax output, plus dropout mask and output.
    scores = T * s * H / tp * (ACT_BYTES + (1 + ACT_BYTES if drop else 0))
    keep_scores = (not flash_attention) & (rc == 0)
    gated = model.activation == "swiglu"
    if moe_layer and model.moe:
        moe = model.moe
        E, k, fe = float(moe.experts), float(moe.top_k), float(moe.moe_ffn_hidden)
        routed = mb * s * k * etp / (tp * cp)  # token-expert pairs on this GPU
        mlp = routed * (lin * h + ((2 if gated else 1) * ACT_BYTES + lin) * fe / etp)
        if moe.shared_experts:
            fs = float((moe.shared_ffn_hidden or moe.moe_ffn_hidden) * moe.shared_experts)
            mlp = mlp + T * ((2 if gated else 1) * ACT_BYTES + lin) * fs / tp
        mlp = mlp + 4.0 * T * E / shard  # router logits (fp32)
    else:
        f = float(model.ffn_hidden)
        mlp = T * ((2 if gated else 1) * ACT_BYTES + lin) * f / tp
    full_layer = replicated / shard + attn + mlp + np.where(keep_scores, scores, 0.0)
    checkpoint = ACT_BYTES * sbh / shard
    return np.where(rc == 2, checkpoint, full_layer)


def memory_per_gpu(model: Model, *, seq_len: int, global_batch: int, grad_accum_fp32: bool,
                   flash_attention: bool, fp8: bool, tp: np.ndarray, pp: np.ndarray, dp: np.ndarray, cp: np.ndarray,
                   ep: np.ndarray, etp: np.ndarray, micro_batch: np.ndarray, virtual_stages: np.ndarray,
                   recompute: np.ndarray, zero_stage: np.ndarray, sp: np.ndarray,
                   budget_bytes: float = np.inf) -> MemoryBreakdown:
    """Memory per GPU for arrays of parallel configurations (``budget_bytes`` sizes block recompute)."""
    f64 = np.float64
    tp, pp, dp, cp, ep, etp, mb, vs = (np.asarray(x, dtype=f64)
                                       for x in (tp, pp, dp, cp, ep, etp, micro_batch, virtual_stages))
    zero = effective_zero_stage(zero_stage, pp)
    rc = np.asarray(recompute)
    non_expert, expert = stage_params(model, pp, tp, ep, etp)
    dense_dp = dp * cp
    expert_dp = tp * cp * dp / (ep * etp)

    def sharded(n_bytes: float, stage: int) -> np.ndarray:
        return n_bytes * (non_expert / np.where(zero >= stage, dense_dp, 1.0)
                          + expert / np.where(zero >= stage, expert_dp, 1.0))

    grad_bytes = 4 if grad_accum_fp32 else 2
    weights = sharded(WEIGHT_BYTES, 3)
    grads = sharded(grad_bytes, 2)
    optim = sharded(OPTIMIZER_BYTES, 1)

    # A layer's activations depend on its shape and recompute mode only: tabulate each distinct shape under
    # each mode (0 none, 1 selective, 2 full), then look the candidates up.
    rep, inv = group_rows(tp, cp, ep, etp, mb, sp)
    common: dict[str, Any] = dict(seq_len=seq_len, micro_batch=mb[rep], tp=tp[rep], cp=cp[rep],
                                  sp=np.asarray(sp)[rep], ep=ep[rep], etp=etp[rep], flash_attention=flash_attention,
                                  fp8=fp8)

    def table(moe_layer: bool) -> np.ndarray:
        return np.stack([layer_activation_bytes(model, recompute=np.full(len(rep), code), moe_layer=moe_layer,
                                                **common) for code in (0, 1, 2)])

    dense_table = table(False)
    moe_table = table(True) if model.moe else dense_table
    lps = layers_per_stage(model.layers, pp)
    n_moe_total = model.layers - (model.moe.dense_layers if model.moe else model.layers)
    n_moe = np.minimum(lps, n_moe_total)

    def stage_activations(code: np.ndarray) -> np.ndarray:
        return (lps - n_moe) * dense_table[code, inv] + n_moe * moe_table[code, inv]

    block = rc == 3
    stage_act = stage_activations(np.where(block, 0, rc))
    microbatches = global_batch / (dp * mb)
    interleave = np.where(vs > 1, 1.0 + (pp - 1) / (pp * vs), 1.0)
    inflight = np.minimum(pp * interleave, microbatches)

    # Transients: a fully recomputed layer's activations while its backward runs; the loss's logits.
    full_layer = np.maximum(dense_table[0], moe_table[0] if model.moe else 0.0)[inv]
    recompute_buffer = np.where((rc == 2) | block, full_layer, 0.0)
    # bf16 logits of the last micro-batch, their gradient written in place by the fused cross-entropy
    # (Megatron-Core cross_entropy_loss_fusion)
    logits = ACT_BYTES * mb * seq_len / cp * model.vocab / tp
    transient = recompute_buffer + logits
    fraction = np.where(rc == 2, 1.0, 0.0)
    if block.any():
        # the fewest layers k per stage whose recompute brings the total within the budget
        saving_per_layer = inflight * (stage_act - stage_activations(np.full_like(rc, 2))) / lps
        excess = weights + grads + optim + inflight * stage_act + transient - budget_bytes
        k = np.clip(np.ceil(np.maximum(excess, 0.0) / np.maximum(saving_per_layer, 1e-9)), 0.0, lps)
        fraction = np.where(block, k / lps, fraction)
        stage_act = np.where(block, stage_act - k * saving_per_layer / np.maximum(inflight, 1e-9), stage_act)
    activations = stage_act * inflight
    return MemoryBreakdown(weights, grads, optim, activations, transient, fraction)
