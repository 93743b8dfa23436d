"""Low-precision GEMM formats of a training run: what an fp8 or fp4 run's matrix multiplications read, cast and keep.

A run in ``fp8`` (Transformer Engine's delayed, current or MXFP8 block scaling) or ``fp4`` (its NVFP4 recipe:
E2M1 values with one E4M3 scale per 16 elements and a per-tensor fp32 scale, random Hadamard transforms on the
weight-gradient inputs, stochastic rounding of gradients; NVIDIA, "Pretraining Large Language Models with NVFP4",
arXiv:2509.25149, and Transformer Engine's NVFP4BlockScaling recipe) quantizes each GEMM's inputs before the GEMM.
Activations between operators, attention and the optimizer stay in 16/32 bits (operators.ACT_BYTES).

Per format, two figures; the rest follows from them:
- ``operand_bytes``: bytes a GEMM reads per input element, scales included (fp8 1; NVFP4 0.5 + 1/16). The quantized
  copy of a GEMM input Transformer Engine keeps for the backward (its column-wise copy for the weight gradient) and
  the quantized weight copy and transpose kept beside the 16-bit weights take as many bytes an element.
- ``quantize_bytes``: HBM bytes moved per quantized input element. fp8: an amax pass (read 2), the cast (read 2,
  write 1) and the transposed / column-wise copy the weight-gradient GEMM reads (write 1) = 6. NVFP4 adds the
  Hadamard transform of the column-wise copy, the two-level scales and stochastic rounding; Transformer Engine's GEMM
  profiling guide (docs/examples/gemm_profiling/gemm_profiling.rst, B300, a 4096/16384-wide layer at 15,872
  tokens) measures the quantization overhead of a layer (autocast minus pre-quantized time, forward + both
  backward GEMMs) at 6.453 - 3.764 = 2.689 ms for NVFP4 against 8.984 - 7.161 = 1.823 ms for MXFP8 on the same
  GEMMs: 1.475 times fp8's bytes.
A mixture-of-experts dispatch of any quantized run moves fp8 values with one fp32 scale per 128-element block
(DeepEP's fp8 dispatch, DeepSeek-V3 §3.3.2; an fp4 run quantizes to NVFP4 after the all-to-all):
``QUANTIZED_DISPATCH_BYTES``.

The GEMM rate of a format is the accelerator's (catalog ``dense_peak_flops_per_s`` x ``matmul.max_fraction``).
"""

from __future__ import annotations

from dataclasses import dataclass

FP8_QUANTIZE_BYTES = 6.0
NVFP4_OVER_FP8_QUANTIZE = 2.689 / 1.823  # Transformer Engine GEMM profiling guide, B300 (module docstring)
NVFP4_OPERAND_BYTES = 0.5 + 1.0 / 16.0  # 4-bit E2M1 values + one 1-byte E4M3 scale per 16-element block
QUANTIZED_DISPATCH_BYTES = 1.0 + 4.0 / 128.0  # fp8 + one fp32 scale per 128-element block (DeepSeek-V3, DeepEP)


@dataclass(frozen=True)
class LowPrecisionFormat:
    operand_bytes: float
    quantize_bytes: float


FORMATS: dict[str, LowPrecisionFormat] = {
    "fp8": LowPrecisionFormat(1.0, FP8_QUANTIZE_BYTES),
    "fp4": LowPrecisionFormat(NVFP4_OPERAND_BYTES, FP8_QUANTIZE_BYTES * NVFP4_OVER_FP8_QUANTIZE),
}


def low_precision(precision: str) -> LowPrecisionFormat | None:
    """The quantized GEMM format of a training precision (None for 16-bit training)."""
    return FORMATS.get(precision)
