"""A batch of parallel configurations as parallel numpy arrays (no Python object per configuration)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

RECOMPUTE_CODES = {"none": 0, "selective": 1, "full": 2, "block": 3}
RECOMPUTE_NAMES = {v: k for k, v in RECOMPUTE_CODES.items()}


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
    recompute: np.ndarray  # 0 none, 1 selective, 2 full (every layer), 3 block (full, on as few layers as fit)
    zero_stage: np.ndarray
    sp: np.ndarray  # bool: sequence parallelism

    @classmethod
    def from_columns(cls, **columns: Any) -> Candidates:
        arrays = {k: np.atleast_1d(np.asarray(v)) for k, v in columns.items()}
        if arrays["recompute"].size and isinstance(arrays["recompute"].flat[0], str):
            arrays["recompute"] = np.array([RECOMPUTE_CODES[str(r)] for r in arrays["recompute"]])
        size = max(len(a) for a in arrays.values())
        out = {}
        for f in fields(cls):
            a = arrays[f.name]
            dtype = bool if f.name == "sp" else np.int64
            out[f.name] = np.broadcast_to(a, (size,)).astype(dtype)
        return cls(**out)

    def __len__(self) -> int:
        return len(self.tp)

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
        out["sequence_parallel"] = out.pop("sp")
        return out
