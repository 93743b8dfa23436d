"""The rules a parallel configuration must obey, written once over numpy arrays.

The same function checks a user's scenario (scalars: every broken rule becomes a message naming its factors)
and prunes the search space (arrays: a boolean mask per rule). Degrees: tp pp dp cp ep etp, micro_batch (mb),
virtual_stages (vs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .hardware import Cluster
from .model import Model
from .training import Training


@dataclass(frozen=True)
class Rule:
    field: str
    ok: Callable[[dict[str, Any]], Any]
    message: Callable[[dict[str, Any]], str]
    needs: tuple[str, ...]


def _divides(a: Any, b: Any) -> Any:
    return np.mod(b, a) == 0


def rules_for(model: Model, cluster: Cluster, training: Training, uneven_pipeline: bool = False) -> list[Rule]:
    """Rules bound to one model, cluster and training run; each reads the degrees it `needs`."""
    n = cluster.num_gpus
    seq = training.seq_len or model.seq_len
    experts = model.moe.experts if model.moe else 1
    kv = model.n_kv_heads
    domain = cluster.domain_gpus
    rules = [
        Rule("parallelism", lambda p: p["tp"] * p["pp"] * p["dp"] * p["cp"] == n,
             lambda p: f"tp({p['tp']}) * pp({p['pp']}) * dp({p['dp']}) * cp({p['cp']}) = "
                       f"{p['tp'] * p['pp'] * p['dp'] * p['cp']} != num_gpus({n})",
             ("tp", "pp", "dp", "cp")),
        Rule("parallelism.tp", lambda p: _divides(p["tp"], model.heads),
             lambda p: f"tp({p['tp']}) does not divide heads({model.heads})", ("tp",)),
        Rule("parallelism.tp", lambda p: _divides(p["tp"], domain) | _divides(domain, p["tp"]),
             lambda p: f"tp({p['tp']}) and the scale-up domain of {domain} GPUs must divide one another "
                       "(a tensor-parallel group may not straddle domains)", ("tp",)),
        Rule("parallelism.tp", lambda p: _divides(p["tp"], kv) | _divides(kv, p["tp"]),
             lambda p: f"tp({p['tp']}) and kv_heads({kv}) must divide one another", ("tp",)),
        Rule("parallelism.cp", lambda p: _divides(p["cp"], seq),
             lambda p: f"cp({p['cp']}) does not divide seq_len({seq})", ("cp",)),
        Rule("parallelism.ep", lambda p: _divides(p["ep"], experts),
             lambda p: f"ep({p['ep']}) does not divide experts({experts})", ("ep",)),
        Rule("parallelism.ep", lambda p: _divides(p["ep"] * p["etp"], p["tp"] * p["cp"] * p["dp"]),
             lambda p: f"ep({p['ep']}) * etp({p['etp']}) does not divide tp({p['tp']}) * cp({p['cp']}) * "
                       f"dp({p['dp']}) = {p['tp'] * p['cp'] * p['dp']}",
             ("ep", "etp", "tp", "cp", "dp")),
        Rule("parallelism.etp", lambda p: _divides(p["etp"], model.moe.moe_ffn_hidden if model.moe else 1),
             lambda p: f"etp({p['etp']}) does not divide moe_ffn_hidden", ("etp",)),
        Rule("training.global_batch", lambda p: _divides(p["dp"] * p["micro_batch"], training.global_batch),
             lambda p: f"global_batch({training.global_batch}) is not divisible by dp({p['dp']}) * "
                       f"micro_batch({p['micro_batch']}) = {p['dp'] * p['micro_batch']}",
             ("dp", "micro_batch")),
        Rule("parallelism.virtual_stages", lambda p: (p["pp"] > 1) | (p["virtual_stages"] == 1),
             lambda p: f"virtual_stages({p['virtual_stages']}) > 1 needs pp > 1", ("pp", "virtual_stages")),
        Rule("parallelism.virtual_stages", lambda p: p["pp"] * p["virtual_stages"] <= model.layers,
             lambda p: f"pp({p['pp']}) * virtual_stages({p['virtual_stages']}) exceeds layers({model.layers}): "
                       "every chunk needs a layer", ("pp", "virtual_stages")),
        Rule("parallelism.zero_stage", lambda p: (p["pp"] == 1) | (p["zero_stage"] < 3),
             lambda p: f"zero_stage 3 shards weights per micro-batch and is not combined with pp({p['pp']}) > 1",
             ("pp", "zero_stage")),
    ]
    if not model.moe:
        rules.insert(0, Rule("parallelism.ep", lambda p: p["ep"] == 1,
                             lambda p: f"ep({p['ep']}) > 1 needs a mixture-of-experts model", ("ep",)))
    if not uneven_pipeline:
        rules.append(Rule("parallelism.pp", lambda p: _divides(p["pp"], model.layers),
                          lambda p: f"pp({p['pp']}) does not divide layers({model.layers}) "
                                    "(set parallelism.uneven_pipeline: true to allow it)", ("pp",)))
        rules.append(Rule("parallelism.virtual_stages",
                          lambda p: _divides(p["pp"] * p["virtual_stages"], model.layers),
                          lambda p: f"pp({p['pp']}) * virtual_stages({p['virtual_stages']}) does not divide "
                                    f"layers({model.layers})", ("pp", "virtual_stages")))
    return rules


def violations(rules: list[Rule], given: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for every rule whose inputs are all given and that does not hold."""
    out = []
    for rule in rules:
        if all(given.get(k) is not None for k in rule.needs) and not bool(rule.ok(given)):
            out.append((rule.field, rule.message(given)))
    return out


def feasible_mask(rules: list[Rule], arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Boolean mask over candidate arrays: True where every rule holds."""
    size = len(next(iter(arrays.values())))
    mask = np.ones(size, dtype=bool)
    for rule in rules:
        mask &= np.asarray(rule.ok(arrays), dtype=bool)
    return mask
