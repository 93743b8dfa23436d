"""Benchmark (`make bench`): the design search on a 10,000-design space (benchmarks/design-10k.yaml) with the local
process pool: wall time, designs/s, configurations/s (parallel configurations timed by the plans it made), peak
memory of the parent and of the largest worker, and the machine's load average before and after (the machine may be
shared). Printed and appended to benchmarks/RESULTS.md. Not a test: nothing here asserts a time.

    python benchmarks/bench_design.py [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import duckdb
from results import append_results

from supercluster.design.run import run_design
from supercluster.design.spec import load_design

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "benchmarks" / "design-10k.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    design = load_design(SPACE)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "designs.duckdb"
        t0 = time.perf_counter()
        result = run_design(design, out, workers=args.workers)
        seconds = time.perf_counter() - t0
        con = duckdb.connect(str(out), read_only=True)
        configurations = con.execute(  # once per shape planned (its designs share its plan)
            "SELECT coalesce(sum(configurations), 0) FROM (SELECT DISTINCT accelerator, num_gpus, domain_gpus, "
            "fabric, configurations FROM results WHERE configurations IS NOT NULL)").fetchone()[0]
        con.close()
    load_after = os.getloadavg()
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    parent_mib, child_mib = me.ru_maxrss / 1024, kids.ru_maxrss / 1024
    cpu_s = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime  # what the run took of the cores
    best = result.best.design if result.best else None
    lines = [
        f"design {SPACE.relative_to(ROOT)} ({result.designs:,} designs) on the local pool, {args.workers} workers: "
        f"{seconds:.1f} s = {result.designs / seconds:,.0f} designs/s; {result.shapes_planned:,} shapes planned "
        f"({', '.join(f'{n:,} {k}' for k, n in result.status.items())}), {configurations:,} configurations = "
        f"{configurations / seconds:,.0f} configurations/s (searched by the plans of the search proper; the "
        f"increments' plans are not counted); peak memory {parent_mib:,.0f} MiB (parent), {child_mib:,.0f} MiB (largest worker); "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; CPU time {cpu_s:.1f} s (parent and "
        f"workers: {cpu_s / args.workers:.1f} s on {args.workers} idle cores)",
        "best: " + ("none" if best is None else
                    f"{best.num_gpus:,} x {best.accelerator}, {best.fabric}, {best.facility}"),
    ]
    append_results(lines, "design search")


if __name__ == "__main__":
    main()
