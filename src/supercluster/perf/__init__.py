"""The analytic step model: compute, communication, pipeline and optimizer time of one step."""

from .candidates import RECOMPUTE_CODES, Candidates
from .report import PipelineReport, StepReport, step_report
from .schedule import ScheduleBlock, StageOp, pipeline_schedule, stage_ops
from .step import PARTS, Prepared, StepArrays, evaluate, prepare

__all__ = ["PARTS", "RECOMPUTE_CODES", "Candidates", "PipelineReport", "Prepared", "ScheduleBlock", "StageOp",
           "StepArrays", "StepReport", "evaluate", "pipeline_schedule", "prepare", "stage_ops", "step_report"]
