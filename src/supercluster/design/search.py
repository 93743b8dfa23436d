"""The design search: every design's cheap figures first, the constraints they already break, then the rest planned
shape by shape in waves, each design skipped when its bound shows a design of the front beats it.

Order of work, cheapest first:
1. capex and facility peak power from the counts (no step timed) and a time no configuration beats (model FLOPs
   at the GPUs' dense peak): a design over the budget, over the power cap, or unable to meet the deadline even at
   that bound is a row with its reason, never planned;
2. the rest, grouped into shapes (accelerator option, scale-up domain, GPU count, fabric: one best parallelism for
   all the facilities and storage tiers of a shape), cheapest capex first, in waves of WAVE groups on the pool;
   before each wave a design whose (bound, capex, power) a feasible design of the front already dominates is
   pruned: its time can only be longer than its bound, so it can never reach the front (nor be the best, which is
   on the front);
3. after planning, the water cap and the deadline (time to train with failures).
A wave is a fixed number of groups in a fixed order, so the rows do not depend on the backend or the worker count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..errors import InfeasibleError
from ..units import SECONDS_PER_DAY, format_usd
from .evaluate import Builder, Shape, cheap_row, plan_group
from .front import best_row, cannot_reach, pareto
from .rows import DesignRow
from .spec import Constraints, Design, DesignPoint, Workload

WAVE = 16  # groups of shapes (one accelerator option, domain and GPU count, every fabric) planned per wave
PoolMap = Callable[[Callable[..., Any], list[tuple[Any, ...]]], list[Any]]
OnRows = Callable[[list[DesignRow]], None]


def cheap_verdict(row: DesignRow, c: Constraints) -> str | None:
    """The constraint a design breaks before it is planned (budget, power cap, the deadline at its bound), or None."""
    if c.budget_usd is not None and row.budget_capex_usd is not None and row.budget_capex_usd > c.budget_usd:
        return f"over budget: {format_usd(row.budget_capex_usd)} of {format_usd(c.budget_usd)}"
    if c.power_mw is not None and row.facility_peak_power_w is not None and \
            row.facility_peak_power_w > c.power_mw * 1e6:
        return f"over the power cap: {row.facility_peak_power_w / 1e6:,.1f} MW of {c.power_mw:g} MW at peak"
    if c.deadline_days is not None and row.bound_time_s is not None and \
            row.bound_time_s > c.deadline_days * SECONDS_PER_DAY:
        return (f"cannot meet the deadline: {row.bound_time_s / SECONDS_PER_DAY:,.1f} days even at the GPUs' "
                f"dense peak, of {c.deadline_days:g}")
    return None


def planned_verdict(row: DesignRow, c: Constraints) -> str | None:
    """The constraint a planned design breaks (water, the deadline with failures), or None."""
    if c.water_m3_per_day is not None and (row.water_m3_per_day is None or
                                           row.water_m3_per_day > c.water_m3_per_day):
        got = "unknown" if row.water_m3_per_day is None else f"{row.water_m3_per_day:,.0f} m3/day"
        return f"over the water cap: {got} of {c.water_m3_per_day:,.0f} m3/day"
    if c.deadline_days is not None and row.time_to_train_with_failures_s is not None and \
            row.time_to_train_with_failures_s > c.deadline_days * SECONDS_PER_DAY:
        return (f"misses the deadline: {row.time_to_train_with_failures_s / SECONDS_PER_DAY:,.1f} days with "
                f"failures, of {c.deadline_days:g}")
    return None


def _shape(p: DesignPoint) -> tuple[int, int, int, int]:
    return p.option, p.domain, p.num_gpus, p.fabric


def _group(shape: tuple[int, int, int, int]) -> tuple[int, int, int]:
    return shape[:3]


def plan_shapes(shapes: list[Shape], workloads: list[Workload]) -> list[DesignRow]:
    """A pool task: the shapes of one group planned (evaluate.plan_group), given their scenarios."""
    return plan_group(shapes, workloads)


class Search:
    """A design's rows: the cheap ones for every design at once, the planned ones kept across searches under other
    constraints (what the next increment of budget or power buys reuses every design already planned)."""

    def __init__(self, design: Design, pool: PoolMap, wave: int = WAVE) -> None:
        self.design = design
        self.pool = pool
        self.wave = wave  # groups per wave: more keep a pool busy, fewer prune sooner
        self.points = design.points
        self.builder = Builder(design)
        self.cheap = [cheap_row(design, i, p, self.builder) for i, p in enumerate(self.points)]
        self.planned: dict[int, DesignRow] = {}
        self.shapes_planned = 0

    def refuse_empty(self, c: Constraints) -> None:
        """One located line, before any design is planned, when no design can meet the constraints."""
        fails = [cheap_verdict(r, c) if r.status == "ok" else r.reason for r in self.cheap]
        if any(f is None for f in fails):
            return
        costs = [r.budget_capex_usd for r in self.cheap if r.budget_capex_usd is not None]
        powers = [r.facility_peak_power_w for r in self.cheap if r.facility_peak_power_w is not None]
        bounds = [r.bound_time_s for r in self.cheap if r.bound_time_s is not None]
        checks: list[tuple[str, bool, str]] = []
        if c.budget_usd is not None and costs:
            checks.append(("constraints.budget_usd", min(costs) > c.budget_usd,
                           f"no design costs at most {format_usd(c.budget_usd)}: the cheapest costs {format_usd(min(costs))}"))
        if c.power_mw is not None and powers:
            checks.append(("constraints.power_mw", min(powers) > c.power_mw * 1e6,
                           f"no design draws at most {c.power_mw:g} MW at peak: the leanest draws "
                           f"{min(powers) / 1e6:,.1f} MW"))
        if c.deadline_days is not None and bounds:
            checks.append(("constraints.deadline_days", min(bounds) > c.deadline_days * SECONDS_PER_DAY,
                           f"no design can train in {c.deadline_days:g} days: the fastest needs "
                           f"{min(bounds) / SECONDS_PER_DAY:,.1f} days even at its GPUs' dense peak"))
        for field, alone, message in checks:
            if alone:
                raise InfeasibleError(message, file=self.design.file, field=field)
        counts: dict[str, int] = {}
        for f in fails:
            key = (f or "").split(":")[0]
            counts[key] = counts.get(key, 0) + 1
        summary = ", ".join(f"{n:,} {k}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        raise InfeasibleError(f"no design meets every constraint: {summary}", file=self.design.file,
                              field="constraints")

    def run(self, c: Constraints, done: dict[int, DesignRow] | None = None, on_rows: OnRows | None = None
            ) -> tuple[dict[int, DesignRow], list[DesignRow]]:
        """Every design's row under constraints ``c`` and the front of the feasible ones. ``done``: rows already
        final (a resumed run's); ``on_rows`` receives each batch of new final rows."""
        final: dict[int, DesignRow] = dict(done or {})
        for r in final.values():
            if r.planned and r.design not in self.planned:
                self.planned[r.design] = r
        new: list[DesignRow] = []
        pending: dict[tuple[int, int, int, int], list[int]] = {}
        for i, r in enumerate(self.cheap):
            if i in final:
                continue
            reason = cheap_verdict(r, c) if r.status == "ok" else r.reason
            if reason is not None:
                new.append(r.model_copy(update={"status": "infeasible", "reason": reason}))
            elif i in self.planned:
                new.append(self._judged(self.planned[i], c))
            else:
                pending.setdefault(_shape(self.points[i]), []).append(i)
        for r in new:
            final[r.design] = r
        if on_rows and new:
            on_rows(new)
        front = pareto([r for r in final.values() if r.status == "ok"])
        cost: dict[tuple[int, int, int], float] = {}
        for k, ids in pending.items():
            low = min(self.cheap[i].capex_usd or 0.0 for i in ids)
            cost[_group(k)] = min(cost.get(_group(k), low), low)
        # cheapest group first, a group's fabrics together (they share their space and memory)
        order = sorted(pending, key=lambda k: (cost[_group(k)], k))
        for wave in self._waves(order, pending, final, front, on_rows):
            groups: dict[tuple[int, int, int], list[Shape]] = {}
            for ids in wave:
                groups.setdefault(_group(_shape(self.points[ids[0]])), []).append(
                    ([self.builder.scenarios(self.points[i]) for i in ids], [self.points[i].storage for i in ids],
                     [self.cheap[i] for i in ids]))
            # the largest clusters first, so that the pool's workers finish a wave together (rows do not depend on it)
            tasks = sorted(groups.items(), key=lambda kv: (-kv[0][2], kv[0]))
            results = self.pool(plan_shapes, [(shapes, self.design.workloads) for _, shapes in tasks])
            self.shapes_planned += len(wave)
            batch: list[DesignRow] = []
            for rows in results:
                for r in rows:
                    self.planned[r.design] = r
                    batch.append(self._judged(r, c))
            for r in batch:
                final[r.design] = r
            front[:] = pareto(front + [r for r in batch if r.status == "ok"])
            if on_rows:
                on_rows(batch)
        return final, front

    def _waves(self, order: list[tuple[int, int, int, int]], pending: dict[tuple[int, int, int, int], list[int]],
               final: dict[int, DesignRow], front: list[DesignRow], on_rows: OnRows | None
               ) -> Iterator[list[list[int]]]:
        """Waves of WAVE shapes, each design pruned against the front as it stands before its wave."""
        k = 0
        while k < len(order):
            wave: list[list[int]] = []
            pruned: list[DesignRow] = []
            seen: set[tuple[int, int, int]] = set()
            while k < len(order) and (len(seen) < self.wave or _group(order[k]) in seen):
                seen.add(_group(order[k]))
                keep = []
                for i in pending[order[k]]:
                    r = self.cheap[i]
                    assert r.bound_time_s is not None and r.capex_usd is not None \
                        and r.facility_peak_power_w is not None
                    beaten = cannot_reach(front, r.bound_time_s, r.capex_usd, r.facility_peak_power_w)
                    if beaten is None:
                        keep.append(i)
                    else:
                        t = beaten.time_to_train_with_failures_s or 0.0
                        pruned.append(r.model_copy(update={"status": "pruned", "reason": (
                            f"cannot reach the front: design {beaten.design} trains in {t / SECONDS_PER_DAY:,.1f} "
                            f"days (this one needs {r.bound_time_s / SECONDS_PER_DAY:,.1f} even at peak) for no "
                            "more capex or power")}))
                if keep:
                    wave.append(keep)
                k += 1
            for r in pruned:
                final[r.design] = r
            if on_rows and pruned:
                on_rows(pruned)
            if wave:
                yield wave

    def _judged(self, r: DesignRow, c: Constraints) -> DesignRow:
        """A planned row with its verdict under ``c``."""
        if r.status != "ok":
            return r
        reason = planned_verdict(r, c)
        return r if reason is None else r.model_copy(update={"status": "infeasible", "reason": reason})

    def evaluate_one(self, p: DesignPoint, index: int, design: Design | None = None) -> DesignRow:
        """A design outside the space (an increment), planned alone; ``design``: the space with the option it
        takes (another fabric), when the point is not of this one."""
        d = design or self.design
        b = self.builder if design is None else Builder(design)
        r = cheap_row(d, index, p, b)
        if r.status != "ok":
            return r
        return self.pool(plan_shapes, [([([b.scenarios(p)], [p.storage], [r])], d.workloads)])[0][0]


def best_of(front: list[DesignRow]) -> DesignRow | None:
    return best_row(front)
