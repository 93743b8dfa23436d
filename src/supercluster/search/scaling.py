"""How a scenario scales: the same scenario planned at a few GPU counts around its own (each point searched for its
best configuration), for MFU, tokens/s and time-to-train against GPU count."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import SuperclusterError
from ..perf.report import StepReport
from ..spec.base import MAX_GPUS
from ..spec.calibration import Calibration
from ..spec.load import check_parallelism, validation_error_to_input_error
from ..spec.scenario import Scenario
from .plan import best_step

SCALING_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)  # GPU counts relative to the scenario's: five points, bounded time


class ScalingPoint(BaseModel):
    """One GPU count's best configuration, or why there is none (``note``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_gpus: int
    step_time_s: float | None = None
    mfu: float | None = None
    tokens_per_s: float | None = None
    time_to_train_s: float | None = None
    parallelism: dict[str, object] | None = None
    note: str | None = None  # why the count has no figures: the rules or the memory refuse it


def _point(step: StepReport) -> ScalingPoint:
    return ScalingPoint(num_gpus=step.num_gpus, step_time_s=step.step_time_s, mfu=step.mfu,
                        tokens_per_s=step.tokens_per_s, time_to_train_s=step.time_to_train_s,
                        parallelism=step.parallelism)


def at_gpu_count(s: Scenario, num_gpus: int) -> Scenario:
    """The scenario on ``num_gpus`` GPUs of the same cluster, validated as a user's would be. A data-parallel
    degree the scenario fixes is left to the search: it is the degree that follows the GPU count (the other fixed
    degrees stay, and a count they do not divide is refused)."""
    data = s.model_dump()
    data["cluster"]["num_gpus"] = num_gpus
    data["parallelism"]["dp"] = None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise validation_error_to_input_error(exc, file=None) from None
    check_parallelism(scenario)
    return scenario


def gpu_count_sweep(s: Scenario, calibration: Calibration | None = None, *, given: StepReport | None = None,
                    factors: tuple[float, ...] = SCALING_FACTORS) -> list[ScalingPoint]:
    """The scenario at its GPU count times each factor (whole counts from 1 to MAX_GPUS, each once, ascending),
    each planned for its fastest configuration that fits (``given``: the scenario's own step, not planned again).
    A count the rules or the memory refuse is a point with a note."""
    n = s.cluster.num_gpus
    counts = sorted({round(n * f) for f in factors if 1 <= round(n * f) <= MAX_GPUS})
    out: list[ScalingPoint] = []
    for count in counts:
        if count == n and given is not None:
            out.append(_point(given))
            continue
        try:
            step, _ = best_step(at_gpu_count(s, count), calibration)
        except SuperclusterError as exc:
            out.append(ScalingPoint(num_gpus=count, note=str(exc)))
            continue
        out.append(_point(step))
    return out
