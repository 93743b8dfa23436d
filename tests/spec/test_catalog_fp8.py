"""The catalog's fp8 and fp4 GEMM fractions follow their notes (catalog/accelerators.yaml fp8_note, nvfp4_note): one
formula over every Hopper and Blackwell part, not a number per part."""

from __future__ import annotations

import pytest

from supercluster.spec import catalog

HOPPER_BF16_OVER_FP8 = 31.968 / 16.785  # H200 NVL, Transformer Engine GEMM profiling guide, pre-quantized
BLACKWELL_BF16_OVER_FP8 = 13.102 / 6.812  # B300, the same guide
NVFP4_OVER_FP8 = 6.812 / 3.764  # B300, the same guide


@pytest.mark.parametrize("name", [n for n, e in catalog.entries("accelerators").items()
                                  if e.get("architecture") in ("hopper", "blackwell")])
def test_fp8_and_fp4_fractions_follow_the_notes(name: str) -> None:
    entry = catalog.entry("accelerators", name)
    frac, peak = entry["matmul"]["max_fraction"], entry["dense_peak_flops_per_s"]
    ratio = HOPPER_BF16_OVER_FP8 if entry["architecture"] == "hopper" else BLACKWELL_BF16_OVER_FP8
    assert frac["fp8"] == pytest.approx(frac["bf16"] * ratio / (peak["fp8"] / peak["bf16"]), abs=6e-4)
    if "fp4" in frac:
        assert frac["fp4"] == pytest.approx(frac["fp8"] * NVFP4_OVER_FP8 / (peak["fp4"] / peak["fp8"]), abs=6e-4)
