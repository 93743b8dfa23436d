"""Presentation of reports (terminal now; HTML later). Computes nothing."""

from .console import (
    render_calibration,
    render_claims,
    render_collective,
    render_collective_validation,
    render_fabric,
    render_facility,
    render_memory_validation,
    render_plan,
    render_power_validation,
    render_reliability,
    render_search,
    render_sweep,
    render_validation,
)

__all__ = ["render_calibration", "render_claims", "render_collective", "render_collective_validation", "render_fabric", "render_facility", "render_memory_validation", "render_plan",
           "render_power_validation",
           "render_reliability", "render_search", "render_sweep",
           "render_validation"]
