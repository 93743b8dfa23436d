"""The scale-out fabric as a folded Clos (fat tree) of identical switches, built from counts, never per GPU.

A tier-t switch of radix k with down:up ratio o_t has d_t = floor(k*o_t/(1+o_t)) ports down and u_t = k - d_t up;
the top tier points all k ports down. T tiers hold at most k * d_1 * ... * d_(T-1) endpoints (k^2/2 for two
non-blocking tiers, k^3/4 for three, k^4/8 for four; Al-Fares et al. 2008). For N endpoints:

    L_1 = ceil(N / d_1),   L_t = ceil(L_(t-1) * u_(t-1) / d_t),   L_T = ceil(L_(T-1) * u_(T-1) / k)

switches per tier, and L_t * u_t links above tier t. One NIC per GPU. In a rail-optimised fabric NIC j of every
node goes to a rail-j leaf, so a leaf block spans d_1 nodes on every rail: GPUs that share a local index (a rail)
and sit within d_1 nodes reach each other through one leaf. A subtree rooted at tier t >= 2 holds d_1*...*d_t
GPUs (a pod for t = 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import SpecError
from ..spec.hardware import Cluster

MAX_TIERS = 4


@dataclass(frozen=True)
class Tier:
    level: int  # 1 leaf, 2 spine, 3 core, 4 super-core
    switches: int
    down_ports: int
    up_ports: int
    oversubscription: float  # down:up at this switch (1 at the top tier)
    links_up: int  # links from this tier to the next one (0 at the top)
    block_gpus: int  # GPUs under one switch of this tier (rail-aligned for leaves of a rail-optimised fabric)


@dataclass(frozen=True)
class Topology:
    """The counts of one cluster's scale-out fabric."""

    gpus: int
    nodes: int
    radix: int
    port_bytes_per_s: float
    tiers: tuple[Tier, ...]
    nic_links: int
    rail_optimized: bool
    max_endpoints: int
    min_tiers: int

    @property
    def switches(self) -> int:
        return sum(t.switches for t in self.tiers)

    @property
    def switch_links(self) -> int:
        return sum(t.links_up for t in self.tiers)

    @property
    def transceivers(self) -> int:
        """Pluggable optics: both ends of every NIC-leaf and switch-switch link (an upper bound: in-rack links can
        be copper)."""
        return 2 * (self.nic_links + self.switch_links)

    @property
    def cumulative_oversubscription(self) -> list[float]:
        """Product of down:up ratios below each tier's uplinks: what an endpoint gets crossing that tier at load."""
        out, acc = [], 1.0
        for t in self.tiers:
            acc *= t.oversubscription
            out.append(acc)
        return out

    @property
    def bisection_bytes_per_s(self) -> float:
        """Bandwidth across a cut splitting the endpoints in halves, limited by the oversubscribed tiers."""
        worst = max(self.cumulative_oversubscription[:-1] or [1.0])
        return self.gpus * self.port_bytes_per_s / 2.0 / worst


def _split(radix: int, ratio: float) -> tuple[int, int]:
    down = int(math.floor(radix * ratio / (1.0 + ratio)))
    return down, radix - down


def capacity(radix: int, tiers: int, ratios: list[float]) -> int:
    """Most endpoints ``tiers`` tiers of radix-``radix`` switches hold."""
    total = radix
    for t in range(1, tiers):
        total *= _split(radix, ratios[t - 1])[0]
    return total


def build_topology(cluster: Cluster) -> Topology:
    """The fat tree of a cluster (fewest tiers that hold it unless the fabric fixes the count)."""
    fabric = cluster.fabric
    n = cluster.num_gpus
    port = cluster.scale_out_bandwidth_per_gpu_bytes_per_s
    if fabric.switch is None:
        radix = 64  # a 51.2 Tb/s-class switch at 800G or a 25.6 Tb/s one at 400G; named switches override
    else:
        radix = fabric.switch.radix(port)
        if radix < 2:
            raise SpecError(f"switch {fabric.switch.name} has no port at {port * 8 / 1e9:.0f} Gb/s "
                            f"(capacity {fabric.switch.capacity_bytes_per_s * 8 / 1e12:.1f} Tb/s)",
                            field="cluster.fabric.switch")
    ratios = [fabric.oversubscription_at(b) for b in range(1, MAX_TIERS + 1)]
    min_tiers = next((t for t in range(1, MAX_TIERS + 1) if capacity(radix, t, ratios) >= n), None)
    if min_tiers is None:
        raise SpecError(f"{n:,} GPUs do not fit in {MAX_TIERS} tiers of radix-{radix} switches "
                        f"(at most {capacity(radix, MAX_TIERS, ratios):,})", field="cluster.fabric")
    tiers_n = fabric.tiers or min_tiers
    if tiers_n < min_tiers:
        raise SpecError(f"{tiers_n} tier(s) of radix-{radix} switches hold at most "
                        f"{capacity(radix, tiers_n, ratios):,} endpoints, fewer than the {n:,} GPUs; "
                        f"{min_tiers} tiers are needed", field="cluster.fabric.tiers")
    gpn = cluster.gpus_per_node
    tiers: list[Tier] = []
    below, block = n, 1
    prev_up = 1
    for level in range(1, tiers_n + 1):
        top = level == tiers_n
        down, up = (radix, 0) if top else _split(radix, ratios[level - 1])
        incoming = n if level == 1 else below * prev_up
        switches = max(1, math.ceil(incoming / down))
        block = down if level == 1 else block * down
        block_gpus = min(n, down * gpn) if level == 1 and fabric.rail_optimized else min(n, block)
        tiers.append(Tier(level=level, switches=switches, down_ports=down, up_ports=up,
                          oversubscription=1.0 if top else down / max(up, 1), links_up=switches * up,
                          block_gpus=block_gpus))
        below, prev_up = switches, up
    return Topology(gpus=n, nodes=math.ceil(n / gpn), radix=radix, port_bytes_per_s=port, tiers=tuple(tiers),
                    nic_links=n, rail_optimized=fabric.rail_optimized,
                    max_endpoints=capacity(radix, tiers_n, ratios), min_tiers=min_tiers)
