"""The space of parallel configurations for a scenario, enumerated as arrays and pruned by the rules.

A field the scenario gives is fixed; every other one ranges over: tp over divisors of the GPU count inside one
scale-up domain; cp over divisors up to 32; pp over divisors of what is left, up to the layer count; dp what
remains; ep over divisors of the expert count; etp in {1, tp}; micro-batch over divisors of the global batch up to
16; virtual stages that split the layers evenly (1-8 for an uneven pipeline); recompute none/selective/full/block;
ZeRO 0-3 (0-1 under a pipeline, where 2 and 3 run as 1); the pipeline schedules the framework runs
(catalog/software.yaml); sequence parallelism on whenever tp > 1 (it only removes
work and memory); the layout of the axes over ranks as given, or (order: auto) Megatron's and Llama 3's.
What a framework refuses is pruned by the rules of spec.rules, each applied as soon as the degrees it reads are
crossed in.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np

from ..perf.candidates import (
    OFFLOAD_BITS,
    OFFLOAD_OPTIMIZER,
    OFFLOAD_WEIGHTS,
    ORDER_CODES,
    RECOMPUTE_CODES,
    SCHEDULE_CODES,
    Candidates,
)
from ..spec import catalog
from ..spec.rules import feasible_mask, rules_for
from ..spec.scenario import Scenario
from ..spec.software import Software
from ..spec.training import SEARCHED_ORDERS, Parallelism, counted_in_split

MAX_MICRO_BATCH = 16
MAX_VIRTUAL_STAGES_EVEN = 64
MAX_VIRTUAL_STAGES_UNEVEN = 8
MAX_CP = 32


def divisors(n: int) -> list[int]:
    small = [d for d in range(1, int(n**0.5) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def enumerate_space(s: Scenario) -> Candidates:
    """Every configuration allowed by the scenario's given fields and the rules (pruned before timing)."""
    p, n = s.parallelism, s.cluster.num_gpus
    model = s.model
    gb = s.training.global_batch
    experts = model.moe.experts if model.moe else 1
    # A pipeline the user leaves to the search may split the layers unevenly (the slowest stage takes
    # ceil(L/pp)), as Megatron-LM and the Llama 3 run do; a pp the user gives must divide the layers unless allowed.
    uneven = p.uneven_pipeline or p.pp is None
    # layers the split counts beside the transformer layers under a pipeline (the embedding, the loss)
    counted = sum(counted_in_split(s.training))
    rules = rules_for(model, s.cluster, s.training, uneven)

    def prune(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Keep the rows that break no rule checkable on the columns so far (each rule lives in spec.rules)."""
        return _keep(cols, feasible_mask(rules, cols))

    tps = [p.tp] if p.tp else [d for d in divisors(n) if d <= s.cluster.domain_gpus]
    cps = [p.cp] if p.cp else [d for d in divisors(n) if d <= MAX_CP]
    rows: list[tuple[int, int, int, int]] = []
    for tp_i, cp_i in itertools.product(tps, cps):
        if n % (tp_i * cp_i):
            continue
        rest = n // (tp_i * cp_i)
        pps = [p.pp] if p.pp else [d for d in divisors(rest) if d <= model.layers]
        for pp_i in pps:
            if rest % pp_i:
                continue
            dp_i = rest // pp_i
            if p.dp and dp_i != p.dp:
                continue
            rows.append((tp_i, cp_i, pp_i, dp_i))
    base = np.array(rows, dtype=np.int64).reshape(-1, 4)
    cols: dict[str, np.ndarray] = prune({"tp": base[:, 0], "cp": base[:, 1], "pp": base[:, 2], "dp": base[:, 3]})
    if not len(cols["tp"]):
        return Candidates.from_columns(tp=[], pp=[], dp=[], cp=[], ep=[], etp=[], micro_batch=[],
                                       virtual_stages=[], recompute=np.array([], dtype=np.int64), zero_stage=[],
                                       sp=[], schedule=np.array([], dtype=np.int64))

    eps = [p.ep] if p.ep else [d for d in divisors(experts)]
    mbs = [p.micro_batch] if p.micro_batch else [d for d in divisors(gb) if d <= MAX_MICRO_BATCH]
    if p.virtual_stages:
        vss = [p.virtual_stages]
    else:  # chunkings that split the layers evenly (pruned by the rules), and small ones for uneven pipelines; a
        # split that counts the embedding and the loss as layers divides those slots (spec.rules)
        vss = sorted({v for n in {model.layers, model.layers + counted} for v in divisors(n)
                      if v <= MAX_VIRTUAL_STAGES_EVEN}
                     | (set(range(1, MAX_VIRTUAL_STAGES_UNEVEN + 1)) if uneven else set()))
    rcs = [RECOMPUTE_CODES[p.recompute]] if p.recompute else [0, 1, 2, 3] + (
        [RECOMPUTE_CODES["op"]] if s.training.framework == "pytorch" else [])  # per-op checkpointing: torchtitan
    zeros = [p.zero_stage] if p.zero_stage is not None else [0, 1, 2, 3]

    # Cross the axes one at a time, pruning as soon as a rule can be checked (a full meshgrid of every axis
    # would be tens of millions of rows for GPU counts with many divisors).
    L = model.layers
    cols["sp"] = (cols["tp"] > 1) if p.sequence_parallel is None else np.full_like(cols["tp"], p.sequence_parallel,
                                                                                    dtype=bool)
    cols = prune(_cross(cols, "micro_batch", mbs))
    cols = _cross(cols, "virtual_stages", vss)
    if not p.virtual_stages:  # an uneven pipeline interleaves at most MAX_VIRTUAL_STAGES_UNEVEN chunks (bounds it)
        cols = _keep(cols, (np.mod(L, cols["pp"]) == 0) | (np.mod(L + counted, cols["pp"]) == 0)
                     | (cols["virtual_stages"] <= MAX_VIRTUAL_STAGES_UNEVEN))
    cols = prune(cols)
    # the pipeline schedules the framework runs (catalog/software.yaml), one chunk a stage but interleaved's
    runs = [p.schedule] if p.schedule else Software.model_validate(
        catalog.entry("software", s.training.framework)).schedules
    cols = prune(_cross(cols, "schedule", [SCHEDULE_CODES[x] for x in runs]))
    cols = _cross(cols, "ep", eps)
    if p.etp:
        cols["etp"] = np.full_like(cols["tp"], p.etp)
    else:  # etp in {1, tp} (a single choice when tp == 1, or for a dense model)
        one = {**cols, "etp": np.ones_like(cols["tp"])}
        wide = cols["tp"] > 1 if model.moe else np.zeros_like(cols["tp"], dtype=bool)
        same = {**_keep(cols, wide), "etp": cols["tp"][wide]}
        cols = {k: np.concatenate([one[k], same[k]]) for k in one}
    cols = prune(cols)
    cols = _cross(cols, "recompute", rcs)
    cols = _cross(cols, "zero_stage", zeros)
    if p.zero_stage is None:  # under a pipeline ZeRO-2/3 run as ZeRO-1 does (spec.rules): not searched twice
        cols = _keep(cols, (cols["pp"] == 1) | (cols["zero_stage"] < 2))
    orders = SEARCHED_ORDERS if p.order == "auto" else (p.order,)
    cols = prune(_cross(cols, "order", [ORDER_CODES[o] for o in orders]))
    cols["offload"] = np.full_like(cols["tp"], fixed_offload(p)[0])
    return Candidates.from_columns(**{k: cols[k] for k in ("tp", "pp", "dp", "cp", "ep", "etp", "micro_batch",
                                                           "virtual_stages", "recompute", "zero_stage", "sp",
                                                           "order", "offload", "schedule")})


def fixed_offload(p: Parallelism) -> tuple[int, int]:
    """(the offload bits the scenario sets, the bits it leaves to the search). Weights offload implies optimizer
    offload (FSDP CPUOffload and ZeRO-Infinity move the parameters with their optimizer state)."""
    value = searched = 0
    for name, bit in OFFLOAD_BITS.items():
        given = getattr(p, name)
        if given is None:
            searched |= bit
        elif given:
            value |= bit
    if value & OFFLOAD_WEIGHTS:
        value |= OFFLOAD_OPTIMIZER
        searched &= ~OFFLOAD_OPTIMIZER
    return value, searched


def offload_variants(p: Parallelism, c: Candidates, fits: np.ndarray) -> Candidates | None:
    """The configurations that do not fit, again with every searched combination of offloads, or None. Only those:
    offloading moves bytes over the host link and never shortens a step, so a configuration that fits gains
    nothing from it (the other axes, recompute among them, are searched separately)."""
    value, searched = fixed_offload(p)
    if not searched:
        return None
    combos = sorted({(value | bits) for bits in range(8) if bits & ~searched == 0 and bits}
                    - {value})
    combos = [b for b in combos if not (b & OFFLOAD_WEIGHTS) or b & OFFLOAD_OPTIMIZER]
    index = np.flatnonzero(~fits)
    if not len(index) or not combos:
        return None
    base = c.take(np.repeat(index, len(combos)))
    return dataclasses.replace(base, offload=np.tile(np.asarray(combos, dtype=np.int64), len(index)))


def _cross(cols: dict[str, np.ndarray], name: str, values: Sequence[int]) -> dict[str, np.ndarray]:
    """Every row of ``cols`` with every value of a new axis."""
    rows = len(next(iter(cols.values())))
    v = np.asarray(values, dtype=np.int64)
    out = {k: np.repeat(a, len(v)) for k, a in cols.items()}
    out[name] = np.tile(v, rows)
    return out


def _keep(cols: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: a[mask] for k, a in cols.items()}
