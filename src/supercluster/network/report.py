"""Fabric and collective reports: the figures `supercluster fabric` and `supercluster collective` print."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import SpecError
from ..spec.calibration import Calibration, default_calibration
from ..spec.hardware import Cluster
from .cost import ALGORITHMS, BUS_FACTOR, Algorithm, Op, collective_time
from .placement import LEVEL_NAMES, place
from .topology import MAX_TIERS, build_topology, capacity

TIER_NAMES = ("leaf", "spine", "core", "super-core")


class TierReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    tier: str
    switches: int
    down_ports: int
    up_ports: int
    oversubscription: float
    links_up: int
    gpus_per_switch_block: int


class FabricReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    cluster: str
    gpus: int
    nodes: int
    transport: str
    switch: str | None
    radix: int
    port_gbps: float
    tiers: list[TierReport]
    min_tiers: int
    max_endpoints: int
    reach_by_tiers: dict[int, int]
    switches: int
    nic_links: int
    switch_links: int
    transceivers: int
    bisection_bytes_per_s: float
    power_w: dict[str, float]
    explanation: list[str]


def fabric_report(cluster: Cluster) -> FabricReport:
    topo = build_topology(cluster)
    fabric = cluster.fabric
    ratios = [fabric.oversubscription_at(b) for b in range(1, MAX_TIERS + 1)]
    reach = {t: capacity(topo.radix, t, ratios) for t in range(1, MAX_TIERS + 1)}
    power = {
        "switches": topo.switches * (fabric.switch.power_w if fabric.switch else 0.0),
        "nics": topo.nic_links * (fabric.nic.power_w if fabric.nic else 0.0),
        "optics": topo.transceivers * (fabric.optic.power_w if fabric.optic else 0.0),
    }
    power["total"] = sum(power.values())
    k = topo.radix
    lines = [f"{cluster.num_gpus:,} GPUs, one {topo.port_bytes_per_s * 8 / 1e9:.0f} Gb/s NIC each, on radix-{k} "
             f"switches ({fabric.switch.name if fabric.switch else 'generic radix-64'})."]
    for t in range(1, MAX_TIERS + 1):
        form = {1: "k", 2: "k^2/2", 3: "k^3/4", 4: "k^4/8"}[t] if all(r == 1 for r in ratios) else "k*d1*..."
        verdict = "holds them" if reach[t] >= cluster.num_gpus else "too few"
        lines.append(f"{t} tier{'s' if t > 1 else ''} reach {form} = {reach[t]:,} endpoints: {verdict}.")
        if reach[t] >= cluster.num_gpus:
            break
    lines.append(f"Built with {len(topo.tiers)} tier(s) ({topo.min_tiers} needed).")
    tiers = [TierReport(tier=TIER_NAMES[t.level - 1], switches=t.switches, down_ports=t.down_ports,
                        up_ports=t.up_ports, oversubscription=t.oversubscription, links_up=t.links_up,
                        gpus_per_switch_block=t.block_gpus) for t in topo.tiers]
    return FabricReport(cluster=cluster.name, gpus=topo.gpus, nodes=topo.nodes, transport=fabric.transport,
                        switch=fabric.switch.name if fabric.switch else None, radix=k,
                        port_gbps=topo.port_bytes_per_s * 8 / 1e9, tiers=tiers, min_tiers=topo.min_tiers,
                        max_endpoints=topo.max_endpoints, reach_by_tiers=reach, switches=topo.switches,
                        nic_links=topo.nic_links, switch_links=topo.switch_links, transceivers=topo.transceivers,
                        bisection_bytes_per_s=topo.bisection_bytes_per_s, power_w=power, explanation=lines)


class CollectiveReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    cluster: str
    op: str
    message_bytes: float
    gpus: int
    stride: int
    algorithm: str
    time_s: float
    algbw_bytes_per_s: float
    busbw_bytes_per_s: float
    per_domain: int
    domains: int
    level: int
    crosses: str
    alternatives: dict[str, float]


#: The largest message ``collective`` accepts: 1 TiB. A collective's buffer lives in one GPU's memory, and no
#: accelerator in the catalog has a quarter of that (nccl-tests sweeps stop at a few GiB).
MAX_MESSAGE_BYTES = 2**40


def collective_report(cluster: Cluster, op: Op, message_bytes: float, gpus: int, *, stride: int = 1,
                      algorithm: Algorithm | None = None, calibration: Calibration | None = None,
                      concurrency: float | None = None, gpus_per_process: int = 1) -> CollectiveReport:
    """One collective on ``gpus`` consecutive GPUs (or ``stride`` apart), alone on the fabric unless
    ``concurrency`` (share of GPUs sending at once) is given. ``gpus_per_process`` > 1 is nccl-tests' ``-g N``
    launch mode: one thread launches the kernels of N GPUs one after another (training frameworks run one
    process per GPU)."""
    if gpus < 2:
        raise SpecError(f"a collective needs at least 2 GPUs, got {gpus}", field="gpus")
    if stride < 1:
        raise SpecError(f"stride must be at least 1, got {stride}", field="stride")
    if gpus * stride > cluster.num_gpus:
        raise SpecError(f"a group of {gpus} GPUs {stride} apart does not fit in the cluster's "
                        f"{cluster.num_gpus:,} GPUs", field="gpus")
    if not 0 < message_bytes <= MAX_MESSAGE_BYTES:
        raise SpecError(f"message size must be positive and at most 1 TiB ({MAX_MESSAGE_BYTES:,} bytes), got "
                        f"{message_bytes:g}", field="bytes")
    cal = calibration or default_calibration()
    topo = build_topology(cluster)
    p = place(cluster, topo, np.array([float(gpus)]), np.array([float(stride)]))
    level = int(p.level[0])
    block = topo.tiers[level - 1].block_gpus if level >= 1 else cluster.domain_gpus
    c = concurrency if concurrency is not None else min(1.0, gpus / max(block, 1))
    S = np.array([float(message_bytes)])
    alternatives = {}
    for algo in ALGORITHMS:
        try:
            t = float(collective_time(cluster, topo, cal, op, S, p, concurrency=c, algorithm=algo).time_s[0])
        except ValueError:
            continue
        if np.isfinite(t):
            alternatives[algo] = t
    if algorithm is not None and algorithm not in alternatives:
        raise SpecError(f"algorithm {algorithm!r} is not available for {op} on this group "
                        f"(available: {', '.join(alternatives) or 'none'})", field="algo")
    res = collective_time(cluster, topo, cal, op, S, p, concurrency=c, algorithm=algorithm)
    serial_launch = (max(gpus_per_process, 1) - 1) * cal.serial_launch_per_gpu_s
    time_s = float(res.time_s[0]) + serial_launch
    alternatives = {a: t + serial_launch for a, t in alternatives.items()}
    algbw = message_bytes / time_s if time_s > 0 else float("inf")
    return CollectiveReport(cluster=cluster.name, op=op, message_bytes=message_bytes, gpus=gpus, stride=stride,
                            algorithm=ALGORITHMS[int(res.algorithm[0])], time_s=time_s,
                            algbw_bytes_per_s=algbw, busbw_bytes_per_s=algbw * BUS_FACTOR[op](gpus),
                            per_domain=int(p.per_domain[0]), domains=int(p.domains[0]), level=level,
                            crosses=LEVEL_NAMES[min(level, len(LEVEL_NAMES) - 1)], alternatives=alternatives)

