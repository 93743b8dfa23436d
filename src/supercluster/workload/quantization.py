"""Low-precision GEMM formats of a training run: what an fp8 or fp4 run's matrix multiplications read, cast and keep.

A run in ``fp8`` (Transformer Engine's delayed, current or MXFP8 block scaling) or ``fp4`` (its NVFP4 recipe:
E2M1 values with one E4M3 scale per 16 elements and a per-tensor fp32 scale, random Hadamard transforms on the
weight-gradient inputs, stochastic rounding of gradients; NVIDIA, "Pretraining Large Language Models with NVFP4",
arXiv:2509.25149, and Transformer Engine's NVFP4BlockScaling recipe) quantizes each GEMM's inputs before the GEMM.
Activations between operators, attention and the optimizer stay in 16/32 bits (operators.ACT_BYTES).

Per format:
- ``operand_bytes``: bytes a GEMM reads per input element, scales included (fp8 1; NVFP4 0.5 + 1/16).
- ``quantize_bytes``: HBM bytes moved per quantized input element. fp8: an amax pass (read 2), the cast (read 2,
  write 1) and the transposed / column-wise copy the weight-gradient GEMM reads (write 1) = 6. NVFP4 adds the
  Hadamard transform of the column-wise copy, the two-level scales and stochastic rounding; Transformer Engine's GEMM
  profiling guide (docs/examples/gemm_profiling/gemm_profiling.rst, B300, a 4096/16384-wide layer at 15,872
  tokens) measures the quantization overhead of a layer (autocast minus pre-quantized time, forward + both
  backward GEMMs) at 6.453 - 3.764 = 2.689 ms for NVFP4 against 8.984 - 7.161 = 1.823 ms for MXFP8 on the same
  GEMMs: 1.475 times fp8's bytes.
- ``stored_input_bytes``: bytes per element of the quantized GEMM input Transformer Engine keeps for the backward
  instead of the 16-bit one (its column-wise copy for the weight gradient).
- ``weight_cache_scale``: the quantized weight copy and transpose a run keeps beside its 16-bit weights, relative to
  fp8's (the framework's ``fp8_weight_cache_bytes``, software catalog): operand bytes over fp8's.
- ``dispatch_bytes``: bytes per element of a mixture-of-experts dispatch sent quantized (DeepEP's fp8 dispatch,
  one fp32 scale per 128-element block, DeepSeek-V3 §3.3.2); an fp4 run dispatches in fp8 as well (the expert
  GEMM quantizes to NVFP4 after the all-to-all).

The GEMM rate of a format is the accelerator's (catalog ``dense_peak_flops_per_s`` x ``matmul.max_fraction``).
"""

from __future__ import annotations

from dataclasses import dataclass

FP8_QUANTIZE_BYTES = 6.0
NVFP4_OVER_FP8_QUANTIZE = 2.689 / 1.823  # Transformer Engine GEMM profiling guide, B300 (module docstring)
NVFP4_OPERAND_BYTES = 0.5 + 1.0 / 16.0  # 4-bit E2M1 values + one 1-byte E4M3 scale per 16-element block
FP8_DISPATCH_SCALE_BYTES = 4.0 / 128.0  # one fp32 scale per 128-element block (DeepSeek-V3 §3.3.2, DeepEP)


@dataclass(frozen=True)
class LowPrecisionFormat:
    name: str
    operand_bytes: float
    quantize_bytes: float
    stored_input_bytes: float
    weight_cache_scale: float
    dispatch_bytes: float


_FP8_DISPATCH = 1.0 + FP8_DISPATCH_SCALE_BYTES
FORMATS: dict[str, LowPrecisionFormat] = {
    "fp8": LowPrecisionFormat("fp8", 1.0, FP8_QUANTIZE_BYTES, 1.0, 1.0, _FP8_DISPATCH),
    "fp4": LowPrecisionFormat("fp4", NVFP4_OPERAND_BYTES, FP8_QUANTIZE_BYTES * NVFP4_OVER_FP8_QUANTIZE,
                              NVFP4_OPERAND_BYTES, NVFP4_OPERAND_BYTES, _FP8_DISPATCH),
}


def low_precision(precision: str) -> LowPrecisionFormat | None:
    """The quantized GEMM format of a training precision (None for 16-bit training)."""
    return FORMATS.get(precision)
