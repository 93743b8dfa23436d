"""A simulated iteration on a contended fabric (``simulate --contention``, ``--slow-link``): the flow model's
factors for the simulated configuration, less what the analytic op costs already charge, slow each axis's
collectives in the simulated iteration.

The factors are sim/contention's, on the configuration simulated: every group of each axis at once on the fat tree
(ECMP or adaptive routing, the links named by ``--slow-link`` at their reduced rate) over a group alone on the
healthy fabric. The op costs the simulator runs (perf.step) already charge an oversubscribed tier's spread-out
share, so the factor applied is the flow factor over that (``excess_factors``): an axis the analytic model charges
exactly stays at 1.0. The same iteration is simulated without them, so the report holds the step with and without
the fabric's contention.
"""

from __future__ import annotations

from dataclasses import replace

from ..spec.calibration import Calibration
from ..spec.scenario import Scenario
from .contention import ContentionSummary, analytic_factors, contention_report, divide_out
from .fabric import Routing, check_routing
from .run import Detail, SimResult, simulate
from .slowlink import SlowLink
from .variability import Straggler


def simulate_contended(s: Scenario, cal: Calibration, par: dict[str, int | str | bool], *,
                       routing: Routing = "adaptive", slow_links: tuple[SlowLink, ...] = (),
                       detail: Detail = "symmetric", seed: int = 0, iterations: int = 1, jitter_sigma: float = 0.0,
                       stragglers: tuple[Straggler, ...] = ()) -> SimResult:
    """``simulate`` with each axis's communication slowed by the fabric's contention under ``routing`` (ECMP's
    hash seeded by ``seed``, as the jitter is) and the ``slow_links``, beside the same simulation without it."""
    check_routing(routing)

    def run(comm_factors: dict[str, float] | None) -> SimResult:
        return simulate(s, cal, par, detail=detail, seed=seed, iterations=iterations, jitter_sigma=jitter_sigma,
                        stragglers=stragglers, comm_factors=comm_factors)

    base = run(None)  # first: what the simulator refuses is refused before the flows are routed
    axes = contention_report(s, par, routing=routing, seed=seed, slow=slow_links)
    flow = {a.axis: a.factor for a in axes}
    analytic = analytic_factors(s, par)
    applied = divide_out(flow, analytic)
    result = run(applied)
    summary = ContentionSummary(routing=routing, seed=seed, slow_links=[str(x) for x in slow_links],
                                bottlenecks={a.axis: a.bottleneck for a in axes if a.bottleneck},
                                flow_factors=flow, analytic_factors=analytic, applied_factors=applied,
                                uncontended_step_time_s=base.report.step_time_s)
    return replace(result, report=result.report.model_copy(update={"contention": summary}))
