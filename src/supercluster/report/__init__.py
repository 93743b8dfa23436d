"""Presentation of reports: the terminal (console, validation_tables), the HTML page and its figures (html, figures),
sweep plots (plot). Computes nothing."""

from .console import (
    render_claims,
    render_collective,
    render_fabric,
    render_facility,
    render_plan,
    render_reliability,
    render_search,
    render_sweep,
)
from .validation_tables import (
    render_calibration,
    render_collective_validation,
    render_gemm_validation,
    render_memory_validation,
    render_power_validation,
    render_validation,
)

__all__ = ["render_calibration", "render_claims", "render_collective", "render_collective_validation",
           "render_fabric", "render_facility", "render_gemm_validation", "render_memory_validation", "render_plan",
           "render_power_validation", "render_reliability", "render_search", "render_sweep", "render_validation"]
