"""The power trace of a simulated step (issue 14): what the cluster draws moment by moment over the iteration the
simulator ran, from what every GPU does then (sim.activity's timeline) and facility.power's model of what that
draws (the same activity levels, GPU, host, network and storage figures as facility's step power: one formula in one
place; sim and facility are siblings, so they meet here).

At each moment the cluster's GPUs are split over the step's parts; facility.power.gpu_activity of that split is the
GPUs' mean activity, and since a board's draw is linear in its activity (facility.power.gpu_power_w), the cluster's
draw then is facility.power.power at that mean. Over the step the time-weighted average is the draw at the mean
activity of the step's GPU-averaged breakdown: the figure facility gives from the simulated breakdown when every
stage does the same work, and less when stages other than the busiest wait longer in the bubble (a straggler's
pipeline, the stages without the LM head). The lowest level is usually the host's work at the step's end (every GPU
idle), or the pipeline's fill and drain; the highest the steady state where every stage computes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..facility.power import gpu_activity, power
from ..network.report import FabricReport, fabric_report
from ..sim.run import SimPower, SimResult
from ..spec.scenario import Scenario


def simulated_power(s: Scenario, result: SimResult, fabric: FabricReport | None = None
                    ) -> tuple[SimPower, np.ndarray, np.ndarray] | None:
    """The step's draw summarised, and its IT series (the timeline's edges, W from each edge to the next), or None
    when the scenario names no facility."""
    if s.facility is None:
        return None
    cluster, pue = s.cluster, s.facility.pue
    fabric = fabric or fabric_report(cluster)
    tl = result.timeline()
    dt = tl.durations_s
    levels: dict[float, tuple[float, float]] = {}  # activity -> (IT W, facility W): few distinct mixes recur
    it_w = np.empty(len(dt))
    fac_w = np.empty(len(dt))
    for i in range(len(dt)):
        activity = gpu_activity(tl.segment(i), cluster.accelerator, float(tl.host_wait_gpus[i]))
        if activity not in levels:
            p = power(cluster, fabric, pue, activity=activity)
            levels[activity] = (p.it_w, p.facility_w)
        it_w[i], fac_w[i] = levels[activity]
    step = float(dt.sum())
    stopped = power(cluster, fabric, pue, activity=0.0)
    summary = SimPower(
        min_it_w=float(it_w.min()), average_it_w=float(it_w @ dt) / step, max_it_w=float(it_w.max()),
        swing_it_w=float(it_w.max() - it_w.min()), min_facility_w=float(fac_w.min()),
        average_facility_w=float(fac_w @ dt) / step, max_facility_w=float(fac_w.max()),
        swing_facility_w=float(fac_w.max() - fac_w.min()), stopped_it_w=stopped.it_w,
        stopped_facility_w=stopped.facility_w)
    return summary, tl.edges_s, it_w


def with_power(s: Scenario, result: SimResult, fabric: FabricReport | None = None) -> SimResult:
    """``result`` with its report's ``power`` and its ``power_trace`` set (unchanged without a facility)."""
    out = simulated_power(s, result, fabric)
    if out is None:
        return result
    summary, edges, it_w = out
    return replace(result, report=result.report.model_copy(update={"power": summary}), power_trace=(edges, it_w))
