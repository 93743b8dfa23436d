"""StepReport: one configuration's step, with the figures a user decides on and their breakdowns."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..network.cost import ALGORITHMS
from ..network.placement import LEVEL_NAMES, axis_strides, place, weight_replica_group
from ..network.topology import build_topology
from ..spec.base import AttentionBackend
from ..spec.scenario import Scenario
from ..spec.training import LoRA, lm_head_precision, resolved_fp8_recipe, selective_modules
from ..workload.dispatch import dispatch_group
from ..workload.flops import model_flops_per_token, recompute_flops_per_token
from ..workload.params import param_counts
from .candidates import Candidates
from .step import PARTS, StepArrays


class Uncertainty(BaseModel):
    """From which calibration runs a prediction's interval is drawn (search.uncertainty)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rel_error_range: tuple[float, float]  # (e_min - d, e_max + d): their cross-validated predicted / measured - 1,
    # widened by the source spread d
    rows: list[str]  # the runs, nearest first
    source_spread: float = 0.0  # d: the standard deviation of the sources' mean cross-validated errors
    calibration: str  # the calibration file whose residuals were used
    basis: str
    unmatched: list[str] = []  # the scenario's kinds no fitted run shares (the band then comes from the listed runs
    # of those kinds, if any: search.uncertainty)


class PipelineReport(BaseModel):
    """The pipeline of one iteration as the step model times it (perf.step): pp stages of v chunks each running m
    micro-batches, one micro-batch taking ``microbatch_s`` on the busiest stage (its forward and backward, the
    backward with the recompute) and ``critical_path_s`` through every stage; ``pipeline_s`` = m x microbatch_s +
    ``bubble_s``, under ``schedule`` (perf.pipeline; ZB-H1 and DualPipe defer ``weight_gradient_s`` of the
    backward; under DualPipe ``microbatch_s`` is ``overlapped_pair_s``, one micro-batch's forward overlapped with
    another's backward, and ``forward_s`` + ``backward_s`` a micro-batch run alone). perf.schedule draws its
    blocks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stages: int
    virtual_stages: int
    schedule: Literal["1f1b", "interleaved", "zb-h1", "dualpipe"] = "1f1b"
    microbatches: int
    flushes: int = 1  # pipeline schedules a step, each over microbatches / flushes (training.pipeline_flushes)
    microbatch_s: float
    forward_s: float
    backward_s: float
    critical_path_s: float
    pipeline_s: float
    bubble_s: float
    # the backward's weight-gradient passes (ZB-H1 and DualPipe defer them) and DualPipe's overlapped pair of one
    # micro-batch's forward and another's backward (None: their sum)
    weight_gradient_s: float = 0.0
    overlapped_pair_s: float | None = None


class StepReport(BaseModel):
    """All times in seconds, memory in bytes, FLOPs per token; ``breakdown`` sums to ``step_time_s``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: str
    cluster: str
    model: str
    accelerator: str
    num_gpus: int
    precision: str
    fp8_recipe: str | None = None  # an fp8 run's scaling recipe, as stated or Transformer Engine's default
    lm_head_precision: str | None = None  # an fp8 / fp4 run's LM-head projection: bf16, or fp8 (fp8_output_proj)
    software_date: date | None = None  # the release the run's software is of (training.software_date; None: today's)
    attention_backend: AttentionBackend = "auto"  # the fused-attention kernels (training.attention_backend)
    attention_fraction: float | None = None  # fused attention's share of the 16-bit peak the step was timed with:
    # the accelerator's kernel generation for software_date and attention_backend (Accelerator.attention_fraction_at)
    parallelism: dict[str, Any]
    microbatches: float
    step_time_s: float
    breakdown: dict[str, float]
    tokens_per_step: float
    tokens_per_s: float
    mfu: float
    hfu: float
    time_to_train_s: float
    gpu_hours: float
    training_tokens: float
    memory_per_gpu_bytes: float
    memory_breakdown: dict[str, float]
    hbm_bytes: float
    hbm_budget_bytes: float
    host_wait_s: float = 0.0  # of the optimizer part: host work the GPUs wait for, SMs idle (the power model's)
    lora: LoRA | None = None  # LoRA fine-tuning (frozen base weights, workload.lora); None: every weight trained
    host_memory_bytes: float = 0.0  # what the run keeps in host memory per GPU (offloading)
    fits: bool
    params: float
    active_params: float
    model_flops_per_token: float
    hardware_flops_per_token: float
    groups: dict[str, dict[str, Any]] = {}
    # where the measured figures should lie, from the cross-validated errors of the most similar calibration runs
    step_time_interval_s: tuple[float, float] | None = None
    time_to_train_interval_s: tuple[float, float] | None = None
    mfu_interval: tuple[float, float] | None = None
    uncertainty: Uncertainty | None = None
    pipeline: PipelineReport | None = None


def step_report(s: Scenario, c: Candidates, arrays: StepArrays, i: int) -> StepReport:
    """The report of candidate ``i``."""
    par = c.row(i)
    lps = -(-s.model.layers // par["pp"])
    par["recompute_layers"] = int(round(float(arrays.memory.recompute_fraction[i]) * lps))
    step = float(arrays.step_time_s[i])
    seq = s.seq_len
    tokens_step = float(s.training.global_batch * seq)
    tokens_per_s = tokens_step / step
    n = s.cluster.num_gpus
    peak = s.cluster.accelerator.peak_flops_per_s(s.training.precision)
    mflops = model_flops_per_token(s.model, seq, s.training.lora)
    frac = float(arrays.memory.recompute_fraction[i])  # full-layer recompute share (full: 1, block: k/L)
    hflops = mflops + (frac * recompute_flops_per_token(s.model, seq, "full") if frac > 0
                       else recompute_flops_per_token(s.model, seq, par["recompute"], selective_modules(s.training)))
    time_to_train = s.training.tokens / tokens_per_s
    pc = param_counts(s.model)
    mem = {k: float(v[i]) for k, v in arrays.memory.parts().items()}
    t_mb, fwd = float(arrays.microbatch_s[i]), float(arrays.microbatch_forward_s[i])
    m = float(arrays.microbatches[i])
    dual = par["schedule"] == "dualpipe"
    alone = float(arrays.alone_s[i]) if arrays.alone_s is not None else t_mb  # DualPipe: t_mb is the pair
    pipeline = PipelineReport(
        stages=int(par["pp"]), virtual_stages=int(par["virtual_stages"]), schedule=par["schedule"],
        microbatches=int(round(m)), flushes=s.training.pipeline_flushes,
        microbatch_s=t_mb, forward_s=fwd, backward_s=alone - fwd, critical_path_s=float(arrays.critical_path_s[i]),
        pipeline_s=m * t_mb + float(arrays.parts["pipeline_bubble"][i]),
        bubble_s=float(arrays.parts["pipeline_bubble"][i]),
        weight_gradient_s=float(arrays.weight_gradient_s[i]) if arrays.weight_gradient_s is not None else 0.0,
        overlapped_pair_s=t_mb if dual else None)
    report = StepReport(
        scenario=s.name, cluster=s.cluster.name, model=s.model.name, accelerator=s.cluster.accelerator.name,
        num_gpus=n, precision=s.training.precision,
        fp8_recipe=resolved_fp8_recipe(s.training, s.cluster.accelerator.architecture), parallelism=par,
        lm_head_precision=lm_head_precision(s.training), software_date=s.training.software_date,
        attention_backend=s.training.attention_backend,
        attention_fraction=s.cluster.accelerator.attention_fraction_at(s.training.software_date,
                                                                      s.training.attention_backend),
        microbatches=float(arrays.microbatches[i]), step_time_s=step,
        breakdown={p: float(arrays.parts[p][i]) for p in PARTS},
        tokens_per_step=tokens_step, tokens_per_s=tokens_per_s,
        mfu=mflops * tokens_per_s / (n * peak), hfu=hflops * tokens_per_s / (n * peak),
        time_to_train_s=time_to_train, gpu_hours=time_to_train * n / 3600.0, training_tokens=s.training.tokens,
        memory_per_gpu_bytes=float(arrays.memory.total_bytes[i]), memory_breakdown=mem,
        hbm_bytes=s.cluster.accelerator.hbm_bytes, hbm_budget_bytes=arrays.hbm_budget_bytes,
        host_wait_s=min(arrays.host_wait_s, float(arrays.parts["optimizer"][i])), lora=s.training.lora,
        host_memory_bytes=float(arrays.memory.host_bytes[i]),
        fits=bool(arrays.fits[i]), params=float(pc.total), active_params=float(pc.active),
        model_flops_per_token=mflops, hardware_flops_per_token=hflops, pipeline=pipeline,
    )
    groups = group_placement(s, par)
    for axis, grp in groups.items():  # the algorithm the step model chose for the axis's main collective
        grp["algorithm"] = ALGORITHMS[int(arrays.algorithms[axis][i])] if grp["size"] > 1 else "-"
    return report.model_copy(update={"groups": groups})


def group_label(axis: str, group: dict[str, Any], par: dict[str, Any]) -> str:
    """How a report names an axis's group: the dp row is the weight replicas (dp x cp) with context parallelism, the ep
    row the experts' shards too when the dispatch spans them (a flex dispatcher with etp > 1)."""
    if axis == "dp" and par["cp"] > 1:
        return "dp × cp"
    if axis == "ep" and group["size"] != par["ep"]:
        return "ep × etp"
    return axis


def group_placement(s: Scenario, par: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """For each parallel axis: group size, rank stride, members per node, nodes spanned, links crossed."""
    topo = build_topology(s.cluster)
    deg = {k: np.array([float(par[k])]) for k in ("tp", "cp", "dp", "pp")}
    strides = axis_strides(par["order"].split("-"), deg)  # the candidate's own layout (Candidates.row)
    groups = {
        "tp": (par["tp"], strides["tp"]),
        "cp": (par["cp"], strides["cp"]),
        "ep": dispatch_group(s.training, np.array([float(par["ep"])]), np.array([float(par["etp"])])),
        "dp": weight_replica_group(strides, np.array([float(par["dp"])]), np.array([float(par["cp"])])),
        "pp": (par["pp"], strides["pp"]),
    }
    out: dict[str, dict[str, Any]] = {}
    for axis, (size, stride) in groups.items():
        p = place(s.cluster, topo, np.atleast_1d(np.asarray(size, dtype=np.float64)), stride)
        level = int(p.level[0])
        size = int(np.asarray(size).ravel()[0])
        out[axis] = {"size": size, "stride": int(stride[0]), "per_node": int(p.per_domain[0]),
                     "nodes": int(p.domains[0]), "level": level if size > 1 else 0,
                     "crosses": LEVEL_NAMES[min(level, len(LEVEL_NAMES) - 1)] if size > 1 else "-"}
    return out
