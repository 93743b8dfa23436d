"""A batch of parallel configurations as parallel numpy arrays (no Python object per configuration)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..spec.training import DEFAULT_ORDER, SCHEDULES
from ..workload.memory import OFFLOAD_ACTIVATIONS, OFFLOAD_OPTIMIZER, OFFLOAD_WEIGHTS

OFFLOAD_BITS = {"offload_optimizer": OFFLOAD_OPTIMIZER, "offload_weights": OFFLOAD_WEIGHTS,
                "offload_activations": OFFLOAD_ACTIVATIONS}
RECOMPUTE_CODES = {"none": 0, "selective": 1, "full": 2, "block": 3, "op": 4}
RECOMPUTE_NAMES = {v: k for k, v in RECOMPUTE_CODES.items()}
# Every layout of the five axes, by code (the default first)
ORDERS = tuple(dict.fromkeys([DEFAULT_ORDER, *("-".join(p) for p in itertools.permutations(DEFAULT_ORDER.split("-")))]))
ORDER_CODES = {o: i for i, o in enumerate(ORDERS)}
SCHEDULE_CODES: dict[str, int] = {s: i for i, s in enumerate(SCHEDULES)}


@dataclass(frozen=True)
class Candidates:
    tp: np.ndarray
    pp: np.ndarray
    dp: np.ndarray
    cp: np.ndarray
    ep: np.ndarray
    etp: np.ndarray
    micro_batch: np.ndarray
    virtual_stages: np.ndarray
    recompute: np.ndarray  # 0 none, 1 selective, 2 full (every layer), 3 block (full, on as few layers as fit),
    # 4 op (torchtitan's per-op selective checkpointing)
    zero_stage: np.ndarray
    sp: np.ndarray  # bool: sequence parallelism
    order: np.ndarray  # layout of the axes over ranks, a code into ORDERS
    offload: np.ndarray  # bits: OFFLOAD_OPTIMIZER | OFFLOAD_WEIGHTS | OFFLOAD_ACTIVATIONS held in host memory
    schedule: np.ndarray  # the pipeline schedule, a code into spec.training.SCHEDULES (SCHEDULE_CODES)

    @classmethod
    def from_columns(cls, **columns: Any) -> Candidates:
        arrays = {k: np.atleast_1d(np.asarray(v)) for k, v in columns.items()}
        if arrays["recompute"].size and isinstance(arrays["recompute"].flat[0], str):
            arrays["recompute"] = np.array([RECOMPUTE_CODES[str(r)] for r in arrays["recompute"]])
        size = max(len(a) for a in arrays.values())
        arrays.setdefault("order", np.zeros(min(size, 1), dtype=np.int64))  # the default layout
        arrays.setdefault("offload", np.zeros(min(size, 1), dtype=np.int64))  # nothing in host memory
        if arrays["order"].size and isinstance(arrays["order"].flat[0], str):
            arrays["order"] = np.array([ORDER_CODES[str(o)] for o in arrays["order"]])
        if "schedule" not in arrays:  # 1F1B, or interleaved with virtual stages
            arrays["schedule"] = np.where(arrays["virtual_stages"] > 1, SCHEDULE_CODES["interleaved"],
                                          SCHEDULE_CODES["1f1b"])
        elif arrays["schedule"].size and isinstance(arrays["schedule"].flat[0], str):
            arrays["schedule"] = np.array([SCHEDULE_CODES[str(x)] for x in arrays["schedule"]])
        out = {}
        for f in fields(cls):
            a = arrays[f.name]
            dtype = bool if f.name == "sp" else np.int64
            out[f.name] = np.broadcast_to(a, (size,)).astype(dtype)
        return cls(**out)

    def __len__(self) -> int:
        return len(self.tp)

    @classmethod
    def concat(cls, parts: list[Candidates]) -> Candidates:
        """The candidates of every part, in order."""
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def take(self, index: np.ndarray) -> Candidates:
        return Candidates(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def row(self, i: int) -> dict[str, Any]:
        """One configuration with plain Python values (recompute by name)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)[i]
            out[f.name] = bool(v) if f.name == "sp" else int(v)
        out["recompute"] = RECOMPUTE_NAMES[out["recompute"]]
        out["order"] = ORDERS[out["order"]]
        out["schedule"] = SCHEDULES[out["schedule"]]
        out["sequence_parallel"] = out.pop("sp")
        bits = out.pop("offload")
        for name, bit in OFFLOAD_BITS.items():
            out[name] = bool(bits & bit)
        return out
