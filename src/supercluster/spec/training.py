"""What the run does (Training) and how it is spread over GPUs (Parallelism)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal, NamedTuple, get_args

import numpy as np
from pydantic import Field, field_validator

from .base import (
    AttentionBackend,
    Fp8Recipe,
    Fraction,
    PositiveFloat,
    PositiveInt,
    Recompute,
    RecomputeModule,
    Spec,
    TrainingPrecision,
)
from .layout import ALLOWED as ALLOWED_LAYOUT

LoRATarget = Literal["attention", "mlp", "experts"]
#: the training software whose memory figures and pipeline schedules catalog/software.yaml holds
Framework = Literal["megatron-lm", "megatron-deepspeed", "pytorch", "hai-llm"]


class LoRA(Spec):
    """Low-rank adaptation (Hu et al. 2021, arXiv:2106.09685): the base weights are frozen and each targeted weight
    matrix W (d_out x d_in) gains a trainable pair B (d_out x r) and A (r x d_in), its output W x + B A x. The
    backward computes input gradients through every layer but weight gradients for the adapters alone; gradients,
    their reduction and the optimizer state exist for the adapters alone (workload.lora)."""

    rank: PositiveInt = Field(default=16, le=65536, description="r, the adapters' inner width")
    targets: list[LoRATarget] = Field(
        default_factory=lambda: list[LoRATarget](["attention"]), min_length=1, max_length=3,
        description="which weight matrices get adapters: attention (the query/key/value and output projections; "
        "the MLPerf Training llama2_70b_lora reference targets qkv_proj and o_proj with r = 16), mlp (dense MLPs and "
        "shared experts), experts (routed experts)")


#: selective recompute's modules when a run names none (Megatron-LM --recompute-granularity selective's default)
SELECTIVE_DEFAULT: frozenset[str] = frozenset({"core_attn"})
#: every module Megatron-Core can recompute selectively
RECOMPUTE_MODULES: frozenset[str] = frozenset(get_args(RecomputeModule))


class Training(Spec):
    tokens: PositiveFloat = Field(description="tokens to train on")
    global_batch: PositiveInt = Field(description="sequences per optimizer step")
    seq_len: PositiveInt | None = Field(default=None, description="defaults to the model's seq_len")
    precision: TrainingPrecision = Field(
        default="bf16", description="the GEMMs' precision: fp16 or bf16 mixed precision, fp8 (Transformer Engine's "
        "delayed, current or MXFP8 scaling) or fp4 (its NVFP4 recipe, Blackwell); activations, attention and the "
        "optimizer stay 16/32-bit (workload/quantization.py)")
    grad_accum_fp32: bool | None = Field(
        default=None, description="fp32 gradient buffers and reduction; None: as Megatron-LM does, fp32 for bf16 and "
        "fp8 runs (it forces accumulate_allreduce_grads_in_fp32 with bf16), 16-bit for fp16 runs")
    flash_attention: bool = Field(default=True, description="fused attention: no s x s score matrix stored")
    attention_backend: AttentionBackend = Field(
        default="auto", description="which fused-attention kernels run (Megatron-Core's --attention-backend words, and "
        "PyTorch's flex): "
        "auto, as Transformer Engine chooses (cuDNN's fused attention on Hopper from TE v1.2, 2023-12-15: "
        "NVIDIA/TransformerEngine 32db39288 'Select FusedAttention on sm90'; on Blackwell), the same as fused; flash, "
        "Dao-AILab's flash-attn package (FlashAttention-2), as NeMo's launcher forced with NVTE_FUSED_ATTN=0 from "
        "2024-02-13 to 2024-08-29 (NVIDIA/NeMo-Framework-Launcher 562dcb45, 04b8d098) and MosaicML's llm-foundry ran "
        "(attn_impl flash): the accelerator's flash_attention_fraction where it has one; flex, PyTorch's "
        "FlexAttention (torch.compile'd Triton kernels: NeMo Automodel's gpt-oss, torchtitan's flex option), timed "
        "at the same flash-attn fraction (catalog attention_note)")
    software_date: date | None = Field(
        default=None, strict=False, description="release date of the training software the run used (its container "
        "or framework release, YYYY-MM-DD): the kernels of that day (the accelerator's attention_history) and the "
        "framework's memory habits of that release; None: the newest in the catalog")
    # What the training software overlaps, by generation (None: as software with or without fused attention ran,
    # see software_overlaps())
    tp_overlap: Literal["none", "backward", "full"] | None = Field(
        default=None, description="tensor-parallel communication hidden behind GEMMs: none (Megatron-LM before "
        "2021-08), backward (the input-gradient collectives behind the weight-gradient GEMMs: Megatron-LM's async "
        "tensor-parallel all-reduce, 2021-08, and sequence parallelism's, 2022), full (Transformer Engine "
        "userbuffers, forward and backward, with sequence parallelism; Megatron-Core 2023-10)")
    dp_overlap: bool | None = Field(
        default=None, description="gradient reduction overlapped with the backward (Megatron-LM "
        "--overlap-grad-reduce, 2023-08; PyTorch DDP/FSDP buckets) rather than after it (Megatron-LM 2021-22: "
        "'we do not use any overlapping of gradient all-reduces with back-propagation', Korthikanti et al. 2022)")
    zero3_gather: Literal["tensor", "layer"] | None = Field(
        default=None, description="granularity of ZeRO-3 parameter gathers and gradient reductions: tensor "
        "(DeepSpeed before 0.6.0: one host-synchronised collective per parameter tensor, each looping over the "
        "ranks in Python; batched by deepspeedai/DeepSpeed PR #1453, 2022) or layer (FSDP flat parameters per "
        "wrapped block, DeepSpeed >= 0.6, Megatron-FSDP), overlapped with compute by prefetch")
    ep_overlap: bool | None = Field(
        default=None, description="expert all-to-all hidden behind another micro-batch's compute by batch-level "
        "overlap (Megatron-Core --overlap-moe-expert-parallel-comm, v0.14, 2025-09: the forward of one micro-batch "
        "runs with the backward of another, each one's dispatch and combine under the other's compute), where the "
        "framework runs it (spec.rules.ep_overlap_runs); false: every all-to-all is waited for (Megatron-LM's "
        "default; PyTorch FSDP2 stacks such as NeMo Automodel and torchtitan have no such schedule). None: on for "
        "Megatron-LM with fused attention, off otherwise. DualPipe overlaps by its own schedule either way")
    fp8_recipe: Fp8Recipe | None = Field(
        default=None, description="how an fp8 run scales its GEMM inputs (Megatron-Core --fp8-recipe): delayed "
        "(per-tensor scales from the amax history of earlier steps), tensorwise (per-tensor current scaling: an "
        "amax pass before each cast), mxfp8 (one scale per 32 elements, Blackwell). It sets the bytes the "
        "quantization moves and the GEMM kernel's rate (workload/quantization.py). None: Transformer Engine's "
        "default for the accelerator, mxfp8 on Blackwell and delayed before it (quantization.py "
        "get_default_fp8_recipe)")
    account_for_embedding_in_pipeline_split: bool = Field(
        default=False, description="the pipeline split counts the input embedding as a layer: the first stage holds one "
        "transformer layer fewer (Megatron-Core's option of that name: (layers + the counted embedding and loss) / pp "
        "per stage, transformer_block.get_num_layers_to_build; Megatron-Bridge's Llama 3.1 405B and Qwen3 recipes, "
        "MLPerf's ASYM_PP_EMBED, Llama 3's 'one Transformer layer fewer' on its first stage)")
    account_for_loss_in_pipeline_split: bool = Field(
        default=False, description="the pipeline split counts the LM head and loss as a layer: the last stage holds one "
        "transformer layer fewer beside them (Megatron-Core's option of that name; MLPerf's ASYM_PP_LOSS, Llama 3's "
        "last stage). Without it the last stage holds the most layers and the LM head, the pipeline's busiest. The step "
        "model, the simulator and the memory model's first and last ranks split so")
    pipeline_layout: str | None = Field(
        default=None, description="the run's own placement of the layers on the pipeline (Megatron-Core "
        "pipeline_model_parallel_layout, spec.layout): chunks separated by '|', chunk i on rank i mod pp, each of 'E' "
        "(embedding), 't' (a layer), 'm' (a multi-token-prediction module), 'L' (LM head and loss), 'x*N' and "
        "'(...)*N' repeating; e.g. DeepSeek-V3 on 8 stages of 2 chunks, 'Et*4|(t*4|)*14tmL'. It fixes pp x "
        "virtual_stages to its chunks and its 't' to the model's layers; the step model's busiest stage and the "
        "simulator's chunks follow it")

    @field_validator("pipeline_layout")
    @classmethod
    def _layout_symbols(cls, v: str | None) -> str | None:
        if v is not None and (not ALLOWED_LAYOUT.match(v) or not v.strip()):
            raise ValueError("a pipeline layout is made of E, t, m, L, '|', '*N' and '(...)', got " + repr(v))
        return v

    recompute_modules: list[RecomputeModule] | None = Field(
        default=None, max_length=7, description="what selective recompute runs again in the backward "
        "(Megatron-Core --recompute-modules): core_attn the attention core, layernorm the norms, mlp a dense layer's "
        "MLP (not a MoE layer's: transformer_layer.py recomputes mlp only where the MLP is not a MoELayer), moe_act "
        "the experts' activation, moe a MoE layer whole (router, experts, their dispatch and combine), "
        "shared_experts the shared experts, mla_up_proj MLA's query and key-value up-projections; [] nothing. "
        "None: the attention core, Megatron-LM's selective default")
    fp8_output_proj: bool = Field(
        default=False, description="an MXFP8 run computes the LM head's output projection in fp8 (Megatron-Core "
        "fp8_output_proj: a Transformer Engine linear under MXFP8, Megatron-Bridge's 26.06+ GPT-OSS and DeepSeek-V3 "
        "Blackwell recipes); false: in 16 bits, as Megatron-Core builds it by default (a plain "
        "ColumnParallelLinear that fp8 autocast does not reach) and DeepSeek-V3 trains it (report §3.3.1)")
    fp8_params: bool = Field(
        default=True, description="an fp8 run keeps its weights in fp8 (1 B and a 1 B transpose) and gathers them in "
        "fp8, as NeMo's and Megatron-Bridge's fp8 recipes do (fp8_param_gather = True, NeMo "
        "collections/llm/recipes/precision/mixed_precision.py); false: 16-bit weights plus Transformer Engine's cached "
        "fp8 copy and transpose (2 B more per linear weight). An fp4 run keeps 16-bit weights and the cached NVFP4 "
        "copy and transpose either way")
    optimizer: Literal["adam", "muon", "adafactor"] = Field(
        default="adam", description="Adam/AdamW (two moments), Muon (one momentum on matrices, Adam elsewhere), "
        "Adafactor (factored second moment, no first moment)")
    optimizer_state_dtype: Literal["fp32", "bf16", "int8"] = Field(
        default="fp32", description="precision of the optimizer's moments (int8: blockwise 8-bit, bitsandbytes)")
    master_weights: bool = Field(
        default=True, description="an fp32 master copy of the weights (mixed precision); false: the 16-bit weights "
        "are the master copy and gradients are 16-bit (pure bf16 training, torchtune's default)")
    optimizer_in_backward: bool = Field(
        default=False, description="each parameter is updated as its gradient arrives and the gradient freed "
        "(torchtune optimizer_in_bwd): no gradient buffer; needs one micro-batch a step")
    loss: Literal["eager", "fused", "chunked"] = Field(
        default="eager", description="the cross entropy: eager (an fp32 copy of the logits), fused "
        "(Megatron-LM --cross-entropy-loss-fusion) or chunked (torchtune's 8 chunks upcast one at a time)")
    framework: Framework = Field(
        default="megatron-lm", description="the training software, for how it holds memory (catalog/software.yaml): "
        "gradient and master-weight precision, the loss's fp32 copies, library workspaces, CUDA context, NCCL buffers; "
        "and the pipeline schedules it runs (hai-llm: DeepSeek's own, Megatron-LM's memory figures)")
    pipeline_flushes: PositiveInt = Field(
        default=1, description="pipeline schedules run per optimizer step, each over its share of the step's "
        "micro-batches with its own warm-up and cool-down: 1 as Megatron-LM runs a step (one schedule over all "
        "global_batch / (dp * micro_batch) micro-batches); torchtitan and NeMo Automodel run one schedule per "
        "gradient-accumulation step (local_batch_size / pp_microbatch_size micro-batches each: "
        "nemo_automodel/recipes/llm/benchmark.py calls pipeline schedule.step() once per GA step)")
    moe_dispatcher: Literal["alltoall", "deepep"] | None = Field(
        default=None, description="how mixture-of-experts tokens reach their experts: alltoall (an NCCL "
        "all-to-all of one copy per routed expert, Megatron-LM's alltoall dispatcher) or deepep (one copy per target "
        "node over the network, fanned out over NVLink inside it, FP8 dispatch in an FP8 run of a framework that "
        "quantizes it: DeepSeek-V3 report arXiv:2412.19437 §3.2.2 and §3.3.2, deepseek-ai/DeepEP, catalog/software.yaml "
        "moe_dispatch_fp8; Megatron-LM --moe-token-dispatcher-type flex, with "
        "DeepEP or NVIDIA's HybridEP). None: deepep for software with fused attention (the MoE recipes of "
        "Megatron-Bridge and the Megatron MoE Model Zoo, NeMo Automodel and DeepSeek's stack dispatch so), alltoall "
        "before (see moe_dispatcher_of)")
    expert_epilogue: Literal["fused", "eager"] = Field(
        default="fused", description="how a mixture-of-experts layer applies its experts' biases, routing "
        "probabilities and GLU clamp (gpt-oss: Model.linear_bias, glu_limit): fused, in the grouped GEMMs' epilogues "
        "and the fused activation (Transformer Engine's op fuser with the cuDNN grouped GEMM + GEGLU kernels: "
        "Megatron-Bridge 26.08's gpt-oss recipe, use_transformer_engine_op_fuser); eager, as separate passes over the "
        "routed tokens' activations (Megatron-Core's TEGroupedMLP before it: the clamp and a concatenation ahead of "
        "the fused GEGLU, fc2's bias scaled and added expert by expert; NeMo Automodel: both biases expert by expert; "
        "workload.operators.layer_work). Nothing changes for experts without biases or clamp")
    moe_routing: Literal["random", "contiguous"] = Field(
        default="random", description="where a token's experts lie: random (a trained router's choices, or "
        "Megatron-Core's forced load balance by random logits, spread evenly over the experts) or contiguous (NeMo "
        "Automodel's FakeBalancedGate, the balanced routing of its benchmarks: token t takes experts t*k .. t*k+k-1 "
        "mod E, one or two neighbouring ranks; workload.dispatch)")
    lora: LoRA | None = Field(
        default=None, description="LoRA fine-tuning of frozen base weights (None: every weight is trained)")
    memory_reserve_fraction: Fraction = Field(
        default=0.97, description="share of HBM the run may plan to fill, context, NCCL buffers and workspaces "
        "included (they are modelled); the rest is the caching allocator's slack: PyTorch rounds large blocks to "
        "2 MiB and splits them only beyond 1 MiB, 1.83 GiB (2.4%) reserved but unallocated at 78 GiB in use "
        "(vllm-project/compressed-tensors#587)")


Schedule = Literal["1f1b", "interleaved", "zb-h1", "dualpipe"]
#: the pipeline schedules, by code (perf.candidates): 1F1B and interleaved (Narayanan et al. SC'21), ZB-H1 (Qi et al.
#: 2023, arXiv:2401.10241), DualPipe (DeepSeek-V3 report, arXiv:2412.19437 §3.2.1)
SCHEDULES: tuple[Schedule, ...] = get_args(Schedule)

DEFAULT_ORDER = "tp-cp-ep-dp-pp"  # Megatron-LM's rank layout, innermost first
# Layouts `order: auto` searches: Megatron-LM's default (data parallel inside pipeline stages) and the Llama 3
# layout (pipeline inside, data parallel outermost, across pods; Llama 3 paper Sec. 3.3.2).
SEARCHED_ORDERS = (DEFAULT_ORDER, "tp-cp-ep-pp-dp")


class Parallelism(Spec):
    """Every field left out (None) is chosen by the search; ``parallelism: auto`` leaves all out.

    Degrees: tp tensor, pp pipeline, dp data, cp context, ep expert, etp expert-tensor.
    tp * pp * dp * cp = GPUs; experts are spread over ep * etp ranks carved out of tp * cp * dp.
    """

    tp: PositiveInt | None = None
    pp: PositiveInt | None = None
    dp: PositiveInt | None = None
    cp: PositiveInt | None = None
    ep: PositiveInt | None = None
    etp: PositiveInt | None = None
    micro_batch: PositiveInt | None = None
    virtual_stages: PositiveInt | None = None
    schedule: Schedule | None = Field(
        default=None, description="pipeline schedule: 1f1b (virtual_stages 1), interleaved (virtual_stages > 1), "
        "zb-h1 (zero bubble, the weight-gradient passes filling the cool-down; virtual_stages 1) or dualpipe "
        "(bidirectional, a forward and a backward overlapped to hide the expert all-to-all; virtual_stages 1), as "
        "the framework runs them (catalog/software.yaml schedules); None: searched")
    recompute: Recompute | None = None
    zero_stage: Literal[0, 1, 2, 3] | None = None
    sequence_parallel: bool | None = None
    order: str = Field(default=DEFAULT_ORDER, description="layout of the parallel axes over ranks, innermost "
                       "first (Megatron-LM's default: tensor parallel inside a node, pipeline outermost); 'auto' "
                       "searches the common layouts (SEARCHED_ORDERS)")
    offload_optimizer: bool | None = Field(
        default=None, description="optimizer state (fp32 master, moments) in host memory and the step on the CPU "
        "(DeepSpeed ZeRO-Offload, Megatron-LM --optimizer-cpu-offload); None: searched")
    offload_weights: bool | None = Field(
        default=None, description="weights and gradients in host memory, each layer fetched before it runs (FSDP "
        "CPUOffload, DeepSpeed ZeRO-Infinity); implies offload_optimizer; None: searched")
    offload_activations: bool | None = Field(
        default=None, description="the activations kept for the backward in host memory (torchtune, Megatron-LM "
        "fine-grained activation offloading); None: searched")
    uneven_pipeline: bool = Field(
        default=False, description="allow pp not dividing layers (the slowest stage gets ceil(layers/pp))"
    )


    @field_validator("order")
    @classmethod
    def _order_is_permutation(cls, v: str) -> str:
        if v == "auto":
            return v
        axes = v.split("-")
        if sorted(axes) != sorted(["tp", "cp", "ep", "dp", "pp"]):
            raise ValueError(f"order must arrange tp, cp, ep, dp and pp once each, separated by '-', got {v!r}")
        return v



def grads_in_fp32(training: Training) -> bool:
    """Whether gradients are accumulated and reduced in fp32 (see ``Training.grad_accum_fp32``; without master
    weights the gradients take the weights' 16-bit type)."""
    if training.grad_accum_fp32 is not None:
        return training.grad_accum_fp32
    return training.precision != "fp16" and training.master_weights


def resolved_fp8_recipe(training: Training, architecture: str | None) -> Fp8Recipe | None:
    """An fp8 run's scaling recipe: as given, else Transformer Engine's default on the accelerator
    (transformer_engine/pytorch/quantization.py get_default_fp8_recipe: MXFP8BlockScaling where MXFP8 is supported,
    compute capability 10.0 on, DelayedScaling before). None for runs not in fp8."""
    if training.precision != "fp8":
        return None
    if training.fp8_recipe is not None:
        return training.fp8_recipe
    return "mxfp8" if architecture == "blackwell" else "delayed"


def counted_in_split(training: Training) -> tuple[int, int]:
    """(embedding, loss): 1 where the run's pipeline split counts the input embedding (the LM head and loss) as a
    layer (training.account_for_*_in_pipeline_split)."""
    return (int(training.account_for_embedding_in_pipeline_split),
            int(training.account_for_loss_in_pipeline_split))


def microbatch_group(microbatches: Any, pp: Any) -> np.ndarray:
    """The micro-batch group of the interleaved schedule (Megatron-Core's microbatch_group_size_per_vp_stage, g: each
    group of g micro-batches runs through every chunk before the next): the smallest g in [pp, m] whose last group
    holds none or at least pp micro-batches, the two conditions forward_backward_pipelining_with_interleaving
    enforces (pipeline_parallel/schedules.py @d98e8a64dd: a last group of fewer than pp 'introduces dependency
    bubbles'). pp where m is a multiple of it (the default g), m at most (one group); NaN where m < pp (no group:
    the schedule is refused, spec.rules). The first stage holds (v - 1) g + 2 (pp - 1) + 1 chunks at its peak."""
    m = np.asarray(microbatches, dtype=np.float64)
    p = np.broadcast_to(np.asarray(pp, dtype=np.float64), m.shape)
    group = np.where((m >= p) & (np.mod(m, p) == 0), p, np.nan)
    open_ = np.isnan(group) & (m >= p)
    if open_.any():  # few distinct (m, pp) pairs among many candidates: each searched once
        m_open, p_open = m[open_], p[open_]
        _, first, inverse = np.unique(m_open * 2.0**20 + p_open, return_index=True, return_inverse=True)
        found = np.array([_smallest_group(float(m_open[i]), float(p_open[i])) for i in first], dtype=np.float64)
        group = group.copy()
        group[open_] = found[inverse.ravel()]
    return group


def pipeline_group(microbatches: Any, pp: Any) -> np.ndarray:
    """microbatch_group where it exists, pp where it does not (m < pp: the schedule is refused, spec.rules; the
    group of pp stands in for the closed forms and the memory of candidates outside the rules)."""
    group = microbatch_group(microbatches, pp)
    return np.where(np.isnan(group), np.broadcast_to(np.asarray(pp, dtype=np.float64), group.shape), group)


def _smallest_group(m: float, pp: float) -> float:
    """The smallest g in [pp, m] that divides m or leaves at least pp micro-batches in the last group (m itself
    always does; m itself too where it is not whole, outside the rules)."""
    return next((float(g) for g in range(int(pp), int(m) + 1) if m % g == 0 or m % g >= pp), m)


def pipeline_accounting(training: Training, pp: Any) -> tuple[Any, Any]:
    """counted_in_split per pipeline depth (a single stage splits nothing: 0)."""
    piped = np.asarray(pp) > 1
    e, lo = counted_in_split(training)
    return piped * float(e), piped * float(lo)


def lm_head_precision(training: Training) -> str | None:
    """The precision of a quantized run's LM-head projection (workload.operators.lm_head_work): 16-bit unless
    fp8_output_proj puts it in fp8; None for a 16-bit run, whose head is in its precision like everything else."""
    if training.precision in ("fp8", "fp4"):
        return training.precision if training.fp8_output_proj else "bf16"
    return None


def moe_dispatcher_of(training: Training) -> str:
    """The run's MoE dispatcher: as given, else DeepEP-style (one copy per node reached) for software with fused
    attention and the plain all-to-all before it. Of the 21 published MoE runs in the calibration set (2025-2026),
    16 dispatch with DeepEP or HybridEP (Megatron-Bridge's Qwen3 and DeepSeek recipes, the Model Zoo, NeMo
    Automodel), 5 with the plain all-to-all."""
    if training.moe_dispatcher is not None:
        return training.moe_dispatcher
    return "deepep" if training.flash_attention else "alltoall"


class SoftwareOverlaps(NamedTuple):
    """What a run's software overlaps (see software_overlaps)."""

    tp_with_sp: str  # tensor-parallel overlap for configurations with sequence parallelism
    tp_without_sp: str  # and without it
    dp_overlap: bool
    zero3_gather: str
    ep_overlap: bool


def software_overlaps(training: Training) -> SoftwareOverlaps:
    """The run's tp_overlap (with sequence parallelism, without it), dp_overlap, zero3_gather and ep_overlap: as given,
    else as the generation of its software ran. Userbuffers overlap needs sequence parallelism (Megatron-LM:
    --tp-comm-overlap requires it), so 'full' without it runs as 'backward'. Software without fused attention
    (``flash_attention: false``: before FlashAttention reached Megatron-LM, DeepSpeed and PyTorch, 2022) hid the
    backward collectives only with sequence parallelism (2022) and none without (Megatron-LM 2021), reduced gradients
    after the backward and gathered ZeRO-3 parameters tensor by tensor; later software overlaps all three, and
    Megatron-LM the expert all-to-all too (batch-level overlap, where spec.rules.ep_overlap_runs allows it)."""
    modern = training.flash_attention
    if training.tp_overlap is not None:
        tp = (training.tp_overlap, "backward" if training.tp_overlap == "full" else training.tp_overlap)
    else:
        tp = ("full", "backward") if modern else ("backward", "none")
    dp = training.dp_overlap if training.dp_overlap is not None else modern
    ep = training.ep_overlap if training.ep_overlap is not None else modern and training.framework == "megatron-lm"
    return SoftwareOverlaps(*tp, dp_overlap=dp, zero3_gather=training.zero3_gather or ("layer" if modern else "tensor"),
                            ep_overlap=ep)


def selective_modules(training: Training) -> frozenset[str]:
    """The modules the run's selective recompute runs again (``Training.recompute_modules``, else the attention
    core)."""
    return SELECTIVE_DEFAULT if training.recompute_modules is None else frozenset(training.recompute_modules)
