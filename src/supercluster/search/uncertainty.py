"""How sure a prediction is: an interval from the cross-validated errors of the published runs most like it.

Every run the knobs were fitted on carries (catalog/calibration.yaml ``residuals``, written by
``supercluster calibrate``) its features and its leave-one-source-out relative error e = predicted / measured - 1:
how far off the model was on that run when the run's whole source was left out of the fit. For a new scenario,
the K runs nearest in features (accelerator generation, precision, dense or MoE, Mamba layers, fused attention,
ZeRO-3, context parallelism, GPU count and active parameters) give the band: the measured time lies in
[predicted / (1 + e_max), predicted / (1 + e_min)] if the scenario errs as its neighbours did (e_min <= 0 <= e_max
so the band always holds the prediction). Time-to-train scales with the step; MFU inversely.

The neighbours mostly come from a few sources, while a scenario is a run of software and a release the calibration
has not seen: a source's runs err together (its stack, its release, how it measured), and the per-source mean
errors scatter around zero by their standard deviation d (the between-source spread of the same residuals; 6% over
the shipped calibration's 18 sources). The band is widened by d on both sides, [e_min - d, e_max + d]: without it,
runs the model never saw (validate/heldout.yaml, 86 runs of other releases) fell inside their band 43% of the time,
while the calibration runs, whose sources the band had seen, fell inside their own cross-validated one 77% of the
time. A kind no fitted run has (Mamba layers today) is named in the report, and the band is drawn from the runs of
that kind the calibration set lists without fitting them (``listed`` residuals: their errors with the fitted knobs,
out of the fit by construction), or, with none, from the fitted runs unlike the scenario in that.
"""

from __future__ import annotations

import math
from typing import Any

from ..perf.report import StepReport, Uncertainty
from ..spec.calibration import Calibration, Residual
from ..spec.scenario import Scenario
from ..workload.memory import effective_zero_stage
from ..workload.params import param_counts

NEIGHBOURS = 8  #: runs the band is drawn from
#: distance per unit of difference: a categorical feature that differs counts its weight once; a numeric one its
#: weight times the absolute difference (log10 of the 16-bit peak, of the GPU count, of the active parameters)
WEIGHTS: dict[str, float] = {"log10_peak_flops": 2.0, "precision": 0.5, "moe": 1.0, "ssm": 1.0, "fused_attention": 1.0,
                             "zero3": 0.5, "context_parallel": 0.5, "log10_gpus": 0.5, "log10_active_params": 0.5}
LABELS = {"log10_peak_flops": "accelerator generation", "precision": "precision", "moe": "dense/MoE",
          "ssm": "Mamba layers", "fused_attention": "fused attention", "zero3": "ZeRO-3",
          "context_parallel": "context parallelism", "log10_gpus": "GPU count",
          "log10_active_params": "active parameters"}
#: a feature's value for a residual written before the feature was (every run fitted then had none of it)
DEFAULTS: dict[str, str | float | bool] = {"ssm": False}


def features(s: Scenario, parallelism: dict[str, Any]) -> dict[str, str | float | bool]:
    """What makes two runs alike for the model's error."""
    acc = s.cluster.accelerator
    zero = int(effective_zero_stage(parallelism["zero_stage"], parallelism["pp"]))
    return {
        "log10_peak_flops": round(math.log10(acc.peak_flops_per_s("bf16")), 4),
        "precision": s.training.precision,
        "moe": s.model.moe is not None,
        "ssm": s.model.ssm is not None,
        "fused_attention": s.training.flash_attention,
        "zero3": zero == 3,
        "context_parallel": int(parallelism["cp"]) > 1,
        "log10_gpus": round(math.log10(s.cluster.num_gpus), 4),
        "log10_active_params": round(math.log10(param_counts(s.model).active), 4),
    }


def feature(feats: dict[str, str | float | bool], key: str) -> str | float | bool | None:
    """A run's value of one feature, the feature's default for a residual written before it existed."""
    return feats.get(key, DEFAULTS.get(key))


def distance(a: dict[str, str | float | bool], b: dict[str, str | float | bool]) -> float:
    d = 0.0
    for key, w in WEIGHTS.items():
        x, y = feature(a, key), feature(b, key)
        if isinstance(x, bool | str) or isinstance(y, bool | str):
            d += w * (x != y)
        elif x is not None and y is not None:
            d += w * abs(float(x) - float(y))
        else:
            d += w
    return d


def nearest(residuals: tuple[Residual, ...] | list[Residual], feats: dict[str, str | float | bool],
            k: int = NEIGHBOURS, exclude_group: str | None = None) -> list[Residual]:
    """The k runs nearest to ``feats`` (ties by id), leaving out a source group if asked."""
    return _closest([r for r in residuals if r.group != exclude_group and not r.listed], feats, k)


def _closest(pool: list[Residual], feats: dict[str, str | float | bool], k: int) -> list[Residual]:
    """The k runs of ``pool`` nearest to ``feats``, ties by id."""
    return sorted(pool, key=lambda r: (distance(feats, r.features), r.id))[:k]


def error_range(rows: list[Residual]) -> tuple[float, float]:
    """(e_min, e_max) of the rows' cross-validated errors, widened to hold 0."""
    errs = [r.cv_rel_error for r in rows]
    return min(0.0, *errs), max(0.0, *errs)


def source_spread(residuals: tuple[Residual, ...] | list[Residual], exclude_group: str | None = None) -> float:
    """The standard deviation of the per-source mean cross-validated errors, each source counted once (0 with
    fewer than two sources): how far a new source's runs sit off as a group."""
    by_group: dict[str, list[float]] = {}
    for r in residuals:
        if r.group != exclude_group and not r.listed:
            by_group.setdefault(r.group, []).append(r.cv_rel_error)
    means = [math.fsum(v) / len(v) for _, v in sorted(by_group.items())]
    if len(means) < 2:
        return 0.0
    mu = math.fsum(means) / len(means)
    return math.sqrt(math.fsum((m - mu) ** 2 for m in means) / len(means))


#: the band's lower error bound never reaches -1 (a measured time of infinity)
MIN_REL_ERROR = -0.9


def unmatched(residuals: tuple[Residual, ...] | list[Residual], feats: dict[str, str | float | bool]) -> list[str]:
    """The scenario's kinds (categorical features: precision, dense/MoE, Mamba layers, ...) that no fitted run shares
    (their keys): the report names them, and the band comes from the listed runs of those kinds, if any."""
    return [k for k in WEIGHTS if isinstance(feats.get(k), bool | str)
            and all(feature(r.features, k) != feats[k] for r in residuals if not r.listed)]


def listed_kin(residuals: tuple[Residual, ...] | list[Residual], feats: dict[str, str | float | bool],
               kinds: list[str]) -> list[Residual]:
    """The listed (unfitted) runs that share the scenario's ``kinds`` no fitted run has, nearest first: their errors,
    out of the fit by construction, are the only evidence of how the model does on such a run."""
    return _closest([r for r in residuals if r.listed and all(feature(r.features, k) == feats[k] for k in kinds)],
                    feats, NEIGHBOURS)


def widened(lo: float, hi: float, spread: float) -> tuple[float, float]:
    """The band's error range [e_min - d, e_max + d]."""
    return max(lo - spread, MIN_REL_ERROR), hi + spread


def with_interval(report: StepReport, s: Scenario, cal: Calibration) -> StepReport:
    """The report with its interval (step time, time-to-train, MFU) when the calibration in effect carries the
    cross-validated residuals of its fit; unchanged otherwise."""
    if not cal.residuals:
        return report
    feats = features(s, report.parallelism)
    kinds = unmatched(cal.residuals, feats)
    alone = [LABELS[k] for k in kinds]
    kin = listed_kin(cal.residuals, feats, kinds) if kinds else []
    rows = kin or nearest(cal.residuals, feats)
    e_min, e_max = error_range(rows)
    spread = source_spread(cal.residuals)
    lo, hi = widened(e_min, e_max, spread)
    low, high = 1.0 / (1.0 + hi), 1.0 / (1.0 + lo)  # measured / predicted
    return report.model_copy(update={
        "step_time_interval_s": (report.step_time_s * low, report.step_time_s * high),
        "time_to_train_interval_s": (report.time_to_train_s * low, report.time_to_train_s * high),
        "mfu_interval": (report.mfu / high, report.mfu / low),
        "uncertainty": Uncertainty(
            rel_error_range=(lo, hi), rows=[r.id for r in rows], calibration=cal.source, source_spread=spread,
            basis=(f"the errors of the {len(rows)} runs the calibration set lists and does not fit that share "
                   f"its {', '.join(alone)}, which no fitted run has" if kin else
                   f"the leave-one-source-out errors of the {len(rows)} calibration runs most like this one "
                   f"({', '.join(LABELS[k] for k in WEIGHTS)})")
                  + f": the model erred by {e_min:+.1%} to {e_max:+.1%} on them, widened by {spread:.1%} either "
                  f"side, the spread of the sources' mean errors (a new stack or release errs as a source does)"
                  + (f"; no calibration run shares its {', '.join(alone)}: the band is drawn from runs unlike it "
                     "in that, and the model is untested there" if alone and not kin else ""),
            unmatched=alone),
    })
