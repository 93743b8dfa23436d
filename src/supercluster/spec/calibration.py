"""Global calibration knobs of the step model: named, documented, fitted on the calibration set only.

The values live in ``catalog/calibration.yaml`` with how they were fitted; a scenario may override them under
``calibration:`` to ask "what if".
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from pydantic import Field

from .base import Fraction, NonNegativeFloat, Spec


class Calibration(Spec):
    tp_comm_overlap: float = Field(ge=0, le=1, description="share of tensor-parallel communication hidden")
    dp_comm_overlap: float = Field(ge=0, le=1, description="share of the last backward (forward) that hides "
                                   "the gradient reduce (parameter all-gather)")
    cp_comm_overlap: float = Field(ge=0, le=1, description="share of attention compute that hides ring KV traffic")
    ep_comm_overlap: float = Field(ge=0, le=1, description="share of expert all-to-all hidden")
    kernel_gap_s: NonNegativeFloat = Field(description="GPU idle time between consecutive kernels")
    attention_half_seq: NonNegativeFloat = Field(description="key length at which flash attention reaches half "
                                                 "its asymptotic throughput")
    matmul_scale: Fraction = Field(
        description="GEMM throughput sustained inside a training step / the isolated best-shape benchmark (MAMF)")
    collective_launch_s: NonNegativeFloat = Field(description="fixed cost of launching one NCCL collective")
    a2a_per_peer_s: NonNegativeFloat = Field(description="cost per peer of a pairwise all-to-all (send/recv posting)")
    serial_launch_per_gpu_s: NonNegativeFloat = Field(description="extra launch time per additional GPU driven by "
                                                      "one process (nccl-tests -g N)")
    nvls_min_gpus: int = Field(ge=2, description="fewest GPUs in a domain for NVLS to be used")
    hierarchical_overlap: float = Field(ge=0, le=1, description="overlap of the intra- and inter-domain phases "
                                        "of a hierarchical all-reduce")
    collective_ramp_bytes: dict[str, float] = Field(description="message size at which each point-to-point "
                                                   "algorithm (pairwise all-to-all, send/recv, broadcast) reaches "
                                                   "half its asymptotic bandwidth")
    nccl_latency_s: dict[str, float] = Field(description="NCCL's own cost-model latencies (src/graph/tuning.cc): "
                                             "base latency per algorithm and protocol, per-step latency over "
                                             "NVLink and the network")
    source: str = "catalog/calibration.yaml"


@cache
def default_calibration() -> Calibration:
    text = resources.files("supercluster.catalog").joinpath("calibration.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)["calibration"]
    return Calibration.model_validate({k: v["value"] for k, v in data.items()})
