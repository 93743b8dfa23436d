"""The links of a cluster's scale-out fabric and the route of a flow over them, ECMP or adaptive.

The fabric is network/topology.py's folded Clos: tier t switches with d_t ports down and u_t up (the tier's
down:up oversubscription), one NIC per GPU at the port rate. A leaf serves d_1 NICs: in a rail-optimised fabric NIC
j of d_1 consecutive nodes (leaf (node // d_1) * gpus_per_node + j), otherwise d_1 consecutive GPUs. A tier-t
subtree (t >= 2) holds d_2 * ... * d_t consecutive leaves, and u_1 * ... * u_(t-1) tier-t switches: every switch
below connects once to each switch of its plane above (Al-Fares et al., "A Scalable, Commodity Data Center Network
Architecture", SIGCOMM 2008). Links are full duplex: each direction is a link of its own, at the port rate.

A flow from GPU a to GPU b in another scale-up domain leaves through the NIC on b's rail in a's node (NCCL's PXN
moves it there over NVLink first), climbs to the lowest tier whose subtree holds both leaves, and comes down. In a
fat tree the up-ports chosen fix the whole path: the way down is the mirror of the destination's way up through
the same ports. How the up-ports are chosen is the ``routing`` option:

- ``"ecmp"``: per-flow ECMP. A seeded hash of (source, destination, tier) picks the up-port at each tier, so flows
  collide on a port while others idle: the loss Al-Fares et al. 2010 (Hedera, NSDI) measured and that flowlet /
  adaptive routing removes. Every port is a link of its own.
- ``"adaptive"``: per-packet adaptive routing (NVIDIA Spectrum-X and InfiniBand adaptive routing; packet spraying,
  Dixit et al., INFOCOM 2013) spreads each flow evenly over every up-port, and with it over every way down. Every
  port of a bundle then carries the same load, so the u_1 * ... * u_t up-ports leaving a tier-t subtree are one
  link of that total capacity, and likewise the ports coming down into it: exact for the fluid limit of perfect
  spraying (no reordering cost, no queueing).

Assumptions: every switch port runs at the NIC's rate; a partial last subtree has as many switches above it as a
full one (topology.py's switch counts round the top tier down, which changes no path's capacity here); the top tier
is a non-blocking crossbar. Link ids are keys ``kind << 40 | index`` compacted to 0..L-1 (``compact``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..network.topology import Topology
from ..spec.hardware import Cluster

Routing = Literal["ecmp", "adaptive"]
ROUTINGS: tuple[Routing, ...] = ("ecmp", "adaptive")
KIND_SHIFT = 40
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (Steele, Lea & Flood, OOPSLA 2014): a well-spread 64-bit hash, on uint64 arrays."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def ecmp_port(seed: int, src: np.ndarray, dst: np.ndarray, tier: int, ports: int) -> np.ndarray:
    """The up-port ECMP's hash picks for each flow at a tier: deterministic in (seed, source, destination, tier)."""
    h = np.full(src.shape, np.uint64(seed & 0xFFFFFFFFFFFFFFFF))
    h = _mix(h + np.full(src.shape, _GOLDEN) * np.uint64(tier + 1))
    h = _mix(h ^ src.astype(np.uint64))
    h = _mix(h ^ dst.astype(np.uint64))
    return (h % np.uint64(ports)).astype(np.int64)


@dataclass(frozen=True)
class FatTree:
    """What routing needs of a cluster's fabric: ports per tier and how GPUs map onto leaves."""

    gpus: int
    gpus_per_node: int
    domain_gpus: int
    rail_optimized: bool
    port_bytes_per_s: float
    down: tuple[int, ...]  # d_t per tier (the top tier's all ports)
    up: tuple[int, ...]  # u_t per tier below the top

    @classmethod
    def of(cls, cluster: Cluster, topo: Topology) -> FatTree:
        return cls(gpus=topo.gpus, gpus_per_node=cluster.gpus_per_node, domain_gpus=cluster.domain_gpus,
                   rail_optimized=topo.rail_optimized, port_bytes_per_s=topo.port_bytes_per_s,
                   down=tuple(t.down_ports for t in topo.tiers), up=tuple(t.up_ports for t in topo.tiers[:-1]))

    @property
    def tiers(self) -> int:
        return len(self.down)

    def leaf(self, gpu: np.ndarray) -> np.ndarray:
        """The leaf switch of a GPU's NIC."""
        if self.rail_optimized:
            node, rail = np.divmod(gpu, self.gpus_per_node)
            return (node // self.down[0]) * self.gpus_per_node + rail
        return gpu // self.down[0]

    def block(self, leaf: np.ndarray, tier: int) -> np.ndarray:
        """The tier-``tier`` subtree a leaf sits in (tier 1: the leaf itself)."""
        width = int(np.prod(self.down[1:tier], dtype=np.int64)) if tier > 1 else 1
        return leaf // width

    def level(self, src_leaf: np.ndarray, dst_leaf: np.ndarray) -> np.ndarray:
        """The tier where a flow turns around: 1 under one leaf, t the lowest tier whose subtree holds both."""
        lev = np.full(src_leaf.shape, self.tiers, dtype=np.int64)
        for t in range(self.tiers - 1, 0, -1):
            lev = np.where(self.block(src_leaf, t) == self.block(dst_leaf, t), t, lev)
        return lev


@dataclass(frozen=True)
class Routes:
    """Flows routed on a fabric: edge e is flow ``flow[e]`` on link key ``key[e]`` of capacity ``capacity[e]``."""

    flow: np.ndarray
    key: np.ndarray
    capacity: np.ndarray
    flows: int


def check_routing(routing: str) -> None:
    """Refuse a routing option other than ``ROUTINGS``, by name."""
    if routing not in ROUTINGS:
        raise ValueError(f"routing must be one of {', '.join(ROUTINGS)}, not {routing!r}")


def route(fab: FatTree, src: np.ndarray, dst: np.ndarray, *, routing: Routing, seed: int = 0) -> Routes:
    """The links every flow src[i] -> dst[i] crosses (flows inside one scale-up domain cross none)."""
    check_routing(routing)
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    idx = np.arange(src.size, dtype=np.int64)
    net = (src // fab.domain_gpus) != (dst // fab.domain_gpus)
    i, a, b = idx[net], src[net], dst[net]
    nic = (a // fab.gpus_per_node) * fab.gpus_per_node + b % fab.gpus_per_node  # PXN: b's rail in a's node
    la, lb = fab.leaf(nic), fab.leaf(b)
    lev = fab.level(la, lb)
    port = fab.port_bytes_per_s
    flows, keys, caps = [i, i], [_key(0, nic), _key(1, b)], [np.full(i.size, port)] * 2
    ports_tuple = np.zeros(i.size, dtype=np.int64)  # mixed-radix index of the up-ports chosen so far
    for t in range(1, fab.tiers):
        up = lev > t  # crosses tier t's up-links
        u_t = fab.up[t - 1]
        if routing == "ecmp":
            p = ecmp_port(seed, a, b, t, u_t)
            ports_tuple = ports_tuple * u_t + p
            planes = int(np.prod(fab.up[:t], dtype=np.int64))  # port tuples p_1..p_t
            k_up = fab.block(la, t) * planes + ports_tuple
            k_down = fab.block(lb, t) * planes + ports_tuple
            cap = port
        else:
            k_up, k_down = fab.block(la, t), fab.block(lb, t)
            cap = port * float(np.prod(fab.up[:t], dtype=np.int64))
        flows += [i[up], i[up]]
        keys += [_key(2 * t, k_up[up]), _key(2 * t + 1, k_down[up])]
        caps += [np.full(int(up.sum()), cap)] * 2
    return Routes(flow=np.concatenate(flows), key=np.concatenate(keys), capacity=np.concatenate(caps),
                  flows=src.size)


def link_class(kind: int) -> str:
    """The name of a link kind: 0/1 the NICs' links up/down, 2t/2t+1 tier t's up-links / the mirrored down-links."""
    if kind <= 1:
        return "NIC " + ("up" if kind == 0 else "down")
    tier, down = divmod(kind, 2)
    return f"tier-{tier} " + ("down-links" if down else "up-links")


def _key(kind: int, index: np.ndarray) -> np.ndarray:
    return (np.int64(kind) << np.int64(KIND_SHIFT)) | index.astype(np.int64)


def compact(keys: np.ndarray, capacity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Link keys as ids 0..L-1 (sorted by key: deterministic) and the capacity of each link."""
    _, first, ids = np.unique(keys, return_index=True, return_inverse=True)
    return ids.astype(np.int64), capacity[first]
