"""Reading a validation file: its list of entries and its tolerance block (defaults overlaid, each checked)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import FileFormatError
from ..spec.load import read_data_file


def read_validation_file(path: str | Path | None, default: Path, key: str
                         ) -> tuple[dict[str, Any], list[Any], str]:
    """(the file's data, its non-empty list ``key``, the name to show in errors); the built-in file by default."""
    p = Path(path) if path else default
    shown = str(path) if path else f"{default.name} (built-in)"
    data = read_data_file(p)
    entries = data.get(key)
    if not isinstance(entries, list) or not entries:
        raise FileFormatError(f"expected a non-empty list '{key}'", file=shown, field=key)
    return data, entries, shown


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


def gate_exclusion(entry: dict[str, Any], *, file: str, field: str) -> str | None:
    """Why the data file leaves an entry out of its gate (``exclude_from_gate: reason``), or None; a mark without a
    reason is an error."""
    reason = entry.get("exclude_from_gate")
    if reason is None:
        return None
    if not isinstance(reason, str) or not reason.strip():
        raise FileFormatError("exclude_from_gate must say why (a non-empty text)", file=file,
                              field=f"{field}.exclude_from_gate")
    return reason


def error_summary(rel_errors: Iterable[float]) -> dict[str, Any]:
    """How many errors, and the median and max of their magnitudes (None without any): a group's line in a
    validation result."""
    errs = [abs(e) for e in rel_errors]
    return {"rows": len(errs), "median_abs_rel_error": statistics.median(errs) if errs else None,
            "max_abs_rel_error": max(errs) if errs else None}


class GatedResult(BaseModel):
    """What every validation of measured rows against a gate reports beside its rows: the file, the error
    statistics over the gated rows, the gate and its verdict, and how many rows the data file leaves out of it."""

    model_config = ConfigDict(frozen=True)

    file: str
    kind: str
    median_abs_rel_error: float | None
    max_abs_rel_error: float | None
    signed_mean_rel_error: float | None
    tolerance: dict[str, Any]
    passed: bool
    failures: list[str]
    excluded: int = 0
