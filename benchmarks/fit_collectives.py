"""Fit the two collective-model knobs that are fitted rather than read off NCCL's source: the fill ramps of the
Simple-only and point-to-point algorithms (calibration ``collective_ramp_bytes``) and the overlap of a hierarchical
all-reduce's two phases (``hierarchical_overlap``), on the collectives set (validate/collectives.yaml) only, over
the gated measurements (those the data file does not exclude).

Coordinate descent over a fixed grid per knob, from the middle of each grid, until a pass changes nothing; the
objective is the count of measurements of 1 MiB or more beyond 35% (the gate), then the median |error|. Prints the
values to copy into catalog/calibration.yaml (a person reviews every change of a global knob; the step-time knobs are
then refitted with `make calibrate`, since the collectives enter the step model).

    .venv/bin/python benchmarks/fit_collectives.py
"""

from __future__ import annotations

from supercluster.spec.calibration import Calibration, default_calibration
from supercluster.validate import validate_collectives

RAMP_GRID: dict[str, list[float]] = {
    "nvls": [2e6, 4e6, 8e6, 16e6, 32e6],
    "hierarchical": [8e6, 16e6, 32e6, 64e6],
    "sharp": [8e6, 16e6, 32e6, 64e6],
    "pairwise": [0.5e6, 1e6, 2e6, 4e6, 8e6],
    "direct": [0.25e6, 0.5e6, 1e6, 2e6, 4e6],
    "ring": [1e6, 2e6, 4e6, 8e6],
}
OVERLAP_GRID = [0.5, 0.6, 0.7, 0.8, 0.9]


def score(cal: Calibration) -> tuple[int, float]:
    result = validate_collectives(calibration=cal)
    return result.beyond_limit_at_or_above_1MiB, float(result.median_abs_rel_error or 0.0)


def main() -> None:
    cal = default_calibration()
    ramps = {k: grid[len(grid) // 2] for k, grid in RAMP_GRID.items()}
    cal = cal.model_copy(update={"collective_ramp_bytes": ramps,
                                 "hierarchical_overlap": OVERLAP_GRID[len(OVERLAP_GRID) // 2]})
    best = score(cal)
    for n_pass in range(6):
        changed = False
        for algo, grid in RAMP_GRID.items():
            for v in grid:
                trial = cal.model_copy(update={"collective_ramp_bytes": {**cal.collective_ramp_bytes, algo: v}})
                s = score(trial)
                if s < best:
                    best, cal, changed = s, trial, True
        for v in OVERLAP_GRID:
            trial = cal.model_copy(update={"hierarchical_overlap": v})
            s = score(trial)
            if s < best:
                best, cal, changed = s, trial, True
        print(f"pass {n_pass + 1}: {best[0]} beyond 35% at >= 1 MiB, median {best[1]:.2%}")
        if not changed:
            break
    print("collective_ramp_bytes:", {k: f"{v:.3g}" for k, v in cal.collective_ramp_bytes.items()})
    print("hierarchical_overlap:", cal.hierarchical_overlap)


if __name__ == "__main__":
    main()
