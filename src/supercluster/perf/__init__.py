"""The analytic step model: compute, communication, pipeline and optimizer time of one step."""

from .candidates import RECOMPUTE_CODES, Candidates
from .report import PipelineReport, StepReport, step_report
from .schedule import ScheduleBlock, StageOp, pipeline_schedule, stage_ops
from .step import PARTS, OpCosts, Prepared, ReplicaOps, StepArrays, evaluate, prepare

__all__ = ["PARTS", "RECOMPUTE_CODES", "Candidates", "OpCosts", "PipelineReport", "Prepared", "ReplicaOps",
           "ScheduleBlock", "StageOp", "StepArrays", "StepReport", "evaluate", "pipeline_schedule", "prepare",
           "stage_ops", "step_report"]
