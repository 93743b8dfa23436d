"""Published collective measurements (nccl-tests and similar) → predicted vs measured time or bus bandwidth.

A file of this kind has a top-level ``measurements:`` list (schema: ``notes`` of validate/collectives.yaml). Each
measurement's machine is described from its free-text ``system`` the way a user would describe it to the tool —
a catalog accelerator, GPUs per node, the NIC rate per GPU, a generic fabric by transport — and the network model
(:func:`supercluster.network.report.collective_report`) predicts the collective on it:

- the published ``time_us`` when both the size and the time are given, otherwise the published ``busbw_GBps``
  (a ``peak`` figure without a size is predicted at a large message, :data:`PEAK_BYTES`);
- the published algorithm when one was forced (NCCL_ALGO, file name), else the one the tool picks as NCCL would;
- DeepEP MoE dispatch/combine as an all-to-all of tokens x top-k x hidden x dtype bytes per rank when the notes
  give those numbers and a time was published.

Nothing here is tuned per measurement: every rule reads the row's text and applies to any row. A measurement the
tool cannot model is listed with its reason and left out of the statistics; one the data file marks
``exclude_from_gate: reason`` (a constant was read off it, or the system misbehaved) is predicted and listed but not
scored.
"""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..errors import FileFormatError, SuperclusterError
from ..network.report import CollectiveReport, collective_report
from ..spec.calibration import Calibration
from ..spec.hardware import Cluster
from ..spec.load import read_data_file
from .schema import COLLECTIVE, check_entry
from .systems import System, Unmodellable, _text, describe_system
from .tolerance import gate_exclusion, read_tolerance, read_validation_file

DEFAULT_COLLECTIVES_FILE = Path(__file__).with_name("collectives.yaml")
DEFAULT_COLLECTIVE_TOLERANCE: dict[str, Any] = {"metric": "collective", "median_abs_rel_error": 0.15,
                                                "max_abs_rel_error_at_or_above_1MiB": 0.35}
LARGE_BYTES = 2**20  #: the max-error gate applies to measurements of at least this size (and to peak figures)
PEAK_BYTES = 8 * 2**30  #: where a 'peak' busbw without a published size is predicted (busbw has plateaued)

Metric = Literal["time_us", "busbw_GBps"]

#: nccl-tests operation names (and spelling variants) → the tool's operations
OP_NAMES = {
    "all_reduce": "all_reduce", "allreduce": "all_reduce",
    "all_gather": "all_gather", "allgather": "all_gather",
    "reduce_scatter": "reduce_scatter", "reducescatter": "reduce_scatter",
    "alltoall": "all_to_all", "all_to_all": "all_to_all",
    "sendrecv": "send_recv", "send_recv": "send_recv",
    "broadcast": "broadcast",
}
MOE_OPS = ("moe_dispatch", "moe_combine")

_DTYPE_BYTES = (("fp8", 1), ("e4m3", 1), ("e5m2", 1), ("bf16", 2), ("fp16", 2), ("half", 2), ("fp32", 4),
                ("float32", 4), ("float", 4))


class CollectiveRow(BaseModel):
    """One measurement against its prediction (or the reason it cannot be predicted)."""

    model_config = ConfigDict(frozen=True)

    id: str
    op: str | None  # the tool's operation
    gpus: int | None  # GPUs in the collective
    nodes: int | None
    message_bytes: float | None  # the size predicted (published, or derived: see notes)
    accelerator: str | None
    fabric: str | None
    scale_out_gbps_per_gpu: float | None
    algorithm_published: str | None  # the file's text
    algorithm_forced: str | None  # what the tool was asked to run (None: it chose)
    algorithm_predicted: str | None
    metric: Metric | None
    expected: float | None
    predicted: float | None
    rel_error: float | None
    notes: list[str] = []
    error: str | None = None  # why the measurement cannot be modelled
    excluded: str | None = None  # why the data file leaves it out of the gate (predicted and listed all the same)


class CollectiveValidationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    file: str
    rows: list[CollectiveRow]
    modelled: int
    not_modelled: int  # listed with their reason, excluded from the statistics
    excluded: int = 0  # modelled, but marked in the data file as outside the gate (exclude_from_gate: reason)
    median_abs_rel_error: float | None  # None when nothing could be modelled
    max_abs_rel_error: float | None
    max_abs_rel_error_at_or_above_1MiB: float | None
    beyond_limit_at_or_above_1MiB: int = 0  # scored measurements of 1 MiB or more beyond the file's limit
    tolerance: dict[str, Any]
    passed: bool
    failures: list[str]


# --- the published algorithm --------------------------------------------------------------------------------------

NO_NVLS = "no-nvls"  # NVLS disabled: the fastest of the algorithms NCCL keeps without it


def map_algorithm(text: str | None) -> tuple[str | None, str | None]:
    """Published algorithm text → (the tool's algorithm, or NO_NVLS, or None = the tool chooses; a note)."""
    if text is None:
        return None, None
    t = text.lower()
    nvls_off = "nvls_enable=0" in t
    chose = "default" in t or "enabled or disabled" in t  # NCCL chose (even when the log shows which)
    for name in ("ring", "tree"):
        if (t.startswith(name) or f"nccl_algo={name}" in t) and "nvlstree" not in t:
            # NCCL's own choice is the tool's to make too, unless NVLS was switched off: then the run says which
            # algorithm ran without it ('Ring (default), NCCL_NVLS_ENABLE=0' is a ring, 'Tree, ...' a tree)
            return (None, None) if chose and not nvls_off else (name, None)
    if nvls_off:  # NCCL chose among what is left without NVLS
        return NO_NVLS, None
    if chose:
        return None, None
    if "nvlstree" in t:
        return "hierarchical", None
    if "collnet" in t or re.search(r"\bib sharp\b", t):
        return "sharp", None
    if t.startswith("nvls") or "nccl_algo=nvls" in t:
        return "nvls", None
    return None, f"published algorithm {text!r} has no counterpart in the tool: the tool chooses"


def _predict(cluster: Cluster, op: str, size: float, s: System, forced: str | None,
             notes: list[str], cal: Calibration | None = None, gpus_per_process: int = 1) -> CollectiveReport:
    base = collective_report(cluster, op, size, s.gpus, stride=s.stride, calibration=cal,  # type: ignore[arg-type]
                             gpus_per_process=gpus_per_process)
    if forced is None:
        return base
    if forced == NO_NVLS:
        allowed = {a: t for a, t in base.alternatives.items() if a not in ("nvls", "hierarchical")}
        if not allowed:
            return base
        choice = min(allowed, key=allowed.__getitem__)
        notes.append(f"NVLS disabled: fastest of {', '.join(allowed)} without nvls/hierarchical")
        return collective_report(cluster, op, size, s.gpus, stride=s.stride, algorithm=choice,  # type: ignore[arg-type]
                                 calibration=cal, gpus_per_process=gpus_per_process)
    if forced not in base.alternatives:
        notes.append(f"published algorithm maps to {forced!r}, which the tool does not offer for {op} on this "
                     f"group (available: {', '.join(base.alternatives)}): the tool chooses")
        return base
    return collective_report(cluster, op, size, s.gpus, stride=s.stride, algorithm=forced,  # type: ignore[arg-type]
                             calibration=cal, gpus_per_process=gpus_per_process)


# --- DeepEP MoE dispatch / combine -------------------------------------------------------------------------------


def moe_bytes_per_rank(m: dict[str, Any], kind: str) -> tuple[float, str]:
    """Bytes one rank sends in a DeepEP dispatch/combine: tokens x top-k x hidden x dtype bytes, from the notes."""
    notes = _text(m.get("notes"))
    tokens = re.search(r"(\d+(?:\.\d+)?)\s*([km]?)\s*tokens", notes, re.IGNORECASE)
    hidden = re.search(r"hidden\s*(?:size\s*)?(\d+)", notes, re.IGNORECASE)
    top_k = re.search(r"top-?(\d+)\s*experts", notes, re.IGNORECASE) or re.search(
        r"top-?(\d+)(?!\s*groups)\b", notes, re.IGNORECASE)
    missing = [name for name, found in (("tokens", tokens), ("hidden", hidden), ("top-k", top_k)) if not found]
    if missing:
        raise Unmodellable(f"the notes do not give the {', '.join(missing)} needed for the bytes per rank")
    assert tokens and hidden and top_k
    scale = {"": 1, "k": 1024, "m": 1024**2}[tokens.group(2).lower()]
    n_tokens = float(tokens.group(1)) * scale
    dtype = _text(m.get("dtype")).lower()
    part = next((p for p in re.split(r"[/,;]", dtype) if kind in p), dtype)
    width = next((b for name, b in _DTYPE_BYTES if name in part), None)
    if width is None:
        raise Unmodellable(f"the {kind} data type is not given (dtype: {m.get('dtype')!r})")
    k, h = int(top_k.group(1)), int(hidden.group(1))
    size = n_tokens * k * h * width
    return size, (f"DeepEP {kind} as an all-to-all of {n_tokens:g} tokens x top-{k} x hidden {h} x {width} B = "
                  f"{size:,.0f} B per rank (FP8 scale factors and routing metadata not counted)")


# --- one measurement ----------------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def predict_measurement(m: dict[str, Any], *, index: int = 0, calibration: Calibration | None = None
                        ) -> CollectiveRow:
    """One measurement → its row: the prediction and relative error, or the reason it cannot be modelled."""
    rid = str(m.get("id") or f"measurements[{index}]")
    algo_text = m.get("algorithm")
    algo_text = None if algo_text is None else str(algo_text)
    collective = _text(m.get("collective")).strip()
    op_word = re.split(r"[\s(]", collective.lower(), maxsplit=1)[0] if collective else ""
    row: dict[str, Any] = {"id": rid, "op": None, "gpus": None, "nodes": None, "message_bytes": None,
                           "accelerator": None, "fabric": None, "scale_out_gbps_per_gpu": None,
                           "algorithm_published": algo_text, "algorithm_forced": None, "algorithm_predicted": None,
                           "metric": None, "expected": None, "predicted": None, "rel_error": None}
    notes: list[str] = []
    try:
        size = _number(m.get("message_bytes"))
        time_us, busbw = _number(m.get("time_us")), _number(m.get("busbw_GBps"))
        if op_word in MOE_OPS:
            op = "all_to_all"
            kind = op_word.split("_")[1]
            row["op"] = op
            if time_us is None:
                metric = _text(m.get("other_bw_metric")) or "DeepEP's own bandwidth"
                raise Unmodellable(f"only '{metric}' is published, no time; the bytes DeepEP counts on that link "
                                   "(after top-k routing and per-node deduplication) are not given")
            size, note = moe_bytes_per_rank(m, kind)
            notes.append(note)
            metric_name: Metric = "time_us"
            expected = time_us
            forced, algo_note = None, None
            if algo_text:
                algo_note = f"DeepEP kernel ({algo_text}) modelled as the tool's all-to-all"
        elif op_word in OP_NAMES:
            op = OP_NAMES[op_word]
            row["op"] = op
            if size is not None and time_us is not None:
                metric_name, expected = "time_us", time_us
            elif busbw is not None:
                metric_name, expected = "busbw_GBps", busbw
                if size is None:
                    size = float(PEAK_BYTES)
                    notes.append("peak figure without a size: predicted at 8 GiB, where busbw has plateaued")
            else:
                raise Unmodellable("neither time_us (with message_bytes) nor busbw_GBps is published")
            forced, algo_note = map_algorithm(algo_text)
        else:
            raise Unmodellable(f"operation {collective!r} is not one the tool models "
                               f"({', '.join(sorted(set(OP_NAMES.values())))}, DeepEP {', '.join(MOE_OPS)})")
        if algo_note:
            notes.append(algo_note)
        if size is None or size <= 0:
            raise Unmodellable(f"message_bytes must be positive ({m.get('message_bytes')!r})")
        if expected <= 0:
            raise Unmodellable(f"published {metric_name} is {expected:g} (rounded to zero): no relative error")
        row.update(metric=metric_name, expected=expected, message_bytes=size,
                   algorithm_forced=forced if forced != NO_NVLS else "ring/tree (no NVLS)")
        s = describe_system(m, algorithm_text=algo_text or "")
        notes.extend(s.notes)
        row.update(gpus=s.gpus, nodes=s.nodes, accelerator=s.cluster.accelerator.name, fabric=s.fabric,
                   scale_out_gbps_per_gpu=s.gbps)
        if s.gpus < 2:
            raise Unmodellable("a collective on one GPU moves nothing")
        launch = re.search(r"-g\s*(\d+|<ngpus>)", _text(m.get("notes")))
        per_process = 1
        if launch:
            per_process = s.gpus if launch.group(1) == "<ngpus>" else int(launch.group(1))
            per_process = max(1, min(per_process, s.gpus))
            notes.append(f"nccl-tests -g {per_process}: one process launches {per_process} GPUs")
        report = _predict(s.cluster, op, size, s, forced, notes, calibration, per_process)
        predicted = report.time_s * 1e6 if metric_name == "time_us" else report.busbw_bytes_per_s / 1e9
        row.update(algorithm_predicted=report.algorithm, predicted=predicted,
                   rel_error=(predicted - expected) / expected)
    except Unmodellable as exc:
        return CollectiveRow(**row, notes=notes, error=str(exc))
    except SuperclusterError as exc:
        return CollectiveRow(**row, notes=notes, error=str(exc))
    return CollectiveRow(**row, notes=notes)


# --- the file -----------------------------------------------------------------------------------------------------


def validate_collectives(path: str | Path | None = None, calibration: Calibration | None = None
                         ) -> CollectiveValidationResult:
    """Predict every measurement of a collective-measurements file; gate on its tolerance.

    Measurements the tool cannot model are listed with their reason and excluded from the statistics.
    """
    data, measurements, shown = read_validation_file(path, DEFAULT_COLLECTIVES_FILE, "measurements")
    tol = read_tolerance(data, DEFAULT_COLLECTIVE_TOLERANCE,
                         ("median_abs_rel_error", "max_abs_rel_error_at_or_above_1MiB"), shown)
    rows: list[CollectiveRow] = []
    for i, m in enumerate(measurements):  # every entry well-formed before any is predicted
        check_entry(m, COLLECTIVE, file=shown, where=f"measurements[{i}]", noun="measurement")
    for i, m in enumerate(measurements):
        row = predict_measurement(m, index=i, calibration=calibration)
        reason = gate_exclusion(m, file=shown, field=f"measurements[{i}]")
        rows.append(row.model_copy(update={"excluded": reason}) if reason else row)
    scored = [r for r in rows if r.rel_error is not None and r.excluded is None]
    errors = [abs(r.rel_error) for r in scored if r.rel_error is not None]
    large = [abs(r.rel_error) for r in scored
             if r.rel_error is not None and (r.message_bytes or 0) >= LARGE_BYTES]
    median = statistics.median(errors) if errors else None
    limit_median = float(tol["median_abs_rel_error"])
    limit_large = float(tol["max_abs_rel_error_at_or_above_1MiB"])
    failures: list[str] = []
    if not errors:
        failures.append("no measurement could be modelled")
    if median is not None and median > limit_median:
        failures.append(f"median |error| {median:.1%} exceeds {limit_median:.0%}")
    beyond = [r for r in scored if r.rel_error is not None and (r.message_bytes or 0) >= LARGE_BYTES
              and abs(r.rel_error) > limit_large]
    failures += [f"{r.id}: |error| {abs(r.rel_error or 0.0):.1%} exceeds {limit_large:.0%} (message >= 1 MiB)"
                 for r in beyond]
    return CollectiveValidationResult(
        file=shown, rows=rows, modelled=len(scored), excluded=sum(1 for r in rows if r.excluded is not None),
        not_modelled=sum(1 for r in rows if r.rel_error is None and r.excluded is None),
        median_abs_rel_error=median, max_abs_rel_error=max(errors) if errors else None,
        max_abs_rel_error_at_or_above_1MiB=max(large) if large else None,
        beyond_limit_at_or_above_1MiB=len(beyond), tolerance=tol, passed=not failures,
        failures=failures)


ValidationKind = Literal["runs", "measurements", "memory", "power", "gemms"]


def validation_kind(path: str | Path) -> ValidationKind:
    """Which validator a file is for, by content: a top-level ``runs:`` list, of published training runs or of
    metered runs (entries with ``average_power_w`` and ``boundary``), or a ``measurements:`` list, of collectives
    (entries with an ``op``), of per-GPU memory (entries with ``measured`` quantities) or of GEMM throughputs by shape
    (entries with ``tflops``). Anything else is one located error naming the kinds that exist."""
    data = read_data_file(path)
    has_runs, has_measurements = "runs" in data, "measurements" in data
    kinds = ("expected a top-level 'runs' list (published training runs, or metered runs with 'average_power_w' and "
             "'boundary') or 'measurements' list (collective measurements, or per-GPU memory measurements with "
             "'measured' quantities, or GEMM throughputs with 'tflops')")
    if has_runs and has_measurements:
        raise FileFormatError("has both 'runs' and 'measurements'; a validation file holds one kind", file=str(path))
    if has_runs:
        entries = data["runs"]
        if isinstance(entries, list) and entries and all(isinstance(e, dict) for e in entries):
            metered = [("average_power_w" in e and "boundary" in e) for e in entries]
            if all(metered):
                return "power"
            if any(metered):
                raise FileFormatError("mixes metered runs (with 'average_power_w' and 'boundary') and published "
                                      "training runs; a validation file holds one kind", file=str(path), field="runs")
        return "runs"
    if has_measurements:
        entries = data["measurements"]
        if isinstance(entries, list) and entries and all(isinstance(e, dict) for e in entries):
            if all("measured" in e for e in entries):
                return "memory"
            if all("tflops" in e for e in entries):
                return "gemms"
            if any("tflops" in e for e in entries):
                raise FileFormatError("mixes GEMM measurements (with 'tflops') and other measurements; a validation "
                                      "file holds one kind", file=str(path), field="measurements")
            if any("measured" in e for e in entries):
                raise FileFormatError("mixes memory measurements (with 'measured') and collective measurements; a "
                                      "validation file holds one kind", file=str(path), field="measurements")
        return "measurements"
    raise FileFormatError(kinds, file=str(path))
