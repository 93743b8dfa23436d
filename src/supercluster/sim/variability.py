"""Who runs slower: seeded per-GPU speed jitter and stragglers named by the user, as compute slowdowns per pipeline
replica and stage.

Jitter: each GPU's compute takes exp(sigma * z) times its nominal time, z standard normal drawn from a generator
seeded by (seed, iteration) (a lognormal factor with median 1; sigma 0.02 is a 2% spread). A straggler
``gpu=1234:0.8`` runs at 80% speed: its compute takes 1/0.8 times as long; ``node=12:0.8`` slows every GPU of node
12 (ranks 12 * gpus_per_node onwards). A stage's tensor- and context-parallel group meets at every layer's
collectives, so the group runs at its slowest member's pace: a (replica, stage) slowdown is the largest of its
GPUs'. Expert-parallel groups also span replicas; their coupling is not modelled (each replica keeps its pace).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..network.placement import axis_strides
from ..spec.scenario import Scenario
from .speedspec import UnitSpeed, check_index, check_speed, split_unit_speed


@dataclass(frozen=True)
class Straggler(UnitSpeed):
    """A GPU or every GPU of a node (``unit`` "gpu" or "node") computing at a share ``speed`` of nominal speed."""


def parse_straggler(text: str, s: Scenario) -> Straggler:
    """``gpu=N:SPEED`` or ``node=N:SPEED``, checked against the scenario's cluster."""
    unit, index, speed = split_unit_speed(text, ("gpu", "node"), "gpu=1234:0.8", "--straggler")
    count = s.cluster.num_gpus if unit == "gpu" else -(-s.cluster.num_gpus // s.cluster.gpus_per_node)
    check_index(unit, index, count, "--straggler")
    check_speed(speed, text, "a share of nominal speed", "--straggler")
    return Straggler(unit=unit, index=index, speed=speed)


def gpu_slowdown(s: Scenario, *, sigma: float, seed: int, iteration: int,
                 stragglers: tuple[Straggler, ...]) -> np.ndarray:
    """Every GPU's compute time factor (>= 0; 1 nominal)."""
    n = s.cluster.num_gpus
    factor = (np.exp(sigma * np.random.default_rng([seed, iteration]).standard_normal(n)) if sigma > 0.0
              else np.ones(n))
    for st in stragglers:
        lo = st.index if st.unit == "gpu" else st.index * s.cluster.gpus_per_node
        hi = lo + 1 if st.unit == "gpu" else min(lo + s.cluster.gpus_per_node, n)
        factor[lo:hi] /= st.speed
    return factor


def group_slowdown(factor: np.ndarray, par: dict[str, int | str]) -> np.ndarray:
    """[replica, stage] slowdown: the slowest GPU of each (data-parallel index, pipeline stage) group."""
    deg = {a: np.array([float(par[a])]) for a in ("tp", "cp", "dp", "pp")}
    strides = axis_strides(str(par["order"]).split("-"), deg)
    ranks = np.arange(len(factor))
    dp_i = (ranks // int(strides["dp"][0])) % int(par["dp"])
    pp_i = (ranks // int(strides["pp"][0])) % int(par["pp"])
    out = np.zeros((int(par["dp"]), int(par["pp"])))
    np.maximum.at(out, (dp_i, pp_i), factor)
    return out


def representatives(groups: np.ndarray, stage_work_s: list[float]) -> tuple[list[int], list[list[float]]]:
    """Symmetric mode: the replicas to simulate and their per-stage slowdowns. Without variability one replica
    stands for all; with it, the slowest replica (the one whose slowest stage, by its work times its slowdown, is
    slowest: a pipeline runs at its slowest stage's pace, and every replica waits for the slowest at the
    data-parallel collectives) beside a typical one (each stage at the median over replicas), labelled -1."""
    if np.all(groups == 1.0):
        return [0], [[1.0] * groups.shape[1]]
    slowest = int(np.argmax((groups * np.asarray(stage_work_s)[None, :]).max(axis=1)))
    typical = np.median(groups, axis=0)
    return [slowest, -1], [groups[slowest].tolist(), typical.tolist()]
