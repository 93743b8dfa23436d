"""Benchmarks of the simulator (`make bench`): Memphis (100,000 GPUs) in symmetric mode (wall time, peak memory,
events/s), full detail at 1,024 GPUs, and the same Memphis task graph run on SimPy when it is installed (the
engine choice, sim/engine.py). Printed and appended to benchmarks/RESULTS.md. Not a test: nothing asserts a time.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

from results import append_results

from supercluster import load_scenario
from supercluster.perf.step import evaluate
from supercluster.search.plan import best_step
from supercluster.sim.engine import Streams
from supercluster.sim.graph import build_graph
from supercluster.sim.run import candidate_from_parallelism, iteration_costs, simulate

ROOT = Path(__file__).resolve().parents[1]
MEMPHIS = ROOT / "scenarios" / "memphis.yaml"


def simpy_run(tasks: list, n_streams: int) -> tuple[float, float]:
    """The same tasks on SimPy: one process per task, waiting for its dependencies and its stream predecessor."""
    import simpy

    env = simpy.Environment()
    done = [env.event() for _ in tasks]
    last_on: dict[int, int] = {}

    def proc(i: int, waits: list[int]):  # type: ignore[no-untyped-def]
        if waits:
            yield simpy.AllOf(env, [done[w] for w in waits])
        yield env.timeout(tasks[i].duration_s)
        done[i].succeed()

    t0 = time.perf_counter()
    for i, t in enumerate(tasks):
        waits = list(t.deps) + ([last_on[t.stream]] if t.stream in last_on else [])
        last_on[t.stream] = i
        env.process(proc(i, waits))
    env.run()
    return env.now, time.perf_counter() - t0


def main() -> None:
    lines = []
    s = load_scenario(MEMPHIS)
    cal = s.calibrated(None)
    par = best_step(s, cal)[0].parallelism
    r = simulate(s, cal, par)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux
    rep = r.report
    lines.append(f"simulate Memphis (100,000 GPUs), symmetric, plan's configuration (pp {rep.stages}, "
                 f"{rep.microbatches} micro-batches): {r.wall_s:.2f} s in all ({r.engine_s:.2f} s building and "
                 f"running the graph), {rep.tasks:,} tasks, {rep.events:,} events, {r.events_per_s:,.0f} events/s, "
                 f"peak RSS {rss:.0f} MiB (the process, plan included); step {rep.step_time_s:.4f} s vs analytic "
                 f"{rep.analytic_step_time_s:.4f} s ({rep.rel_difference:+.2%})")
    ops = evaluate(s, candidate_from_parallelism(par), cal).ops
    assert ops is not None
    g = build_graph(iteration_costs(s, par, ops), [[1.0] * rep.stages], [0])
    t0 = time.perf_counter()
    ours = Streams(g.tasks, len(g.streams)).run()
    own_s = time.perf_counter() - t0
    lines.append(f"engine alone on that graph: {own_s:.3f} s ({len(g.tasks) / own_s:,.0f} tasks/s)")
    try:
        g2 = build_graph(iteration_costs(s, par, ops), [[1.0] * rep.stages], [0])
        end, simpy_s = simpy_run(g2.tasks, len(g2.streams))
        lines.append(f"SimPy on the same graph: {simpy_s:.3f} s ({len(g2.tasks) / simpy_s:,.0f} tasks/s), "
                     f"{simpy_s / own_s:.1f}x the engine's time; same end time: {abs(end - ours) < 1e-9}")
    except ImportError:
        lines.append("SimPy not installed: engine comparison skipped")
    s1k = load_scenario(MEMPHIS, ["cluster.num_gpus=1024"])
    cal1k = s1k.calibrated(None)
    par1k = best_step(s1k, cal1k)[0].parallelism
    r1k = simulate(s1k, cal1k, par1k, detail="full")
    lines.append(f"simulate Memphis at 1,024 GPUs, --detail full ({r1k.report.replicas_simulated} replicas x "
                 f"{r1k.report.stages} stages x {r1k.report.microbatches} micro-batches): {r1k.wall_s:.1f} s, "
                 f"{r1k.report.tasks:,} tasks, {r1k.events_per_s:,.0f} events/s, peak RSS "
                 f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")
    append_results(lines, "simulator")


if __name__ == "__main__":
    main()
