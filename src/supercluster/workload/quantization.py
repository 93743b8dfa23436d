"""Low-precision GEMM formats of a training run: what an fp8 or fp4 run's matrix multiplications read, cast and keep.

A run in ``fp8`` (Transformer Engine's delayed, per-tensor current or MXFP8 block scaling) or ``fp4`` (its NVFP4
recipe: E2M1 values with one E4M3 scale per 16 elements and a per-tensor fp32 scale, random Hadamard transforms on
the weight-gradient inputs, stochastic rounding of gradients; NVIDIA, "Pretraining Large Language Models with
NVFP4", arXiv:2509.25149, and Transformer Engine's NVFP4BlockScaling recipe) quantizes each GEMM's inputs before the
GEMM. Activations between operators, attention and the optimizer stay in 16/32 bits (operators.ACT_BYTES).

A format (``LowPrecisionFormat``) is what is stored and read: ``operand_bytes``, the bytes a GEMM reads per input
element, scales included (fp8 1; NVFP4 0.5 + 1/16). The quantized copy of a GEMM input Transformer Engine keeps for
the backward (its column-wise copy for the weight gradient) and the quantized weight copy and transpose kept beside
the 16-bit weights take as many bytes an element. (MXFP8's one-byte scale per 32 elements, 3%, is left out.)

A scaling recipe (``ScalingRecipe``) is how the run gets there and how fast its GEMMs then run:
- ``quantize_bytes``: HBM bytes moved per quantized input element (forward inputs, backward output gradients).
  delayed scaling (the scale from the amax history of earlier steps; Megatron-Core's default ``--fp8-recipe``,
  Transformer Engine's default before Blackwell): the cast (read 2, write 1) and the transposed / column-wise
  copy the weight-gradient GEMM reads (write 1) = 4, the amax taken inside the cast. Per-tensor current scaling
  (``tensorwise``) first reads the tensor for its amax (read 2) = 6. MXFP8 (Blackwell; one scale per 32
  elements, Transformer Engine's default there) quantizes the row-wise and the column-wise copy each from the
  16-bit input (read 2, write 1, twice) = 6. NVFP4 moves 1.475 times MXFP8's bytes (below).
- ``norm_fused``: whether Transformer Engine's LayerNormLinear (Megatron-Core's attention QKV and dense MLP fc1, the
  norm before them fused in) quantizes in the norm kernel itself: delayed scaling and MXFP8 do, current scaling does
  not (the norm writes 16 bits, then the amax pass and the cast), nor NVFP4 (not fused in the kernels read)
  (NVIDIA/TransformerEngine v2.2 pytorch/csrc/extensions/normalization.cpp: force_unfused_kernel but for FP8 delayed
  scaling and MXFP8; pytorch/module/layernorm_linear.py with_quantized_norm). Such an input is quantized on the
  rank's own tokens before the sequence-parallel all-gather (layernorm_linear.py: quantizer, then
  gather_along_first_dim with it): a fused norm writes the quantized copy in place of its 16-bit output, at no extra
  pass (MXFP8: both copies); a per-tensor recipe's column-wise copy, off under the gather (columnwise_usage False),
  is the gathered tensor transposed for the weight gradient (``TRANSPOSE_BYTES``, read 1, write 1), or written by the
  norm beside the row-wise one without the gather (1); an unfused recipe casts the rank's tokens alone.
- ``kernel_rate``: the GEMM kernel's throughput over the tensor-scaled kernel's at the same shapes (the catalog's
  ``matmul.max_fraction``): block-scaled MXFP8 GEMMs 0.951 (below); tensor-scaled fp8 and NVFP4 (whose catalog
  fraction is its own, nvfp4_note) 1.
Measured: Transformer Engine's GEMM profiling guide (docs/examples/gemm_profiling/gemm_profiling.rst) times the 12
GEMMs of a 4096/16384-wide layer at 15,872 tokens, quantizing inside te.Linear (autocast) and pre-quantized. On a
B300: MXFP8 8.984 ms autocast / 7.161 pre-quantized, FP8 current scaling 9.147 / 6.812, delayed 7.802 (autocast
only), NVFP4 6.453 / 3.764. On an H200 NVL: current 20.285 / 16.785, delayed 18.978. The quantization overheads
(autocast minus pre-quantized, delayed against current's pre-quantized kernels) over the 2.48e9 elements the
benchmark quantizes (each GEMM's two inputs) come to 3.2 (B300) and 4.2 (H200) bytes an element at the HBM peak for
delayed scaling, 7.5 and 6.8 for current scaling, 5.9 for MXFP8: the counts above at the memory-bound fraction. The
MXFP8 kernel: 6.812 / 7.161 = 0.951 of current scaling's. NVFP4: 2.689 / 1.823 = 1.475 times MXFP8's overhead.

A mixture-of-experts dispatch of a quantized run moves fp8 values with one fp32 scale per 128-element block where the
framework quantizes it (DeepEP's fp8 dispatch, DeepSeek-V3 §3.3.2; catalog software ``moe_dispatch_fp8``; an fp4 run
quantizes to NVFP4 after the all-to-all): ``QUANTIZED_DISPATCH_BYTES``. Megatron-Core dispatches the 16-bit hidden
states (workload/dispatch.py).

The GEMM rate of a format is the accelerator's (catalog ``dense_peak_flops_per_s`` x ``matmul.max_fraction``) times
its recipe's ``kernel_rate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NVFP4_OPERAND_BYTES = 0.5 + 1.0 / 16.0  # 4-bit E2M1 values + one 1-byte E4M3 scale per 16-element block
QUANTIZED_DISPATCH_BYTES = 1.0 + 4.0 / 128.0  # fp8 + one fp32 scale per 128-element block (DeepSeek-V3, DeepEP)
# Transformer Engine GEMM profiling guide, B300 (module docstring)
MXFP8_KERNEL_RATE = 6.812 / 7.161  # pre-quantized per-layer GEMM time, FP8 current scaling over MXFP8
NVFP4_OVER_MXFP8_QUANTIZE = (6.453 - 3.764) / (8.984 - 7.161)  # autocast minus pre-quantized, NVFP4 over MXFP8
# HBM bytes per quantized 16-bit input element (module docstring)
CAST_BYTES = 2.0 + 1.0  # read the 16-bit element, write its fp8 value
AMAX_PASS_BYTES = 2.0  # current scaling reads the tensor once for its amax before the cast
COLUMNWISE_COPY_BYTES = 1.0  # the transposed / column-wise fp8 copy the weight-gradient GEMM reads
DELAYED_QUANTIZE_BYTES = CAST_BYTES + COLUMNWISE_COPY_BYTES  # 4: the amax taken inside the cast
CURRENT_QUANTIZE_BYTES = AMAX_PASS_BYTES + DELAYED_QUANTIZE_BYTES  # 6
MXFP8_QUANTIZE_BYTES = 2.0 * CAST_BYTES  # 6: row-wise and column-wise copies, each cast from the 16-bit input
TRANSPOSE_BYTES = 1.0 + 1.0  # the gathered fp8 tensor read and written transposed (per-tensor recipes under the gather)


@dataclass(frozen=True)
class LowPrecisionFormat:
    operand_bytes: float


@dataclass(frozen=True)
class ScalingRecipe:
    quantize_bytes: float
    kernel_rate: float = 1.0
    norm_fused: bool = False  # quantized by the norm kernel of a LayerNormLinear (module docstring)
    per_tensor: bool = True  # one scale a tensor (delayed, current): the column-wise copy is a transpose

    def norm_input_bytes(self, gathered: np.ndarray, seq_shard: np.ndarray | float) -> np.ndarray:
        """HBM bytes quantizing the input of a LayerNormLinear takes beyond its norm: ``gathered`` elements after
        the sequence-parallel all-gather, the rank's own a ``seq_shard``-th of them (tp where the sequence is
        sharded, else 1: no gather) (module docstring)."""
        local = gathered / seq_shard
        columnwise = np.where(np.asarray(seq_shard) > 1.0, TRANSPOSE_BYTES * gathered, COLUMNWISE_COPY_BYTES * local) \
            if self.per_tensor else np.zeros_like(gathered)
        if self.norm_fused:
            return columnwise
        rowwise = self.quantize_bytes - (COLUMNWISE_COPY_BYTES if self.per_tensor else 0.0)
        return rowwise * local + columnwise


FORMATS: dict[str, LowPrecisionFormat] = {
    "fp8": LowPrecisionFormat(1.0),
    "fp4": LowPrecisionFormat(NVFP4_OPERAND_BYTES),
}

RECIPES: dict[str, ScalingRecipe] = {  # the fp8 recipes (spec.base.Fp8Recipe) and NVFP4's
    "delayed": ScalingRecipe(DELAYED_QUANTIZE_BYTES, norm_fused=True),
    "tensorwise": ScalingRecipe(CURRENT_QUANTIZE_BYTES),
    "mxfp8": ScalingRecipe(MXFP8_QUANTIZE_BYTES, MXFP8_KERNEL_RATE, norm_fused=True, per_tensor=False),
    "nvfp4": ScalingRecipe(MXFP8_QUANTIZE_BYTES * NVFP4_OVER_MXFP8_QUANTIZE, per_tensor=False),
}


def low_precision(precision: str) -> LowPrecisionFormat | None:
    """The quantized GEMM format of a training precision (None for 16-bit training)."""
    return FORMATS.get(precision)


def scaling_recipe(precision: str, fp8_recipe: str | None) -> ScalingRecipe | None:
    """How a run quantizes its GEMM inputs: an fp8 run by its ``fp8_recipe``, an fp4 run by NVFP4's (None for
    16-bit training)."""
    if precision == "fp8":
        if fp8_recipe is None:
            raise ValueError("an fp8 run's GEMMs need its fp8_recipe (spec.training.resolved_fp8_recipe)")
        return RECIPES[fp8_recipe]
    return RECIPES["nvfp4"] if precision == "fp4" else None
