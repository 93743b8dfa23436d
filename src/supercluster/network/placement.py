"""Where a parallel group sits: ranks mapped to GPUs, and which links its traffic crosses.

Ranks fill GPUs in order (rank r on GPU r: consecutive ranks share a node). The parallel axes are laid out in a
configurable order, innermost first — Megatron-LM's default ``tp-cp-ep-dp-pp`` — so a group of one axis has
``size`` members ``stride`` ranks apart (stride = product of the degrees of the axes inside it; expert
parallelism is carved out of tp*cp*dp with the expert-tensor axis innermost).

For a group, per scale-up domain (node): g = min(size, max(1, domain // stride)) members; it spans
ceil(size / g) domains. Over the fabric, a subtree rooted at tier t (a rail-aligned leaf block for t = 1, a pod
for t = 2, ...) holds m_t = min(size, max(1, block_gpus_t // stride)) members; the group's traffic turns around
at the lowest tier whose subtree holds all of it (its ``level``: 0 inside a domain, 1 under one leaf, 2 inside a
pod/spine block, 3 across the core...). NCCL's PXN moves traffic between GPUs of different local index onto the
right rail over NVLink first, so strided groups are rail-aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec.hardware import Cluster
from ..spec.training import DEFAULT_ORDER as PARALLELISM_ORDER
from .topology import Topology

DEFAULT_ORDER = tuple(PARALLELISM_ORDER.split("-"))
LEVEL_NAMES = ("inside a scale-up domain", "under one leaf (same rail)", "inside a pod (spine)",
               "across the core", "across the super-core")


@dataclass(frozen=True)
class Placement:
    """A group of ``size`` ranks ``stride`` apart; every field an array over candidates."""

    size: np.ndarray
    stride: np.ndarray
    per_domain: np.ndarray  # members per scale-up domain
    domains: np.ndarray  # domains spanned
    level: np.ndarray  # 0 scale-up only, t >= 1: highest switch tier reached
    members_below: tuple[np.ndarray, ...]  # members under one tier-t subtree, t = 1..T
    fabric_gpus: tuple[int, ...]  # GPUs under one tier-t subtree

    @property
    def inside_domain(self) -> np.ndarray:
        return self.level == 0


def axis_strides(order: tuple[str, ...] | list[str], degrees: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Stride of each axis for a layout order (innermost first); ep is carved out of the dense axes."""
    dense = [a for a in order if a != "ep"]
    out: dict[str, np.ndarray] = {}
    acc = np.ones_like(np.asarray(degrees["tp"], dtype=np.float64))
    for axis in dense:
        out[axis] = acc.copy()
        acc = acc * np.asarray(degrees[axis], dtype=np.float64)
    return out


def place(cluster: Cluster, topo: Topology, size: np.ndarray, stride: np.ndarray) -> Placement:
    size = np.maximum(np.asarray(size, dtype=np.float64), 1.0)
    stride = np.maximum(np.asarray(stride, dtype=np.float64), 1.0)
    domain = float(cluster.domain_gpus)
    g = np.clip(np.floor(domain / stride), 1.0, size)
    domains = np.ceil(size / g)
    span = size * stride
    below = []
    level = np.where(span <= domain, 0, len(topo.tiers)).astype(np.int64)
    for tier in reversed(topo.tiers):
        level = np.where((span > domain) & (span <= tier.block_gpus), tier.level, level)
    for tier in topo.tiers:
        below.append(np.clip(np.floor(tier.block_gpus / stride), 1.0, size))
    return Placement(size=size, stride=stride, per_domain=g, domains=domains, level=level,
                     members_below=tuple(below), fabric_gpus=tuple(t.block_gpus for t in topo.tiers))


def weight_replica_group(strides: dict[str, np.ndarray], dp: np.ndarray, cp: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(size, stride) of the dp x cp ranks that hold the same dense weights and reduce their gradients.

    A trivial axis (degree 1) takes no part; when both are real, the group is laid out with the inner one's
    stride (exact when cp and dp are adjacent in the order, as in Megatron's default).
    """
    dp = np.asarray(dp, dtype=np.float64)
    cp = np.asarray(cp, dtype=np.float64)
    stride = np.where(cp <= 1, strides["dp"], np.where(dp <= 1, strides["cp"],
                                                       np.minimum(strides["dp"], strides["cp"])))
    return dp * cp, stride
