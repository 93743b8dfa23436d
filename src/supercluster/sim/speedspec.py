"""A unit of the cluster running at a share of its speed, as a user writes it: ``UNIT=INDEX:SPEED`` (``--straggler
gpu=1234:0.8``, ``--slow-link leaf=3:0.5``): the one parsing and checking both options share."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class UnitSpeed:
    unit: str  # the kind of unit: "gpu", "node", "leaf" or "pod"
    index: int
    speed: float  # share of the unit's nominal speed or rate, in (0, 1]

    def __str__(self) -> str:
        return f"{self.unit}={self.index}:{self.speed:g}"


def split_unit_speed(text: str, units: tuple[str, ...], example: str, field: str) -> tuple[str, int, float]:
    """``text`` as (unit, index, speed), one of ``units``; a clear error naming ``field`` otherwise."""
    match = re.match(rf"^({'|'.join(units)})=(\d+):([0-9]*\.?[0-9]+)$", text.strip())
    if not match:
        forms = [f"{u}=INDEX:SPEED" for u in units]
        raise InputError(f"expected {', '.join(forms[:-1])} or {forms[-1]} (e.g. {example}), got {text!r}",
                         field=field)
    return match.group(1), int(match.group(2)), float(match.group(3))


def check_speed(speed: float, text: str, meaning: str, field: str) -> None:
    """Refuse a speed outside (0, 1]; ``meaning`` says what it is a share of."""
    if not 0.0 < speed <= 1.0:
        raise InputError(f"expected a speed in (0, 1] ({meaning}), got {speed:g} in {text!r}", field=field)


def check_index(unit: str, index: int, count: int, field: str) -> None:
    """Refuse an index past the cluster's ``count`` units."""
    if index >= count:
        raise InputError(f"{unit} {index} does not exist: the cluster has {count:,} {unit}s (0 to {count - 1:,})",
                         field=field)
