"""Memory per GPU: weights, gradients, optimizer states, activations, over arrays of parallel configurations.

- States (mixed-precision Adam, Rajbhandari et al. 2020 ZeRO §3, Megatron's distributed optimizer): 16-bit weights,
  gradients of 4 bytes (fp32 accumulation) or 2, and 12 bytes of fp32 master weight, momentum and variance.
  ZeRO-1 shards the optimizer, ZeRO-2 also the gradients, ZeRO-3 also the weights, over the data-parallel group
  (dp*cp ranks for dense weights, the expert data-parallel group tp*cp*dp/(ep*etp) for expert weights).
- Activations per layer and micro-batch after Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
  Transformer Models", §4, Eq. 1-4), generalised to GQA/MLA, gated MLPs, MoE, flash attention and CP:
  sbh*(10 + 24/t + 5*a*s/(h*t)) with TP; sbh/t*(34 + 5*a*s/h) with TP + SP; the s*s terms vanish with flash
  attention or selective recompute; 2*sbh (per layer input, /t with SP) with full recompute. A sliding-window layer
  (workload.window) keeps s*w scores a head instead of s*s when attention is unfused, the same as a full layer with
  flash attention (K and V of every token are kept for the backward whatever the window).
- A Mamba-2 layer of a hybrid (workload.ssm) keeps what mamba_ssm's fused MambaSplitConv1dScanCombinedFn saves
  for its backward (ops/triton/ssd_combined.py: the input projection's output z,x,B,C,dt, the scan's output and
  the gated norm's fp32 rstd; the chunk states are recomputed), the input projection's input (its norm's output)
  and the output projection's input (Megatron-Core's MambaMixer: separate column- and row-parallel linears), all
  split over tp with the heads; no K, V or scores. A Mamba-2 layer without an MLP keeps one norm's worth of the
  replicated region and no MLP. Per-op recompute (torchtitan) is priced as for an attention layer (an
  approximation). State-space layers are taken as spread evenly over the pipeline stages. A Mamba-1 layer keeps what
  mamba_ssm's MambaInnerFn saves (ops/selective_scan_interface.py: x and z, x_proj's output, the scan's output
  and its fp32 chunk states; the convolution's output and dt recomputed).
- Block recompute (Megatron-LM --recompute-granularity full --recompute-method block): full-layer recompute of
  only the first k layers of each stage, with k the fewest that bring the stage within the memory budget.
- Pipeline: the first stage holds the activations of pp micro-batches under 1F1B, times (1 + (pp-1)/(pp*v)) for
  the interleaved schedule with v virtual stages (Korthikanti §4.2.3); fewer if there are fewer micro-batches.
  ZB-H1 holds what 1F1B holds (Qi et al. 2023, arXiv:2401.10241 §3.1: the same peak activation memory; a deferred
  weight-gradient pass keeps only its layer's inputs and output gradients, freed by its pass, counted here as within
  the micro-batch's activations). DualPipe holds pp + 1 micro-batches and two copies of the stage's weights and
  gradients, a rank holding the stage of either direction (DeepSeek-V3 report, arXiv:2412.19437 Table 2); the
  optimizer state of the two copies is taken as sharded over the ranks holding them, the same per GPU (the report:
  the two copies do not add much memory under a large EP size), an assumption.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal, NamedTuple

import numpy as np

from ..arrays import group_rows
from ..spec.layout import Chunk, expand_layout, stage_loads
from ..spec.model import Model
from ..spec.training import (
    SCHEDULES,
    SELECTIVE_DEFAULT,
    Training,
    counted_in_split,
    pipeline_accounting,
    pipeline_group,
)
from .operators import ACT_BYTES, attention_dims, attention_gemms
from .params import mlp_matrices, param_counts, ssm_in_proj_width
from .quantization import low_precision
from .ssm import ssm_layer_shares
from .window import band_keys, effective_window, windowed_in_first_and_last

DUALPIPE_CODE = SCHEDULES.index("dualpipe")

OFFLOAD_OPTIMIZER, OFFLOAD_WEIGHTS, OFFLOAD_ACTIVATIONS = 1, 2, 4  # bits of an offload choice (perf.candidates)

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
    workspace_bytes: np.ndarray  # library workspaces on the caching allocator
    allocator_bytes: np.ndarray  # reserved but not allocated: the caching allocator's segments beyond the peak
    runtime_bytes: np.ndarray  # outside the allocator: CUDA context, NCCL buffers
    # Offloading (not on the GPU, so not in the totals): what sits in host memory, and what crosses the host link
    host_bytes: np.ndarray
    host_link_fwd_bytes: np.ndarray  # per micro-batch, during its forward: weights in, activations out
    host_link_bwd_bytes: np.ndarray  # during its backward: weights in (again, and for a recompute), gradients out,
    # activations back
    cpu_step_params: np.ndarray  # parameters the CPU optimizer updates

    @property
    def states_bytes(self) -> np.ndarray:
        """Weights, gradients and optimizer state."""
        return self.weights_bytes + self.gradients_bytes + self.optimizer_bytes

    @property
    def allocated_bytes(self) -> np.ndarray:
        """Peak allocated by the framework (torch.cuda.max_memory_allocated)."""
        return self.states_bytes + self.activations_bytes + self.transient_bytes + self.workspace_bytes

    @property
    def reserved_bytes(self) -> np.ndarray:
        """Peak reserved by the caching allocator (torch.cuda.max_memory_reserved)."""
        return self.allocated_bytes + self.allocator_bytes

    @property
    def total_bytes(self) -> np.ndarray:
        """What the device holds at the peak (nvidia-smi's used memory)."""
        return self.reserved_bytes + self.runtime_bytes

    def parts(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_bytes, "gradients": self.gradients_bytes,
                "optimizer": self.optimizer_bytes, "activations": self.activations_bytes,
                "transient": self.transient_bytes, "workspace": self.workspace_bytes,
                "allocator": self.allocator_bytes, "runtime": self.runtime_bytes}


def effective_zero_stage(zero_stage: np.ndarray, pp: np.ndarray) -> np.ndarray:
    """The ZeRO stage a configuration runs as: under a pipeline (pp > 1) ZeRO-2/3 keep the parameters gathered and
    the gradients whole from the first forward to the last backward, reducing them once per step, as torchtitan runs
    FSDP with pipeline parallelism (torchtitan distributed/fsdp.py, reshard_after_forward off under PP;
    torch.distributed.pipelining stage.py defers gradient sync to the last micro-batch): memory and traffic of
    ZeRO-1 (spec.rules)."""
    zero = np.asarray(zero_stage)
    return np.where((np.asarray(pp) > 1) & (zero >= 2), 1, zero)


def layers_per_stage(layers: int, pp: np.ndarray, stage_layers: float | np.ndarray | None = None) -> np.ndarray:
    """Layers on the fullest stage (an uneven split gives the slowest stage ceil(L/pp)), or ``stage_layers`` (per
    candidate or one for all) when a run places them itself (a pipeline layout, the counted split)."""
    if stage_layers is not None:
        return np.broadcast_to(np.asarray(stage_layers, dtype=np.float64), np.shape(pp)).copy()
    return np.ceil(layers / np.asarray(pp, dtype=np.float64))


def stage_layer_counts(layers: int, pp: int, *, extra_first: bool = False, embedding: int = 0, loss: int = 0
                       ) -> list[int]:
    """Layers on each of ``pp`` stages: floor(L/pp), the last L mod pp stages one more (the fullest stage that of
    the LM head, as layers_per_stage takes it), or the first ones with ``extra_first``. ``embedding`` / ``loss``
    (1: the split counts the input embedding / the LM head and loss as a layer, Megatron-Core
    get_num_layers_to_build): the L + e + l slots split so, the first stage e and the last l layers fewer."""
    if pp == 1:  # one stage splits nothing
        return [layers]
    slots = layers + embedding + loss
    counts = [slots // pp + (1 if i < slots % pp else 0) for i in range(pp)]
    counts = counts if extra_first else counts[::-1]
    counts[0] -= embedding
    counts[-1] -= loss
    return counts


def rank_placement(layers: int, pp: int, training: Training) -> list[Chunk]:
    """What each of the ``pp`` pipeline ranks holds as the run places its layers: its own layout (spec.layout), else
    the split (stage_layer_counts, the embedding and the loss counted where the run says so), the loss on the last
    rank."""
    layout = training.pipeline_layout
    if layout is not None and len(expand_layout(layout)) % pp == 0:
        return stage_loads(layout, pp)
    e, lo = (int(x) for x in pipeline_accounting(training, pp))
    counts = stage_layer_counts(layers, pp, embedding=e, loss=lo)
    return [Chunk(n, loss=int(i == pp - 1)) for i, n in enumerate(counts)]


def pipeline_end_layers(layers: int, pp: np.ndarray, training: Training) -> tuple[np.ndarray, np.ndarray] | None:
    """Transformer layers of the first and the last pipeline rank, per candidate, where the run places them itself
    (rank_placement: its layout's 't', or the split that counts the embedding and the loss); None where it splits
    them evenly (the memory model's ceil(L/pp) for both)."""
    if training.pipeline_layout is None and not any(counted_in_split(training)):
        return None
    pp = np.asarray(pp, dtype=np.float64)
    first, last = np.ceil(layers / pp), np.ceil(layers / pp)
    for depth in np.unique(pp):
        ranks, on = rank_placement(layers, int(depth), training), pp == depth
        first, last = np.where(on, ranks[0].transformer, first), np.where(on, ranks[-1].transformer, last)
    return first, last


def pipeline_stage_loads(layers: int, pp: int, training: Training) -> set[tuple[int, int]]:
    """The distinct (layers, LM-head passes) of the ``pp`` pipeline ranks (rank_placement)."""
    return {(r.layers, r.heads) for r in rank_placement(layers, pp, training)}


def stage_params(model: Model, pp: np.ndarray, tp: np.ndarray, ep: np.ndarray, etp: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(non-expert, expert) parameters per GPU on the fuller of the first and last stages."""
    first, expert, _ = stage_params_at(model, "first", pp, tp, ep, etp)
    last, _, _ = stage_params_at(model, "last", pp, tp, ep, etp)
    return np.maximum(first, last), expert


MAMBA1_SCAN_CHUNK = 2048  # tokens per chunk of mamba_ssm's selective-scan CUDA kernel (kNChunkSize)


def layer_activation_bytes(model: Model, *, seq_len: int, micro_batch: np.ndarray, tp: np.ndarray,
                           cp: np.ndarray, sp: np.ndarray, ep: np.ndarray, etp: np.ndarray, recompute: np.ndarray,
                           flash_attention: bool, moe_layer: bool, precision: str = "bf16",
                           eager: bool = False, modules: frozenset[str] = SELECTIVE_DEFAULT,
                           window: int | None = None, mamba: bool = False, mlp_block: bool = True) -> np.ndarray:
    """Stored activation bytes of one layer for one micro-batch on one GPU (recompute: 0 none, 1 sel., 2 full).

    ``window``: a sliding-window layer (workload.window). Flash attention stores no scores, so the window changes
    nothing it keeps (Q, K and V of every token are needed by the backward whatever the window); unfused attention
    keeps a band of min(s, w) scores per query instead of s (operators.layer_work). ``mamba``: a Mamba-2 mixer in
    place of attention, ``mlp_block`` False: no MLP (module docstring).

    Selective recompute drops what the recomputed ``modules`` saved (Megatron-LM --recompute-modules,
    transformer_config.py): core_attn the s x s scores (Korthikanti et al.'s selective recompute, the default),
    layernorm the norms' outputs, mlp a dense MLP's internals, moe_act the experts' activation outputs, moe a MoE
    layer's internals, shared_experts the shared experts', mla_up_proj MLA's up-projected queries, keys and values.
    In an fp8 or fp4 run, Transformer Engine keeps the quantized copy of each linear layer's input for the backward
    pass: the inputs of the QKV, output, MLP-up and MLP-down GEMMs are stored at their operand bytes, 1 (fp8) or
    0.5625 (NVFP4, quantization.py), instead of 2. ``eager``: unfused PyTorch code (no torch.compile, no fused norm and rotary kernels) also keeps the fp32 inputs of its two RMSNorms
    (computed in fp32), the fp32 rotary copies of q and k, and k and v expanded to every query head (GQA's
    repeat; torchtune modules/rms_norm.py, llama3_1 position embeddings, attention.py expand).
    """
    fmt = low_precision(precision)
    lin = fmt.operand_bytes if fmt is not None else float(ACT_BYTES)  # bytes per stored GEMM-input element
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
    selective = rc == 1

    def unless(module: str, part: np.ndarray | float) -> np.ndarray:
        """A part a selectively recomputed module does not keep."""
        return np.where(selective & (module in modules), 0.0, part)

    # Unsharded-by-TP region (sharded by SP): two norm inputs, the norms' outputs (QKV and MLP inputs), two dropout
    # masks (1 byte each).
    replicated = ACT_BYTES * 2 * sbh + unless("layernorm", lin * 2 * sbh) + (2 * sbh if drop else 0.0)
    if not mlp_block:  # one norm, one dropout
        replicated = replicated / 2.0
    # Attention: Q, K, V and the attention output (= output projection input).
    qkv = ACT_BYTES * T * (H / tp * d_qk + kv_local * (d_qk + d_v))
    attn = (unless("mla_up_proj", qkv) if model.attention == "mla" else qkv) + lin * T * H / tp * d_v
    # The s x s score matrix without flash attention: softmax output, plus dropout mask and output.
    keys = float(band_keys(seq_len, window))  # keys per query with a score (s without a window)
    scores = T * keys * H / tp * (ACT_BYTES + (1 + ACT_BYTES if drop else 0))
    if mamba and model.ssm is not None and model.ssm.version == 1:
        # mamba_ssm MambaInnerFn (checkpoint_lvl 1): x and z, x_proj's output (dt, B, C), the scan's output and its
        # fp32 chunk states (two N-vectors a channel per 2048 tokens); conv output and dt recomputed
        ssm1, dt_rank = model.ssm, float(model.ssm.dt_rank or 0)
        attn = ACT_BYTES * T * (3.0 * ssm1.inner / tp + dt_rank + 2.0 * ssm1.state) \
            + 4.0 * 2.0 * ssm1.state * ssm1.inner / tp * np.ceil(T / MAMBA1_SCAN_CHUNK)
        scores = np.zeros_like(T)
    elif mamba:
        assert model.ssm is not None
        inner, groups = model.ssm.inner, model.ssm.groups
        width = ssm_in_proj_width(model) - 2 * groups * model.ssm.state  # z, x, dt split by heads
        bc = 2 * np.maximum(groups / tp, 1.0) * model.ssm.state  # B and C, at least one group a rank
        attn = ACT_BYTES * T * (width / tp + bc) + (ACT_BYTES + lin) * T * inner / tp \
            + 4.0 * T * np.maximum(groups / tp, 1.0)
        scores = np.zeros_like(T)
    gated = model.activation == "swiglu"
    up = (2 if gated else 1) * ACT_BYTES  # the up-projection's output(s), kept for the activation's backward
    if moe_layer and model.moe:
        moe = model.moe
        E, k, fe = float(moe.experts), float(moe.top_k), float(moe.moe_ffn_hidden)
        routed = mb * s * k * etp / (tp * cp)  # token-expert pairs on this GPU
        mlp = routed * (lin * h + up * fe / etp + unless("moe_act", lin * fe / etp))
        if moe.shared_experts:
            fs = float((moe.shared_ffn_hidden or moe.moe_ffn_hidden) * moe.shared_experts)
            mlp = mlp + unless("shared_experts", T * (up + lin) * fs / tp)
        mlp = unless("moe", mlp + 4.0 * T * E / shard)  # router logits (fp32)
    else:
        f = float(model.ffn_hidden)
        mlp = unless("mlp", T * (up + lin) * f / tp)
    if not mlp_block:
        mlp = 0.0
    full_layer = replicated / shard + attn + mlp + np.where(rc == 0, 0.0 if flash_attention else scores,
                                                            0.0 if flash_attention else unless("core_attn", scores))
    if eager and not mamba:
        rope = 4.0 * T * (H / tp + kv_local) * d_qk if model.position_embedding == "rope" else 0.0
        expand = 2.0 * ACT_BYTES * T * np.maximum(H / tp - kv_local, 0.0) * d_qk
        full_layer = full_layer + 4.0 * 2.0 * sbh / shard + rope + expand
    checkpoint = ACT_BYTES * sbh / shard
    # Per-op selective checkpointing (torchtitan): the layer's input, the outputs of every other matmul (q, v, the
    # MLP's up projection(s) w1 and its down projection w2, partial sums over tp) and of the attention core (with its
    # fp32 log-sum-exp); everything else is recomputed (flops.op_recompute_share).
    f_local = (float(model.moe.moe_ffn_hidden) * float(model.moe.top_k) if moe_layer and model.moe
               else float(model.ffn_hidden)) / tp
    op = (checkpoint + ACT_BYTES * T * (H / tp * d_qk + kv_local * d_v + H / tp * d_v + f_local + h)
          + 4.0 * T * H / tp)
    return np.where(rc == 2, checkpoint, np.where(rc == 4, op, full_layer))


class MemoryOptions(NamedTuple):
    """How the training software holds its state (the defaults: Megatron-LM's mixed-precision Adam).

    - ``weight_bytes``: 16-bit weights (2), plus an fp8 run's cached quantized copy and transpose of the linear
      layers' weights (Transformer Engine: 2 more, an fp4 run's 2 x 0.5625; with fp8 parameters the fp8 weight and
      its transpose replace them);
    - ``grad_bytes``: 4 for fp32 gradient buffers (Megatron-LM main_grad, DeepSpeed's BF16 optimizer), 2 for 16-bit;
    - ``master_bytes``: 4 for an fp32 copy of the weights (mixed precision), 0 when the weights are the master copy
      (pure bf16 training, torchtune's default);
    - ``state_bytes``: optimizer moments per parameter (Adam fp32 m and v: 8; bf16: 4; 8-bit blockwise: 2 plus
      the block scales, :data:`INT8_STATE_BYTES`); ``embedding_state_bytes`` for embeddings and output layer
      (Muon keeps Adam there);
    - ``optimizer_in_backward``: each parameter is updated as its gradient arrives and the gradient freed
      (torchtune optimizer_in_bwd): no gradient buffer lives across the backward;
    - ``loss_logit_bytes``: bytes per element of the [tokens x vocab/tp] logits held through the loss (the 16-bit
      output of the output layer, or its fp32 copy); ``loss_upcast_bytes``: the loss's own fp32 working copies
      per element of one chunk (an fp32 upcast, a saved softmax); ``loss_chunks``: the loss computed over this many
      slices of the tokens one after another (torchtune's chunked cross-entropy);
    - ``workspace_bytes``: persistent library workspaces (cuBLAS/cuBLASLt, Transformer Engine) on the allocator;
      ``runtime_bytes``: outside the allocator (CUDA context and kernels, NCCL communicator buffers);
      ``reserved_over_allocated``: the caching allocator's reserved segments over its peak allocation;
    - ``step_transient_bytes``: per parameter of the rank's optimizer partition, what the step allocates once the
      activations are gone (DeepSpeed ZeRO-1: the reduced 16-bit gradient partition and its fp32 copy, while the
      full gradients are freed); ``unsharded_step_transient_bytes``: the same for an optimizer not sharded (ZeRO-0),
      per parameter of the rank, the gradients included (DeepSpeed's FP16_Optimizer: the 16-bit gradients, their
      fp32 copies and the flat fp32 gradient they are joined into);
    - ``optimizer_instances``: copies of the distributed optimizer over the data-parallel ranks, each sharding
      the state over its own dp / instances ranks;
    - ``whole_tensor_shards``: the distributed optimizer hands out whole tensors rather than equal slices, so the
      fullest rank holds the largest tensor, the embedding or output layer, whole, with an even share of the rest
      (Megatron-LM's LayerWiseDistributedOptimizer for Muon without its shard-aligned parameter layout,
      --no-use-layer-wise-param-layout: tensors sorted by size are dealt to the data-parallel ranks in ping-pong
      order, layer_wise_optimizer.py _shard_params_ping_pong, Megatron-LM d98e8a64dd);
    - ``deferred_output_grads``: micro-batches whose output-layer weight gradient waits for the pipeline flush
      (Megatron-LM --defer-embedding-wgrad-compute, at most --wgrad-deferral-limit, 0 = all; inf for all): the last
      stage keeps each one's 16-bit gradient of the logits and the layer's input until then (tensor_parallel
      layers.py LinearWithGradAccumulationAndAsyncCommunication.backward, grad_output_buffer; schedules.py
      finish_embedding_wgrad_compute);
    - ``graph_static_inputs``: per-layer CUDA graphs (Megatron-LM --cuda-graph-impl transformer_engine) keep static
      input buffers for every layer's forward in flight, reused once its backward has run (cuda_graphs.py
      TECudaGraphHelper._get_sample_arguments): 0 none, 1 the layer's 16-bit hidden states [s/cp (/tp with SP), b,
      h], 2 also, with attention graphed, a boolean causal mask [b, 1, s/cp, s] (transformer_layer.py
      get_layer_static_inputs);
    - ``fsdp_gather_params``: parameters ZeRO-3 gathers (and gradients it holds) at a time beyond two layers;
    - ``zero3_by_tensor``: ZeRO-3 gathered tensor by tensor (DeepSpeed before 0.6, spec.training zero3_gather
      'tensor'), as (max_live_parameters, prefetch_bucket_size, reduce_bucket_size) in parameters
      (catalog/software.yaml zero3_by_tensor): the parameter coordinator keeps at most max_live_parameters gathered
      (or the module in use whole, when its tensor is larger) and prefetches up to prefetch_bucket_size more, and
      the gradients wait for their reduction in buckets of reduce_bucket_size elements, where FSDP gathers and
      reduces whole layers; None: by layer;
    - ``fsdp_keeps_ends``: ZeRO-3 keeps the embedding and output layer, which lie outside its sharded units,
      gathered in 16-bit from one step to the next beside their shards (Megatron-FSDP since 2026-05-30,
      catalog/software.yaml fsdp_keeps_outer_params_since); counted among the weights, and no longer among what
      the peak gathers;
    - ``eager``: unfused PyTorch code keeps fp32 copies (see layer_activation_bytes);
    - ``lazy_gradients``: gradients are allocated by the backward and freed after the step (torch's set_to_none)
      rather than held in a persistent buffer: with one micro-batch a step they never meet the forward's peak;
    - ``trainable_dense``, ``trainable_expert``: the share of the stored non-expert and expert parameters that
      train (1; LoRA's adapters over the frozen weights, workload.lora): gradients, master copies and optimizer
      state are kept for that share alone;
    """

    weight_bytes: float = 2.0
    grad_bytes: float = 4.0
    master_bytes: float = 4.0
    state_bytes: float = 8.0
    embedding_state_bytes: float = 8.0
    optimizer_in_backward: bool = False
    loss_logit_bytes: float = 2.0
    loss_upcast_bytes: float = 0.0
    loss_chunks: int = 1
    workspace_bytes: float = 0.0
    runtime_bytes: float | np.ndarray = 0.0
    reserved_over_allocated: float = 1.0
    step_transient_bytes: float = 0.0
    unsharded_step_transient_bytes: float = 0.0
    eager: bool = False
    lazy_gradients: bool = False
    fsdp_gather_params: float = 0.0
    zero3_by_tensor: tuple[float, float, float] | None = None
    fsdp_keeps_ends: bool = False
    optimizer_instances: float = 1.0
    whole_tensor_shards: bool = False
    deferred_output_grads: float = 0.0
    graph_static_inputs: int = 0
    trainable_dense: float = 1.0
    trainable_expert: float = 1.0


INT8_STATE_BYTES = 2.0 + 2 * 4.0 / 256  # two 8-bit moments and an fp32 absmax per 256-element block each
                                          # (bitsandbytes blockwise 8-bit optimizers, Dettmers et al. 2022)
Stage = Literal["first", "last"]
STAGES: tuple[Stage, Stage] = ("first", "last")


def in_flight_chunks(pp: np.ndarray, vs: np.ndarray, microbatches: np.ndarray, rank: np.ndarray,
                     dual: np.ndarray | None = None) -> np.ndarray:
    """Activations pipeline rank ``rank`` holds at its peak, in units of its whole stage for one micro-batch: the
    warm-up forwards of 1F1B, pp - rank micro-batches; with v virtual stages Megatron-LM's interleaved warm-up
    of (pp - rank - 1) * 2 + (v - 1) * g + 1 model chunks of 1/v of the stage, g the micro-batch group
    (spec.training.microbatch_group: pp where pp divides m; schedules.py, get_pp_rank_microbatches), at most every
    chunk of the step. For the first rank with g = pp this is Korthikanti et al.'s pp * (1 + (pp - 1)/(pp * v))
    (§4.2.3). ``dual``: DualPipe, pp + 1 on every rank (DeepSeek-V3 report, Table 2)."""
    interleaved = ((pp - rank - 1) * 2 + (vs - 1) * pipeline_group(microbatches, pp) + 1) / vs
    held = np.where(vs > 1, interleaved, pp - rank)
    if dual is not None and dual.any():
        held = np.where(dual, pp + 1.0, held)
    return np.minimum(held, microbatches)


def _moe_prefix(model: Model) -> np.ndarray:
    """MoE layers among the first n layers, for n = 0..L (spec.model.Model.moe_layer_flags)."""
    return np.concatenate([[0.0], np.cumsum(np.asarray(model.moe_layer_flags, dtype=np.float64))])


def moe_in_first(model: Model, n: np.ndarray | float) -> np.ndarray:
    """MoE layers among the first ``n`` layers (n clipped to 0..L; a fractional n, a share of its last layer): the
    layers after the leading dense ones when every one of them is MoE (its closed form, the hot path of evaluate()),
    else counted off the model's placement."""
    if model.moe is None:
        return np.zeros(np.shape(n))
    L, moe = model.layers, float(model.moe_layers)
    if model.moe.interleave_step == 1:
        return np.clip(np.asarray(n, dtype=np.float64) - (L - moe), 0.0, moe)
    return moe_in_first_by_placement(model, np.clip(np.asarray(n, dtype=np.float64), 0.0, float(L)))


def moe_in_first_by_placement(model: Model, x: np.ndarray) -> np.ndarray:
    """MoE layers among the first ``x`` layers (0 <= x <= L) counted off Model.moe_layer_flags, a fractional x taking
    a share of its last layer: the general case of moe_in_first."""
    pre = _moe_prefix(model)
    lo = np.floor(x).astype(np.int64)
    hi = np.minimum(lo + 1, model.layers)
    return pre[lo] + (x - lo) * (pre[hi] - pre[lo])


def moe_in_last(model: Model, n: np.ndarray | float) -> np.ndarray:
    """MoE layers among the last ``n`` layers (n clipped to 0..L), as moe_in_first."""
    if model.moe is None:
        return np.zeros(np.shape(n))
    L, moe = model.layers, float(model.moe_layers)
    if model.moe.interleave_step == 1:
        return np.minimum(np.asarray(n, dtype=np.float64), moe)
    x = np.clip(np.asarray(n, dtype=np.float64), 0.0, float(L))
    return moe - moe_in_first_by_placement(model, L - x)


def moe_layers_on(model: Model, stage: Stage, lps: np.ndarray, pp: np.ndarray) -> np.ndarray:
    """MoE layers among the ``lps`` layers of the first or last stage, stages holding contiguous layers (the
    model's own placement, Model.moe_layer_flags: leading dense layers, then every interleave_step-th MoE)."""
    if stage == "first":
        return np.where(np.asarray(pp) > 1, moe_in_first(model, lps), moe_in_last(model, lps))
    return moe_in_last(model, lps)


def mtp_layers_on(stage: Stage, pp: np.ndarray, mtp_layers: int) -> np.ndarray:
    """Multi-token-prediction layers on the first or last stage: all on the last (Megatron-LM's mtp_on_this_rank
    without a layout; a layout's 'm' is given as the last rank's)."""
    return np.where((np.asarray(pp) == 1) | (stage == "last"), float(mtp_layers), 0.0)


def stage_params_at(model: Model, stage: Stage, pp: np.ndarray, tp: np.ndarray, ep: np.ndarray, etp: np.ndarray,
                    stage_layers: float | np.ndarray | None = None, mtp_layers: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(non-expert, expert, of which embedding/output) parameters per GPU on the first or the last stage
    (``stage_layers``: the stage's transformer layers when the split is not even, else ceil(L/pp)).

    ``mtp_layers``: DeepSeek-V3-style multi-token-prediction modules after the last layer (Megatron-LM
    multi_token_prediction.py MultiTokenPredictionLayer): each a transformer layer like the model's last (an MoE
    layer in an MoE model), two input norms, a column-parallel projection of 2h to h and a final norm, on the last
    stage, which then also builds the input embedding (gpt_model.py: pre_process or mtp_process), a copy of its own
    when the output layer is untied."""
    pc = param_counts(model)
    pp, tp, ep, etp = (np.asarray(x, dtype=np.float64) for x in (pp, tp, ep, etp))
    lps = layers_per_stage(model.layers, pp, stage_layers)
    n_moe = moe_layers_on(model, stage, lps, pp)
    n_dense = lps - n_moe
    dense_layer = (pc.attention_layer + pc.dense_mlp_layer) / tp + pc.norms_layer
    moe_shared = (pc.attention_layer + pc.moe_shared_layer) / tp + pc.norms_layer + pc.router_layer
    embed = pc.embedding / tp
    head = (pc.lm_head if pc.lm_head else pc.embedding) / tp  # a tied head is a copy on the last stage
    single = pp == 1
    if stage == "first":
        ends = np.where(single, embed + pc.lm_head / tp, embed)
    else:
        ends = np.where(single, embed + pc.lm_head / tp, head)
    norm = np.where(single | (stage == "last"), float(pc.final_norm), 0.0)
    non_expert = n_dense * dense_layer + n_moe * moe_shared + ends + norm
    mtp = mtp_layers_on(stage, pp, mtp_layers)
    if mtp_layers:
        h = float(model.hidden)
        mtp_copy = np.where(~single & (mtp > 0), embed if pc.lm_head else 0.0, 0.0)
        ends = ends + mtp_copy
        non_expert = non_expert + mtp_copy + mtp * ((moe_shared if model.moe else dense_layer)
                                                    + 2.0 * h * h / tp + 3.0 * h)
    if model.ssm is not None:  # Mamba-2 layers at their model-wide share (module docstring)
        with_mlp, without_mlp = ssm_layer_shares(model)
        bare = lps * without_mlp  # the stage's layers without an MLP: a dense MLP's, or an MoE layer's (spec.model)
        mlp = pc.dense_mlp_layer / tp if not pc.moe_mlp_free else pc.moe_shared_layer / tp + pc.router_layer
        non_expert = non_expert + lps * (with_mlp + without_mlp) * (pc.ssm_mixer_layer - pc.attention_layer) / tp \
            - bare * (mlp + pc.norms_layer / 2)
        if pc.moe_mlp_free:
            n_moe = n_moe - bare
    expert = (n_moe + (mtp if model.moe else 0.0)) * pc.moe_routed_layer / (ep * etp)
    return non_expert, expert, ends


def largest_weight_tensor(model: Model, tp: np.ndarray, etp: np.ndarray) -> np.ndarray:
    """Parameters of the largest weight matrix a rank holds of one layer: the attention projections, the MLP's
    (fused gate and up) input projection (its output one is no larger), an expert's and the shared experts' (split
    by tensor parallelism, an expert by expert tensor parallelism; expert parallelism places whole experts)."""
    tp = np.asarray(tp, dtype=np.float64)
    one = np.ones_like(tp)
    largest = np.zeros_like(tp)
    for g in attention_gemms(model, one, tp):
        largest = np.maximum(largest, g.n * g.k)
    h = float(model.hidden)
    up = 2.0 if mlp_matrices(model) == 3 else 1.0  # a gated MLP fuses its gate and up projections
    if model.moe_layers < model.layers:  # some layers keep a dense MLP
        largest = np.maximum(largest, up * h * model.ffn_hidden / tp)
    if model.moe is not None:
        largest = np.maximum(largest, up * h * model.moe.moe_ffn_hidden / np.asarray(etp, dtype=np.float64))
        if model.moe.shared_experts:
            fs = float((model.moe.shared_ffn_hidden or model.moe.moe_ffn_hidden) * model.moe.shared_experts)
            largest = np.maximum(largest, up * h * fs / tp)
    return largest


def memory_per_gpu(model: Model, *, seq_len: int, global_batch: int, grad_accum_fp32: bool = True,
                   flash_attention: bool, precision: str, tp: np.ndarray, pp: np.ndarray, dp: np.ndarray,
                   cp: np.ndarray, ep: np.ndarray, etp: np.ndarray, micro_batch: np.ndarray, virtual_stages: np.ndarray,
                   recompute: np.ndarray, zero_stage: np.ndarray, sp: np.ndarray,
                   budget_bytes: float = np.inf, options: MemoryOptions | None = None,
                   stage: Stage | None = None, stage_layers: float | np.ndarray | None = None,
                   end_layers: tuple[np.ndarray, np.ndarray] | None = None, offload: np.ndarray | None = None,
                   recompute_modules: frozenset[str] = SELECTIVE_DEFAULT,
                   schedule: np.ndarray | None = None, mtp_layers: int = 0) -> MemoryBreakdown:
    """Memory per GPU for arrays of parallel configurations (``budget_bytes`` sizes block recompute).

    ``grad_accum_fp32`` sets the gradient buffer when no ``options`` are given (options carry their own).
    ``stage``: the first pipeline rank (embedding, the most micro-batches in flight) or the last (output layer,
    loss); None: whichever of the two needs more, per candidate. ``stage_layers``: that rank's transformer layers
    when the run splits them unevenly (a pipeline layout), else ceil(L/pp); ``end_layers``: the first and the last
    rank's, per candidate, when ``stage`` is None (pipeline_end_layers). ``offload``: bits of what each candidate
    keeps in host memory (perf.candidates OFFLOAD_*): the optimizer state (ZeRO-Offload: the step runs on the CPU,
    gradients go down and 16-bit weights come back), the weights and gradients (FSDP CPUOffload, ZeRO-Infinity: the
    layer in use and the one prefetched stay), the activations kept for the backward (the layer in use and the one
    prefetched stay). ``mtp_layers``: multi-token-prediction layers on the last stage (stage_params_at)."""
    if stage is None:
        first, last = (memory_per_gpu(model, seq_len=seq_len, global_batch=global_batch,
                                      grad_accum_fp32=grad_accum_fp32, flash_attention=flash_attention,
                                      precision=precision, tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, etp=etp, micro_batch=micro_batch,
                                      virtual_stages=virtual_stages, recompute=recompute, zero_stage=zero_stage,
                                      sp=sp, budget_bytes=budget_bytes, options=options, stage=st,
                                      stage_layers=stage_layers if end_layers is None else end_layers[i],
                                      offload=offload,
                                      recompute_modules=recompute_modules, schedule=schedule,
                                      mtp_layers=mtp_layers)
                       for i, st in enumerate(STAGES))
        pick = first.total_bytes >= last.total_bytes
        return MemoryBreakdown(**{f.name: np.where(pick, getattr(first, f.name), getattr(last, f.name))
                                  for f in fields(MemoryBreakdown)})
    opt = options or MemoryOptions(grad_bytes=4.0 if grad_accum_fp32 else 2.0)
    f64 = np.float64
    tp, pp, dp, cp, ep, etp, mb, vs = (np.asarray(x, dtype=f64)
                                       for x in (tp, pp, dp, cp, ep, etp, micro_batch, virtual_stages))
    zero = effective_zero_stage(zero_stage, pp)
    rc = np.asarray(recompute)
    seq_shard = np.where(np.asarray(sp, dtype=bool), tp, 1.0)  # sequence parallelism splits the hidden states
    non_expert, expert, ends = stage_params_at(model, stage, pp, tp, ep, etp, stage_layers, mtp_layers)
    mtp = mtp_layers_on(stage, pp, mtp_layers)
    dense_dp = dp * cp
    expert_dp = tp * cp * dp / (ep * etp)

    def ranks(zero_from: int, group: np.ndarray) -> np.ndarray:
        """Ranks a state sharded from ZeRO stage ``zero_from`` is split over; the distributed optimizer shards
        within each of its instances (Megatron-LM --num-distributed-optimizer-instances)."""
        parts = opt.optimizer_instances if zero_from == 1 else 1.0
        return np.where(zero >= zero_from, np.maximum(group / parts, 1.0), 1.0)

    def sharded(n_bytes: float, zero_from: int, n_dense: np.ndarray | None = None) -> np.ndarray:
        dense = non_expert if n_dense is None else n_dense
        return n_bytes * (dense / ranks(zero_from, dense_dp) + expert / ranks(zero_from, expert_dp))

    weights = sharded(opt.weight_bytes, 3, non_expert - ends) + WEIGHT_BYTES * ends / ranks(3, dense_dp)
    # the ends gathered for good beside their shards (a dp of 1 computes from its whole, unsharded buffer)
    kept_ends = np.where(opt.fsdp_keeps_ends & (zero == 3) & (ranks(3, dense_dp) > 1), ends, 0.0)
    weights = weights + WEIGHT_BYTES * kept_ends
    if opt.optimizer_in_backward:  # one tensor's gradient at a time: the largest, the embedding or the output layer
        grads = opt.grad_bytes * np.maximum(ends, 1.0) / ranks(2, dense_dp)
    else:
        grads = sharded(opt.grad_bytes, 2)
    ends_ranks = 1.0 if opt.whole_tensor_shards else ranks(1, dense_dp)  # the embedding whole on the fullest rank
    optim = sharded(opt.master_bytes + opt.state_bytes, 1, non_expert - ends) + (
        (opt.master_bytes + opt.embedding_state_bytes) * ends / ends_ranks)
    if opt.trainable_dense != 1.0 or opt.trainable_expert != 1.0:  # LoRA: the adapters' gradients and state only
        trained_dense, trained_expert = non_expert * opt.trainable_dense, expert * opt.trainable_expert
        grads = opt.grad_bytes * (trained_dense / ranks(2, dense_dp) + trained_expert / ranks(2, expert_dp))
        optim = (opt.master_bytes + opt.state_bytes) * (trained_dense / ranks(1, dense_dp)
                                                        + trained_expert / ranks(1, expert_dp))

    # A layer's activations depend on its shape and recompute mode only: tabulate each distinct shape under
    # each mode (0 none, 1 selective, 2 full, 4 per-op), then look the candidates up.
    rep, inv = group_rows(tp, cp, ep, etp, mb, sp)
    common: dict[str, Any] = dict(seq_len=seq_len, micro_batch=mb[rep], tp=tp[rep], cp=cp[rep],
                                  sp=np.asarray(sp)[rep], ep=ep[rep], etp=etp[rep], flash_attention=flash_attention,
                                  precision=precision, eager=opt.eager, modules=recompute_modules)

    def table(moe_layer: bool) -> np.ndarray:  # by code; block (3) is priced as none, then cut to fit
        return np.stack([layer_activation_bytes(model, recompute=np.full(len(rep), 0 if code == 3 else code),
                                                moe_layer=moe_layer, **common) for code in (0, 1, 2, 3, 4)])

    dense_table = table(False)
    moe_table = table(True) if model.moe else dense_table
    lps = layers_per_stage(model.layers, pp, stage_layers)
    n_moe = moe_layers_on(model, stage, lps, pp)
    # Sliding-window layers store fewer scores, only without flash attention; the difference is the score band
    # alone, the same for a dense and an MoE layer, so it is added per windowed layer of the stage.
    window = None if flash_attention else effective_window(model, seq_len)
    if window is not None:
        window_delta = np.stack([layer_activation_bytes(model, recompute=np.full(len(rep), 0 if code == 3 else code),
                                                        moe_layer=False, window=window, **common)
                                 for code in (0, 1, 2, 3, 4)]) - dense_table
        first_w, last_w = windowed_in_first_and_last(model, lps)
        n_window = first_w if stage == "first" else last_w

    # Mamba-2 layers: what they keep differs from an attention layer's by the mixer (and the MLP-free ones by the
    # MLP: a dense layer's, or an MoE layer's where every MLP is MoE), the mixer's difference the same for a dense and
    # an MoE layer, added per layer at their model-wide share of the stage.
    ssm_deltas = []
    pc = param_counts(model)
    moe_bare = bool(pc.moe_mlp_free)  # an MLP-free layer is an MoE layer without its experts
    for share, mlp_block in zip(ssm_layer_shares(model), (True, False), strict=True):
        if share:
            as_moe = moe_bare and not mlp_block
            delta = np.stack([layer_activation_bytes(model, recompute=np.full(len(rep), 0 if code == 3 else code),
                                                     moe_layer=as_moe, mamba=True, mlp_block=mlp_block, **common)
                              for code in (0, 1, 2, 3, 4)]) - (moe_table if as_moe else dense_table)
            ssm_deltas.append((share, np.where(np.arange(5)[:, None] == 4, 0.0, delta)))  # per-op: as attention

    def stage_activations(code: np.ndarray) -> np.ndarray:
        act = (lps - n_moe) * dense_table[code, inv] + n_moe * moe_table[code, inv]
        if mtp_layers:  # a multi-token-prediction layer keeps what a layer of the model's last kind keeps
            act = act + mtp * (moe_table if model.moe else dense_table)[code, inv]
        if window is not None:
            act = act + n_window * window_delta[code, inv]
        for share, delta in ssm_deltas:
            act = act + lps * share * delta[code, inv]
        return act

    block = rc == 3
    stage_act = stage_activations(np.where(block, 0, rc))
    microbatches = global_batch / (dp * mb)
    dual = None if schedule is None else np.asarray(schedule) == DUALPIPE_CODE
    inflight = in_flight_chunks(pp, vs, microbatches, np.zeros_like(pp) if stage == "first" else pp - 1, dual)
    if dual is not None and dual.any():  # DualPipe: the stage of either direction (Table 2: parameters 2x)
        weights = np.where(dual, 2.0 * weights, weights)
        grads = np.where(dual, 2.0 * grads, grads)

    # Transients: a fully recomputed layer's activations while its backward runs; the loss's logits on the stage
    # that holds the output layer.
    full_layer = np.maximum(dense_table[0], moe_table[0] if model.moe else 0.0)[inv]
    every_layer_windowed = window is not None and model.windowed_layers == model.layers
    if every_layer_windowed:  # the largest layer is a windowed one
        full_layer = full_layer + window_delta[0, inv]
    for _, delta in ssm_deltas:  # a Mamba-2 layer may keep more than an attention one
        full_layer = np.maximum(full_layer, full_layer + delta[0, inv])
    recompute_buffer = np.where((rc == 2) | block, full_layer, 0.0)
    loss_here = (pp == 1) | (stage == "last")
    per_logit = opt.loss_logit_bytes + opt.loss_upcast_bytes / opt.loss_chunks
    logits = np.where(loss_here, per_logit * mb * seq_len / cp * model.vocab / tp, 0.0)
    # Without fused attention the score matrix of the layer being computed exists twice for a moment (an
    # out-of-place baddbmm into a preallocated buffer, Transformer Engine UnfusedDotProductAttention).
    heads_local = float(model.heads) / tp
    widest = band_keys(seq_len, window) if every_layer_windowed else seq_len  # keys per query of the widest layer
    scratch = 0.0 if flash_attention else 2.0 * ACT_BYTES * mb * heads_local * (seq_len / cp) * widest
    # ZeRO-3 / FSDP: at the peak (the backward's start) the layer being computed and the one prefetched are gathered
    # whole (16-bit) and the last layer's gradients exist unsharded until their reduce-scatter (FSDP2's default
    # prefetch of one layer; Megatron-FSDP gathers at least opt.fsdp_gather_params parameters at a time,
    # megatron_fsdp.py suggested_communication_unit_size; the gradients it queues grow as the activations go)
    fsdp: float | np.ndarray = 0.0
    if (zero == 3).any():
        mixer = max(pc.attention_layer, pc.ssm_mixer_layer)  # the larger of attention and a Mamba-2 mixer
        layer = np.maximum((mixer + pc.dense_mlp_layer) / tp,
                           (mixer + pc.moe_shared_layer) / tp + pc.moe_routed_layer / (ep * etp)
                           if model.moe else 0.0)
        stage_total = non_expert + expert
        if opt.zero3_by_tensor is None:
            gathered = np.maximum(2.0 * layer, opt.fsdp_gather_params)
            waiting = layer  # a layer's gradients until their reduce-scatter
        else:  # DeepSpeed < 0.6: the module in use (or the live cap) and the prefetch; gradients in buckets
            live, prefetch, bucket = opt.zero3_by_tensor
            gathered = np.maximum(largest_weight_tensor(model, tp, etp), live) + prefetch
            waiting = np.minimum(layer, bucket)
        gathered = np.minimum(stage_total - kept_ends, gathered)
        fsdp = np.where(zero == 3, WEIGHT_BYTES * gathered + opt.grad_bytes * np.minimum(stage_total, waiting), 0.0)
    transient = recompute_buffer + np.maximum(logits, scratch) + fsdp
    if opt.deferred_output_grads:  # the output layer's deferred weight-gradient inputs, held to the flush
        held = np.minimum(opt.deferred_output_grads, microbatches)
        transient = transient + np.where(loss_here, held * ACT_BYTES * mb * seq_len / cp
                                         * (model.vocab / tp + model.hidden / seq_shard), 0.0)
    fraction = np.where(rc == 2, 1.0, 0.0)
    if block.any():
        # the fewest layers k per stage whose recompute brings the total within the budget
        saving_per_layer = inflight * (stage_act - stage_activations(np.full_like(rc, 2))) / lps
        excess = (weights + grads + optim + inflight * stage_act + transient + opt.workspace_bytes + opt.runtime_bytes
                  - budget_bytes)
        k = np.clip(np.ceil(np.maximum(excess, 0.0) / np.maximum(saving_per_layer, 1e-9)), 0.0, lps)
        fraction = np.where(block, k / lps, fraction)
        stage_act = np.where(block, stage_act - k * saving_per_layer / np.maximum(inflight, 1e-9), stage_act)
    activations = stage_act * inflight
    if opt.lazy_gradients and not opt.optimizer_in_backward:  # one micro-batch: gradients grow as activations go
        grads = np.where(microbatches <= 1.0,
                         np.clip(grads + recompute_buffer - activations - transient, 0.0, grads), grads)
    zeros = np.zeros_like(weights)
    host, link_fwd, link_bwd, cpu_params = zeros, zeros, zeros, zeros
    off = np.zeros(np.shape(pp), dtype=np.int64) if offload is None else np.asarray(offload)
    if off.any():  # most candidates offload nothing: skip the arithmetic
        off_opt, off_w = (off & OFFLOAD_OPTIMIZER) > 0, (off & OFFLOAD_WEIGHTS) > 0
        off_act = (off & OFFLOAD_ACTIVATIONS) > 0
        resident = np.minimum(1.0, 2.0 / lps)  # the layer in use and the one prefetched
        on_gpu_act = np.minimum(activations, resident * stage_act)
        host_act = np.where(off_act, activations - on_gpu_act, 0.0)
        activations = np.where(off_act, on_gpu_act, activations)
        host_w = np.where(off_w, (weights + grads) * (1.0 - resident), 0.0)
        host = np.where(off_opt, optim, 0.0) + host_w + host_act
        cpu_params = np.where(off_opt, optim / max(opt.master_bytes + opt.state_bytes, 1e-9), 0.0)
        # per micro-batch: weights in for the forward, for the recompute and the backward, gradients out;
        # activations out in the forward and back for the backward
        streamed_params = np.where(off_w, weights * (1.0 - resident) / opt.weight_bytes, 0.0)
        act_mb = np.where(off_act, host_act / np.maximum(inflight, 1e-9), 0.0)
        link_fwd = streamed_params * WEIGHT_BYTES + act_mb
        link_bwd = streamed_params * (WEIGHT_BYTES * (1.0 + fraction) + opt.grad_bytes) + act_mb
        optim = np.where(off_opt, 0.0, optim)
        weights = np.where(off_w, weights * resident, weights)
        grads = np.where(off_w, grads * resident, grads)
    if opt.step_transient_bytes or opt.unsharded_step_transient_bytes:
        # the step's peak, with the activations gone (and, sharded, the gradients reduced)
        step_peak = np.where(zero == 0, opt.unsharded_step_transient_bytes * (non_expert + expert),
                             sharded(opt.step_transient_bytes, 1)) - grads
        transient = np.maximum(transient, step_peak - activations)
    runtime = np.broadcast_to(np.asarray(opt.runtime_bytes, dtype=np.float64), weights.shape).copy()
    workspace = np.full_like(weights, opt.workspace_bytes)
    if opt.graph_static_inputs:  # CUDA graphs' static inputs, one set per layer forward in flight
        per_layer = ACT_BYTES * mb * seq_len / cp / seq_shard * model.hidden + (
            mb * seq_len / cp * seq_len if opt.graph_static_inputs == 2 else 0.0)
        workspace = workspace + inflight * lps * per_layer
    allocated = weights + grads + optim + activations + transient + workspace
    allocator = allocated * (opt.reserved_over_allocated - 1.0)
    return MemoryBreakdown(weights, grads, optim, activations, transient, fraction, workspace, allocator, runtime,
                           host, link_fwd, link_bwd, cpu_params)
