"""What an entry of a validation file may hold, checked before anything is predicted.

A key no reader knows (a misspelling would otherwise be ignored, or surface later as some other field "missing") or a
number outside its range is bad input: one located error naming the file, the entry (index and id) and the field,
exit code 2. A well-formed entry the tool cannot predict is a row with its reason instead; exit code 1 is kept for a
file whose accuracy gate fails.

A shape maps each known key to what its value may be: ``None`` (anything: free text, a citation, documentation), a
:data:`Rule`, a nested shape (a mapping, or null) or :class:`Each` (a list of mappings of one shape).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeAlias

from ..errors import FileFormatError

Rule = Callable[[Any], str | None]  # None when the value is acceptable, else what was expected


Shape: TypeAlias = "Mapping[str, Rule | Shape | Each | None]"


@dataclass(frozen=True)
class Each:
    """A list of mappings of one shape (or null)."""

    shape: Shape


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def count(value: Any) -> str | None:
    """Null or a whole number >= 1 (GPUs, nodes, layers, a parallel degree)."""
    ok = value is None or (_number(value) and value == int(value) and value >= 1)
    return None if ok else "a whole number >= 1 (or null: not stated)"


def positive(value: Any) -> str | None:
    """Null or a finite number > 0 (a size, a rate)."""
    return None if value is None or (_number(value) and value > 0) else "a number > 0 (or null: not stated)"


def measured(value: Any) -> str | None:
    """Null or a finite number >= 0 (a published time or bandwidth; 0 is a figure rounded to zero)."""
    return None if value is None or (_number(value) and value >= 0) else "a number >= 0 (or null: not stated)"


def as_date(value: Any) -> date | None:
    """A date written as YAML's date or as 'YYYY-MM-DD' text, or None when it is neither."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        return None


def memory_source(value: Any) -> str | None:
    """A memory measurement's citation: free text or a mapping; its ``values_recorded`` (when the figures were
    recorded, if before the cited commit) a date."""
    if isinstance(value, dict) and "values_recorded" in value and as_date(value["values_recorded"]) is None:
        return "a mapping whose values_recorded is a date (YYYY-MM-DD)"
    return None


def check_entry(entry: Any, shape: Shape, *, file: str, where: str, noun: str) -> None:
    """Refuse an entry (``where``, e.g. ``measurements[3]``, a ``noun`` such as ``measurement``) with a key its shape
    does not know or a value its rule refuses: one :class:`FileFormatError` at the first such field, naming the
    entry's id."""
    if not isinstance(entry, dict):
        raise FileFormatError(f"expected a mapping, got {type(entry).__name__}", file=file, field=where)
    rid = entry.get("id")
    named = f" ({noun} {str(rid)!r})" if isinstance(rid, str | int) and not isinstance(rid, bool) else ""
    _check(entry, shape, file=file, field=where, named=named)


def _check(value: dict[str, Any], shape: Shape, *, file: str, field: str, named: str) -> None:
    for key, item in value.items():
        here = f"{field}.{key}"
        if key not in shape:
            known = ", ".join(sorted(shape))
            raise FileFormatError(f"unknown key{named}; expected one of: {known}", file=file, field=here)
        rule = shape[key]
        if rule is None or item is None:
            continue
        if isinstance(rule, Each):
            if not isinstance(item, list):
                raise FileFormatError(f"expected a list, got {item!r}{named}", file=file, field=here)
            for i, part in enumerate(item):
                if not isinstance(part, dict):
                    raise FileFormatError(f"expected a mapping, got {part!r}{named}", file=file,
                                          field=f"{here}[{i}]")
                _check(part, rule.shape, file=file, field=f"{here}[{i}]", named=named)
        elif isinstance(rule, Mapping):
            if not isinstance(item, dict):
                raise FileFormatError(f"expected a mapping, got {item!r}{named}", file=file, field=here)
            _check(item, rule, file=file, field=here, named=named)
        else:
            expected = rule(item)
            if expected is not None:
                raise FileFormatError(f"expected {expected}, got {item!r}{named}", file=file, field=here)


# --- the shapes of the three kinds of file (each field's meaning: the `notes` of the shipped files) --------------

#: a GEMM throughput by shape (validate/gemms.yaml)
GEMM: Shape = {
    "id": None, "source": None, "exclude_from_gate": None, "notes": None, "accelerator": None, "dtype": None,
    "m": positive, "n": positive, "k": positive, "groups": count, "tflops": positive,
}

#: a collective measurement (validate/collectives.yaml, nvl72.yaml)
COLLECTIVE: Shape = {
    "id": None, "source": None, "exclude_from_gate": None, "notes": None, "confidence": None, "value_variant": None,
    "system": {"gpu": None, "gpus_per_node": count, "nvlink": None, "nic": None, "nic_gbps_per_gpu": positive,
               "fabric": None, "topology": None, "platform": None},
    "nccl_version": None, "tool": None, "collective": None, "algorithm": None, "protocol": None, "dtype": None,
    "num_gpus": count, "num_nodes": count, "message_bytes": positive,
    "time_us": measured, "algbw_GBps": measured, "busbw_GBps": measured, "other_bw_GBps": measured,
    "other_bw_metric": None,
}

_MEMORY_MODEL: Shape = {
    "name": None, "layers": count, "hidden": count, "heads": count, "kv_heads": count, "ffn_hidden": count,
    "vocab": None, "seq_len": count, "notes": None,
    "moe": {"num_experts": count, "experts": count, "top_k": count, "moe_ffn_hidden": count,
            "shared_expert_ffn": count, "dispatcher": None, "grouped_gemm": None, "moe_layer_freq": None},
}

#: a per-GPU memory measurement (validate/memory.yaml)
MEMORY: Shape = {
    "id": None, "source": memory_source, "exclude_from_gate": None, "notes": None, "verification": None,
    "gpu": None, "num_gpus": count, "model": _MEMORY_MODEL,
    "training": {"micro_batch": count, "global_batch": count, "num_microbatches": count, "precision": None,
                 "optimizer": None, "recompute": None, "other": None, "test_type": None},
    "parallelism": {"tp": count, "pp": count, "dp": count, "cp": count, "ep": count, "etp": count,
                    "virtual_stages": count, "sequence_parallel": None, "zero_stage": None, "fsdp": None,
                    "distributed_optimizer": None},
    "measured": Each({"quantity": None, "value": None, "unit": None, "note": None, "platform": None}),
    "megatron_args": None, "env": None, "by_platform": None,
}

#: optional facts about a published run's software, passed to spec.training.Training as given: what it fused and
#: overlapped, how it dispatched and routed MoE tokens, how it scaled its fp8 GEMM inputs, the precision of its
#: gradients, master weights and optimizer state, how many pipeline schedules it ran a step, when its software was
#: released (the kernels of that day)
SOFTWARE_FIELDS = ("flash_attention", "attention_backend", "software_date", "tp_overlap", "dp_overlap",
                   "zero3_gather", "ep_overlap", "moe_dispatcher", "expert_epilogue", "moe_routing", "fp8_recipe",
                   "fp8_output_proj", "pipeline_layout", "account_for_embedding_in_pipeline_split",
                   "account_for_loss_in_pipeline_split", "grad_accum_fp32", "master_weights", "optimizer_state_dtype",
                   "pipeline_flushes", "recompute_modules")

#: a published training run (validate/calibration.yaml); its ``model`` is a model spec, checked by the spec itself
RUN: Shape = {
    "id": None, "source": None, "source_group": None, "exclude_from_gate": None, "published": None,
    "cluster": {"accelerator": None, "num_gpus": count, "gpus_per_node": count, "scale_out_gbps_per_gpu": positive,
                "fabric": None},
    "model": None,
    "training": {"global_batch": count, "micro_batch": count, "precision": None, "recompute": None,
                 "zero_stage": None, "sequence_parallel": None, **dict.fromkeys(SOFTWARE_FIELDS)},
    "parallelism": {"tp": count, "pp": count, "dp": count, "cp": count, "ep": count, "virtual_stages": count,
                    "etp": count,  # the project's copy: expert tensor parallelism where a source states it
                    "offload_optimizer": None, "offload_weights": None, "offload_activations": None},
    "expected": {"step_time_s": None, "derivation": None},  # the step time's own check: runs.expected_step_time
}

#: a metered training run (validate/power.yaml: MLPerf Training power); the free-text fields are read by
#: validate/power.py
POWER: Shape = {
    "id": None, "source": None, "exclude_from_gate": None, "notes": None, "measured_or_estimated": None,
    "validation_use": None,
    "cluster": {"accelerator": None, "accelerator_tdp_w": positive, "num_gpus": count, "gpus_per_node": count,
                "nodes": count, "cpu": None, "host_memory_per_node": None, "storage_per_node": None,
                "scale_out": None, "cooling": None},
    "workload": {"benchmark": None, "model": None, "global_batch_size": count, "tokens": positive,
                 "train_samples_logged": positive, "trained_samples": positive, "evaluations": measured,
                 "eval_tokens": positive, "seq_len": count, "precision": None},
    "parallelism": {"source": None, "tp": count, "pp": count, "dp": count, "cp": count, "ep": count,
                    "virtual_stages": count, "micro_batch": count},
    "time_to_train_s": positive, "time_to_train_published": None, "energy_j": measured, "energy_published": None,
    "energy_breakdown_j": {"nodes": measured, "interconnect": measured, "derivation": None},
    "interconnect_power_w": measured, "boundary": None, "average_power_w": measured,
    "average_node_power_w": measured, "pue": positive, "rcp_scaling_factor": positive, "runs": None,
    "recomputed": None,
    "timeline": {"step_time_s": positive, "evaluation_s": positive, "derivation": None},
}
