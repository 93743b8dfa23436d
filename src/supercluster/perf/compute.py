"""Time of compute kernels on one accelerator: shape-aware GEMMs, flash attention, memory-bound operators.

GEMM: FLOPs at the achievable matmul fraction (MAMF, catalog) scaled by wave quantisation, against HBM bytes: a
GEMM split into ceil(M/tm)*ceil(N/tn) output tiles runs in ceil(tiles/units) waves on `units` SMs/CUs, so a small
or skinny GEMM leaves units idle in its last wave (the saw-tooth of cuBLAS sweeps; NVIDIA "Matrix Multiplication
Background User's Guide", wave quantization). Rows and columns are padded to the accelerator's smallest tile edge
(`matmul.block`): an expert that gets a few hundred tokens computes whole blocks. The compute time t_c and the
memory time t_m (operands read once, the 16-bit output written once) overlap imperfectly: the GEMM takes
(t_c^p + t_m^p)^(1/p), p the calibration's gemm_overlap_exponent, fitted on measured GEMM throughputs by shape
(validate/gemms.yaml, benchmarks/fit_gemm_overlap.py). A compute-bound GEMM (t_m << t_c) takes about t_c; one
whose two times are equal takes 2^(1/p) of either, where the plain roofline (p -> infinity) says 1: DeepGEMM's FP8
GEMMs on an H800 run at 775 TFLOPS at K = 512 and at 932 with 256 rows an expert, where the roofline puts both
near the 1,500 of large shapes.
Attention: executed FLOPs at the catalog's flash-attention fraction of the 16-bit peak (of the kernel generation the
run's software had, Accelerator.attention_fraction_at), scaled by s/(s + s_half) for short key lengths (a
sliding-window layer's executed FLOPs are those of its equivalent key length, s*k(s,w)/k(s,s), workload.window, and
its kernel runs at w/(w + w_half) of the long-sequence rate, the accelerator's measured attention_window_half_keys; a
layer without a window, or with one covering the sequence, keeps the calibrated behaviour), and by (d/128)^b for heads
narrower than the catalog fractions' 128 (b: the accelerator's attention_head_dim_exponent, catalog/accelerators.yaml
attention_head_dim_note).
Memory-bound operators: bytes at the achievable share of HBM bandwidth.
Every kernel also pays a fixed gap (launch and tail).
"""

from __future__ import annotations

import numpy as np

from ..spec.calibration import Calibration
from ..spec.hardware import Accelerator
from ..workload.operators import ATTENTION_BWD_OVER_FWD, Gemm
from ..workload.quantization import ScalingRecipe, low_precision


def _gemm_shape_s(acc: Accelerator, cal: Calibration, precision: str, recipe: ScalingRecipe | None,
                  m: np.ndarray, n: np.ndarray, k: np.ndarray, count: np.ndarray | float) -> np.ndarray:
    m = np.maximum(m, 1.0)
    n = np.maximum(n, 1.0)
    k = np.maximum(k, 1.0)
    rate = recipe.kernel_rate if recipe is not None else 1.0  # a block-scaled kernel's rate (quantization.py)
    peak = acc.peak_flops_per_s(precision) * acc.matmul_fraction(precision) * cal.matmul_scale * rate
    tiles = np.ceil(m / acc.matmul.tile_m) * np.ceil(n / acc.matmul.tile_n) * np.asarray(count)
    units = acc.compute_units
    wave_eff = tiles / (np.ceil(tiles / units) * units)
    # a kernel computes whole blocks of output: rows and columns padded to the smallest tile edge (catalog)
    block = acc.matmul.block
    m_pad = np.ceil(m / block) * block
    n_pad = np.ceil(n / block) * block
    t_compute = 2.0 * m_pad * n_pad * k * count / (peak * wave_eff)
    fmt = low_precision(precision)
    elem = fmt.operand_bytes if fmt is not None else 2.0
    t_memory = (m * k + k * n) * elem * count + m * n * 2.0 * count
    t_memory = t_memory / (acc.hbm_bandwidth_bytes_per_s * acc.memory_bound_fraction)
    p = cal.gemm_overlap_exponent
    longer = np.maximum(t_compute, t_memory)  # the p-norm relative to the longer time: no underflow for any p
    ratio = np.minimum(t_compute, t_memory) / np.where(longer > 0, longer, 1.0)
    return longer * (1.0 + ratio ** p) ** (1.0 / p) + cal.kernel_gap_s


def gemm_s(acc: Accelerator, cal: Calibration, precision: str, m: np.ndarray, n: np.ndarray, k: np.ndarray,
           count: np.ndarray | float = 1.0) -> np.ndarray:
    """Time of ``count`` M x N x K GEMMs in one kernel (a grouped GEMM's experts), operands in ``precision``
    scaled per tensor, a 16-bit output."""
    return _gemm_shape_s(acc, cal, precision, None, m, n, k, count)


def gemm_forward_s(acc: Accelerator, cal: Calibration, precision: str, recipe: ScalingRecipe | None,
                   g: Gemm) -> np.ndarray:
    """``recipe``: the run's scaling recipe (quantization.scaling_recipe), for its GEMMs in fp8 or fp4."""
    prec, rec = (precision, recipe) if g.low_precision else ("bf16", None)
    return _gemm_shape_s(acc, cal, prec, rec, g.m, g.n, g.k, g.count)


def gemm_backward_s(acc: Accelerator, cal: Calibration, precision: str, recipe: ScalingRecipe | None,
                    g: Gemm) -> np.ndarray:
    """Input gradient (M x K, reduction over N) plus weight gradient (N x K, reduction over M); a frozen weight
    (LoRA's base weights) gets no weight gradient."""
    prec, rec = (precision, recipe) if g.low_precision else ("bf16", None)
    dgrad = _gemm_shape_s(acc, cal, prec, rec, g.m, g.k, g.n, g.count)
    return dgrad + _gemm_shape_s(acc, cal, prec, rec, g.n, g.k, g.m, g.count) if g.trainable else dgrad


ATTENTION_HEAD_DIM_REF = 128  # head width of the catalog's attention fractions


def head_dim_efficiency(acc: Accelerator, head_dim: float) -> float:
    """Attention throughput at this query/key head width over that at 128 (1 from 128 up)."""
    return min(1.0, head_dim / ATTENTION_HEAD_DIM_REF) ** acc.attention_head_dim_exponent


def attention_s(acc: Accelerator, cal: Calibration, flops: np.ndarray, key_len: np.ndarray,
                backward: bool = False, head_dim: float = ATTENTION_HEAD_DIM_REF,
                fraction: float | None = None, window: float | None = None) -> np.ndarray:
    """Flash attention (16-bit even in fp8 and fp4 runs, as Transformer Engine does by default); ``fraction``: the
    kernels' share of the peak (Accelerator.attention_fraction_at the run's software; None: the newest); ``window``:
    a sliding-window layer's window, its kernel at w / (w + w_half) of the long-sequence rate (the accelerator's
    attention_window_half_keys), at most a full layer's rate at its key length."""
    key_len = np.asarray(key_len, dtype=np.float64)
    share = acc.attention_fraction if fraction is None else fraction
    ramp = key_len / (key_len + cal.attention_half_seq)
    if window is not None:
        ramp = np.minimum(ramp, window / (window + acc.attention_window_half_keys))
    rate = acc.peak_flops_per_s("bf16") * share * ramp * head_dim_efficiency(acc, head_dim)
    mult = ATTENTION_BWD_OVER_FWD if backward else 1.0
    return np.where(flops > 0, mult * flops / rate + cal.kernel_gap_s * (2 if backward else 1), 0.0)


def memory_bound_s(acc: Accelerator, cal: Calibration, n_bytes: np.ndarray, kernels: float) -> np.ndarray:
    return n_bytes / (acc.hbm_bandwidth_bytes_per_s * acc.memory_bound_fraction) + kernels * cal.kernel_gap_s
