"""Hardware specs: Accelerator, Node, Fabric, Cluster, Facility.

Values are SI with the unit in the field name (bytes, bytes/s, FLOP/s, s, W).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import (
    MAX_GPUS,
    Cited,
    Fraction,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Precision,
    Spec,
    Transport,
)


class MatmulModel(Spec):
    """Shape-aware matmul efficiency: the achievable fraction of dense peak on a large, well-shaped GEMM
    (maximum achievable matmul FLOPs, MAMF) and the output tile a kernel computes per SM, which sets the
    wave quantisation of small or skinny GEMMs."""

    max_fraction: dict[Precision, Fraction]
    tile_m: PositiveInt = 128
    tile_n: PositiveInt = 256
    source: str = Field(min_length=1)


class Accelerator(Cited):
    vendor: str
    form_factor: str = "SXM"
    dense_peak_flops_per_s: dict[Precision, PositiveFloat]
    hbm_bytes: PositiveFloat
    hbm_bandwidth_bytes_per_s: PositiveFloat
    scale_up_bandwidth_bytes_per_s: PositiveFloat = Field(
        description="unidirectional scale-up (NVLink / Infinity Fabric) bandwidth per GPU"
    )
    tdp_w: PositiveFloat
    compute_units: PositiveInt = Field(description="SMs (NVIDIA) or CUs (AMD)")
    matmul: MatmulModel
    attention_fraction: Fraction = Field(
        description="achieved fraction of 16-bit dense peak by fused (flash) attention fwd+bwd, long sequences"
    )
    memory_bound_fraction: Fraction = Field(description="achievable fraction of HBM bandwidth, streaming kernels")
    kernel_overhead_s: NonNegativeFloat = Field(default=4e-6, description="fixed cost per kernel (launch, tail)")

    def peak_flops_per_s(self, precision: str) -> float:
        """Dense peak for a precision; fp8 falls back to the 16-bit peak on GPUs without fp8 tensor cores."""
        if precision in self.dense_peak_flops_per_s:
            return self.dense_peak_flops_per_s[precision]
        for fallback in ("bf16", "fp16"):
            if fallback in self.dense_peak_flops_per_s:
                return self.dense_peak_flops_per_s[fallback]
        raise KeyError(precision)

    def matmul_fraction(self, precision: str) -> float:
        mf = self.matmul.max_fraction
        if precision in mf:
            return mf[precision]
        for fallback in ("bf16", "fp16"):
            if fallback in mf:
                return mf[fallback]
        raise KeyError(precision)

    @model_validator(mode="after")
    def _has_16bit_peak(self) -> Accelerator:
        if not ({"bf16", "fp16"} & set(self.dense_peak_flops_per_s)):
            raise ValueError("dense_peak_flops_per_s needs a bf16 or fp16 entry")
        if not ({"bf16", "fp16"} & set(self.matmul.max_fraction)):
            raise ValueError("matmul.max_fraction needs a bf16 or fp16 entry")
        return self


class Fabric(Cited):
    """The scale-out network as the step model needs it; topology detail comes with the network layer."""

    transport: Transport
    tiers: PositiveInt = 2
    oversubscription: PositiveFloat = 1.0
    switch: str | None = None
    link_latency_s: PositiveFloat = Field(default=5e-6, description="per-hop-step latency of a collective step")
    achievable_fraction: Fraction = Field(description="busbw / line rate a ring collective reaches")


class Cluster(Cited):
    accelerator: Accelerator
    num_gpus: PositiveInt = Field(le=MAX_GPUS)
    gpus_per_node: PositiveInt = 8
    scale_up_domain_gpus: PositiveInt | None = Field(
        default=None, description="GPUs sharing one NVLink/NVSwitch domain (8 for HGX, 72 for NVL72)"
    )
    scale_up_latency_s: PositiveFloat = 2e-6
    scale_up_achievable_fraction: Fraction = 0.8
    scale_out_bandwidth_per_gpu_bytes_per_s: PositiveFloat = Field(
        description="network injection bandwidth per GPU (NIC line rate), bytes/s"
    )
    fabric: Fabric

    @property
    def domain_gpus(self) -> int:
        return self.scale_up_domain_gpus or self.gpus_per_node

    @model_validator(mode="after")
    def _domain_fits(self) -> Cluster:
        if self.domain_gpus < self.gpus_per_node and self.gpus_per_node % self.domain_gpus:
            raise ValueError(
                f"scale_up_domain_gpus({self.domain_gpus}) must divide gpus_per_node({self.gpus_per_node})"
            )
        return self


class Facility(Cited):
    """Minimal for now: the facility layer fills this out."""

    pue: PositiveFloat = 1.2
    location: str | None = None
    cooling: str | None = None
    wue_l_per_kwh: NonNegativeFloat | None = None
    grid_carbon_g_per_kwh: NonNegativeFloat | None = None
    electricity_usd_per_kwh: NonNegativeFloat | None = None
