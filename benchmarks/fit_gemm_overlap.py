"""Fit the GEMM overlap exponent (calibration ``gemm_overlap_exponent``): the p of a GEMM's time
(t_compute^p + t_memory^p)^(1/p) in perf/compute.py, on the GEMM set (validate/gemms.yaml) only, over its gated
measurements, each predicted at its part's catalog rate (matmul_scale 1: isolated kernels).

A scan of p over a fixed grid, minimising the root mean square of log(predicted / measured); prints each p's median
and worst error and the best p to copy into catalog/calibration.yaml (a person reviews every change of a global
constant; the step-time knobs are then refitted with `make calibrate`, since every GEMM of the step model moves).

    .venv/bin/python benchmarks/fit_gemm_overlap.py
"""

from __future__ import annotations

import math

from supercluster.spec.calibration import default_calibration
from supercluster.validate.gemms import validate_gemms

GRID = [round(1.0 + 0.05 * i, 2) for i in range(41)]  # 1.0 (additive) to 3.0 (near the roofline's max)


def score(p: float) -> tuple[float, float, float]:
    """(rms of log(predicted/measured), median |error|, max |error|) over the gated measurements at exponent p."""
    result = validate_gemms(calibration=default_calibration().model_copy(update={"gemm_overlap_exponent": p}))
    errors = [r.rel_error for r in result.rows if r.rel_error is not None and r.excluded is None]
    rms = math.sqrt(sum(math.log1p(e) ** 2 for e in errors) / len(errors))
    return rms, float(result.median_abs_rel_error or 0.0), float(result.max_abs_rel_error or 0.0)


def best_exponent() -> float:
    return min(GRID, key=lambda p: score(p)[0])


def main() -> None:
    for p in GRID:
        rms, median, worst = score(p)
        print(f"p {p:4.2f}: rms log error {rms:.4f}, median {median:.1%}, max {worst:.1%}")
    roofline = validate_gemms(calibration=default_calibration().model_copy(update={"gemm_overlap_exponent": 1e3}))
    print(f"the roofline (p -> infinity): median {roofline.median_abs_rel_error:.1%}, "
          f"max {roofline.max_abs_rel_error:.1%}")
    print("gemm_overlap_exponent:", best_exponent())


if __name__ == "__main__":
    main()
