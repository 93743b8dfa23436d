"""The analytic step model: one optimizer step of a batch of parallel configurations, as named parts.

Per micro-batch, the busiest pipeline stage (ceil(L/pp) layers, the LM head on the last stage) runs the forward,
the backward, the recomputation, and the communication on its critical path: tensor-parallel all-gather /
reduce-scatter (Megatron-LM with sequence parallelism; the same bytes as its all-reduce without), the expert
all-to-all (dispatch and combine), the context-parallel ring exchange of K and V (hidden behind attention
compute where it can be) and the pipeline send/recv: t_max. One micro-batch crossing every stage forward and
backward (all L layers, the head and 2(pp*v - 1) stage-to-stage sends) takes t_crit. A pipeline of pp stages,
each holding v chunks (virtual stages), running m = global_batch/(dp*micro_batch) micro-batches then takes

    t_pipe = max(m * t_max + (t_crit - t_max) / v,  t_crit + (m - 1) * t_max / v)

The first term is the busiest stage's work plus the fill and drain: with equal stages (t_crit = pp * t_max) the
(pp-1)/v micro-batch times of 1F1B and of the interleaved schedule (Narayanan et al. SC'21, §2.2); with uneven
stages the flow-shop form sum(t_i) + (m-1) max(t_i). The second is the critical path of the last micro-batch when
there are fewer micro-batches than stages: a micro-batch crosses all pp*v chunks in sequence whatever the
interleaving, so with m = 1 a step is never shorter than t_crit. Both are lower bounds; the larger is the step's
pipeline time, and what it adds to m * t_max is the bubble:

    step = t_pipe + exposed data-parallel communication + optimizer

With training.pipeline_flushes F schedules a step (one a gradient-accumulation step, as torchtitan and NeMo
Automodel run a pipeline), the step runs F pipelines of m / F micro-batches back to back: t_pipe = F t_pipe(m / F),
every one with its fill and drain (the first stage, the last to finish a schedule's cool-down, starts the next).

That is 1F1B and interleaved; ZB-H1 and DualPipe (parallelism.schedule) take perf.pipeline's closed forms from the
same t_max and t_crit, the backward's weight-gradient GEMMs (WGRAD_SHARE_OF_BACKWARD of its GEMMs; for ZB-H1 those
of every stage too, all but one stage's off a micro-batch's critical path) and, for DualPipe, a pair of one
micro-batch's forward and another's backward whose expert all-to-all and pipeline sends are exposed only where
they outlast the pair's compute (no global overlap knob).

Data parallel, by ZeRO stage (under a pipeline 2 and 3 run as 1, as torchtitan runs FSDP there): ZeRO-0 all-reduces
the gradients once, ZeRO-1 reduce-scatters them once and all-gathers the parameters once, each in Megatron-LM's
buckets of max(40M, 1M x dp) parameters behind the last micro-batch's backward (first forward) when the software
overlaps them; ZeRO-2 reduce-scatters after every micro-batch; ZeRO-3 gathers every layer's parameters before its
forward and again before its backward and reduce-scatters its gradients, every micro-batch: one flat collective per
layer hidden by prefetch behind the neighbouring layer (FSDP, DeepSpeed >= 0.6), or one host-synchronised
collective per weight tensor with a Python loop over the ranks, hidden by nothing (DeepSpeed before 0.6): with a
fixed global batch, doubling the GPUs then halves the compute but not the collectives, and the step stops falling.
Tensor-parallel collectives are hidden as the software allows (training.tp_overlap): all of them by a calibrated
share (Transformer Engine userbuffers, with sequence parallelism), the backward's behind the weight-gradient GEMMs,
or none. The parts of ``StepArrays`` add up to ``step_time_s``.

Sliding-window layers (workload.window) differ from full ones in the attention core alone: each layer kind is timed
once more with the window's attention (its FLOPs, its key length and its window's kernel rate, perf.compute), and a
kind's layer time is the mix of its full and windowed times, by the share of windowed layers on the busiest stage (of
the contiguous stages of ceil(L/pp) layers, the one with the most full-attention layers) for t_max, by the model-wide
share for t_crit; the window types are taken as spread evenly over the dense and MoE layers of a stage. The
context-parallel ring is modelled passing every K/V block as without a window (a ring skipping the blocks outside the
window would send fewer), with less windowed attention to hide it behind.

Mamba layers of a hybrid (workload.ssm; Mamba-2 or Mamba-1) are timed the same way: each layer kind once more with
a Mamba mixer in place of attention (its projections as GEMMs, its scan as an attention-like kernel over one chunk,
the tensor-parallel collectives of an attention layer), and once more without an MLP when some Mamba layers have
none; a kind's layer time mixes them by the model-wide shares of those layers, for t_max and t_crit alike (the
state-space layers taken as spread evenly over the stages). The context-parallel ring is kept as for attention
(an approximation: a Mamba layer under context parallelism passes its chunk states, not K and V).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import lru_cache

import numpy as np

from ..arrays import group_rows
from ..network.cost import ALGORITHMS, collective_time
from ..network.placement import Placement, axis_strides, place, weight_replica_group
from ..network.topology import Topology, build_topology
from ..spec.calibration import Calibration
from ..spec.model import Model, moe_layers_among
from ..spec.rules import ep_overlap_runs
from ..spec.scenario import Scenario
from ..spec.training import (
    grads_in_fp32,
    moe_dispatcher_of,
    pipeline_accounting,
    pipeline_group,
    resolved_fp8_recipe,
    selective_modules,
    software_overlaps,
)
from ..workload.dispatch import dispatch_bytes_factor, dispatch_group
from ..workload.flops import op_recompute_share
from ..workload.lora import trainable_shares, with_lora
from ..workload.memory import (
    WEIGHT_BYTES,
    MemoryBreakdown,
    effective_zero_stage,
    layers_per_stage,
    memory_per_gpu,
    moe_in_last,
    pipeline_end_layers,
    pipeline_stage_loads,
    stage_layer_counts,
    stage_params,
)
from ..workload.operators import (
    ACT_BYTES,
    ELEMENTWISE_BWD_OVER_FWD,
    MODULE_GEMMS,
    MODULE_PARTS,
    LayerWork,
    attention_dims,
    layer_work,
    lm_head_work,
)
from ..workload.params import layer_small_tensors
from ..workload.quantization import scaling_recipe
from ..workload.software import SoftwareChoices, communicators, framework_memory_options
from ..workload.ssm import scan_key_len, ssm_layer_shares
from ..workload.window import effective_window, equivalent_key_len, windowed_on_busiest_stage
from .candidates import ORDERS, RECOMPUTE_CODES, Candidates
from .compute import attention_s, gemm_backward_s, gemm_forward_s, memory_bound_s
from .pipeline import DUALPIPE, ZB_H1, Fill, dualpipe_exposed_s, pipeline_s, unequal_chunks_s

OPTIMIZER_BYTES_PER_PARAM = 34.0  # Adam: read fp32 master, m, v, grad (16); write master, m, v (12), bf16 copy (2),
# grad-norm read (4)
OPTIMIZER_KERNELS = 8.0
# Megatron-LM DistributedDataParallel: with overlap_grad_reduce, buckets of max(40,000,000, 1,000,000 x dp)
# parameters (megatron/core/distributed/distributed_data_parallel.py)
DDP_BUCKET_MIN_PARAMS = 40.0e6
DDP_BUCKET_PARAMS_PER_RANK = 1.0e6


def ddp_buckets(params: np.ndarray, group_size: np.ndarray) -> np.ndarray:
    """Megatron-LM DDP buckets (one collective each) of ``params`` gradients reduced over ``group_size`` ranks."""
    out: np.ndarray = np.maximum(params / np.maximum(DDP_BUCKET_MIN_PARAMS, DDP_BUCKET_PARAMS_PER_RANK * group_size),
                                 1.0)
    return out

HOST_LINK_FLOOR = 0.1  # estimate: the share of the host link offloading keeps however fast the NIC
PARTS = ("compute", "recompute", "tp_comm", "cp_comm", "ep_comm", "pp_comm", "pipeline_bubble", "dp_comm",
         "optimizer", "offload")


@dataclass(frozen=True)
class StepArrays:
    parts: dict[str, np.ndarray]
    memory: MemoryBreakdown
    fits: np.ndarray
    microbatches: np.ndarray
    hbm_budget_bytes: float
    # the algorithm (index into network.cost.ALGORITHMS) of each axis's main collective: tp all-gather /
    # reduce-scatter, cp ring send/recv, ep all-to-all, pp send/recv, dp gradient reduction of the dense weights
    algorithms: dict[str, np.ndarray]
    # one micro-batch on the busiest stage (t_max, all its chunks), the forward's share of it (forward compute and
    # the head's, the forward's sends and the forward's share of the layer collectives, by compute), and one
    # micro-batch's critical path through every stage (t_crit): the analytic pipeline schedule's inputs
    microbatch_s: np.ndarray
    microbatch_forward_s: np.ndarray
    critical_path_s: np.ndarray
    # of the optimizer part, the host work of every step the GPUs wait for with their SMs idle (step_overhead_s)
    host_wait_s: float = 0.0
    # the backward's weight-gradient passes of one micro-batch on the busiest stage, and (DualPipe) its forward
    # and backward run alone (microbatch_s is then the overlapped pair): perf.pipeline
    weight_gradient_s: np.ndarray | None = None
    alone_s: np.ndarray | None = None
    ops: OpCosts | None = None  # the op costs the parts were summed from (the simulator's inputs)

    @property
    def step_time_s(self) -> np.ndarray:
        return sum((self.parts[p] for p in PARTS), start=np.zeros_like(self.parts["compute"]))


@dataclass(frozen=True)
class ReplicaOps:
    """One weight kind's data-parallel collectives as evaluate() charges them, per candidate (seconds)."""

    grad_s: np.ndarray  # the gradient reduction of one step (all buckets): all-reduce (ZeRO-0) or reduce-scatter
    buckets: np.ndarray  # how many buckets it is launched in
    gather_s: np.ndarray  # ZeRO-1's parameter all-gather, all buckets
    gather_layer_s: np.ndarray  # ZeRO-3: one layer's parameter all-gather
    scatter_layer_s: np.ndarray  # ZeRO-3: one layer's gradient reduce-scatter
    tensor_layer_s: np.ndarray  # ZeRO-3 tensor by tensor: one layer's collectives per micro-batch (nothing hides them)
    present: np.ndarray  # bool: the stage holds weights of this kind


@dataclass(frozen=True)
class OpCosts:
    """The building blocks evaluate() sums into a step, per candidate: what the simulator (sim.graph) schedules op
    by op. Per-layer times are per layer kind ("dense", "moe") with sliding-window and Mamba layers mixed in at
    their model-wide shares; communication entries are what the overlap rules leave exposed (seconds)."""

    microbatches: np.ndarray
    # kind -> fwd, bwd, recompute, tp, cp, ep (one layer, one micro-batch), and what ZB-H1 and DualPipe take apart:
    # wgrad (of bwd, the weight-gradient GEMMs) and ep_raw (the expert all-to-all with nothing hidden)
    layer: dict[str, dict[str, np.ndarray]]
    head_fwd_s: np.ndarray
    head_bwd_s: np.ndarray
    head_wgrad_s: np.ndarray  # of head_bwd_s, the weight-gradient GEMMs
    pp_send_s: np.ndarray  # one stage-to-stage send/recv
    zero_stage: np.ndarray  # the effective ZeRO stage (under a pipeline 2 and 3 run as 1)
    dp_hide: float  # share of the backward (forward) that hides the gradient (parameter) buckets
    fsdp_prefetch: float  # share of a layer's compute that hides its ZeRO-3 collectives
    zero3_by_layer: bool  # ZeRO-3 gathers layer by layer (else tensor by tensor, hidden by nothing)
    recompute_fraction: np.ndarray
    replicas: tuple[ReplicaOps, ...]
    optimizer_s: np.ndarray
    offload_s: np.ndarray
    # ZeRO-0/1 gradients reduced after the pipeline's flush, every chunk's at once (software without dp overlap)
    dp_after_flush: bool = False


@dataclass(frozen=True)
class _LayerComm:
    """One layer's work and communication that depend only on its shape (tp, cp, ep, etp, micro-batch, sp and the
    tp/cp strides) and on no timing knob: computed once per distinct shape, then spread over the candidates."""

    work: LayerWork
    window_work: LayerWork | None  # the same layer with sliding-window attention (None: no layer is windowed)
    ssm_work: LayerWork | None  # the same layer with a Mamba mixer (None: no such layer with an MLP)
    bare_work: LayerWork | None  # a Mamba layer without an MLP (None: no such layer)
    tp_fwd: np.ndarray  # the tensor-parallel collectives of one forward pass
    tp_mixer_fwd: np.ndarray  # those around the token mixer alone (a layer without an MLP)
    cp_fwd: np.ndarray  # the context-parallel ring of one forward pass
    a2a: np.ndarray  # one expert all-to-all (0 for a dense layer)
    tp_algo: np.ndarray
    cp_algo: np.ndarray
    ep_algo: np.ndarray


@dataclass(frozen=True)
class _LayerBase:
    fwd: np.ndarray
    bwd: np.ndarray
    attn_f: np.ndarray
    attn_b: np.ndarray
    selective_f: np.ndarray  # what selective recompute runs again (the run's recompute modules)
    tp_fwd: np.ndarray
    cp_fwd: np.ndarray
    a2a: np.ndarray


@dataclass(frozen=True)
class _LayerTimes:
    fwd: np.ndarray
    bwd: np.ndarray
    recompute: np.ndarray
    tp: np.ndarray
    cp: np.ndarray
    ep: np.ndarray
    wgrad: np.ndarray  # the backward's weight-gradient GEMMs (ZB-H1 and DualPipe defer them)
    ep_raw: np.ndarray  # the expert all-to-all with nothing hidden (DualPipe hides it by overlap, perf.pipeline)


@dataclass(frozen=True)
class _ReplicaComm:
    """The data-parallel collectives of one weight kind (dense or expert) per candidate."""

    n_params: np.ndarray
    trained: np.ndarray  # of which trainable (all; LoRA: the adapters)
    size: np.ndarray
    allreduce: np.ndarray  # all buckets, once
    scatter: np.ndarray
    gather: np.ndarray
    gather_layer: np.ndarray  # one layer's (ZeRO-3)
    scatter_layer: np.ndarray
    gather_tensors: np.ndarray  # ZeRO-3 tensor by tensor: a layer's gathers, one a tensor with its host loop
    scatter_tensors: np.ndarray  # and its gradients' reductions
    algo: np.ndarray  # the gradient reduction's algorithm (all-reduce under ZeRO-0, reduce-scatter otherwise)


TP_NONE, TP_BACKWARD, TP_FULL = 0, 1, 2
WGRAD_SHARE_OF_BACKWARD = 0.5  # a linear layer's backward is two GEMMs of equal FLOPs: input and weight gradient
MEMO_LIMIT = 8  # compute times kept per Prepared
_TP_CODES = {"none": TP_NONE, "backward": TP_BACKWARD, "full": TP_FULL}

#: knobs read only after the prepared stage (compute kernels and overlaps): a Prepared stays valid for any
#: calibration that differs from the one it was made with in these alone (a fit varies them)
TIMING_KNOBS = frozenset({"matmul_scale", "kernel_gap_s", "attention_half_seq", "tp_comm_overlap",
                          "cp_comm_overlap", "ep_comm_overlap", "dp_comm_overlap", "fsdp_prefetch_overlap",
                          "step_overhead_s"})


def stage_key(cal: Calibration) -> str:
    return repr(sorted((k, v) for k, v in cal.model_dump(exclude={"residuals", "source"}).items()
                       if k not in TIMING_KNOBS))


@dataclass(frozen=True)
class Prepared:
    """What evaluate() derives from a scenario and a batch of candidates without any timing knob: memory, layouts,
    layer shapes and every collective's time. Made once, it times the same candidates under many calibrations."""

    key: str
    candidates: Candidates  # the batch it was made for (evaluate() reuses it for that very batch only)
    memory: MemoryBreakdown
    inv: np.ndarray  # candidate -> its layer shape
    shapes: Candidates
    comm: dict[str, _LayerComm]  # per layer kind, over the distinct shapes
    head: LayerWork
    pp_time: np.ndarray  # one stage-to-stage send/recv, per candidate
    pp_algo: np.ndarray
    replicas: tuple[_ReplicaComm, ...]
    window: int | None = None  # the sliding window of the model's windowed layers, when it limits them
    # compute times by the kernel knobs they were made with (a fit varies the other knobs far more often): per layer
    # kind with full attention, per variant (windowed attention, a Mamba-2 mixer, one without an MLP) per layer
    # kind, the head's forward and backward
    memo: dict[tuple[float, ...], tuple[dict[str, _LayerBase], dict[str, dict[str, _LayerBase]], np.ndarray,
                                        np.ndarray]] = (
        field(default_factory=dict, compare=False, repr=False))


def _compute_times(s: Scenario, cal: Calibration, work: LayerWork, key_len: np.ndarray, window: int | None = None,
                   scan: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(forward, backward, attention-core forward, attention-core backward, selective recompute) seconds of one
    layer's compute (``window``: its attention's sliding window, perf.compute.attention_s; ``scan``: the core is a
    Mamba scan timed as fused attention (workload.ssm), a Triton kernel of its own that the run's attention_backend
    does not choose: it keeps the part's fraction for the run's date); the last is what the run's
    selective recompute modules run again (Megatron-Core --recompute-modules, spec.training.selective_modules): the
    attention core, the modules' GEMMs (workload.operators.MODULE_GEMMS) and their elementwise parts
    (MODULE_PARTS)."""
    acc = s.cluster.accelerator
    prec = s.training.precision
    recipe = scaling_recipe(prec, resolved_fp8_recipe(s.training, acc.architecture))
    zero = np.zeros_like(key_len)
    forward = [gemm_forward_s(acc, cal, prec, recipe, g) for g in work.gemms]
    fwd = sum(forward, start=zero)
    bwd = sum((gemm_backward_s(acc, cal, prec, recipe, g) for g in work.gemms), start=zero)
    head_dim = attention_dims(s.model)[0]
    fraction = acc.attention_fraction_at(s.training.software_date, "auto" if scan else s.training.attention_backend)
    core_f = attention_s(acc, cal, work.attention_flops, key_len, head_dim=head_dim, fraction=fraction,
                         window=window)
    core_b = attention_s(acc, cal, work.attention_flops, key_len, backward=True, head_dim=head_dim,
                         fraction=fraction, window=window)
    if work.core_gemms:  # unfused attention: batched GEMMs plus the score matrix's memory traffic
        core_f = core_f + sum((gemm_forward_s(acc, cal, prec, recipe, g) for g in work.core_gemms),
                              start=zero) + memory_bound_s(acc, cal, np.asarray(work.core_bytes), 2.0)
        core_b = core_b + sum((gemm_backward_s(acc, cal, prec, recipe, g) for g in work.core_gemms),
                              start=zero) \
            + memory_bound_s(acc, cal, ELEMENTWISE_BWD_OVER_FWD * np.asarray(work.core_bytes), 4.0)
    elem_f = memory_bound_s(acc, cal, work.elementwise_bytes, work.elementwise_kernels)
    elem_b = memory_bound_s(acc, cal, ELEMENTWISE_BWD_OVER_FWD * work.elementwise_bytes,
                            ELEMENTWISE_BWD_OVER_FWD * work.elementwise_kernels)
    modules = selective_modules(s.training)
    gemms = frozenset().union(*(MODULE_GEMMS.get(m, frozenset()) for m in modules))
    parts = frozenset().union(*(MODULE_PARTS.get(m, frozenset()) for m in modules))
    rerun = [work.parts[p] for p in sorted(parts) if p in work.parts]
    selective = (core_f if "core_attn" in modules else zero) \
        + sum((t for g, t in zip(work.gemms, forward, strict=True) if g.name in gemms), start=zero) \
        + memory_bound_s(acc, cal, sum((b for b, _ in rerun), start=zero), sum(k for _, k in rerun))
    return fwd + core_f + elem_f, bwd + core_b + elem_b, core_f, core_b, selective


def _layer_comm(s: Scenario, cal: Calibration, c: Candidates, kind: str, strides: dict[str, np.ndarray],
                topo: Topology) -> _LayerComm:
    model, cluster = s.model, s.cluster
    seq = s.seq_len
    f64 = np.float64
    tp, cp, ep, etp, mb = (c.tp.astype(f64), c.cp.astype(f64), c.ep.astype(f64), c.etp.astype(f64),
                           c.micro_batch.astype(f64))
    shared = {"seq_len": seq, "micro_batch": mb, "tp": tp, "cp": cp, "sp": c.sp, "ep": ep, "etp": etp,
              "precision": s.training.precision, "flash_attention": s.training.flash_attention,
              "fp8_recipe": resolved_fp8_recipe(s.training, cluster.accelerator.architecture),
              "eager_epilogue": s.training.expert_epilogue == "eager"}
    work = layer_work(model, kind, **shared)  # type: ignore[arg-type]
    window = effective_window(model, seq)
    window_work = None if window is None else layer_work(model, kind, window=window, **shared)  # type: ignore[arg-type]
    with_mlp, without_mlp = ssm_layer_shares(model)
    ssm_work, bare_work = (None if share == 0.0 else layer_work(
        model, kind, mixer="mamba", mlp=mlp, **shared)  # type: ignore[arg-type]
        for share, mlp in ((with_mlp, True), (without_mlp, False)))
    lora = s.training.lora  # frozen base weights: no weight gradients but the adapters' (workload.lora)
    work = with_lora(work, lora)
    window_work, ssm_work, bare_work = (None if w is None else with_lora(w, lora)
                                        for w in (window_work, ssm_work, bare_work))

    T = mb * seq / cp
    # Tensor parallel: an all-gather and a reduce-scatter of the T x h activations around attention and
    # around the MLP (Korthikanti et al. 2022, Fig. 5); an MoE MLP has its own (below).
    tp_group = place(cluster, topo, tp, strides["tp"])
    tp_coll = collective_time(cluster, topo, cal, "all_gather", T * model.hidden * ACT_BYTES, tp_group)
    one = tp_coll.time_s
    per_block = 2.0  # an all-gather before a block and a reduce-scatter after it
    tp_s = per_block * one * (2.0 if kind == "dense" else 1.0)  # a layer's forward tensor-parallel collectives

    # Context parallel: ring exchange of this rank's K and V block, cp-1 steps forward; K, V and their
    # gradients backward (Liu et al. 2023 ring attention; Megatron-LM context parallelism), behind attention.
    d_qk, d_v = attention_dims(model)
    kv_local = np.maximum(model.n_kv_heads / tp, 1.0) if model.attention == "mha" else model.heads / tp
    kv_block = T * kv_local * (d_qk + d_v) * ACT_BYTES
    cp_pair = place(cluster, topo, np.where(cp > 1, 2.0, 1.0), strides["cp"])  # ring neighbours
    cp_coll = collective_time(cluster, topo, cal, "send_recv", kv_block, cp_pair)
    step_s = cp_coll.time_s

    if kind == "moe" and model.moe:
        # The rank's T/tp tokens (an MoE layer with tp > 1 runs with sequence parallelism, spec.rules), top_k copies
        # each, over the dispatch's group and at its bytes (workload.dispatch: dispatch_group, dispatch_bytes_factor).
        # With expert-tensor parallelism Megatron-Core's all-to-all dispatcher also all-gathers what it received over
        # the etp shards before the experts and reduce-scatters their outputs after (transformer/moe/
        # token_dispatcher.py dispatch_postprocess, combine_preprocess @d98e8a64dd); the flex one gathers nothing.
        k = float(model.moe.top_k)
        local = T / tp
        ep_group = place(cluster, topo, *dispatch_group(s.training, ep, etp))
        factor = dispatch_bytes_factor(model, s.training, ep_group.domains, ep, etp)
        if moe_dispatcher_of(s.training) != "deepep":
            etp_group = place(cluster, topo, etp, np.ones_like(etp))
            gathered = collective_time(cluster, topo, cal, "all_gather", etp * k * local * model.hidden * ACT_BYTES,
                                       etp_group)
            tp_s = tp_s + np.where(etp > 1, per_block * gathered.time_s, 0.0)
        ep_coll = collective_time(cluster, topo, cal, "all_to_all", local * k * model.hidden * ACT_BYTES * factor,
                                  ep_group)
        a2a, ep_algo = ep_coll.time_s, ep_coll.algorithm
    else:
        a2a, ep_algo = np.zeros_like(tp), np.full(tp.shape, ALGORITHMS.index("pairwise"))
    return _LayerComm(work=work, window_work=window_work, ssm_work=ssm_work, bare_work=bare_work,
                      tp_fwd=tp_s, tp_mixer_fwd=per_block * one, cp_fwd=(cp - 1.0) * step_s, a2a=a2a,
                      tp_algo=tp_coll.algorithm, cp_algo=cp_coll.algorithm, ep_algo=ep_algo)


def _layer_base(s: Scenario, cal: Calibration, comm: _LayerComm, cp: np.ndarray, inv: np.ndarray,
                window: int | None = None, variant: str = "") -> _LayerBase:
    """The layer's compute times under the calibration's kernel knobs, spread over the candidates; with a
    ``window``, those of the same layer with sliding-window attention: its kernel's key length is the window's
    equivalent one (workload.window), at most the s/cp keys of a context-parallel block, at the window's kernel rate
    (perf.compute.attention_s); ``variant`` "ssm" or "bare", those of the layer with a Mamba-2 mixer (and an MLP, or
    none), its scan timed over one chunk (workload.ssm)."""
    tp_fwd, a2a = comm.tp_fwd, comm.a2a
    if variant:
        work = comm.ssm_work if variant == "ssm" else comm.bare_work
        assert work is not None
        key_len = np.minimum(s.seq_len / cp, scan_key_len(s.model, s.seq_len))
        fwd, bwd, attn_f, attn_b, sel_f = _compute_times(s, cal, work, key_len, scan=True)
        if variant == "bare":  # no MLP: the collectives around the mixer alone, no expert all-to-all
            tp_fwd, a2a = comm.tp_mixer_fwd, np.zeros_like(comm.a2a)
    elif window is None:
        fwd, bwd, attn_f, attn_b, sel_f = _compute_times(s, cal, comm.work, s.seq_len / cp)
    else:
        assert comm.window_work is not None
        key_len = np.minimum(s.seq_len / cp, equivalent_key_len(s.seq_len, window))
        fwd, bwd, attn_f, attn_b, sel_f = _compute_times(s, cal, comm.window_work, key_len, window)
    return _LayerBase(fwd=fwd[inv], bwd=bwd[inv], attn_f=attn_f[inv], attn_b=attn_b[inv], selective_f=sel_f[inv],
                      tp_fwd=tp_fwd[inv], cp_fwd=comm.cp_fwd[inv], a2a=a2a[inv])


FULL_LAYER_RECOMPUTE = (RECOMPUTE_CODES["full"], RECOMPUTE_CODES["block"])


def _layer_times(cal: Calibration, base: _LayerBase, rc: np.ndarray, rfrac: np.ndarray, tp_mode: np.ndarray,
                 op_share: float = 0.0, ep_hide: np.ndarray | float = 0.0, redispatch: bool = False) -> _LayerTimes:
    """Per-layer times of every candidate; ``rfrac`` is the share of layers whose forward is recomputed (full or
    block), ``rc`` the recompute code (selective recomputes the run's modules, the attention core by default, and
    with ``redispatch`` (the moe module) a MoE layer's dispatch and combine again; per-op a share ``op_share`` of the
    rest of the forward), ``tp_mode`` what the software hides
    of the tensor-parallel collectives (TP_NONE, TP_BACKWARD: the backward's behind its weight-gradient GEMMs,
    WGRAD_SHARE_OF_BACKWARD of the backward; TP_FULL: a share tp_comm_overlap of all, Transformer Engine userbuffers),
    ``ep_hide`` the share of the expert all-to-all hidden (ep_comm_overlap under batch-level overlap, else none)."""
    recompute = (rfrac * base.fwd + np.where(rc == 1, base.selective_f, 0.0)
                 + np.where(rc == 4, op_share * (base.fwd - base.attn_f), 0.0))
    forward = base.tp_fwd * (1.0 + rfrac)
    tp_total = np.where(tp_mode == TP_FULL, (forward + base.tp_fwd) * (1.0 - cal.tp_comm_overlap),
                        forward + np.where(tp_mode == TP_BACKWARD,
                                           np.maximum(base.tp_fwd - WGRAD_SHARE_OF_BACKWARD * base.bwd, 0.0),
                                           base.tp_fwd))
    hide = cal.cp_comm_overlap
    cp_total = (np.maximum(base.cp_fwd - hide * base.attn_f, 0.0) * (1.0 + rfrac)
                + np.maximum(2.0 * base.cp_fwd - hide * base.attn_b, 0.0))
    ep_raw = 2.0 * base.a2a * (2.0 + rfrac + (np.where(rc == 1, 1.0, 0.0) if redispatch else 0.0))
    ep_total = ep_raw * (1.0 - ep_hide)
    return _LayerTimes(fwd=base.fwd, bwd=base.bwd, recompute=recompute, tp=tp_total, cp=cp_total, ep=ep_total,
                       wgrad=WGRAD_SHARE_OF_BACKWARD * (base.bwd - base.attn_b), ep_raw=ep_raw)


def candidate_strides(c: Candidates, degrees: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rank stride of every axis for every candidate, under the candidate's own layout."""
    codes = np.flatnonzero(np.bincount(c.order, minlength=1)) if len(c) else np.zeros(1, dtype=np.int64)
    out: dict[str, np.ndarray] | None = None
    for code in codes:
        st = axis_strides(ORDERS[int(code)].split("-"), degrees)
        out = st if out is None else {k: np.where(c.order == code, st[k], out[k]) for k in st}
    assert out is not None
    return out


def host_link_bytes_per_s(s: Scenario) -> float:
    """What the host link leaves for offloading: on PCIe boards (HGX/DGX) each GPU's NIC sits behind the same PCIe
    switch and its GPUDirect RDMA traffic crosses the GPU's own x16 link, so offloading gets the link less the
    scale-out bandwidth per GPU (at least HOST_LINK_FLOOR of the link: the NIC is not busy the whole step)."""
    host = s.cluster.accelerator.host
    assert host is not None
    nic = s.cluster.scale_out_bandwidth_per_gpu_bytes_per_s if host.shared_with_nic else 0.0
    return max(host.link_bytes_per_s - nic, HOST_LINK_FLOOR * host.link_bytes_per_s)


def _offload_s(s: Scenario, memory: MemoryBreakdown, m: np.ndarray, fwd_mb: np.ndarray, bwd_mb: np.ndarray
               ) -> np.ndarray:
    """Exposed seconds of offloading per step (memory_fits checks the host holds what is offloaded). Weights and
    activations stream over the host link behind each micro-batch's compute (prefetched, as FSDP CPUOffload,
    ZeRO-Infinity and activation offloading do); the gradients go down behind the last backward, and the CPU step
    (streaming the optimizer state through host memory, as the GPU step does through HBM) and the upload of the
    updated weights follow it (ZeRO-Offload without its delayed parameter update). What the forward moves hides
    behind the forward, what the backward moves behind the backward."""
    host = s.cluster.accelerator.host
    offloaded = memory.host_bytes > 0
    if host is None or not offloaded.any():  # nothing offloaded, or no host to offload to (memory_fits says so)
        return np.zeros_like(m)
    link = host_link_bytes_per_s(s)
    streamed = m * (np.maximum(memory.host_link_fwd_bytes / link - fwd_mb, 0.0)
                    + np.maximum(memory.host_link_bwd_bytes / link - bwd_mb, 0.0))
    grads_down = memory.cpu_step_params * 4.0 / link
    step = (np.maximum(grads_down - bwd_mb, 0.0) + memory.cpu_step_params * WEIGHT_BYTES / link
            + OPTIMIZER_BYTES_PER_PARAM * memory.cpu_step_params / host.memory_bandwidth_bytes_per_s)
    return np.where(offloaded, streamed + step, 0.0)


def candidate_memory(s: Scenario, c: Candidates) -> MemoryBreakdown:
    """Memory per GPU of every candidate, as the scenario's training software holds it. Candidates that differ in
    their layout over the ranks alone (``order``, searched under ``parallelism.order: auto``) hold the same bytes:
    their memory is computed once and spread over them."""
    if len(c) == 0 or c.order.min() == c.order.max():
        return _candidate_memory(s, c)
    rep, inv = group_rows(*(getattr(c, f.name) for f in fields(Candidates) if f.name != "order"))
    if len(rep) == len(c):
        return _candidate_memory(s, c)
    m = _candidate_memory(s, c.take(rep))
    return MemoryBreakdown(**{f.name: getattr(m, f.name)[inv] for f in fields(MemoryBreakdown)})


def _candidate_memory(s: Scenario, c: Candidates) -> MemoryBreakdown:
    model, cluster, training = s.model, s.cluster, s.training
    tp, pp, dp, cp, ep, etp, mb, vs = (getattr(c, n).astype(np.float64) for n in
                                       ("tp", "pp", "dp", "cp", "ep", "etp", "micro_batch", "virtual_stages"))
    options = framework_memory_options(
        training.framework, accelerator=cluster.accelerator, precision=training.precision,
        choices=SoftwareChoices(optimizer=training.optimizer, state_dtype=training.optimizer_state_dtype,
                                master_weights=training.master_weights,
                                optimizer_in_backward=training.optimizer_in_backward, fp8_params=training.fp8_params,
                                loss=training.loss, grad_accum_fp32=training.grad_accum_fp32,
                                zero3_by_tensor=software_overlaps(training).zero3_gather == "tensor",
                                software_date=training.software_date),
        communicators=communicators(training.framework, {"tp": tp, "pp": pp, "dp": dp, "cp": cp, "ep": ep}),
        grouped_gemm=model.moe is not None)
    if training.lora is not None:
        dense_share, expert_share = trainable_shares(model, training.lora)
        options = options._replace(trainable_dense=dense_share, trainable_expert=expert_share)
    return memory_per_gpu(model, seq_len=s.seq_len, global_batch=training.global_batch,
                          flash_attention=training.flash_attention,
                          precision=training.precision, tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, etp=etp,
                          micro_batch=mb, virtual_stages=vs, recompute=c.recompute, zero_stage=c.zero_stage,
                          sp=c.sp, budget_bytes=hbm_budget_bytes(s), end_layers=pipeline_end_layers(model.layers, pp, training),
                          options=options, offload=c.offload, schedule=c.schedule,
                          recompute_modules=selective_modules(training))


def hbm_budget_bytes(s: Scenario) -> float:
    """The share of HBM a run may plan to fill (training.memory_reserve_fraction)."""
    return s.cluster.accelerator.hbm_bytes * s.training.memory_reserve_fraction


def memory_fits(s: Scenario, memory: MemoryBreakdown) -> np.ndarray:
    """Whether each candidate fits: its GPU memory within the budget, what it offloads within the host's memory."""
    host = s.cluster.accelerator.host
    gpu = memory.total_bytes <= hbm_budget_bytes(s)
    return gpu & (memory.host_bytes <= (host.memory_bytes if host else 0.0))


def _layer_by_tensor(s: Scenario, cal: Calibration, topo: Topology, group: Placement, layer_params: np.ndarray,
                     layer_trained: np.ndarray, weights: int, small: int, grad_bytes: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """ZeRO-3 parameter by parameter (DeepSpeed before 0.6): (a layer's gathers, its gradients' reductions), one
    collective for every parameter tensor, each with the host's loop over the group's ranks. DeepSpeed v0.3.13
    fetches a submodule's parameters one all_gather each (stage3.py fetch_sub_module -> partition_parameters.py
    _allgather_param, a Python loop building a view per rank, which PyTorch 1.8 copies back one by one) and reduces
    the gradients one reduce_scatter each (_reduce_scatter_gradients -> _reduce_scatter_gradient, the same loop):
    the ``weights`` weight matrices share the layer's bytes, its ``small`` biases and norms (workload.params
    layer_small_tensors, about a hidden size each) cost their latency and the loop."""
    model, cluster = s.model, s.cluster
    host = cal.zero3_host_per_rank_s * group.size
    one_small = np.full_like(layer_params, float(model.hidden))
    gathers = weights * collective_time(cluster, topo, cal, "all_gather", layer_params / weights * 2.0, group).time_s \
        + small * collective_time(cluster, topo, cal, "all_gather", one_small * 2.0, group).time_s
    scatters = weights * collective_time(cluster, topo, cal, "reduce_scatter", layer_trained / weights * grad_bytes,
                                         group).time_s \
        + small * collective_time(cluster, topo, cal, "reduce_scatter", one_small * grad_bytes, group).time_s
    return gathers + (weights + small) * host, scatters + (weights + small) * host


def prepare(s: Scenario, c: Candidates, cal: Calibration, memory: MemoryBreakdown | None = None) -> Prepared:
    """The part of evaluate() that no timing knob touches (see Prepared); ``memory``: the candidates' memory when
    the caller has it (candidate_memory of the same candidates for a scenario with the same model, accelerator and
    training: it does not read the fabric)."""
    model, cluster, training = s.model, s.cluster, s.training
    seq = s.seq_len
    f64 = np.float64
    tp, pp, dp, cp, ep, etp, mb, vs = (getattr(c, n).astype(f64) for n in
                                       ("tp", "pp", "dp", "cp", "ep", "etp", "micro_batch", "virtual_stages"))
    memory = candidate_memory(s, c) if memory is None else memory
    n_moe_total = model.moe_layers
    topo = build_topology(cluster)
    strides = candidate_strides(c, {"tp": tp, "cp": cp, "dp": dp, "pp": pp})
    # Layer shapes repeat across candidates (dp, pp, ZeRO, recompute do not change them): time each distinct one.
    rep, inv = group_rows(c.tp, c.cp, c.ep, c.etp, c.micro_batch, c.sp, strides["tp"], strides["cp"])
    shapes = c.take(rep)
    shape_strides = {k: v[rep] for k, v in strides.items()}
    comm: dict[str, _LayerComm] = {}
    if model.layers > n_moe_total:  # some dense layers (on the busiest stage or on the critical path)
        comm["dense"] = _layer_comm(s, cal, shapes, "dense", shape_strides, topo)
    if model.moe:
        comm["moe"] = _layer_comm(s, cal, shapes, "moe", shape_strides, topo)
    su = {k: getattr(shapes, k).astype(f64) for k in ("tp", "cp", "micro_batch")}
    head = with_lora(lm_head_work(model, seq_len=seq, micro_batch=su["micro_batch"], tp=su["tp"], cp=su["cp"],
                                  precision=training.precision,
                                  fp8_recipe=resolved_fp8_recipe(training, cluster.accelerator.architecture),
                                  fp8_output_proj=training.fp8_output_proj), training.lora)

    # Pipeline: a send/recv of the stage boundary activations forward and backward per virtual stage, split
    # over the tp ranks (Megatron's scatter-gather optimisation).
    rep2, inv2 = group_rows(c.tp, c.cp, c.pp, c.micro_batch, strides["pp"])
    pp2, mb2, cp2, tp2 = pp[rep2], mb[rep2], cp[rep2], tp[rep2]
    pp_pair = place(cluster, topo, np.where(pp2 > 1, 2.0, 1.0), strides["pp"][rep2])
    boundary = mb2 * seq / cp2 * model.hidden * ACT_BYTES / tp2
    pp_coll = collective_time(cluster, topo, cal, "send_recv", boundary, pp_pair)

    # Data parallel: dense weights reduce over dp*cp ranks tp apart; expert weights over the expert
    # data-parallel group, ep*etp apart. The collectives depend on the stage's parameters and the replica groups
    # only: time each distinct (tp, pp, cp, dp, ep, etp, layout) once.
    replica_size, replica_stride = weight_replica_group(strides, dp, cp)
    rep3, inv3 = group_rows(c.tp, c.pp, c.cp, c.dp, c.ep, c.etp, replica_stride)
    tp3, pp3, cp3, dp3, ep3, etp3 = (x[rep3] for x in (tp, pp, cp, dp, ep, etp))
    non_expert3, expert3 = stage_params(model, pp3, tp3, ep3, etp3)
    lps3 = layers_per_stage(model.layers, pp3)
    grad_bytes = 4.0 if grads_in_fp32(training) else 2.0
    zero_eff = effective_zero_stage(c.zero_stage, pp)
    some = next(iter(comm.values())).work
    weights = sum(1 for g in some.gemms if g.name != "router" and "_lora_" not in g.name)  # base matrices
    by_tensor = software_overlaps(training).zero3_gather == "tensor"
    replicas = []
    # Gradients (their reduction, ZeRO-1's gather of the updated weights, the optimizer) exist for the trainable
    # parameters alone: all of them, or LoRA's adapters; ZeRO-3 gathers the stored weights, frozen ones too.
    shares = trainable_shares(model, training.lora)
    # the norms and biases are the dense replica's: the experts' group gathers its weight matrices alone
    small = layer_small_tensors(model, weights)
    for n_params3, size3, stride3, share, small3 in (
            (non_expert3, replica_size[rep3], replica_stride[rep3], shares[0], small),
            (expert3, tp3 * cp3 * dp3 / (ep3 * etp3), ep3 * etp3, shares[1], 0)):
        group = place(cluster, topo, size3, stride3)
        # Megatron-LM DDP buckets of max(40M, 1M x dp) parameters (distributed_data_parallel.py), one
        # collective each; ZeRO-3 / FSDP gathers and reduces one transformer layer at a time
        trained3 = n_params3 * share if share != 1.0 else n_params3  # LoRA: the adapters' gradients alone
        buckets3 = ddp_buckets(trained3, size3)
        ar = collective_time(cluster, topo, cal, "all_reduce", trained3 / buckets3 * grad_bytes, group)
        rs = collective_time(cluster, topo, cal, "reduce_scatter", trained3 / buckets3 * grad_bytes, group)
        ag = collective_time(cluster, topo, cal, "all_gather", trained3 / buckets3 * 2.0, group)
        ag_layer = collective_time(cluster, topo, cal, "all_gather", n_params3 / lps3 * 2.0, group)
        rs_layer = collective_time(cluster, topo, cal, "reduce_scatter", trained3 / lps3 * grad_bytes, group)
        gather_tensors = scatter_tensors = np.zeros_like(n_params3)
        if by_tensor:
            gather_tensors, scatter_tensors = _layer_by_tensor(s, cal, topo, group, n_params3 / lps3,
                                                               trained3 / lps3, weights, small3, grad_bytes)
        replicas.append(_ReplicaComm(
            n_params=n_params3[inv3], trained=trained3[inv3], size=size3[inv3], allreduce=(buckets3 * ar.time_s)[inv3],
            scatter=(buckets3 * rs.time_s)[inv3], gather=(buckets3 * ag.time_s)[inv3],
            gather_layer=ag_layer.time_s[inv3], scatter_layer=rs_layer.time_s[inv3],
            gather_tensors=gather_tensors[inv3], scatter_tensors=scatter_tensors[inv3],
            algo=np.where(zero_eff == 0, ar.algorithm[inv3], rs.algorithm[inv3])))
    return Prepared(key=stage_key(cal), candidates=c, memory=memory, inv=inv, shapes=shapes, comm=comm, head=head,
                    pp_time=pp_coll.time_s[inv2], pp_algo=pp_coll.algorithm[inv2], replicas=tuple(replicas),
                    window=effective_window(model, seq))


def _scaled(prepared: Prepared, bases: dict[str, _LayerBase], variant_bases: dict[str, dict[str, _LayerBase]],
            factors: dict[str, float]) -> tuple[Prepared, dict[str, _LayerBase], dict[str, dict[str, _LayerBase]]]:
    """The collectives' times multiplied by each axis's contention factor (before any overlap rule hides them)."""
    tp, cp, ep, pp, dp = (float(factors.get(a, 1.0)) for a in ("tp", "cp", "ep", "pp", "dp"))

    def base(b: _LayerBase) -> _LayerBase:
        return replace(b, tp_fwd=b.tp_fwd * tp, cp_fwd=b.cp_fwd * cp, a2a=b.a2a * ep)

    replicas = tuple(replace(r, allreduce=r.allreduce * dp, scatter=r.scatter * dp, gather=r.gather * dp,
                             gather_layer=r.gather_layer * dp, scatter_layer=r.scatter_layer * dp,
                             gather_tensors=r.gather_tensors * dp, scatter_tensors=r.scatter_tensors * dp)
                     for r in prepared.replicas)
    scaled = replace(prepared, pp_time=prepared.pp_time * pp, replicas=replicas, memo={})
    return (scaled, {k: base(b) for k, b in bases.items()},
            {v: {k: base(b) for k, b in kinds.items()} for v, kinds in variant_bases.items()})


@lru_cache(maxsize=1024)
def _dualpipe_rank_table(moe_flags: tuple[bool, ...], pp: int) -> tuple[tuple[int, int, int], ...]:
    """The distinct DualPipe ranks of ``pp``: (dense layers, MoE layers, LM heads) over a rank's two stages, r and
    pp - 1 - r, with the layers split as workload.memory.stage_layer_counts and placed as the model places them
    (``moe_flags``: spec.model.Model.moe_layer_flags)."""
    counts = stage_layer_counts(len(moe_flags), pp)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    dense_on = [n - moe_layers_among(moe_flags, int(a), n) for a, n in zip(starts, counts, strict=True)]
    return tuple(sorted({(dense_on[r] + dense_on[pp - 1 - r],
                          counts[r] + counts[pp - 1 - r] - dense_on[r] - dense_on[pp - 1 - r],
                          int(r == 0) + int(r == pp - 1)) for r in range(pp)}))


def _dualpipe_ranks(model: Model, pp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per candidate, every distinct DualPipe rank's dense layers, MoE layers and LM heads (each [rank, candidate],
    a shorter table padded with its last rank), from one small table per pipeline depth."""
    depths, inv = np.unique(pp, return_inverse=True)
    flags = model.moe_layer_flags
    tables = [_dualpipe_rank_table(flags, int(p)) for p in depths]
    k = max(len(tb) for tb in tables)
    rows = np.array([tb + tb[-1:] * (k - len(tb)) for tb in tables], dtype=np.float64)[inv.ravel()]
    return rows[..., 0].T, rows[..., 1].T, rows[..., 2].T


def evaluate(s: Scenario, c: Candidates, cal: Calibration, prepared: Prepared | None = None,
             memory: MemoryBreakdown | None = None, *, comm_factors: dict[str, float] | None = None) -> StepArrays:
    """Step time parts, memory and fit for every candidate in ``c`` (``prepared``: the same candidates' stage made
    by prepare(), reused when its calibration differs from ``cal`` in timing knobs only; ``memory``: see prepare).
    ``comm_factors``: each axis's collectives slowed by contention (sim.fabric), before the overlap rules; None:
    none."""
    if prepared is None or prepared.key != stage_key(cal) or prepared.candidates is not c:
        prepared = prepare(s, c, cal, memory)
    model, cluster, training = s.model, s.cluster, s.training
    f64 = np.float64
    tp, pp, dp, cp, mb, vs = (getattr(c, n).astype(f64) for n in
                              ("tp", "pp", "dp", "cp", "micro_batch", "virtual_stages"))
    m = training.global_batch / (dp * mb)
    memory = prepared.memory
    rfrac = memory.recompute_fraction
    inv = prepared.inv
    lps = layers_per_stage(model.layers, pp)
    n_moe_total = model.moe_layers
    n_moe = moe_in_last(model, lps)  # the busiest stage: the last, its layers where the model places them
    n_dense = lps - n_moe
    shape_cp = prepared.shapes.cp.astype(f64)
    kernel_knobs = (cal.matmul_scale, cal.kernel_gap_s, cal.attention_half_seq)
    if kernel_knobs not in prepared.memo:
        if len(prepared.memo) >= MEMO_LIMIT:
            prepared.memo.clear()
        head_times = _compute_times(s, cal, prepared.head, s.seq_len / shape_cp)
        w = prepared.window
        comms = prepared.comm.items()
        variants = {} if w is None else {"window": {kind: _layer_base(s, cal, comm, shape_cp, inv, w)
                                                    for kind, comm in comms}}
        for variant in ("ssm", "bare"):
            if any(getattr(comm, f"{variant}_work") is not None for _, comm in comms):
                variants[variant] = {kind: _layer_base(s, cal, comm, shape_cp, inv, variant=variant)
                                     for kind, comm in comms}
        prepared.memo[kernel_knobs] = ({kind: _layer_base(s, cal, comm, shape_cp, inv) for kind, comm in comms},
                                       variants, head_times[0][inv], head_times[1][inv])
    bases, variant_bases, head_f, head_b = prepared.memo[kernel_knobs]
    if comm_factors is not None:
        prepared, bases, variant_bases = _scaled(prepared, bases, variant_bases, comm_factors)
    software = software_overlaps(training)
    tp_mode = np.where(c.sp, _TP_CODES[software.tp_with_sp], _TP_CODES[software.tp_without_sp])
    share = op_recompute_share(model)
    # the expert all-to-all: a share ep_comm_overlap hidden where the software overlaps it batch by batch and the
    # framework runs that on the configuration; waited for otherwise (DualPipe: its own pairing, below)
    ep_hide = np.where(software.ep_overlap & ep_overlap_runs(c.ep, c.pp, c.virtual_stages,
                                                             np.isin(c.recompute, FULL_LAYER_RECOMPUTE)),
                       cal.ep_comm_overlap, 0.0)
    redispatch = "moe" in selective_modules(training)  # selective recompute of a MoE layer repeats its all-to-all
    times = {kind: _layer_times(cal, base, c.recompute, rfrac, tp_mode, share, ep_hide, redispatch)
             for kind, base in bases.items()}
    variant_times = {variant: {kind: _layer_times(cal, base, c.recompute, rfrac, tp_mode, share, ep_hide, redispatch)
                               for kind, base in kinds.items()} for variant, kinds in variant_bases.items()}
    window_times = variant_times.get("window", {})
    ssm_shares = dict(zip(("ssm", "bare"), ssm_layer_shares(model), strict=True))
    # Sliding-window layers: the share of windowed layers on the busiest stage (the contiguous stage with the most
    # full-attention layers) and in the whole model (the critical path); a kind's layer time is the mix of its
    # full and windowed times, the window types taken as spread evenly over dense and MoE layers.
    stage_window_share: np.ndarray | float = 0.0
    model_window_share = 0.0
    if window_times:
        stage_window_share = windowed_on_busiest_stage(model, pp) / lps
        model_window_share = model.windowed_layers / model.layers
    first = prepared.comm.get("dense", prepared.comm.get("moe"))
    assert first is not None
    algorithms = {"tp": first.tp_algo[inv], "cp": first.cp_algo[inv],
                  "ep": prepared.comm["moe"].ep_algo[inv] if "moe" in prepared.comm else first.ep_algo[inv]}

    def mixed(kind: str, attr: str, window_share: np.ndarray | float) -> np.ndarray:
        x = x0 = getattr(times[kind], attr)
        if kind in window_times:
            x = x + window_share * (getattr(window_times[kind], attr) - x0)
        for variant in ("ssm", "bare"):  # Mamba layers, at their model-wide share on every stage
            if variant in variant_times:
                x = x + ssm_shares[variant] * (getattr(variant_times[variant][kind], attr) - x0)
        return x

    # The busiest stage: the last, with ceil(L/pp) layers and the LM head. Where the run's split counts the
    # embedding and the loss as layers (training.account_for_*_in_pipeline_split, Megatron-Core
    # get_num_layers_to_build) every stage holds (L + e + l) / pp slots, the first e and the last l of them taken
    # by the embedding and the head; where the run places the layers itself (training.pipeline_layout) each rank
    # holds its chunks' layers and LM-head passes. The busiest is then whichever rank's layers and head passes take
    # longest (workload.memory.pipeline_stage_loads).
    acc_e, acc_l = pipeline_accounting(training, pp)
    slots = np.ceil((model.layers + acc_e + acc_l) / pp)  # = lps without the accounting
    head_on = np.ones_like(tp)  # the LM-head passes on the busiest stage
    layout = training.pipeline_layout
    if layout is not None or np.any(acc_e + acc_l):
        def stage_s(n: np.ndarray) -> np.ndarray:
            n_m = moe_in_last(model, n)
            return sum((k * sum(mixed(kind, a, stage_window_share) for a in ("fwd", "bwd", "recompute", "tp", "cp",
                                                                               "ep"))
                        for kind, k in (("dense", n - n_m), ("moe", n_m)) if kind in times), start=np.zeros_like(tp))

        busiest = np.full_like(tp, -np.inf)
        for depth in np.unique(pp):
            on = pp == depth
            for n_layers, n_heads in sorted(pipeline_stage_loads(model.layers, int(depth), training)):
                n = np.full_like(tp, float(n_layers))
                cost = stage_s(n) + n_heads * (head_f + head_b)
                take = on & (cost > busiest)
                busiest = np.where(take, cost, busiest)
                lps = np.where(take, n, lps)
                head_on = np.where(take, float(n_heads), head_on)
        n_moe = moe_in_last(model, lps)
        n_dense = lps - n_moe
        if window_times:
            stage_window_share = np.minimum(windowed_on_busiest_stage(model, pp), lps) / np.maximum(lps, 1.0)
    busy_head_f, busy_head_b = head_on * head_f, head_on * head_b  # the LM head, where it is on the busiest stage

    def per_stage(attr: str, n_d: np.ndarray | int = n_dense, n_m: np.ndarray | int = n_moe,
                  window_share: np.ndarray | float = stage_window_share) -> np.ndarray:
        total = np.zeros_like(tp)
        for kind, n in (("dense", n_d), ("moe", n_m)):
            if kind not in times:
                continue
            total = total + n * mixed(kind, attr, window_share)
        return total

    compute_mb = per_stage("fwd") + per_stage("bwd") + busy_head_f + busy_head_b
    recompute_mb = per_stage("recompute")
    tp_mb, cp_mb, ep_mb = per_stage("tp"), per_stage("cp"), per_stage("ep")
    pp_mb = 2.0 * vs * prepared.pp_time
    algorithms["pp"] = prepared.pp_algo

    t_mb = compute_mb + recompute_mb + tp_mb + cp_mb + ep_mb + pp_mb
    # One micro-batch through every layer of the model (not only the busiest stage's), the head and each
    # stage-to-stage hop: the critical path no schedule can shorten.
    layer_parts = ("fwd", "bwd", "recompute", "tp", "cp", "ep")
    all_layers = sum((per_stage(a, model.layers - n_moe_total, n_moe_total, model_window_share)
                      for a in layer_parts), start=np.zeros_like(tp))
    hops = 2.0 * np.maximum(pp * vs - 1.0, 0.0) * prepared.pp_time
    t_crit = np.maximum(all_layers + head_f + head_b + hops, t_mb)
    # ZB-H1 and DualPipe defer the weight-gradient GEMMs (the head's backward is all GEMMs); DualPipe runs one
    # micro-batch's forward with another's backward, each one's all-to-all and sends under the other's compute
    # (perf.pipeline), with no global overlap knob: t_mb is then that pair, t_alone a micro-batch run alone
    head_wgrad = WGRAD_SHARE_OF_BACKWARD * head_b
    t_w = per_stage("wgrad") + head_on * head_wgrad
    # ZB-H1 with fewer micro-batches than stages: one micro-batch's weight-gradient passes over every stage, all but
    # one of them off its critical path (perf.pipeline)
    t_w_all = per_stage("wgrad", model.layers - n_moe_total, n_moe_total, model_window_share) + head_wgrad \
        if (c.schedule == ZB_H1).any() else t_w
    t_alone, fwd_alone = t_mb, np.zeros_like(t_mb)
    ep_part, pp_part = m * ep_mb, m * pp_mb
    dual = c.schedule == DUALPIPE
    fill: Fill | None = None  # DualPipe's fill and drain (perf.pipeline.dualpipe_s)
    if dual.any():
        # rank r holds stage r of one direction and stage pp-1-r of the other and runs half its micro-batches
        # through each (deepseek-ai/DualPipe): a micro-batch costs it the mean of its two stages, as the layers are
        # really split (workload.memory.stage_layer_counts, the dense layers first, the LM head on the last stage);
        # the busiest rank is the one whose overlapped pair takes longest and paces the steady state; the fill and
        # the drain pass through the heaviest single stage, the most layers and the LM head (the simulator found
        # the busiest rank's mean pair undercharging them by up to 9.5% once the 16-bit LM head made DeepSeek-V3's
        # last stage 40% heavier than its first)
        n_d, n_m, n_h = _dualpipe_ranks(model, c.pp)  # [rank, candidate]
        s_f, s_b, s_ep = per_stage("fwd") + head_f, per_stage("bwd") + head_b, per_stage("ep_raw")
        s_busy = s_f + s_b + recompute_mb + tp_mb + cp_mb
        s_alone = s_busy + s_ep + pp_mb
        s_fwd = s_f + 0.5 * pp_mb + s_f / np.maximum(s_f + s_b, 1e-300) * (tp_mb + cp_mb + s_ep)
        fill = (s_alone, s_busy + dualpipe_exposed_s(s_ep + pp_mb, s_f + s_b + recompute_mb), s_alone - s_fwd,
                per_stage("wgrad") + head_wgrad)

        def rank_mean(head: np.ndarray | float, *attrs: str) -> np.ndarray:
            out = n_h * (0.5 * head)
            for kind, n in (("dense", n_d), ("moe", n_m)):
                if kind in times:
                    out = out + n * (0.5 * sum(mixed(kind, a, model_window_share) for a in attrs))
            return out

        r_compute, r_recompute = rank_mean(head_f + head_b, "fwd", "bwd"), rank_mean(0.0, "recompute")
        r_tp, r_cp, r_ep = rank_mean(0.0, "tp"), rank_mean(0.0, "cp"), rank_mean(0.0, "ep_raw")
        busiest = np.argmax(r_compute + r_recompute + r_tp + r_cp
                            + dualpipe_exposed_s(r_ep + pp_mb, r_compute + r_recompute), axis=0)[None]

        def on_busiest(x: np.ndarray, other: np.ndarray) -> np.ndarray:
            return np.where(dual, np.take_along_axis(x, busiest, axis=0)[0], other)

        compute_mb, recompute_mb = on_busiest(r_compute, compute_mb), on_busiest(r_recompute, recompute_mb)
        tp_mb, cp_mb = on_busiest(r_tp, tp_mb), on_busiest(r_cp, cp_mb)
        t_w = on_busiest(rank_mean(head_wgrad, "wgrad"), t_w)
        ep_raw = on_busiest(r_ep, per_stage("ep_raw"))
        t_alone = np.where(dual, compute_mb + recompute_mb + tp_mb + cp_mb + ep_raw + pp_mb, t_mb)
        f_c, b_c = on_busiest(rank_mean(head_f, "fwd"), per_stage("fwd") + head_f), on_busiest(
            rank_mean(head_b, "bwd"), per_stage("bwd") + head_b)
        fwd_alone = f_c + 0.5 * pp_mb + f_c / np.maximum(f_c + b_c, 1e-300) * (tp_mb + cp_mb + ep_raw)
        exposed = dualpipe_exposed_s(ep_raw + pp_mb, compute_mb + recompute_mb)
        ep_share = ep_raw / np.maximum(ep_raw + pp_mb, 1e-300)
        t_mb = np.where(dual, compute_mb + recompute_mb + tp_mb + cp_mb + exposed, t_mb)
        ep_part = np.where(dual, m * exposed * ep_share, ep_part)
        pp_part = np.where(dual, m * exposed * (1.0 - ep_share), pp_part)
    # Chunks hold whole layers: the busiest stage's lps layers over v chunks give a largest chunk of ceil(lps/v),
    # which paces the interleaved warm-up and cool-down (the simulator found 1/v undercharging it: Llama 3 405B's
    # 8 layers over 7 chunks, +6.7%): v counts as lps / ceil(lps/v), v itself when the layers divide evenly
    v_eff = vs if layout is not None else slots / np.ceil(slots / vs)  # a layout's chunks are its own
    # training.pipeline_flushes schedules a step (torchtitan, NeMo Automodel: one a gradient-accumulation step),
    # each over m / F micro-batches with its own fill and drain
    flushes = float(training.pipeline_flushes)
    m_sched = m / flushes
    t_pipe = pipeline_s(c.schedule, m_sched, pp, v_eff, t_alone, t_crit, t_w, t_mb, t_alone - fwd_alone, t_w_all,
                        fill=fill)
    uneven_chunks = 0.0 if layout is not None else unequal_chunks_s(m_sched, pp, vs, model.layers + acc_e + acc_l,
                                                                        slots, t_mb)
    t_pipe = flushes * (t_pipe + uneven_chunks)
    bubble = t_pipe - m * t_mb

    zero_eff = effective_zero_stage(c.zero_stage, pp)
    fwd_mb = per_stage("fwd") + busy_head_f
    bwd_mb = per_stage("bwd") + busy_head_b
    # The forward's share of a micro-batch: its compute, its sends, and the layer collectives by its share of the
    # compute (recompute runs in the backward)
    fwd_share = fwd_mb / np.maximum(fwd_mb + bwd_mb, 1e-300)
    forward = fwd_mb + 0.5 * pp_mb + fwd_share * (tp_mb + cp_mb + ep_mb)
    if dual.any():
        forward = np.where(dual, fwd_alone, forward)
    hide = cal.dp_comm_overlap if software.dp_overlap else 0.0
    # the compute of the pass that produces the weight gradients: the backward, or under ZB-H1 its weight-gradient
    # pass alone (the input-gradient pass produces none; the simulator found ZB-H1's reductions hidden behind B
    # up to 5% fast)
    zb = c.schedule == ZB_H1
    grad_pass = np.where(zb, t_w, bwd_mb) if zb.any() else bwd_mb
    dp_exposed = np.zeros_like(tp)
    local_params = np.zeros_like(tp)
    algorithms["dp"] = prepared.replicas[0].algo  # the dense weights' gradient reduction
    replica_ops = []
    once_grad = np.zeros_like(tp)  # ZeRO-0/1: the step's gradient reductions (dense and expert), and ZeRO-1's gathers
    once_gather = np.zeros_like(tp)
    for r in prepared.replicas:
        # ZeRO-0: gradients all-reduced once, behind the last micro-batch's backward (Megatron overlap_grad_reduce);
        # ZeRO-1 (distributed optimizer): reduce-scattered once, parameters all-gathered once behind the first
        # forward; ZeRO-2: reduce-scattered after every micro-batch's backward (DeepSpeed stage 2, Megatron-FSDP
        # optim_grads); ZeRO-3: every micro-batch gathers each layer's parameters before its forward and again
        # before its backward, and reduce-scatters its gradients after, each behind that layer's compute
        # (FSDP prefetch; torchtitan without a pipeline, DeepSpeed stage 3)
        per_step_grad = np.where(zero_eff == 0, r.allreduce, r.scatter)
        present = r.n_params > 0
        once_grad = once_grad + np.where(present & (zero_eff <= 1), per_step_grad, 0.0)
        once_gather = once_gather + np.where(present & (zero_eff == 1), r.gather, 0.0)
        # ZeRO-2: each micro-batch's buckets reduce as its backward produces them, the last one after it: a share
        # 1 - 1/buckets of the backward hides the reduction, and at least the last bucket's is exposed (the
        # simulator, executing the buckets, found the whole backward counted: up to 6% fast with one bucket)
        buckets = ddp_buckets(r.n_params, r.size)
        exposed = m * np.maximum(per_step_grad - hide * grad_pass * (1.0 - 1.0 / buckets), per_step_grad / buckets) \
            + np.maximum(r.gather - hide * fwd_mb, 0.0)
        tensor_layer = (2.0 + rfrac) * r.gather_tensors + r.scatter_tensors  # a layer's, per micro-batch
        if software.zero3_gather == "layer":  # FSDP prefetch hides each layer's collectives behind its neighbour's compute
            prefetch = cal.fsdp_prefetch_overlap
            layered = m * lps * (np.maximum(r.gather_layer - prefetch * fwd_mb / lps, 0.0)
                                 + np.maximum(r.gather_layer + r.scatter_layer - prefetch * bwd_mb / lps, 0.0))
        else:  # one host-synchronised collective per parameter tensor, gathered for the forward, the recompute
            # and the backward, reduced once: nothing hides them
            layered = m * lps * tensor_layer
        replica_ops.append(ReplicaOps(
            grad_s=per_step_grad, buckets=buckets, gather_s=r.gather,
            gather_layer_s=r.gather_layer, scatter_layer_s=r.scatter_layer,
            tensor_layer_s=tensor_layer, present=r.n_params > 0))
        exposed = np.where(zero_eff == 3, layered, np.where(zero_eff == 2, exposed, 0.0))
        dp_exposed = dp_exposed + np.where(present, exposed, 0.0)
        local_params = local_params + r.trained / np.where(zero_eff >= 1, r.size, 1.0)
    # ZeRO-0/1: the dense and the expert reductions share the NICs and the one backward that hides them, one after
    # the other. Each model chunk's buckets go once its last micro-batch's backward has produced them (Megatron-LM
    # DistributedDataParallel per chunk, overlap_grad_reduce), behind a share h of that chunk-backward's compute
    # (B/v, B one micro-batch's backward compute on the stage); under the interleaved schedule chunk j from the end
    # is ready j x g chunk-backwards before the step's last (g its micro-batch group, spec.training.microbatch_group:
    # pp where pp divides m), and the reduction's own stream runs under all of
    # them, their recompute and collectives too (W/v each, W a micro-batch's backward wall time: the cool-down
    # after the first chunk is ready is backwards only). Its 1/v of the reduction queued behind the earlier ones,
    # the last of the queue ends max(T/v - h B/v, T - h B/v - (v-1) g W/v) after the backward: with v = 1,
    # T - h B. (The simulator found W, not h B, under the later chunks: the million-GPU scenario's interleaved
    # configurations up to 21% slow.) Under ZB-H1 (v = 1) B is its weight-gradient pass.
    # Software that reduces after the backward (software.dp_overlap false: Megatron-LM before
    # --overlap-grad-reduce, train_step's reduce_model_grads after forward_backward_func, 285068c8
    # megatron/training.py 413-425; DeepSpeed's pipeline engine, ReduceGrads after the schedule's last step,
    # deepspeed/runtime/pipe/schedule.py TrainSchedule) launches no chunk's buckets early: all of them after the
    # flush, nothing under the later chunks' backward.
    chunk_hidden = hide * grad_pass / vs
    backward_wall = t_mb - forward
    early = vs if software.dp_overlap else 1.0
    dp_exposed = dp_exposed + np.maximum.reduce([
        np.zeros_like(tp), once_grad / early - chunk_hidden,
        once_grad - chunk_hidden - (early - 1.0) * pipeline_group(m_sched, pp) * backward_wall / vs]) + np.maximum(
            once_gather - hide * fwd_mb, 0.0)

    cpu_step = memory.cpu_step_params > 0
    optimizer = np.where(cpu_step, 0.0, memory_bound_s(cluster.accelerator, cal, OPTIMIZER_BYTES_PER_PARAM
                                                       * local_params, OPTIMIZER_KERNELS)) + cal.step_overhead_s
    offload = _offload_s(s, memory, m, fwd_mb, bwd_mb)

    budget = hbm_budget_bytes(s)
    parts = {
        "compute": m * compute_mb,
        "recompute": m * recompute_mb,
        "tp_comm": m * tp_mb,
        "cp_comm": m * cp_mb,
        "ep_comm": ep_part,
        "pp_comm": pp_part,
        "pipeline_bubble": bubble,
        "dp_comm": dp_exposed,
        "optimizer": optimizer,
        "offload": offload,
    }
    ops = OpCosts(
        microbatches=m, layer={kind: {a: mixed(kind, a, model_window_share) for a in (*layer_parts, "wgrad", "ep_raw")}
                               for kind in times},
        head_fwd_s=head_f, head_bwd_s=head_b, head_wgrad_s=head_wgrad, pp_send_s=prepared.pp_time, zero_stage=zero_eff, dp_hide=hide,
        fsdp_prefetch=cal.fsdp_prefetch_overlap, zero3_by_layer=software.zero3_gather == "layer",
        recompute_fraction=rfrac, replicas=tuple(replica_ops), optimizer_s=optimizer, offload_s=offload,
        dp_after_flush=not software.dp_overlap)
    return StepArrays(parts=parts, memory=memory, fits=memory_fits(s, memory), microbatches=m,
                      hbm_budget_bytes=budget, algorithms=algorithms, microbatch_s=t_mb,
                      microbatch_forward_s=forward, critical_path_s=t_crit, host_wait_s=cal.step_overhead_s,
                      weight_gradient_s=t_w, alone_s=t_alone, ops=ops)
