"""Benchmarks (`make bench`): wall time of `plan` on the Memphis scenario and configurations timed per second.

Results are printed and appended to benchmarks/RESULTS.md with the date and the machine's core count.
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from results import append_results

from supercluster import load_scenario, plan
from supercluster.facility import facility_ledger
from supercluster.network import build_topology, collective_time, place
from supercluster.network.report import fabric_report
from supercluster.perf import evaluate
from supercluster.search import enumerate_space
from supercluster.search.plan import CHUNK, evaluated_chunks
from supercluster.spec.calibration import default_calibration
from supercluster.spec.load import load_cluster

ROOT = Path(__file__).resolve().parents[1]
MEMPHIS = ROOT / "scenarios" / "memphis.yaml"


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    lines = []
    scenario = load_scenario(MEMPHIS)
    in_process = best_of(lambda: plan(scenario))
    run = plan(scenario)
    report = run.step
    lines.append(f"plan (in process), Memphis, auto parallelism: {in_process:.3f} s "
                 f"({run.search.candidates:,} configurations after pruning)")

    t = best_of(lambda: facility_ledger(scenario, report))
    lines.append(f"facility_ledger, Memphis (100,000 GPUs), given its plan: {t * 1e3:.2f} ms")

    cli = [str(Path(sys.executable).with_name("supercluster")), "plan", str(MEMPHIS), "--json"]
    t0 = time.perf_counter()
    subprocess.run(cli, check=True, capture_output=True)
    lines.append(f"supercluster plan scenarios/memphis.yaml --json (end to end, new process): "
                 f"{time.perf_counter() - t0:.3f} s")

    space = enumerate_space(scenario)
    reps = int(np.ceil(1_000_000 / len(space)))
    big = space.take(np.tile(np.arange(len(space)), reps))
    cal = default_calibration()
    t = best_of(lambda: evaluate(scenario, big, cal), repeat=3)
    lines.append(f"evaluate(): Memphis space tiled to {len(big):,} configurations in {t:.3f} s = "
                 f"{len(big) / t:,.0f} configurations/s")
    # A genuine space of over a million distinct configurations, evaluated in plan()'s chunks.
    wide = load_scenario(MEMPHIS, ["parallelism.order=auto", "cluster.num_gpus=98304", "training.global_batch=12288"])
    wide_space = enumerate_space(wide)

    def chunked() -> None:
        for _ in evaluated_chunks(wide, wide_space, cal):
            pass

    t = best_of(chunked, repeat=3)
    lines.append(f"evaluate(): {len(wide_space):,} distinct configurations (Memphis at 98,304 GPUs, batch 12,288, "
                 f"order auto) in chunks of {CHUNK:,}: {t:.3f} s = {len(wide_space) / t:,.0f} configurations/s")

    # Fabric: build and summarise 100k- and 1M-GPU fabrics (counts, never per GPU); peak memory via tracemalloc.
    colossus = load_cluster("colossus")
    for n in (100_000, 1_000_000):
        cl = colossus.model_copy(update={"num_gpus": n, "fabric": colossus.fabric.model_copy(update={"tiers": None})})
        tracemalloc.start()
        t = best_of(lambda cl=cl: fabric_report(cl))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        r = fabric_report(cl)
        lines.append(f"fabric_report: {n:,} GPUs ({len(r.tiers)} tiers, {r.switches:,} switches) in {t * 1e3:.2f} ms, "
                     f"peak {peak / 2**20:.2f} MiB")

    # Collective cost evaluations per second (one vectorised call over many groups and sizes).
    topo = build_topology(colossus)
    m = 1_000_000
    rng = np.random.default_rng(0)
    sizes = 2.0 ** rng.integers(10, 34, m)
    n = 2.0 ** rng.integers(1, 15, m)
    stride = 2.0 ** rng.integers(0, 4, m)
    p = place(colossus, topo, n, stride)
    t = best_of(lambda: collective_time(colossus, topo, cal, "all_reduce", sizes, p), repeat=3)
    lines.append(f"collective_time(all-reduce): {m:,} evaluations in {t:.3f} s = {m / t:,.0f} per second")

    # Reliability: 10,000 simulated 100-day runs on 100,000 GPUs (the Memphis cluster, its plan's shard sizes).
    from dataclasses import replace

    from supercluster.reliability.checkpoint import checkpoint_cost, daly_interval_s
    from supercluster.reliability.montecarlo import simulate
    from supercluster.reliability.rates import class_rates, job_mttf_s
    from supercluster.reliability.report import run_model

    per_gpu = report.memory_breakdown["weights"] + report.memory_breakdown["optimizer"]
    ck = checkpoint_cost(scenario.model, scenario.cluster, scenario.reliability, gpus=100_000,
                         per_gpu_state_bytes=per_gpu)
    rates = class_rates(scenario.reliability, scenario.cluster, 100_000)
    tau = daly_interval_s(ck.blocking_s, job_mttf_s(rates))
    model = run_model(scenario, rates, ck, gpus=100_000, work_s=100 * 86400.0, interval_s=tau)
    t0 = time.perf_counter()
    sim = simulate(model, runs=10_000, seed=1)
    t = time.perf_counter() - t0
    tracemalloc.start()
    simulate(replace(model), runs=10_000, seed=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    lines.append(f"reliability Monte Carlo: 10,000 runs of 100 days of work on 100,000 GPUs "
                 f"({sim.events.sum(axis=1).mean():,.0f} interruptions per run) in {t:.2f} s, "
                 f"peak {peak / 2**20:.0f} MiB")

    # Million-GPU plan, end to end (a new process).
    million = ROOT / "scenarios" / "million-gpu.yaml"
    t0 = time.perf_counter()
    subprocess.run([cli[0], "plan", str(million), "--json"], check=True, capture_output=True)
    lines.append(f"supercluster plan scenarios/million-gpu.yaml --json (1,048,576 GPUs, end to end): "
                 f"{time.perf_counter() - t0:.3f} s")

    # Sweeps: scenarios/scaling.yaml (24 points) on the local process pool and on a local Ray runtime.
    import tempfile

    from supercluster.search.runner import run_sweep
    from supercluster.search.sweep import load_sweep

    sweep = load_sweep(ROOT / "scenarios" / "scaling.yaml")
    for backend in ("local", "ray"):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run = run_sweep(sweep, Path(tmp) / "s.duckdb", backend=backend)  # type: ignore[arg-type]
            t = time.perf_counter() - t0
        lines.append(f"sweep scenarios/scaling.yaml on {backend} ({os.cpu_count()} workers): {run.points} points in "
                     f"{t:.1f} s = {run.points / t:.2f} points/s (incl. {'Ray start-up' if backend == 'ray' else 'pool start-up'})")

    append_results(lines)


if __name__ == "__main__":
    main()
