"""The analytic step model: compute, communication, pipeline and optimizer time of one step."""

from .candidates import RECOMPUTE_CODES, Candidates
from .report import PipelineReport, StepReport, step_report
from .schedule import ScheduleBlock, pipeline_schedule
from .step import PARTS, OpCosts, Prepared, ReplicaOps, StepArrays, evaluate, prepare

__all__ = ["PARTS", "RECOMPUTE_CODES", "Candidates", "OpCosts", "PipelineReport", "Prepared", "ReplicaOps",
           "ScheduleBlock", "StepArrays", "StepReport", "evaluate", "pipeline_schedule", "prepare", "step_report"]
