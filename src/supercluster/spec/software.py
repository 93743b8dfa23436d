"""Training software as the memory model needs it (catalog/software.yaml): how a framework holds a run's state."""

from __future__ import annotations

from datetime import date
from functools import cache

from pydantic import Field, PositiveFloat

from . import catalog
from .base import Cited, Spec
from .training import Framework, Schedule

Family = str  # accelerator generation: ampere | hopper | blackwell


class Nccl(Spec):
    connection_bytes: PositiveFloat = Field(description="buffers of one connection, every protocol")
    channels: PositiveFloat = Field(description="channels a communicator opens")
    peers: PositiveFloat = Field(description="ring peers per channel")
    init_bytes: float = Field(ge=0, description="NCCL's own kernels and state, once per process")


class Zero3ByTensor(Spec):
    """DeepSpeed's ZeRO-3 defaults of the releases that gathered tensor by tensor (before 0.6), in parameters."""

    max_live_parameters: PositiveFloat = Field(description="gathered parameters the coordinator keeps at most")
    prefetch_bucket_size: float = Field(ge=0, description="parameters prefetched ahead of their module")
    reduce_bucket_size: PositiveFloat = Field(description="gradient elements reduced together")
    source: str

    @property
    def params(self) -> tuple[float, float, float]:
        return self.max_live_parameters, self.prefetch_bucket_size, self.reduce_bucket_size


class Software(Cited):
    grad_bytes: dict[str, float] = Field(description="gradient buffer element by precision")
    master_bytes: dict[str, float] = Field(description="fp32 master weights (+ fp16's fp32 gradient copy)")
    state_bytes: float = Field(ge=0, description="Adam's m and v per parameter")
    step_transient_bytes: float = Field(ge=0, description="per parameter of the optimizer partition, at the step")
    unsharded_step_transient_bytes: float = Field(0.0, ge=0, description="per parameter, at the step of an "
                                                                        "optimizer not sharded (ZeRO-0)")
    fp8_weight_cache_bytes: float = Field(ge=0)
    fp8_param_bytes: float = Field(ge=0)
    loss_logit_bytes: float = Field(ge=0)
    loss_upcast_bytes: dict[str, float] = Field(description="eager | fused")
    cublas_workspace_bytes: dict[Family, float]
    cublas_handles: float = Field(ge=0)
    te_workspace_bytes: dict[Family, float]
    grouped_gemm_workspace_bytes: float = Field(ge=0)
    te_ub_workspaces: float = Field(0.0, ge=0, description="TE workspaces of GEMMs overlapped with tensor-parallel "
                                                           "communication (Userbuffers), beside the plain one")
    cuda_context_bytes: float = Field(ge=0)
    nccl: Nccl
    reserved_over_allocated: float = Field(ge=1.0)
    eager_fp32_copies: bool = Field(description="uncompiled code keeps fp32 norm and rotary copies and expanded k, v")
    lazy_gradients: bool = Field(description="gradients allocated by the backward and freed after the step")
    fsdp_gather_params: float = Field(ge=0, description="ZeRO-3 parameters gathered at a time (at least two layers)")
    zero3_by_tensor: Zero3ByTensor | None = Field(
        None, description="ZeRO-3 as DeepSpeed ran it tensor by tensor before 0.6 (training.zero3_gather 'tensor')")
    fsdp_keeps_outer_params_since: date | None = Field(
        None, description="from this release on, ZeRO-3 keeps the parameters outside its sharded units (embedding, "
                          "output layer) gathered in 16-bit between steps; null: never")
    schedules: list[Schedule] = Field(min_length=1, description="the pipeline schedules the framework runs")
    moe_dispatch_fp8: bool = Field(False, description="an fp8 or fp4 run's MoE dispatch moves fp8 values with block "
                                                      "scales (else 16-bit hidden states)")


@cache
def framework_software(framework: Framework) -> Software:
    """The catalog's entry for a framework (catalog/software.yaml), validated."""
    return Software.model_validate(catalog.entry("software", framework))
