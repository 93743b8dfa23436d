"""The event-driven simulator of one training iteration (issue 15): a task graph from the same workload, placement
and collective costs as the analytic step model (perf.step.OpCosts), executed on GPU streams by a small event
engine (engine: the heap and the streams; graph: the iteration's tasks; variability: jitter and stragglers; run:
simulate() and SimReport; trace: the Perfetto trace; activity: what every GPU does over the iteration, the input
of its power trace), and network flows sharing the fabric's links max-min fairly
(flows, fabric, contention: the contention factors of every axis; slowlink: links named slow; contended: an
iteration simulated with the factors)."""

from .activity import ActivityTimeline, activity_timeline
from .contended import simulate_contended
from .contention import (
    AXES,
    AxisContention,
    ContentionSummary,
    analytic_factors,
    contention_factors,
    contention_report,
    excess_factors,
)
from .engine import Engine, StalledError, Streams, Task
from .fabric import ROUTINGS, FatTree, Routing, route
from .flows import FlowRun, FlowSet, max_min_rates, run_flows
from .run import MAX_FULL_GPUS, SimPower, SimReport, SimResult, simulate
from .slowlink import SlowLink, parse_slow_link
from .trace import write_trace
from .variability import Straggler, parse_straggler

__all__ = ["AXES", "MAX_FULL_GPUS", "ROUTINGS", "ActivityTimeline", "AxisContention", "ContentionSummary", "Engine",
           "FatTree", "FlowRun", "FlowSet", "Routing", "SimPower", "SimReport", "SimResult", "SlowLink", "StalledError",
           "Straggler", "Streams", "Task", "activity_timeline", "analytic_factors", "contention_factors",
           "contention_report", "excess_factors", "max_min_rates", "parse_slow_link", "parse_straggler", "route",
           "run_flows", "simulate", "simulate_contended", "write_trace"]
