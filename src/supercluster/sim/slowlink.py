"""A slow link named by the user (``--slow-link``): some of the fabric's links run at a share of their rate.

- ``node=12:0.5``: node 12's NICs (every rail, both directions) run at 50%: the flows leaving or entering its GPUs
  (NCCL's PXN sends a flow out through the source node's NIC on the destination's rail, sim/fabric);
- ``leaf=3:0.5``: leaf switch 3's uplinks to the spine, both directions, run at 50% (a degraded optic or a leaf
  running at half its uplinks); in a rail-optimised fabric a leaf is one rail of a block of nodes
  (sim/fabric.FatTree.leaf);
- ``pod=1:0.5``: the uplinks of tier-2 subtree 1 (a pod: the leaves under one set of spines) to the core, in
  fabrics of three tiers or more.

A slowed switch uplink is every port of the bundle at that share: under ECMP each port is a link of its own; under
adaptive routing the bundle is one link (sim/fabric) and perfect spraying loads its ports alike, so the bundle
runs at the same share. The flows crossing a slowed link take longer under the same max-min sharing (sim/flows),
and a synchronous step waits for its last flow (sim/contention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..network.topology import build_topology
from ..spec.scenario import Scenario
from .fabric import KIND_SHIFT, FatTree, Routing
from .speedspec import UnitSpeed, check_index, check_speed, split_unit_speed

UNITS = ("node", "leaf", "pod")
_TIER = {"leaf": 1, "pod": 2}  # the switch tier whose up-links (and the mirrored down-links) are slowed


@dataclass(frozen=True)
class SlowLink(UnitSpeed):
    """A node's NICs or a leaf's or pod's uplinks (``unit`` one of ``UNITS``) at a share ``speed`` of their rate."""


def unit_count(fab: FatTree, unit: str) -> int:
    """How many nodes, leaves or pods the fabric has (0: the fabric has no such switch tier below its top)."""
    if unit == "node":
        return -(-fab.gpus // fab.gpus_per_node)
    tier = _TIER[unit]
    if tier >= fab.tiers:
        return 0
    last = fab.leaf(np.arange(fab.gpus, dtype=np.int64)).max()
    return int(fab.block(np.array([last]), tier)[0]) + 1


def parse_slow_link(text: str, s: Scenario) -> SlowLink:
    """``node=N:SPEED``, ``leaf=N:SPEED`` or ``pod=N:SPEED``, checked against the scenario's fabric."""
    unit, index, speed = split_unit_speed(text, UNITS, "node=12:0.5", "--slow-link")
    check_speed(speed, text, "a share of the link's rate", "--slow-link")
    count = unit_count(FatTree.of(s.cluster, build_topology(s.cluster)), unit)
    if count == 0:
        raise InputError(f"the cluster's fabric has no {unit} uplinks (its switches form fewer tiers)",
                         field="--slow-link")
    check_index(unit, index, count, "--slow-link")
    return SlowLink(unit=unit, index=index, speed=speed)


def slowed_capacity(fab: FatTree, key: np.ndarray, capacity: np.ndarray, slow: tuple[SlowLink, ...],
                    routing: Routing) -> np.ndarray:
    """``capacity`` (one per routed edge, link ``key``) with every slowed link at its share; several slowings of one
    link multiply."""
    if not slow:
        return capacity
    kind = key >> np.int64(KIND_SHIFT)
    index = key & ((np.int64(1) << np.int64(KIND_SHIFT)) - 1)
    share = np.ones(key.shape)
    for link in slow:
        if link.unit == "node":
            hit = (kind <= 1) & (index // fab.gpus_per_node == link.index)
        else:
            tier = _TIER[link.unit]
            planes = int(np.prod(fab.up[:tier], dtype=np.int64)) if routing == "ecmp" else 1
            hit = ((kind == 2 * tier) | (kind == 2 * tier + 1)) & (index // planes == link.index)
        share = np.where(hit, share * link.speed, share)
    out: np.ndarray = capacity * share
    return out
