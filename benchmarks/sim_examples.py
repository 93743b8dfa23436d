"""The README's simulator examples: what one GPU at 80% speed costs (on the first stage, and on the last, busiest,
stage) as the job grows, and what per-axis communication slowdowns cost Memphis (comm_factors; the fabric model of
sim.fabric will supply them from the fat-tree). Contention and jitter off otherwise.

    python benchmarks/sim_examples.py
"""

from __future__ import annotations

from pathlib import Path

from supercluster import load_scenario
from supercluster.search.plan import best_step
from supercluster.sim.run import simulate
from supercluster.sim.variability import parse_straggler

MEMPHIS = Path(__file__).resolve().parents[1] / "scenarios" / "memphis.yaml"


def main() -> None:
    print("| GPUs | parallelism | step | GPU 0 at 80% | last GPU at 80% | jitter 2% (median, p95 of 5) |")
    print("|---:|---|---:|---:|---:|---:|")
    for n in (4096, 16384, 100000):
        s = load_scenario(MEMPHIS, [f"cluster.num_gpus={n}"])
        cal = s.calibrated(None)
        par = best_step(s, cal)[0].parallelism
        base = simulate(s, cal, par).report
        first = simulate(s, cal, par, stragglers=(parse_straggler("gpu=0:0.8", s),)).report
        last = simulate(s, cal, par, stragglers=(parse_straggler(f"gpu={n - 1}:0.8", s),)).report
        jit = simulate(s, cal, par, jitter_sigma=0.02, iterations=5, seed=1).report.distribution
        b = base.step_time_s
        print(f"| {n:,} | tp {par['tp']} pp {par['pp']} dp {par['dp']} cp {par['cp']} ep {par['ep']} v "
              f"{par['virtual_stages']} | {b:.3f} s | {first.step_time_s / b - 1:+.1%} | "
              f"{last.step_time_s / b - 1:+.1%} | {jit.median_s / b - 1:+.1%}, {jit.p95_s / b - 1:+.1%} |")
    s = load_scenario(MEMPHIS)
    cal = s.calibrated(None)
    par = best_step(s, cal)[0].parallelism
    base = simulate(s, cal, par).report.step_time_s
    print("\n| Memphis, communication slowed | simulated step | vs uncontended |")
    print("|---|---:|---:|")
    for label, f in (("dp x2", {"dp": 2.0}), ("dp x4", {"dp": 4.0}), ("ep x2", {"ep": 2.0}),
                     ("every axis x2", dict.fromkeys(("tp", "cp", "ep", "pp", "dp"), 2.0))):
        r = simulate(s, cal, par, comm_factors=f).report
        print(f"| {label} | {r.step_time_s:.3f} s | {r.step_time_s / base - 1:+.1%} |")


if __name__ == "__main__":
    main()
