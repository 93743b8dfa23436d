"""The work of one transformer layer on one GPU for one micro-batch: GEMM shapes, attention FLOPs, bytes moved.

Everything is written over numpy arrays of parallel degrees (a batch of candidate configurations in, a batch of
shapes out). Notation: T = micro_batch * seq_len / cp tokens on a GPU; h hidden; H heads; kv KV heads; d head dim;
f FFN width; tp tensor, etp expert-tensor and ep expert parallel degrees.

Forward only: the backward of a GEMM is two GEMMs of the same FLOPs (input gradient, weight gradient),
the backward of flash attention is 2.5x its forward (Dao 2023, FlashAttention-2 §3; the benchmark convention in
kernels data), the backward of an element-wise operator moves about twice its forward bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..spec.model import Model
from .params import NORMS_PER_LAYER, mlp_matrices
from .quantization import ScalingRecipe, scaling_recipe
from .ssm import ssm_elementwise_bytes, ssm_mixer_gemms, ssm_scan_flops
from .window import band_keys, equivalent_key_len

LayerKind = Literal["dense", "moe"]
Mixer = Literal["attention", "mamba"]
ACT_BYTES = 2  # activations are 16-bit in mixed-precision training (fp8/fp4 runs keep 16-bit activations between ops)
ATTENTION_BWD_OVER_FWD = 2.5
ELEMENTWISE_BWD_OVER_FWD = 2.0


@dataclass(frozen=True)
class Gemm:
    """``count`` GEMMs of M x N x K (2*M*N*K FLOPs each) per GPU, forward."""

    name: str
    m: np.ndarray
    n: np.ndarray
    k: np.ndarray
    count: np.ndarray | float = 1.0
    low_precision: bool = True  # runs in the run's fp8 / fp4 format (the router does not)
    trainable: bool = True  # its weight gets a gradient (False: a frozen base weight under LoRA, workload.lora)

    @property
    def flops(self) -> np.ndarray:
        return 2.0 * self.m * self.n * self.k * self.count


@dataclass(frozen=True)
class LayerWork:
    """Forward work of one layer on one GPU for one micro-batch."""

    gemms: list[Gemm]
    attention_flops: np.ndarray  # executed (causal) flash-attention FLOPs, forward (0 when unfused)
    attention_model_flops: np.ndarray  # the same in the PaLM convention (no causal halving)
    elementwise_bytes: np.ndarray  # HBM bytes of norms, residuals, activations, dropout, rotary, routing
    elementwise_kernels: float  # count of memory-bound kernels (each pays a fixed overhead)
    core_gemms: list[Gemm] = field(default_factory=list)  # unfused attention: the QK^T and PV batched GEMMs
    core_bytes: np.ndarray | float = 0.0  # unfused attention: score-matrix traffic (softmax, dropout), forward
    # of elementwise_bytes, the parts a selectively recomputed module runs again (ELEMENTWISE_PARTS), with kernels
    parts: dict[str, tuple[np.ndarray, float]] = field(default_factory=dict)

    @property
    def gemm_flops(self) -> np.ndarray:
        return sum((g.flops for g in self.gemms), start=np.zeros_like(self.attention_flops))


#: the GEMMs each selectively recomputed module runs again (Megatron-Core --recompute-modules; core_attn is the
#: attention kernel, layernorm and moe_act are elementwise only): a dense MLP, a MoE layer whole, the shared
#: experts, MLA's up-projections
MODULE_GEMMS: dict[str, frozenset[str]] = {
    "mlp": frozenset({"mlp_up", "mlp_down"}),
    "moe": frozenset({"router", "expert_up", "expert_down"}),
    "shared_experts": frozenset({"shared_up", "shared_down"}),
    "mla_up_proj": frozenset({"q_up", "kv_up"}),
}
#: the elementwise parts each module runs again: the two norms, a dense MLP's activation, the experts' activation,
#: a MoE layer's activation and token permutation, the shared experts' activation
MODULE_PARTS: dict[str, frozenset[str]] = {
    "layernorm": frozenset({"norms"}),
    "mlp": frozenset({"mlp_act"}),
    "moe_act": frozenset({"expert_act"}),
    "moe": frozenset({"expert_act", "permute"}),
    "shared_experts": frozenset({"shared_act"}),
}


def attention_dims(model: Model) -> tuple[int, int]:
    """(query/key width per head, value width per head)."""
    if model.attention == "mla":
        assert model.mla is not None
        return model.mla.qk_nope_head_dim + model.mla.qk_rope_head_dim, model.mla.v_head_dim
    return model.d_head, model.d_head


def attention_gemms(model: Model, T: np.ndarray, tp: np.ndarray) -> list[Gemm]:
    h, H = model.hidden, model.heads
    if model.attention == "mla":
        m = model.mla
        assert m is not None
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        out: list[Gemm] = []
        if m.q_lora_rank:
            out.append(Gemm("q_down", T, np.full_like(T, m.q_lora_rank), np.full_like(T, h)))
            out.append(Gemm("q_up", T, H * qk / tp, np.full_like(T, m.q_lora_rank)))
        else:
            out.append(Gemm("q_proj", T, H * qk / tp, np.full_like(T, h)))
        out.append(Gemm("kv_down", T, np.full_like(T, m.kv_lora_rank + m.qk_rope_head_dim), np.full_like(T, h)))
        out.append(Gemm("kv_up", T, H * (m.qk_nope_head_dim + m.v_head_dim) / tp, np.full_like(T, m.kv_lora_rank)))
        out.append(Gemm("out_proj", T, np.full_like(T, h), H * m.v_head_dim / tp))
        return out
    d, kv = model.d_head, model.n_kv_heads
    kv_local = np.maximum(kv / tp, 1.0)  # KV heads are replicated when tp exceeds them
    return [
        Gemm("qkv_proj", T, (H / tp + 2 * kv_local) * d, np.full_like(T, h)),
        Gemm("out_proj", T, np.full_like(T, h), H * d / tp),
    ]


def layer_work(model: Model, kind: LayerKind, *, seq_len: int, micro_batch: np.ndarray, tp: np.ndarray,
               cp: np.ndarray, sp: np.ndarray, ep: np.ndarray, etp: np.ndarray, precision: str,
               flash_attention: bool = True, window: int | None = None, mixer: Mixer = "attention",
               mlp: bool = True, fp8_recipe: str | None = None, eager_epilogue: bool = False) -> LayerWork:
    """Forward work of one layer of ``kind`` per GPU and micro-batch, for arrays of parallel degrees.

    Without flash attention (Megatron-LM before 2022), the attention core is two batched GEMMs over the full
    s x s score matrix (QK^T, then scores x V; the mask is applied, not skipped) and the score matrix makes
    HBM round trips: written by QK^T, read and written by the fused scale-mask-softmax, read and written by
    dropout with a 1-byte mask, read by the second GEMM (Korthikanti et al. 2022, §4.1: 5as^2b of storage); the
    GEMMs' write and read are their own bytes (perf.compute), ``core_bytes`` the softmax's and dropout's.

    ``window``: the layer attends the last ``window`` keys only (sliding-window attention, workload.window): flash
    attention computes the key blocks inside the window (FlashAttention-2 local attention), the PaLM count and the
    executed FLOPs over the equivalent key length s_eq(s, w); unfused attention computes and stores a band of
    min(s, w) keys per query instead of s (a banded implementation, Longformer's sliding chunks).

    ``mixer`` "mamba": a Mamba mixer (Mamba-2 or Mamba-1) in place of attention (workload.ssm): its projections are GEMMs, its SSD scan
    is carried in ``attention_flops`` (executed = model FLOPs: the kernel computes whole diagonal chunks) and timed
    as an attention kernel; ``mlp`` False: a layer without an MLP (nor its norm and residual add).

    ``fp8_recipe``: how an fp8 run scales its GEMM inputs (spec.training.resolved_fp8_recipe; required with fp8),
    which sets the bytes its quantization moves (quantization.py).

    ``eager_epilogue`` (spec.training expert_epilogue "eager"): experts with biases or a clamped GLU (gpt-oss) apply
    them in separate passes over the routed tokens' activations, forward: two reads and writes of fc1's output (the
    clamp and the concatenation of its halves ahead of the fused GEGLU, Megatron-Core fused_bias_geglu.py
    weighted_bias_quick_geglu_impl @0d8e0714; or fc1's bias added expert by expert and concatenated, NeMo
    Automodel moe/layers.py _apply_bias @8d9bfb90e3) and three of fc2's (its bias scaled by the routing
    probability, added, and the experts' chunks concatenated: Megatron-Core experts.py _apply_bias @0d8e0714,
    Automodel's the same).
    """
    f64 = np.float64
    mb, tp, cp, ep, etp = (np.asarray(x, dtype=f64) for x in (micro_batch, tp, cp, ep, etp))
    sp = np.asarray(sp, dtype=bool)
    s = float(seq_len)
    T = mb * s / cp
    h, H = float(model.hidden), float(model.heads)
    gated = mlp_matrices(model) == 3
    d_qk, d_v = attention_dims(model)
    mamba = mixer == "mamba"
    if mamba:
        gemms = [Gemm(name, m_, n_, k_) for name, m_, n_, k_ in ssm_mixer_gemms(model, T, tp)]
        attn_model = attn_exec = ssm_scan_flops(model, seq_len, T, tp)
    else:
        gemms = attention_gemms(model, T, tp)
        # Attention core: QK^T and PV over the full key length (the window's equivalent one); causal masking
        # halves the executed work.
        key_len = equivalent_key_len(seq_len, window)  # s without a window (or with one covering the sequence)
        attn_model = 2.0 * T * key_len * (H / tp) * (d_qk + d_v)
        attn_exec = 0.5 * attn_model

    # Memory-bound operators, forward bytes per GPU (SP shards the norm/residual/dropout region by tp).
    seq_shard = np.where(sp, tp, 1.0)
    th = T * h * ACT_BYTES / seq_shard
    blocks = NORMS_PER_LAYER if mlp else 1  # norm + residual add before the mixer, and before the MLP
    # per block, a norm (read+write) and a residual add (2 reads + write)
    elem = blocks * 2 * th + blocks * 3 * th
    kernels = 2.0 * blocks
    parts: dict[str, tuple[np.ndarray, float]] = {"norms": (blocks * 2 * th, float(blocks))}
    if model.dropout > 0:
        elem = elem + blocks * (2 * th + th / ACT_BYTES)  # read, write, 1-byte mask
        kernels += blocks
    if mamba:
        elem = elem + ssm_elementwise_bytes(model, T, tp)
        kernels += 2
    elif model.position_embedding == "rope":
        kv_local = np.maximum(model.n_kv_heads / tp, 1.0) if model.attention == "mha" else H / tp
        elem = elem + 2 * T * (H / tp + kv_local) * d_qk * ACT_BYTES
        kernels += 1

    if not mlp:
        pass
    elif kind == "dense":
        f = float(model.ffn_hidden)
        gemms.append(Gemm("mlp_up", T, (2 * f if gated else f) / tp, np.full_like(T, h)))
        gemms.append(Gemm("mlp_down", T, np.full_like(T, h), f / tp))
        act = (3 if gated else 2) * T * f / tp * ACT_BYTES
        elem = elem + act
        kernels += 1
        parts["mlp_act"] = (act, 1.0)
    else:
        moe = model.moe
        assert moe is not None
        E, k, fe = float(moe.experts), float(moe.top_k), float(moe.moe_ffn_hidden)
        local_experts = E / ep
        # Conservation: the tp*cp*dp GPUs of a stage together process every token's top_k experts once, so each
        # GPU sees mb*s*k/(tp*cp) token-expert pairs, spread over its E/ep local experts, N sharded by etp.
        tokens_per_expert = mb * s * k * etp * ep / (tp * cp * E)
        gemms.append(Gemm("router", T / seq_shard, np.full_like(T, E), np.full_like(T, h), low_precision=False))
        gemms.append(Gemm("expert_up", tokens_per_expert, (2 * fe if gated else fe) / etp, np.full_like(T, h),
                          count=local_experts))
        gemms.append(Gemm("expert_down", tokens_per_expert, np.full_like(T, h), fe / etp, count=local_experts))
        routed_tokens = tokens_per_expert * local_experts
        act = (3 if gated else 2) * routed_tokens * fe / etp * ACT_BYTES
        # permute + unpermute of routed tokens (read + write each), top-k softmax over the router logits
        permute = 2 * 2 * routed_tokens * h * ACT_BYTES
        elem = elem + act + permute
        kernels += 6
        parts["expert_act"], parts["permute"] = (act, 1.0), (permute, 5.0)
        if eager_epilogue and (model.norm_and_bias[1] or model.glu_limit is not None):
            fc1_out = (2 * fe if gated else fe) / etp
            epilogue, epilogue_kernels = routed_tokens * (2 * 2 * fc1_out + 3 * 2 * h) * ACT_BYTES, 5.0
            elem, kernels = elem + epilogue, kernels + epilogue_kernels
            parts["expert_epilogue"] = (epilogue, epilogue_kernels)
        if moe.shared_experts:
            fs = float((moe.shared_ffn_hidden or moe.moe_ffn_hidden) * moe.shared_experts)
            gemms.append(Gemm("shared_up", T, (2 * fs if gated else fs) / tp, np.full_like(T, h)))
            gemms.append(Gemm("shared_down", T, np.full_like(T, h), fs / tp))
            shared_act = (3 if gated else 2) * T * fs / tp * ACT_BYTES
            elem = elem + shared_act
            kernels += 1
            parts["shared_act"] = (shared_act, 1.0)

    q_bytes, q_kernels = quantization_work(gemms, scaling_recipe(precision, fp8_recipe), T, seq_shard)
    elem, kernels = elem + q_bytes, kernels + q_kernels

    if flash_attention or mamba:
        return LayerWork(gemms=gemms, attention_flops=attn_exec, attention_model_flops=attn_model,
                         elementwise_bytes=elem, elementwise_kernels=kernels, parts=parts)
    heads_local = H / tp
    band = float(band_keys(seq_len, window))  # keys per query with a score (s without a window)
    core = [Gemm("attn_scores", T, np.full_like(T, band), np.full_like(T, float(d_qk)), count=heads_local,
                 low_precision=False),
            Gemm("attn_context", T, np.full_like(T, float(d_v)), np.full_like(T, band), count=heads_local,
                 low_precision=False)]
    scores = T * band * heads_local
    # the fused scale-mask-softmax reads and writes the scores, dropout reads and writes them and writes its 1-byte
    # mask; QK^T's write of the scores and the second GEMM's read of them are those GEMMs' own bytes (perf.compute)
    core_bytes = scores * (2 * ACT_BYTES + ((2 * ACT_BYTES + 1) if model.dropout > 0 else 0))
    return LayerWork(gemms=gemms, attention_flops=np.zeros_like(T), attention_model_flops=attn_model,
                     elementwise_bytes=elem, elementwise_kernels=kernels + 2, core_gemms=core,
                     core_bytes=core_bytes, parts=parts)


#: GEMMs whose input is a norm's output through Transformer Engine's LayerNormLinear (Megatron-Core's
#: TELayerNormColumnParallelLinear: the attention's linear_qkv, a dense MLP's linear_fc1), quantized as
#: ScalingRecipe.norm_input_bytes says; a MoE layer's norm is a separate TENorm (its experts and shared expert
#: quantize after it), and MLA's down-projections share theirs
NORM_FUSED_INPUTS = frozenset({"qkv_proj", "mlp_up"})


def quantization_work(gemms: list[Gemm], recipe: ScalingRecipe | None, like: np.ndarray,
                      seq_shard: np.ndarray | float = 1.0) -> tuple[np.ndarray, float]:
    """(HBM bytes, kernels) a run's GEMM inputs take to quantize in the forward: Transformer Engine quantizes each
    low-precision GEMM's input activation before the GEMM (quantization.py: the cast and the column-wise copy the
    weight-gradient GEMM reads, and the amax pass of current scaling), a LayerNormLinear's (NORM_FUSED_INPUTS) on the
    rank's own tokens before the sequence-parallel gather (``seq_shard``: tp where the sequence is sharded, else 1),
    in the norm kernel where the recipe allows; the backward quantizes the output gradients the same way (the 2x
    backward factor of the memory-bound bytes). None: a 16-bit run quantizes nothing."""
    if recipe is None:
        return np.zeros_like(like), 0.0
    zero = np.zeros_like(like)
    cast = sum((g.m * g.k * g.count for g in gemms if g.low_precision and g.name not in NORM_FUSED_INPUTS),
               start=zero)
    fused = sum((recipe.norm_input_bytes(g.m * g.k * g.count, seq_shard)
                 for g in gemms if g.low_precision and g.name in NORM_FUSED_INPUTS), start=zero)
    return recipe.quantize_bytes * cast + fused, 2.0 * len(gemms)


def lm_head_work(model: Model, *, seq_len: int, micro_batch: np.ndarray, tp: np.ndarray, cp: np.ndarray,
                 precision: str = "bf16", fp8_recipe: str | None = None, fp8_output_proj: bool = False
                 ) -> LayerWork:
    """Output projection to the vocabulary (split over tp) and the fp32 cross-entropy over its logits.

    The projection runs in 16 bits in fp8 and fp4 runs: Megatron-Core builds its output layer as a plain
    tensor_parallel.ColumnParallelLinear (models/gpt/gpt_model.py), not a Transformer Engine module, so Transformer
    Engine's fp8 autocast does not reach it, and DeepSeek-V3 keeps its output head in BF16 too (report §3.3.1).
    ``fp8_output_proj`` (an MXFP8 run, spec.rules): a Transformer Engine linear in the run's format instead, its
    input quantized as the layers' are."""
    f64 = np.float64
    mb, tp, cp = (np.asarray(x, dtype=f64) for x in (micro_batch, tp, cp))
    T = mb * seq_len / cp
    V, h = float(model.vocab), float(model.hidden)
    logits = T * V / tp
    head = Gemm("lm_head", T, V / tp, np.full_like(T, h), low_precision=fp8_output_proj)
    recipe = scaling_recipe(precision, fp8_recipe) if fp8_output_proj else None
    q_bytes, q_kernels = quantization_work([head], recipe, T)
    loss_bytes = logits * (ACT_BYTES + 4 + 4)  # read logits, write fp32 softmax, read for the loss
    return LayerWork(gemms=[head], attention_flops=np.zeros_like(T), attention_model_flops=np.zeros_like(T),
                     elementwise_bytes=loss_bytes + q_bytes, elementwise_kernels=3.0 + q_kernels)
