"""plan(): the fastest configuration of a scenario that fits in memory, and its run's RunReport."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InfeasibleError
from ..facility.ledger import FacilityReport, facility_ledger
from ..network.report import fabric_report
from ..perf.candidates import Candidates
from ..perf.report import StepReport, step_report
from ..perf.step import Prepared, StepArrays, candidate_memory, evaluate, memory_fits, prepare, stage_key
from ..reliability.report import PLAN_RUNS, ReliabilityReport, reliability_report
from ..spec.calibration import Calibration
from ..spec.scenario import Scenario
from ..workload.memory import MemoryBreakdown
from ..workload.model_report import model_report
from .claims import ClaimCheck, Computed, check_claims
from .run_report import RunReport, SearchSummary, provenance
from .space import enumerate_space, fixed_offload, offload_variants
from .uncertainty import with_interval

CHUNK = 1 << 18  # candidates evaluated per batch (bounds peak memory)


def best_index(arrays: StepArrays, require_fit: bool) -> int | None:
    """Fastest candidate (that fits, when required); ties go to less memory, then to enumeration order."""
    t = arrays.step_time_s
    ok = arrays.fits if require_fit else np.ones_like(arrays.fits)
    if not ok.any():
        return None
    keys = np.where(ok, t, np.inf)
    order = np.lexsort((np.arange(len(t)), arrays.memory.total_bytes, keys))
    return int(order[0])


def _overshoot(s: Scenario, arrays: StepArrays) -> np.ndarray:
    """How far each candidate is from fitting: the larger of its GPU memory over the budget and its host memory
    over the host's (offloading trades one for the other)."""
    gpu = arrays.memory.total_bytes / arrays.hbm_budget_bytes
    host = s.cluster.accelerator.host
    held = arrays.memory.host_bytes
    return np.maximum(gpu, np.where(held > 0, held / (host.memory_bytes if host else 1e-9), 0.0))


@dataclass
class SharedWork:
    """What the search of one scenario can hand to the search of another that differs from it in the fabric alone
    (a design search plans one cluster with several fabrics): the space, and every chunk's memory and offload
    variants (neither the rules nor the memory model reads the fabric)."""

    space: Candidates | None = None
    memory: dict[tuple[int, int], MemoryBreakdown] = field(default_factory=dict)  # (chunk offset, variant offset)
    variants: dict[tuple[int, int], Candidates] = field(default_factory=dict)  # the offload variants that fit


def evaluated_chunks(s: Scenario, space: Candidates, cal: Calibration, shared: SharedWork | None = None
                     ) -> Iterator[tuple[int, Candidates, StepArrays]]:
    """The space timed in chunks of CHUNK candidates (bounds peak memory): (offset, chunk, its arrays). After each
    chunk, the configurations that do not fit come again with the offloads the scenario leaves to the search
    (search.space.offload_variants), numbered after the space. ``shared``: memory and offload variants already
    found for a scenario that differs from this one in the fabric only (used, and filled)."""
    extra = len(space)
    memo = shared if shared is not None else SharedWork()
    for lo in range(0, len(space), CHUNK):
        chunk = space.take(np.arange(lo, min(lo + CHUNK, len(space))))
        arrays = evaluate(s, chunk, cal, memory=memo.memory.get((lo, -1)))
        if shared is not None:  # kept for the next fabric (alone, a chunk's memory goes with the chunk)
            shared.memory[(lo, -1)] = arrays.memory
        yield lo, chunk, arrays
        if s.cluster.accelerator.host is None:  # no host to offload to
            continue
        # A configuration can fit with some offload only if it fits with everything that can move moved: the GPU
        # keeps at least its transients, workspaces and runtime (a lower bound, so no candidate is lost).
        m = arrays.memory
        movable = m.optimizer_bytes + m.weights_bytes + m.gradients_bytes + m.activations_bytes
        hopeful = ~arrays.fits & (m.total_bytes - movable <= arrays.hbm_budget_bytes)
        variants = offload_variants(s.parallelism, chunk, ~hopeful)
        if variants is None:
            continue
        for vlo in range(0, len(variants), CHUNK):  # bounded memory: a chunk of variants at a time
            key = (lo, vlo)
            part = memo.variants.get(key)
            if part is None:
                part = variants.take(np.arange(vlo, min(vlo + CHUNK, len(variants))))
                part = part.take(np.flatnonzero(memory_fits(s, candidate_memory(s, part))))
                if shared is not None:
                    shared.variants[key] = part
            if len(part):
                arrays = evaluate(s, part, cal, memory=memo.memory.get(key))
                if shared is not None:
                    shared.memory[key] = arrays.memory
                yield extra, part, arrays
                extra += len(part)


@dataclass
class TimedSpace:
    """A scenario's search space and its prepared stage, kept across calibrations that differ in timing knobs only
    (a fit times the same space hundreds of times)."""

    scenario: Scenario
    space: Candidates | None = None
    prepared: Prepared | None = None

    def fastest_step_time(self, calibration: Calibration) -> float:
        """``best_step(scenario, calibration, require_fit=False)``'s step time, reusing the space and its stage."""
        s = self.scenario
        cal = s.calibrated(calibration)
        if self.space is None:
            self.space = enumerate_space(s)
        if len(self.space) == 0 or len(self.space) > CHUNK:
            return best_step(s, calibration, require_fit=False)[0].step_time_s
        if self.prepared is None or self.prepared.key != stage_key(cal):
            self.prepared = prepare(s, self.space, cal)
        arrays = evaluate(s, self.space, cal, self.prepared)
        i = best_index(arrays, require_fit=True)
        if i is None and fixed_offload(s.parallelism)[1]:  # perhaps only an offload fits: the whole search
            return best_step(s, calibration, require_fit=False)[0].step_time_s
        if i is None:
            i = best_index(arrays, require_fit=False)
        assert i is not None
        return float(arrays.step_time_s[i])


def _given(s: Scenario) -> str:
    """The parallelism fields the scenario fixes, as 'tp 8, pp 4' ('' when the search chooses every one)."""
    fixed = s.parallelism.model_dump(exclude_defaults=True)
    return ", ".join(f"{k} {v}" for k, v in fixed.items())


def _config_text(row: dict[str, Any]) -> str:
    """A candidate's configuration as a reader writes it: 'tp 8, pp 4, dp 64, micro-batch 1, recompute full'."""
    names = {"micro_batch": "micro-batch", "virtual_stages": "virtual stages", "zero_stage": "ZeRO stage"}
    return ", ".join(f"{names.get(k, k)} {v}" for k, v in row.items() if v is not None)


def best_step(s: Scenario, calibration: Calibration | None = None, *, require_fit: bool = True,
              shared: SharedWork | None = None) -> tuple[StepReport, SearchSummary]:
    """The fastest configuration of the scenario's space that fits (any, when ``require_fit`` is False), with the
    interval its measured figures should lie in, and what the search looked at. ``shared``: the work of a search of
    the same scenario with another fabric (see SharedWork), used and filled."""
    cal = s.calibrated(calibration)
    if shared is not None and shared.space is None:
        shared.space = enumerate_space(s)
    space = shared.space if shared is not None and shared.space is not None else enumerate_space(s)
    given = _given(s)
    if len(space) == 0:
        n, gb = s.cluster.num_gpus, s.training.global_batch
        raise InfeasibleError(
            f"no parallel configuration satisfies the rules for {n:,} GPUs (= {_factorise(n)})"
            + (f" with the given {given}" if given else "")
            + f": tp * pp * dp * cp must equal the GPU count with tp dividing heads ({s.model.heads}) and the "
            f"scale-up domain ({s.cluster.domain_gpus}), pp dividing layers ({s.model.layers}) and dp dividing "
            f"global_batch ({gb} = {_factorise(gb)}); try a global batch or a GPU count with more common factors",
            field="parallelism" if given else "cluster.num_gpus")
    best: tuple[float, float, int, Candidates, StepArrays] | None = None  # time, memory, index in chunk
    fallback: tuple[float, Candidates, StepArrays, int] | None = None
    plain: float | None = None  # the fastest step that fits without offloading
    for _, chunk, arrays in evaluated_chunks(s, space, cal, shared):
        i = best_index(arrays, require_fit=True)
        if i is not None:
            key = (float(arrays.step_time_s[i]), float(arrays.memory.total_bytes[i]))
            if best is None or key < (best[0], best[1]):
                best = (key[0], key[1], i, chunk, arrays)
        kept = arrays.fits & (chunk.offload == 0)
        if kept.any():
            fastest = float(arrays.step_time_s[kept].min())
            plain = fastest if plain is None else min(plain, fastest)
        over = _overshoot(s, arrays)
        j = int(np.argmin(over))
        if fallback is None or over[j] < fallback[0]:
            fallback = (float(over[j]), chunk, arrays, j)
    if best is None:
        assert fallback is not None
        if require_fit:
            _, chunk, arrays, j = fallback
            need = arrays.memory.total_bytes[j] / 2**30
            budget = arrays.hbm_budget_bytes / 2**30
            host = arrays.memory.host_bytes[j] / 2**30
            capacity = s.cluster.accelerator.host.memory_bytes / 2**30 if s.cluster.accelerator.host else 0.0
            offloaded = f" and {host:.1f} GiB of host memory per GPU of {capacity:.1f}" if host > 0 else ""
            raise InfeasibleError(
                f"no configuration {'with the given ' + given + ' ' if given else ''}fits in memory: the leanest "
                f"({_config_text(chunk.row(j))}) needs {need:.1f} GiB per GPU of a {budget:.1f} GiB budget"
                f"{offloaded}; more GPUs, a smaller model or sequence, or recompute and offload left to the search "
                f"would help", field="parallelism" if given else "cluster.accelerator")
        # Report the fastest configuration regardless of memory (validation of runs known to have run).
        best_any = None
        for _, chunk, arrays in evaluated_chunks(s, space, cal, shared):
            i = best_index(arrays, require_fit=False)
            assert i is not None
            if best_any is None or arrays.step_time_s[i] < best_any[0]:
                best_any = (float(arrays.step_time_s[i]), chunk, arrays, i)
        assert best_any is not None
        _, chunk, arrays, i = best_any
    else:
        _, _, i, chunk, arrays = best
    offload = None
    if int(chunk.offload[i]):  # say what the offload buys
        offload = ("what makes a configuration fit: none fits without offloading" if plain is None else
                   f"{plain / float(arrays.step_time_s[i]) - 1.0:.1%} faster than the best configuration that "
                   f"fits without offloading ({plain:.3g} s a step)")
    return with_interval(step_report(s, chunk, arrays, i), s, cal), SearchSummary(candidates=len(space),
                                                                                   offload=offload)


def run_reliability(s: Scenario, step: StepReport, ledger: FacilityReport | None, **options: Any
                    ) -> ReliabilityReport:
    """The reliability ledger of the run ``step`` reports, its wasted energy and cost priced by the facility
    ledger (when there is one); ``options`` go to reliability.report.reliability_report."""
    return reliability_report(s, step, facility_w=ledger.average.facility_w if ledger else None,
                              cost_per_hour_usd=cost_per_hour_usd(ledger), **options)


def cost_per_hour_usd(ledger: FacilityReport | None) -> float | None:
    """What an hour of the cluster costs (capex, power, water), when the facility ledger prices the run."""
    return ledger.cost_per_hour_usd["total"] if ledger and ledger.run_cost_usd is not None else None


def plan(s: Scenario, calibration: Calibration | None = None, *, require_fit: bool = True,
         with_reliability: bool = True, interval_sensitivity: bool = False) -> RunReport:
    """Search the scenario's parallel configurations (given fields fixed) and report the best one's run: the model
    as it is counted (with its assumptions), its step, the fabric, the facility ledger (when the scenario names a
    facility), the reliability ledger (``with_reliability``, when the cluster names checkpoint storage) and its
    claims judged (only with the reliability ledger: a partial report judges none). ``interval_sensitivity``: the
    reliability ledger also searches the checkpoint interval, giving goodput against the interval (the HTML report
    draws it), at the cost of a few more simulated runs."""
    step, summary = best_step(s, calibration, require_fit=require_fit)
    fabric = fabric_report(s.cluster)
    ledger = facility_ledger(s, step, fabric)
    rel: ReliabilityReport | None = None
    note: str | None = None
    infeasible = False
    if not with_reliability:
        note = "not computed (plan without the failure model)"
    elif s.cluster.storage is None:
        note = ("the cluster names no storage, which the checkpoint model needs (cluster.storage: "
                "write_bandwidth_per_gpu_bytes_per_s, read_bandwidth_per_gpu_bytes_per_s)")
    else:  # time-to-train with failures beside the failure-free one
        try:
            rel = run_reliability(s, step, ledger, runs=PLAN_RUNS, sizes=(),
                                  **({} if interval_sensitivity else {"search_runs": 0}))
        except InfeasibleError as exc:  # failures outpace restarts: say so beside the failure-free time
            note, infeasible = exc.message, True
    claims: list[ClaimCheck] = []
    if with_reliability and s.claims:
        claims = check_claims(s.claims, Computed(scenario=s, step=step, facility=ledger, reliability=rel,
                                                 reliability_note=note))
    cal = s.calibrated(calibration)
    return RunReport(model=model_report(s.model), step=step, search=summary, fabric=fabric, facility=ledger, reliability=rel,
                     reliability_note=note, reliability_infeasible=infeasible, claims=claims,
                     provenance=provenance(s, cal.source))


def _factorise(n: int) -> str:
    """'2^12 * 3^3' for 110592."""
    parts, d = [], 2
    while d * d <= n:
        k = 0
        while n % d == 0:
            n //= d
            k += 1
        if k:
            parts.append(f"{d}^{k}" if k > 1 else str(d))
        d += 1
    if n > 1:
        parts.append(str(n))
    return " * ".join(parts) or "1"
