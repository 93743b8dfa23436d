"""The space of parallel configurations for a scenario, enumerated as arrays and pruned by the rules.

A field the scenario gives is fixed; every other one ranges over: tp over divisors of the GPU count inside one
scale-up domain; cp over divisors that split the sequence into 2*cp load-balanced chunks; pp over divisors of what
is left, up to the layer count; dp what remains; ep over divisors of the expert count; etp in {1, tp};
micro-batch over divisors of the per-replica batch up to 16; virtual stages that split the layers evenly
(1-8 for an uneven pipeline); recompute none/selective/full/block;
ZeRO 0-3; sequence parallelism on whenever tp > 1 (it only removes work and memory).
"""

from __future__ import annotations

import itertools

import numpy as np

from ..perf.candidates import RECOMPUTE_CODES, Candidates
from ..spec.rules import feasible_mask, rules_for
from ..spec.scenario import Scenario

MAX_MICRO_BATCH = 16
MAX_VIRTUAL_STAGES = 8
MAX_VIRTUAL_STAGES_EVEN = 64
MAX_CP = 32


def divisors(n: int) -> list[int]:
    small = [d for d in range(1, int(n**0.5) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def enumerate_space(s: Scenario) -> Candidates:
    """Every configuration allowed by the scenario's given fields and the rules (pruned before timing)."""
    p, n = s.parallelism, s.cluster.num_gpus
    model, seq = s.model, s.seq_len
    gb = s.training.global_batch
    experts = model.moe.experts if model.moe else 1

    tps = [p.tp] if p.tp else [d for d in divisors(n) if d <= s.cluster.domain_gpus and model.heads % d == 0]
    cps = [p.cp] if p.cp else [d for d in divisors(n) if d <= MAX_CP and (d == 1 or seq % (2 * d) == 0)]
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
    if not rows:
        return Candidates.from_columns(tp=[], pp=[], dp=[], cp=[], ep=[], etp=[], micro_batch=[],
                                       virtual_stages=[], recompute=np.array([], dtype=np.int64), zero_stage=[],
                                       sp=[])
    base = np.array(rows, dtype=np.int64)

    eps = [p.ep] if p.ep else [d for d in divisors(experts)]
    mbs = [p.micro_batch] if p.micro_batch else [d for d in divisors(gb) if d <= MAX_MICRO_BATCH]
    if p.virtual_stages:
        vss = [p.virtual_stages]
    elif p.uneven_pipeline:
        vss = list(range(1, MAX_VIRTUAL_STAGES + 1))
    else:  # any chunking of the layers into pp * v equal chunks (pruned by the rules below)
        vss = [v for v in divisors(model.layers) if v <= MAX_VIRTUAL_STAGES_EVEN]
    rcs = [RECOMPUTE_CODES[p.recompute]] if p.recompute else [0, 1, 2, 3]
    zeros = [p.zero_stage] if p.zero_stage is not None else [0, 1, 2, 3]
    etp_modes = [p.etp] if p.etp else [0]  # 0 marks "1 or tp", expanded below

    grids = np.meshgrid(np.arange(len(base)), eps, etp_modes, mbs, vss, rcs, zeros, indexing="ij")
    flat = [g.ravel() for g in grids]
    bi, ep, etp, mb, vs, rc, zero = flat
    tp, cp, pp, dp = (np.asarray(base[bi, j]) for j in range(4))
    if not p.etp:
        # expand etp in {1, tp} (a single choice when tp == 1)
        ep = np.concatenate([ep, ep[tp > 1]])
        mb, vs, rc, zero = (np.concatenate([a, a[tp > 1]]) for a in (mb, vs, rc, zero))
        etp = np.concatenate([np.ones_like(tp), tp[tp > 1]])
        tp, cp, pp, dp = (np.concatenate([a, a[tp > 1]]) for a in (tp, cp, pp, dp))
    sp = (tp > 1) if p.sequence_parallel is None else np.full_like(tp, p.sequence_parallel, dtype=bool)
    cand = Candidates.from_columns(tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, etp=etp, micro_batch=mb,
                                   virtual_stages=vs, recompute=rc, zero_stage=zero, sp=sp)
    rules = rules_for(model, s.cluster, s.training, p.uneven_pipeline)
    arrays = cand.as_arrays()
    mask = feasible_mask(rules, arrays)
    if not p.virtual_stages:
        mask &= (cand.pp > 1) | (cand.virtual_stages == 1)
    if not model.moe:
        mask &= cand.etp == 1
    return cand.take(np.flatnonzero(mask))
