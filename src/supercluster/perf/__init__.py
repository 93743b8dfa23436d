"""The analytic step model: compute, communication, pipeline and optimizer time of one step."""

from .candidates import RECOMPUTE_CODES, Candidates
from .report import StepReport, step_report
from .step import PARTS, StepArrays, evaluate

__all__ = ["PARTS", "RECOMPUTE_CODES", "Candidates", "StepArrays", "StepReport", "evaluate", "step_report"]
