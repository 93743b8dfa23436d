"""The tolerance block of a validation file: defaults overlaid by the file's values, each checked."""

from __future__ import annotations

from typing import Any

from ..errors import FileFormatError


def read_tolerance(data: dict[str, Any], defaults: dict[str, Any], keys: tuple[str, ...], shown: str
                   ) -> dict[str, Any]:
    """The file's ``tolerance`` laid over ``defaults``; every key in ``keys`` must be a non-negative number."""
    tol = dict(defaults)
    given = data.get("tolerance") or {}
    if not isinstance(given, dict):
        raise FileFormatError("expected a mapping 'tolerance'", file=shown, field="tolerance")
    tol.update(given)
    for key in keys:
        value = tol[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise FileFormatError(f"expected a non-negative number, got {value!r}", file=shown,
                                  field=f"tolerance.{key}")
    return tol
