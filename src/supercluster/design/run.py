"""Running a design search end to end: the results file (resumable, as a sweep's), the pool, the front, the best
design with its plan, and what the next increment of budget, power, fabric or scale-up domain buys."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ..errors import InterruptedRunError
from ..search.plan import plan
from ..search.run_report import RunReport
from ..search.runner import (
    Backend,
    check_backend,
    finish_results,
    insert_rows,
    open_results,
    parquet_path,
    stop_errors,
    task_pool,
)
from ..units import SECONDS_PER_DAY
from .rows import COLUMNS, DesignRow, WorkloadFigures
from .search import WAVE, Search, best_of, cheap_verdict, planned_verdict
from .spec import Constraints, Design, DesignPoint

Progress = Callable[[int, int], None]  # (designs done, designs in the space)


class Increment(BaseModel):
    """What one more step of a resource buys the best design: the best design once the step is taken."""

    model_config = ConfigDict(frozen=True)

    name: str  # budget+10% | power+10% | one more tier | NVL72
    applicable: bool
    note: str  # the figure as a sentence, or why it does not apply
    design: DesignRow | None = None
    time_to_train_with_failures_change_s: float | None = None
    capex_change_usd: float | None = None
    facility_peak_power_change_w: float | None = None


class BestDesign(BaseModel):
    """The design that trains soonest under the constraints, with its whole plan (as `plan` reports it; of its
    first workload, when it runs several) and each workload's figures."""

    model_config = ConfigDict(frozen=True)

    design: DesignRow
    plan: RunReport
    workloads: list[WorkloadFigures]


class DesignResult(BaseModel):
    """A design search's answer (deterministic: no wall time)."""

    model_config = ConfigDict(frozen=True)

    name: str
    file: str
    out: str
    parquet: str
    designs: int
    status: dict[str, int]  # rows by status
    reasons: dict[str, int]  # infeasible rows by the kind of their reason ("over budget", "misses the deadline", ...)
    shapes_planned: int  # shapes (accelerator option, domain, count, fabric) planned by this run
    resumed: int  # rows already in the results file
    constraints: Constraints
    front: list[DesignRow]
    best: BestDesign | None
    increments: list[Increment]


def _delta(name: str, best: DesignRow, new: DesignRow | None, what: str) -> Increment:
    if new is None:
        return Increment(name=name, applicable=True, note=f"{what}: no design then meets the constraints")
    t0, c0, p0 = best.objectives()
    t1, c1, p1 = new.objectives()
    days = (t1 - t0) / SECONDS_PER_DAY
    same = new.design == best.design
    note = (f"{what}: the same design stays best" if same else
            f"{what}: {abs(days):,.2f} days {'sooner' if days <= 0 else 'later'} "
            f"({(t1 / t0 - 1):+.1%}) for {(c1 - c0) / 1e9:+,.2f} $B capex and {(p1 - p0) / 1e6:+,.1f} MW")
    return Increment(name=name, applicable=True, note=note, design=new, time_to_train_with_failures_change_s=t1 - t0,
                     capex_change_usd=c1 - c0, facility_peak_power_change_w=p1 - p0)


def increments(search: Search, c: Constraints, best: DesignRow) -> list[Increment]:
    """10% more budget, 10% more power (the best design under each relaxed constraint), one more fabric tier and a
    72-GPU scale-up domain (the best design so changed, planned alone)."""
    d = search.design
    out: list[Increment] = []
    for name, field, label in (("budget+10%", "budget_usd", "10% more budget"),
                               ("power+10%", "power_mw", "10% more power")):
        value = getattr(c, field)
        if value is None:
            out.append(Increment(name=name, applicable=False, note=f"no {field} constraint is set"))
            continue
        relaxed = c.model_copy(update={field: value * 1.1})
        _, front = search.run(relaxed, done=None)
        out.append(_delta(name, best, best_of(front), label))
    p = search.points[best.design]
    extra = len(search.points)
    s = search.builder.scenario(p)
    if best.tiers is not None and best.tiers >= 4:
        out.append(Increment(name="one more tier", applicable=False, note="the fabric already has 4 tiers, the most"))
    else:
        fabric = d.fabrics[p.fabric] if d.fabrics[p.fabric] is not None else s.cluster.fabric.name
        more = {**fabric, "tiers": (best.tiers or 1) + 1} if isinstance(fabric, dict) else \
            {"base": fabric, "tiers": (best.tiers or 1) + 1}
        alt = d.model_copy(update={"fabrics": [*d.fabrics, more]})  # the space with the changed fabric too
        q = p.model_copy(update={"fabric": len(d.fabrics)})
        out.append(_judge(search, c, "one more tier", best, search.evaluate_one(q, extra, alt),
                          f"a {(best.tiers or 1) + 1}-tier fabric"))
    out.append(_nvl72(search, c, best, p, extra + 1))
    return out


def _judge(search: Search, c: Constraints, name: str, best: DesignRow, row: DesignRow, what: str) -> Increment:
    if row.status != "ok" or not row.planned:
        return Increment(name=name, applicable=True, note=f"{what}: {row.reason}", design=row)
    inc = _delta(name, best, row, what)
    breaks = cheap_verdict(row, c) or planned_verdict(row, c)
    return inc.model_copy(update={"note": inc.note + (f"; but {breaks}" if breaks else "")})


def _nvl72(search: Search, c: Constraints, best: DesignRow, p: DesignPoint, index: int) -> Increment:
    if best.domain_gpus >= 72:
        return Increment(name="NVL72", applicable=False, note="the best design already has 72-GPU domains")
    arch = search.builder.scenario(p).cluster.accelerator.architecture
    for o, domains in enumerate(search.design.option_domains):
        if 72 in domains:
            q = p.model_copy(update={"option": o, "domain": 72})
            if search.builder.scenario(q).cluster.accelerator.architecture == arch:
                return _judge(search, c, "NVL72", best, search.evaluate_one(q, index),
                              f"NVL72 ({search.builder.scenario(q).cluster.accelerator.name}) in place of "
                              f"{best.domain_gpus}-GPU domains")
    return Increment(name="NVL72", applicable=False, note=f"the space has no 72-GPU domain option of the "
                     f"{arch or 'same'} generation of {best.accelerator}")


def run_design(design: Design, out: str | Path, *, backend: Backend = "local", workers: int | None = None,
               address: str | None = None, progress: Progress | None = None, wave: int = WAVE) -> DesignResult:
    """Search ``design`` (rows to ``out``, resumable; Parquet beside it once complete) and answer it (``wave``:
    groups of shapes planned between two prunings, see design.search)."""
    out = Path(out)
    workers = max(1, workers or os.cpu_count() or 1)
    check_backend(backend, address)
    c = design.constraints
    with task_pool(backend, workers, address) as pool:
        search = Search(design, pool, wave)
        search.refuse_empty(c)  # one located line before any design is planned or any file written
        con = open_results(out, name=design.name, digest=design.digest, columns=COLUMNS,
                           meta={"designs": str(len(search.points))}, kind="design search")
        try:
            names = list(COLUMNS)
            cur = con.execute("SELECT * FROM results")
            cols = [x[0] for x in cur.description]
            done = {int(r[0]): DesignRow(**dict(zip(cols, r, strict=True))) for r in cur.fetchall()}
            count = [len(done)]
            if progress:
                progress(count[0], len(search.points))

            def record(rows: list[DesignRow]) -> None:
                insert_rows(con, "results", names, [[getattr(r, n) for n in names] for r in rows])
                count[0] += len(rows)
                if progress:
                    progress(count[0], len(search.points))

            try:
                final, front = search.run(c, done=done, on_rows=record)
            except stop_errors() as exc:
                raise InterruptedRunError(
                    f"a worker stopped ({exc.__class__.__name__}); {count[0]} of {len(search.points)} designs are "
                    f"in {out}: run the same command to resume") from None
            finish_results(con, out, "design")
        finally:
            con.close()
        best = best_of(front)
        incs = increments(search, c, best) if best is not None else []
    chosen = None
    if best is not None:  # the chosen design's whole plan, as `plan` reports it
        chosen = BestDesign(design=best, plan=plan(search.builder.scenario(search.points[best.design])),
                            workloads=best.workload_figures())
    status: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for r in final.values():
        status[r.status] = status.get(r.status, 0) + 1
        if r.status == "infeasible" and r.reason:
            kind = r.reason.split(":")[0]
            reasons[kind] = reasons.get(kind, 0) + 1
    return DesignResult(name=design.name, file=design.file, out=str(out), parquet=str(parquet_path(out)),
                        designs=len(search.points), status=dict(sorted(status.items())),
                        reasons=dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
                        shapes_planned=search.shapes_planned, resumed=len(done), constraints=c, front=front,
                        best=chosen, increments=incs)
