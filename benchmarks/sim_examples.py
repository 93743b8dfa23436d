"""The README's simulator examples: what one GPU at 80% speed costs (on the first stage, and on the last, busiest,
stage) as the job grows, and what an oversubscribed core and ECMP's collisions cost Memphis (simulate --contention:
the fat tree's flows behind each axis's communication). Contention and jitter off otherwise.

    python benchmarks/sim_examples.py
"""

from __future__ import annotations

from pathlib import Path

from supercluster import load_scenario
from supercluster.search.plan import best_step
from supercluster.sim.contended import simulate_contended
from supercluster.sim.fabric import Routing
from supercluster.sim.run import simulate
from supercluster.sim.slowlink import parse_slow_link
from supercluster.sim.variability import parse_straggler

MEMPHIS = Path(__file__).resolve().parents[1] / "scenarios" / "memphis.yaml"
CORE_2, CORE_4 = ("cluster.fabric.oversubscription=[1,2]",), ("cluster.fabric.oversubscription=[1,4]",)
CONTENTION_EXAMPLES: tuple[tuple[str, tuple[str, ...], Routing, tuple[str, ...]], ...] = (  # label, --set, routing, slow
    ("1:1 (shipped)", (), "adaptive", ()),
    ("core 2:1", CORE_2, "adaptive", ()),
    ("core 4:1", CORE_4, "adaptive", ()),
    ("1:1 (shipped)", (), "ecmp", ()),
    ("core 2:1", CORE_2, "ecmp", ()),
    ("core 4:1", CORE_4, "ecmp", ()),
    ("1:1, node 12's NICs at 50%", (), "adaptive", ("node=12:0.5",)),
)


def stragglers() -> None:
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
        print(f"| {n:,} | tp {par['tp']} pp {par['pp']} dp {par['dp']} cp {par['cp']} ep {par['ep']} etp {par['etp']} "
              f"v {par['virtual_stages']} | {b:.3f} s | {first.step_time_s / b - 1:+.1%} | "
              f"{last.step_time_s / b - 1:+.1%} | {jit.median_s / b - 1:+.1%}, {jit.p95_s / b - 1:+.1%} |")


def contention() -> None:
    print("| Memphis's fabric | routing | flow factors | simulated step | vs 1:1 adaptive |")
    print("|---|---|---|---:|---:|")
    reference = 0.0
    for label, sets, routing, slow in CONTENTION_EXAMPLES:
        s = load_scenario(MEMPHIS, list(sets))
        cal = s.calibrated(None)
        slow_links = tuple(parse_slow_link(x, s) for x in slow)
        r = simulate_contended(s, cal, best_step(s, cal)[0].parallelism, routing=routing, slow_links=slow_links)
        c = r.report.contention
        assert c is not None
        step = r.report.step_time_s
        reference = reference or step
        print(f"| {label} | {routing} | {factors(c.flow_factors, c.analytic_factors)} | {step:.3f} s | "
              f"{step / reference - 1:+.1%} |")


def factors(flow: dict[str, float], charged: dict[str, float]) -> str:
    """The flow factors other than 1, each with what the analytic model already charges when it charges some."""
    return ", ".join(f"{a} {f:.2f}x" + (f" ({charged[a]:.2f}x charged)" if charged[a] != 1.0 else "")
                     for a, f in flow.items() if f != 1.0) or "none"


def main() -> None:
    stragglers()
    print()
    contention()


if __name__ == "__main__":
    main()
