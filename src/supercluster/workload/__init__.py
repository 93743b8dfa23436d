"""Pure accounting of what a training run computes and stores: parameters, FLOPs, operators, memory."""

from .flops import model_flops_per_token, recompute_flops_per_token
from .memory import MemoryBreakdown, memory_per_gpu
from .model_report import ModelReport, model_report
from .operators import Gemm, LayerWork, layer_work, lm_head_work
from .params import ParamCounts, param_counts

__all__ = [
    "Gemm",
    "LayerWork",
    "MemoryBreakdown",
    "ModelReport",
    "ParamCounts",
    "layer_work",
    "lm_head_work",
    "memory_per_gpu",
    "model_report",
    "model_flops_per_token",
    "param_counts",
    "recompute_flops_per_token",
]
