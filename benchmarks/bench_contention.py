"""Benchmark (`make bench`): contention factors on Memphis (100,000 GPUs), its plan's parallelism, on the shipped
fabric and with its oversubscription overridden, adaptive routing vs ECMP: wall time, flows, peak memory, and the
event-driven run that checks the closed form.

Results are printed and appended to benchmarks/RESULTS.md with the date and the machine's core count.
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np
from results import append_results

from supercluster import load_scenario, plan
from supercluster.network.topology import build_topology
from supercluster.sim.contention import analytic_factors, axis_contention, contention_report
from supercluster.sim.fabric import FatTree, compact, route
from supercluster.sim.flows import FlowSet, max_min_rates

ROOT = Path(__file__).resolve().parents[1]
MEMPHIS = ROOT / "scenarios" / "memphis.yaml"
FABRICS = ("1", "2", "4", "[1,2]", "[1,4]")  # cluster.fabric.oversubscription: leaf only, or [leaf, spine]


def main() -> None:
    base = plan(load_scenario(MEMPHIS), with_reliability=False).step
    par = base.parallelism
    dp_s, step_s = base.breakdown["dp_comm"], base.step_time_s
    lines = [f"Memphis plan: tp {par['tp']} cp {par['cp']} ep {par['ep']} pp {par['pp']} dp {par['dp']} "
             f"({par['order']}); step {step_s:.3f} s, exposed dp_comm {dp_s:.3f} s", "",
             "| oversubscription | routing | tp | cp | ep | pp | dp | pp charged by the analytic model | "
             "step with dp x factor | flows | wall | peak |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for over in FABRICS:
        s = load_scenario(MEMPHIS, [f"cluster.fabric.oversubscription={over}"])
        for routing in ("adaptive", "ecmp"):
            tracemalloc.start()
            t0 = time.perf_counter()
            rep = contention_report(s, par, routing=routing, seed=0)  # type: ignore[arg-type]
            wall = time.perf_counter() - t0
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            f = {a.axis: a.factor for a in rep}
            flows = sum(a.flows for a in rep)
            step = step_s + dp_s * (f["dp"] - 1.0)
            lines.append(f"| {over} | {routing} | " + " | ".join(f"{f[a]:.2f}" for a in ("tp", "cp", "ep", "pp", "dp"))
                         + f" | {analytic_factors(s, par)['pp']:.2f} | {step:.3f} s ({100 * (step / step_s - 1):+.1f}%) | {flows:,} | {wall:.2f} s | "
                         f"{peak / 2**20:.0f} MiB |")
    lines.append("")
    s = load_scenario(MEMPHIS)
    seeds = {a: [] for a in ("pp", "dp")}  # type: dict[str, list[float]]
    for seed in range(5):
        for a in contention_report(s, par, routing="ecmp", seed=seed):
            if a.axis in seeds:
                seeds[a.axis].append(a.factor)
    lines.append("ECMP over seeds 0-4 (1:1): " + ", ".join(f"{a} {min(v):.1f}-{max(v):.1f}" for a, v in seeds.items()))
    groups = base.groups["pp"]
    tracemalloc.start()
    t0 = time.perf_counter()
    run = axis_contention(s, "pp", groups["size"], groups["stride"], routing="ecmp", seed=0, simulate=True)
    wall = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    closed = axis_contention(s, "pp", groups["size"], groups["stride"], routing="ecmp", seed=0)
    fab = FatTree.of(s.cluster, build_topology(s.cluster))
    src = np.arange(fab.gpus)
    routed = route(fab, src, (src + 4000) % fab.gpus, routing="ecmp")
    ids, cap = compact(routed.key, routed.capacity)
    fs = FlowSet(flow=routed.flow, link=ids, capacity=cap, flows=routed.flows)
    t0 = time.perf_counter()
    max_min_rates(fs)
    solve = time.perf_counter() - t0
    lines.append(f"max_min_rates: {fs.flows:,} flows (every GPU to the one 4,000 ranks on, ECMP, 1:1) on {fs.links:,} links, "
                 f"{fs.flow.size:,} flow-link pairs, solved in {solve:.2f} s")
    lines.append(f"event-driven check, pp on ECMP (1:1): {run.flows:,} flows on {run.links:,} links, {run.events} "
                 f"events in {wall:.2f} s, peak {peak / 2**20:.0f} MiB; factor {run.factor:.4f} "
                 f"(closed form {closed.factor:.4f})")

    append_results(lines, "contention factors", bullets=False)


if __name__ == "__main__":
    main()
