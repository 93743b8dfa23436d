"""The GEMM time joins compute and memory as a p-norm (perf/compute.py, calibration gemm_overlap_exponent): the
exponent is the GEMM set's fit, a compute-bound GEMM costs its compute, a balanced one 2^(1/p) of it, and no
GEMM is faster than the roofline's larger time nor slower than the two added."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from tests.perf.test_step import ACCELERATORS, accelerator

from supercluster.perf.compute import gemm_s
from supercluster.spec.calibration import default_calibration
from supercluster.validate.gemms import validate_gemms

FIT_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fit_gemm_overlap.py"


def test_the_shipped_exponent_is_the_gemm_set_s_fit() -> None:
    """catalog/calibration.yaml's gemm_overlap_exponent is what benchmarks/fit_gemm_overlap.py finds on the GEMM
    set (a change of the data or of the GEMM model forces a refit), and it beats the plain roofline there."""
    spec = importlib.util.spec_from_file_location("fit_gemm_overlap", FIT_SCRIPT)
    assert spec is not None and spec.loader is not None
    fit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fit)
    shipped = default_calibration().gemm_overlap_exponent
    assert fit.best_exponent() == pytest.approx(shipped)
    roofline = validate_gemms(calibration=default_calibration().model_copy(update={"gemm_overlap_exponent": 1e6}))
    fitted = validate_gemms()
    assert fitted.median_abs_rel_error < roofline.median_abs_rel_error
    assert fitted.max_abs_rel_error < 0.5 * roofline.max_abs_rel_error


@pytest.mark.parametrize("name", ACCELERATORS)
@pytest.mark.parametrize("precision", ["bf16", "fp8"])
def test_a_gemm_lies_between_the_roofline_and_the_sum(name: str, precision: str) -> None:
    """Over random shapes: never below the roofline (the larger of compute and memory time: the exponent's limit),
    never above the two added (exponent 1), and at most 2^(1/p) times the roofline."""
    cal = default_calibration().model_copy(update={"kernel_gap_s": 0.0})
    p = cal.gemm_overlap_exponent
    acc = accelerator(name)
    rng = np.random.default_rng(1)
    m, n, k = (np.floor(2.0 ** rng.uniform(4, 16, 3000)) for _ in range(3))
    t = gemm_s(acc, cal, precision, m, n, k)
    roofline = gemm_s(acc, cal.model_copy(update={"gemm_overlap_exponent": 1e6}), precision, m, n, k)
    added = gemm_s(acc, cal.model_copy(update={"gemm_overlap_exponent": 1.0}), precision, m, n, k)
    assert np.all(t >= roofline * (1 - 1e-9))
    assert np.all(t <= added * (1 + 1e-9))
    assert np.all(t <= roofline * 2.0 ** (1.0 / p) * (1 + 1e-9))
    assert np.any(t > 1.2 * roofline)  # some shapes sit near the ridge, where the overlap is poorest


@pytest.mark.parametrize("name", ["H100-SXM5-80GB", "B200"])
def test_a_compute_bound_gemm_costs_its_compute_and_a_few_rows_cost_more(name: str) -> None:
    """A large square GEMM (memory time a few % of its compute) takes within 1% of the roofline; an expert's GEMM
    of 256 rows over a wide K, where HBM time nears compute time, takes at least 20% more than the roofline says
    (DeepGEMM's masked grouped GEMMs: 932 TFLOPS at 256 rows an expert against 1,346 at thousands,
    validate/gemms.yaml)."""
    cal = default_calibration().model_copy(update={"kernel_gap_s": 0.0})
    acc = accelerator(name)
    big = np.array([16384.0])
    t = gemm_s(acc, cal, "bf16", big, big, big)
    roof = gemm_s(acc, cal.model_copy(update={"gemm_overlap_exponent": 1e6}), "bf16", big, big, big)
    assert t[0] == pytest.approx(roof[0], rel=0.01)
    m, n, k = np.array([256.0]), np.array([4096.0]), np.array([7168.0])
    t = gemm_s(acc, cal, "fp8", m, n, k, 4.0)
    roof = gemm_s(acc, cal.model_copy(update={"gemm_overlap_exponent": 1e6}), "fp8", m, n, k, 4.0)
    assert t[0] > 1.2 * roof[0]


def test_the_exponent_does_not_underflow() -> None:
    """However large the exponent (the roofline's limit), a GEMM's time is finite and positive, and a GEMM of
    nothing takes nothing."""
    cal = default_calibration().model_copy(update={"kernel_gap_s": 0.0, "gemm_overlap_exponent": 1e9})
    acc = accelerator("H100-SXM5-80GB")
    one = np.array([64.0])
    t = gemm_s(acc, cal, "bf16", one, one, one)
    assert np.isfinite(t).all() and (t > 0).all()
