"""Published GEMM throughputs by shape (validate/gemms.yaml) against the compute model's GEMM time.

Each measurement names a catalog accelerator, the operand format (``bf16``, or ``fp8`` scaled per tensor or per
block, a 16-bit output), the shape M x N x K and how many such GEMMs one kernel runs (``groups``, a grouped GEMM's
experts). The model times it with :func:`supercluster.perf.compute.gemm_s` at the part's catalog rate and
``matmul_scale`` 1: an isolated kernel, not a training step, so the in-step derating the step model fits is left
out. The set fixes ``gemm_overlap_exponent`` (benchmarks/fit_gemm_overlap.py); its gate keeps the GEMM model honest
across shapes, small-K and few-row (an expert's share of a micro-batch) included. Rows the data file marks
``exclude_from_gate: reason`` are predicted and listed, not scored.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import FileFormatError, SuperclusterError
from ..perf.compute import gemm_s
from ..spec.calibration import Calibration, default_calibration
from ..spec.catalog import entry
from ..spec.hardware import Accelerator
from .schema import GEMM, check_entry
from .tolerance import GatedResult, gate_exclusion, read_tolerance, read_validation_file

DEFAULT_GEMMS_FILE = Path(__file__).with_name("gemms.yaml")
DEFAULT_GEMM_TOLERANCE: dict[str, Any] = {"metric": "gemm_tflops", "median_abs_rel_error": 0.08,
                                          "max_abs_rel_error": 0.15}
FORMATS = ("bf16", "fp16", "fp8")


class GemmRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    accelerator: str
    dtype: str
    shape: str  # "groups x M x N x K"
    measured_tflops: float
    predicted_tflops: float | None = None
    rel_error: float | None = None
    error: str | None = None
    excluded: str | None = None


class GemmValidationResult(GatedResult):
    kind: str = "gemms"
    rows: list[GemmRow]


def predict_gemm_tflops(accelerator: Accelerator, dtype: str, m: float, n: float, k: float, groups: float,
                        calibration: Calibration) -> float:
    """The throughput the compute model gives ``groups`` M x N x K GEMMs of one kernel, in TFLOPS."""
    cal = calibration.model_copy(update={"matmul_scale": 1.0, "kernel_gap_s": 0.0})
    t = float(gemm_s(accelerator, cal, dtype, np.array([m]), np.array([n]), np.array([k]), groups)[0])
    return 2.0 * m * n * k * groups / t / 1e12


def _row(m: dict[str, Any], *, calibration: Calibration, file: str, where: str) -> GemmRow:
    dtype = str(m["dtype"])
    if dtype not in FORMATS:
        raise FileFormatError(f"expected one of {', '.join(FORMATS)}, got {dtype!r}", file=file, field=f"{where}.dtype")
    shape = {key: m.get(key) for key in ("m", "n", "k", "tflops")}
    for key, value in shape.items():
        if value is None:
            raise FileFormatError("missing", file=file, field=f"{where}.{key}")
    groups = float(m.get("groups") or 1)
    base = {"id": str(m["id"]), "accelerator": str(m["accelerator"]), "dtype": dtype,
            "shape": f"{groups:g} x {shape['m']} x {shape['n']} x {shape['k']}", "measured_tflops": float(m["tflops"])}
    try:
        acc = Accelerator.model_validate(entry("accelerators", str(m["accelerator"])))
    except SuperclusterError as exc:
        return GemmRow(**base, error=str(exc))
    pred = predict_gemm_tflops(acc, dtype, float(m["m"]), float(m["n"]), float(m["k"]), groups, calibration)
    return GemmRow(**base, predicted_tflops=pred, rel_error=pred / float(m["tflops"]) - 1.0)


def validate_gemms(path: str | Path | None = None, calibration: Calibration | None = None
                   ) -> GemmValidationResult:
    """Predict every GEMM measurement of a GEMM-throughput file; gate on its tolerance."""
    data, measurements, shown = read_validation_file(path, DEFAULT_GEMMS_FILE, "measurements")
    tol = read_tolerance(data, DEFAULT_GEMM_TOLERANCE, ("median_abs_rel_error", "max_abs_rel_error"), shown)
    cal = calibration or default_calibration()
    for i, m in enumerate(measurements):  # every entry well-formed before any is predicted
        check_entry(m, GEMM, file=shown, where=f"measurements[{i}]", noun="measurement")
    rows = []
    for i, m in enumerate(measurements):
        row = _row(m, calibration=cal, file=shown, where=f"measurements[{i}]")
        reason = gate_exclusion(m, file=shown, field=f"measurements[{i}]")
        rows.append(row.model_copy(update={"excluded": reason}) if reason else row)
    scored = [r.rel_error for r in rows if r.rel_error is not None and r.excluded is None]
    errors = [abs(e) for e in scored]
    median = statistics.median(errors) if errors else None
    worst = max(errors) if errors else None
    failures = [] if errors else ["no measurement could be modelled"]
    if median is not None and median > float(tol["median_abs_rel_error"]):
        failures.append(f"median |error| {median:.1%} exceeds {float(tol['median_abs_rel_error']):.0%}")
    failures += [f"{r.id}: |error| {abs(r.rel_error or 0.0):.1%} exceeds {float(tol['max_abs_rel_error']):.0%}"
                 for r in rows if r.rel_error is not None and r.excluded is None
                 and abs(r.rel_error) > float(tol["max_abs_rel_error"])]
    return GemmValidationResult(
        file=shown, rows=rows, median_abs_rel_error=median, max_abs_rel_error=worst,
        signed_mean_rel_error=statistics.fmean(scored) if scored else None, tolerance=tol, passed=not failures,
        failures=failures, excluded=sum(1 for r in rows if r.excluded is not None))
