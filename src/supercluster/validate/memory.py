"""Published per-GPU memory measurements → the memory model's prediction of what was measured.

A file of this kind has a top-level ``measurements:`` list whose entries carry ``model``, ``training``,
``parallelism`` and ``measured`` (the schema of validate/memory.yaml's ``notes``). Each entry is read the way a
user would describe the run to the tool — a catalog accelerator, the model's shape, the parallel degrees, the
training software's precision, optimizer, recompute and sharding — and :func:`supercluster.workload.memory_per_gpu`
predicts it, component by component, for the rank the source measured (the last pipeline rank for Megatron-LM's
logs, the first for BigScience's first-node snapshots).

What each measured quantity is compared with:

- torch peak allocated / peak active: weights + gradients + optimizer + activations + transients + workspaces;
- torch allocated after a step: the persistent part (weights, gradients, optimizer, workspaces);
- nvidia-smi used memory: the peak reserved by the caching allocator plus what lives outside it (CUDA context,
  NCCL buffers);
- a weights + gradients + optimizer figure, an activations figure, or activations relative to another recompute
  mode of the same run: those components;
- an outcome (``OOM``): whether the predicted device memory exceeds the GPU's.

Units: bytes, MiB and GiB as stated; a "GB" a source printed without saying which is read as GiB, because every tool
these figures come from (torch counters over 2^30, nvidia-smi's MiB over 1024) divides by powers of two. Anything a
row does not state is taken as the software it names does by default, and said in the row's notes. Nothing here
is tuned per row: every rule reads the row's text and applies to any row.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import FileFormatError, SuperclusterError
from ..perf.candidates import RECOMPUTE_CODES
from ..spec.training import SELECTIVE_DEFAULT
from ..workload.memory import MemoryBreakdown, memory_per_gpu
from ..workload.software import communicators, framework_memory_options
from .memory_case import MemoryCase, Metric, classify_quantity, describe_case, to_bytes
from .schema import MEMORY, check_entry
from .systems import Unmodellable, _text
from .tolerance import GatedResult, error_summary, gate_exclusion, read_tolerance, read_validation_file

DEFAULT_MEMORY_FILE = Path(__file__).with_name("memory.yaml")
DEFAULT_MEMORY_TOLERANCE: dict[str, Any] = {"metric": "memory", "median_abs_rel_error": 0.05,
                                            "max_abs_rel_error": 0.15, "max_unmappable": 10, "max_wrong_outcomes": 0}

class MemoryRow(BaseModel):
    """One measured quantity against its prediction (or the reason it cannot be predicted)."""

    model_config = ConfigDict(frozen=True)

    id: str  # the measurement's id, with ':<mode>' for one of several relative figures
    metric: Metric | None
    quantity: str  # the file's text
    expected_bytes: float | None  # for activation_ratio: the ratio; for outcome: None
    predicted_bytes: float | None
    rel_error: float | None
    expected_outcome: str | None = None  # outcome rows: 'OOM'
    predicted_outcome: str | None = None
    components: dict[str, float] = {}  # the predicted split, bytes
    rank: str | None = None  # the pipeline rank predicted: first | last
    framework: str | None = None
    notes: list[str] = []
    error: str | None = None  # why it cannot be modelled
    excluded: str | None = None  # why the data file leaves it out of the gate


class MemoryValidationResult(GatedResult):
    kind: str = "memory"
    rows: list[MemoryRow]
    by_source: dict[str, dict[str, Any]]
    unmappable: int
    outcomes_correct: int
    outcomes_total: int


# --- reading the row's text --------------------------------------------------------------------------------------


def predict_case(case: MemoryCase, *, recompute: str | None = None, sequence_parallel: bool | None = None
                 ) -> MemoryBreakdown:
    """The memory model's breakdown for a case (optionally under another recompute mode or SP setting)."""
    d = case.degrees
    options = framework_memory_options(case.framework, accelerator=case.accelerator, precision=case.precision,
                                       choices=case.choices, communicators=communicators(case.framework, d),
                                       grouped_gemm=case.grouped_gemm, extra_workspace_bytes=case.extra_workspace_bytes,
                                       transformer_engine=case.transformer_engine,
                                       tp_comm_overlap=case.tp_comm_overlap)
    one = np.ones(1)
    rc = RECOMPUTE_CODES[recompute or case.recompute]
    sp = case.sequence_parallel if sequence_parallel is None else sequence_parallel
    return memory_per_gpu(case.model, seq_len=case.model.seq_len, global_batch=case.global_batch,
                          flash_attention=case.flash_attention,
                          precision=case.precision, tp=one * d["tp"], pp=one * d["pp"], dp=one * d["dp"],
                          cp=one * d["cp"], ep=one * d["ep"], etp=one * d["etp"], micro_batch=one * case.micro_batch,
                          virtual_stages=one * d["virtual_stages"], recompute=np.array([rc]),
                          zero_stage=np.array([case.zero_stage]), sp=np.array([sp]), options=options,
                          stage=case.stage, stage_layers=case.stage_layers, offload=np.array([case.offload]),
                          recompute_modules=frozenset(case.selective_modules) or SELECTIVE_DEFAULT,
                          mtp_layers=case.mtp_layers)


_MODES = {"none": ("none", False), "seq": ("none", True), "sel": ("selective", False), "seqsel": ("selective", True),
          "full": ("full", False)}


def _components(b: MemoryBreakdown) -> dict[str, float]:
    return {k: float(v[0]) for k, v in b.parts().items()}


def _value(b: MemoryBreakdown, metric: Metric) -> float:
    if metric == "peak_allocated":
        return float(b.allocated_bytes[0])
    if metric == "allocated_after_step":
        return float(b.states_bytes[0] + b.workspace_bytes[0])
    if metric == "device_used":
        return float(b.total_bytes[0])
    if metric == "states":
        return float(b.states_bytes[0])
    if metric == "activations":
        return float(b.activations_bytes[0])
    if metric == "runtime":
        return float(b.runtime_bytes[0])
    raise AssertionError(metric)


def _rows_of(m: dict[str, Any], index: int, shown: str) -> list[MemoryRow]:
    rid = str(m.get("id", f"measurements[{index}]"))
    excluded = gate_exclusion(m, file=shown, field=f"measurements[{index}]")
    measured = m.get("measured")
    if not isinstance(measured, list) or not measured:
        raise FileFormatError("expected a non-empty list 'measured'", file=shown, field=f"measurements[{index}]")
    quantities: list[tuple[Metric, str | None, dict[str, Any]]] = []
    for q in measured:
        if not isinstance(q, dict) or "quantity" not in q:
            raise FileFormatError("expected {quantity, value, unit}", file=shown, field=f"measurements[{index}]"
                                                                                          ".measured")
        kind = classify_quantity(_text(q.get("quantity")), q.get("unit"))
        if kind is not None:
            quantities.append((kind[0], kind[1], q))
    if not quantities:
        return [MemoryRow(id=rid, metric=None, quantity="; ".join(_text(q.get("quantity")) for q in measured),
                          expected_bytes=None, predicted_bytes=None, rel_error=None, excluded=excluded,
                          error="no measured quantity the tool can predict")]
    try:
        case = describe_case(m)
        base = predict_case(case)
    except (Unmodellable, SuperclusterError) as exc:
        return [MemoryRow(id=rid, metric=metric, quantity=_text(q.get("quantity")), expected_bytes=None,
                          predicted_bytes=None, rel_error=None, error=str(exc), excluded=excluded)
                for metric, _, q in quantities[:1]]
    rows: list[MemoryRow] = []
    common = dict(rank=case.stage if case.degrees["pp"] > 1 else None, framework=case.framework,
                  excluded=excluded)
    for metric, mode, q in quantities:
        notes = list(case.notes)
        quantity = _text(q.get("quantity"))
        if metric == "outcome":
            fits = float(base.total_bytes[0]) <= case.accelerator.hbm_bytes
            rows.append(MemoryRow(id=rid, metric=metric, quantity=quantity, expected_bytes=None,
                                  predicted_bytes=float(base.total_bytes[0]), rel_error=None,
                                  expected_outcome=_text(q.get("value")).upper(),
                                  predicted_outcome="fits" if fits else "OOM", components=_components(base),
                                  notes=notes, **common))
            continue
        if metric == "activation_ratio":
            assert mode is not None
            if mode not in _MODES:
                rows.append(MemoryRow(id=f"{rid}:{mode}", metric=metric, quantity=quantity, expected_bytes=None,
                                      predicted_bytes=None, rel_error=None, error=f"mode {mode!r} not known",
                                      **common))
                continue
            ref = predict_case(case, recompute="none", sequence_parallel=False)
            this = predict_case(case, recompute=_MODES[mode][0], sequence_parallel=_MODES[mode][1])
            expected = float(q["value"]) / 100.0
            predicted = float(this.activations_bytes[0]) / float(ref.activations_bytes[0])
            rows.append(MemoryRow(id=f"{rid}:{mode}", metric=metric, quantity=quantity, expected_bytes=expected,
                                  predicted_bytes=predicted, rel_error=(predicted - expected) / expected,
                                  components=_components(this), notes=notes, **common))
            continue
        try:
            expected, unit_note = to_bytes(q.get("value"), q.get("unit"))
        except Unmodellable as exc:
            rows.append(MemoryRow(id=rid, metric=metric, quantity=quantity, expected_bytes=None, predicted_bytes=None,
                                  rel_error=None, error=str(exc), **common))
            continue
        if unit_note:
            notes.append(unit_note)
        predicted = _value(base, metric)
        rows.append(MemoryRow(id=rid if len(quantities) == 1 else f"{rid}:{metric}", metric=metric,
                              quantity=quantity, expected_bytes=expected, predicted_bytes=predicted,
                              rel_error=(predicted - expected) / expected, components=_components(base),
                              notes=notes, **common))
    return rows


def _source_key(row_id: str) -> str:
    """The source family of a row id: its first two dash-separated words (``bigscience-0221``, ``megatron-ft``)."""
    head = row_id.split(":")[0]
    parts = head.split("-")
    return "-".join(parts[:2]) if len(parts) > 1 else head


def validate_memory(path: str | Path | None = None) -> MemoryValidationResult:
    """Predict every measurement of a memory file; gate: median and max |error| over the rows the tool models, no
    more than ``max_wrong_outcomes`` OOM outcomes wrong and ``max_unmappable`` measurements it cannot model."""
    data, entries, shown = read_validation_file(path, DEFAULT_MEMORY_FILE, "measurements")
    tol = read_tolerance(data, DEFAULT_MEMORY_TOLERANCE,
                         ("median_abs_rel_error", "max_abs_rel_error", "max_unmappable", "max_wrong_outcomes"), shown)
    rows: list[MemoryRow] = []
    for i, m in enumerate(entries):  # every entry well-formed before any is predicted
        check_entry(m, MEMORY, file=shown, where=f"measurements[{i}]", noun="measurement")
    for i, m in enumerate(entries):
        rows.extend(_rows_of(m, i, shown))
    gated = [r for r in rows if r.excluded is None]
    errors = [r.rel_error for r in gated if r.rel_error is not None]
    overall = error_summary(errors)
    median, worst = overall["median_abs_rel_error"], overall["max_abs_rel_error"]
    unmappable = len({r.id.split(":")[0] for r in gated if r.error})
    outcomes = [r for r in gated if r.metric == "outcome"]
    correct = sum(1 for r in outcomes if r.predicted_outcome == r.expected_outcome)
    by_source: dict[str, dict[str, Any]] = {}
    for key in sorted({_source_key(r.id) for r in rows}):
        by_source[key] = error_summary(r.rel_error for r in gated
                                       if r.rel_error is not None and _source_key(r.id) == key)
    failures: list[str] = []
    if median is not None and median > float(tol["median_abs_rel_error"]):
        failures.append(f"median |error| {median:.1%} exceeds {float(tol['median_abs_rel_error']):.0%}")
    limit = float(tol["max_abs_rel_error"])
    failures += [f"{r.id}: |error| {abs(r.rel_error):.1%} exceeds {limit:.0%}" for r in gated
                 if r.rel_error is not None and abs(r.rel_error) > limit]
    wrong = [r for r in outcomes if r.predicted_outcome != r.expected_outcome]
    if len(wrong) > int(tol["max_wrong_outcomes"]):
        failures += [f"{r.id}: predicted {r.predicted_outcome}, measured {r.expected_outcome}" for r in wrong]
    if unmappable > int(tol["max_unmappable"]):
        failures.append(f"{unmappable} measurements cannot be modelled (at most {int(tol['max_unmappable'])})")
    return MemoryValidationResult(
        file=shown, rows=rows, median_abs_rel_error=median, max_abs_rel_error=worst,
        signed_mean_rel_error=statistics.fmean(errors) if errors else None, by_source=by_source,
        unmappable=unmappable, outcomes_correct=correct, outcomes_total=len(outcomes), tolerance=tol,
        passed=not failures, failures=failures, excluded=len(rows) - len(gated))

