"""The event-driven simulator of one training iteration (issue 15): a task graph from the same workload, placement
and collective costs as the analytic step model (perf.step.OpCosts), executed on GPU streams by a small event
engine (engine: the heap and the streams; graph: the iteration's tasks; variability: jitter and stragglers; run:
simulate() and SimReport; trace: the Perfetto trace)."""

from .engine import Engine, StalledError, Streams, Task
from .run import MAX_FULL_GPUS, SimReport, SimResult, simulate
from .trace import write_trace
from .variability import Straggler, parse_straggler

__all__ = ["MAX_FULL_GPUS", "Engine", "SimReport", "SimResult", "StalledError", "Straggler", "Streams", "Task",
           "parse_straggler", "simulate", "write_trace"]
