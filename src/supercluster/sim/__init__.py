"""The event-driven simulator of one training iteration (issue 15): a task graph from the same workload, placement
and collective costs as the analytic step model, executed on GPU streams and network links."""

from .contention import (
           AXES,
           AxisContention,
           analytic_factors,
           contention_factors,
           contention_report,
           excess_factors,
)
from .fabric import ROUTINGS, FatTree, Routing, route
from .flows import FlowRun, FlowSet, max_min_rates, run_flows

__all__ = ["AXES", "ROUTINGS", "AxisContention", "FatTree", "FlowRun", "FlowSet", "Routing", "analytic_factors",
           "contention_factors", "contention_report", "excess_factors", "max_min_rates", "route", "run_flows"]
