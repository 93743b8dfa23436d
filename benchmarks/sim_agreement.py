"""The simulator against the analytic step model, contention and jitter off (issue 15): every calibration row
(validate/calibration.yaml, read as `calibrate` reads it), plan's configuration for every shipped scenario, and
N configurations drawn at random from each shipped scenario's search space. Prints every case over the tolerance
and a summary per group.

    python benchmarks/sim_agreement.py [--per-scenario 200] [--seed 0] [--skip-rows] [--scenario NAME]
        [--set training.framework=pytorch] [--schedule zb-h1]

``--set`` overrides every scenario (as `plan --set` does); ``--schedule`` draws the random configurations among
that schedule's only.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

from supercluster.errors import SuperclusterError
from supercluster.search.plan import best_step
from supercluster.search.space import enumerate_space
from supercluster.sim.run import simulate
from supercluster.spec import load_scenario
from supercluster.spec.training import SCHEDULES
from supercluster.validate.calibrate import load_fit_runs

TOLERANCE = 0.05
SCENARIOS = Path(__file__).resolve().parents[1] / "src" / "supercluster" / "scenarios"


def _check(label: str, s, cal, par, out: list, full: list | None = None) -> None:
    m = s.training.global_batch // (par["dp"] * par["micro_batch"])
    r = simulate(s, cal, par).report
    out.append(r.rel_difference)
    if full is not None:
        full.append(m >= par["pp"])
    if abs(r.rel_difference) > TOLERANCE:
        print(f"  OVER {label}: sim {r.step_time_s:.4g} s, analytic {r.analytic_step_time_s:.4g} s "
              f"({r.rel_difference:+.1%}); pp {par['pp']} v {par['virtual_stages']} m {m} "
              f"zero {par['zero_stage']} tp {par['tp']} cp {par['cp']} ep {par['ep']} dp {par['dp']}", flush=True)


def _summary(name: str, errs: list, seconds: float, full: list | None = None) -> None:
    e = np.abs(np.array(errs)) if errs else np.zeros(1)
    print(f"{name}: {len(errs)} cases, median |diff| {np.median(e):.2%}, max {e.max():.2%}, "
          f"{int((e > TOLERANCE).sum())} over {TOLERANCE:.0%} ({seconds:.0f} s)", flush=True)
    if full:  # the pipeline filled (at least as many micro-batches as stages) and not
        for label, keep in (("m >= pp", np.array(full)), ("m < pp", ~np.array(full))):
            if keep.any():
                print(f"  {label}: {int(keep.sum())} cases, median |diff| {np.median(e[keep]):.2%}, max "
                      f"{e[keep].max():.2%}, {int((e[keep] > TOLERANCE).sum())} over", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-scenario", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-rows", action="store_true")
    ap.add_argument("--scenario", action="append", default=[], help="only these shipped scenarios")
    ap.add_argument("--set", action="append", default=[], dest="sets", help="KEY=VALUE for every scenario")
    ap.add_argument("--schedule", choices=SCHEDULES, default=None)
    args = ap.parse_args()
    if not args.skip_rows:
        t0, errs = time.perf_counter(), []
        runs = load_fit_runs(None).fit
        for run in runs:
            cal = run.scenario.calibrated(None)
            with contextlib.suppress(SuperclusterError):
                step, _ = best_step(run.scenario, cal, require_fit=False)
                _check(f"row {run.id}", run.scenario, cal, step.parallelism, errs)
        _summary("calibration rows", errs, time.perf_counter() - t0)
    for path in sorted(SCENARIOS.glob("*.yaml")):
        if args.scenario and path.stem not in args.scenario:
            continue
        try:
            s = load_scenario(str(path), args.sets)
        except SuperclusterError:
            continue  # not a scenario (a sweep file)
        cal = s.calibrated(None)
        t0, errs, full = time.perf_counter(), [], []
        step, _ = best_step(s, cal)
        _check(f"{path.stem} plan", s, cal, step.parallelism, errs, full)
        space = enumerate_space(s)
        rng = np.random.default_rng(args.seed)
        rows = np.arange(len(space)) if args.schedule is None else \
            np.flatnonzero(space.schedule == SCHEDULES.index(args.schedule))
        for i in rng.choice(rows, size=min(args.per_scenario, len(rows)), replace=False):
            par = space.row(int(i))
            with contextlib.suppress(SuperclusterError):
                _check(f"{path.stem} #{int(i)}", s, cal, par, errs, full)
        _summary(path.stem, errs, time.perf_counter() - t0, full if args.schedule else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
