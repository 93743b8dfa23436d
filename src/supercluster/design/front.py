"""The Pareto front over time to train with failures, capex and facility peak power, and the best design."""

from __future__ import annotations

from .rows import DesignRow


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """``a`` is no worse than ``b`` in every objective and better in one (all minimised)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def pareto(rows: list[DesignRow]) -> list[DesignRow]:
    """The rows no other row dominates, fastest first (then cheaper, then lower power, then design number)."""
    ordered = sorted(rows, key=lambda r: (*r.objectives(), r.design))
    front: list[DesignRow] = []
    for r in ordered:  # sorted by time first: only an earlier row can dominate a later one
        o = r.objectives()
        if not any(dominates(f.objectives(), o) for f in front):
            front.append(r)
    return front


def cannot_reach(front: list[DesignRow], bound_time_s: float, capex_usd: float, power_w: float
                 ) -> DesignRow | None:
    """A front row that dominates every design with these capex and power and a time no shorter than
    ``bound_time_s`` (such a design can never be on the front), or None."""
    best = (bound_time_s, capex_usd, power_w)
    for f in front:
        if dominates(f.objectives(), best):
            return f
    return None


def best_row(feasible: list[DesignRow]) -> DesignRow | None:
    """The design that trains soonest (with failures) under the constraints; ties go to less capex, then less
    power, then the design number."""
    if not feasible:
        return None
    return min(feasible, key=lambda r: (*r.objectives(), r.design))
