"""The analytic step model: compute, communication, pipeline and optimizer time of one step."""

from .candidates import RECOMPUTE_CODES, Candidates
from .report import StepReport, step_report
from .step import PARTS, Prepared, StepArrays, evaluate, prepare

__all__ = ["PARTS", "RECOMPUTE_CODES", "Candidates", "Prepared", "StepArrays", "StepReport", "evaluate", "prepare",
           "step_report"]
