"""Collective costs on a placed group: NCCL's algorithms, chosen as NCCL would, over numpy arrays.

Notation: S the buffer in bytes (nccl-tests convention: per-rank buffer for all-reduce, the whole gathered or
scattered array for all-gather / reduce-scatter, the bytes one rank sends for all-to-all, the message for
broadcast and send/recv); n members, g per scale-up domain, N = n/g domains; B_up the scale-up bandwidth a ring
reaches, B_net the per-GPU scale-out bandwidth the traffic pattern gets at its bottleneck tier; a_up and a_net
the latency of one algorithm step inside and across domains; every collective also pays a launch cost.

Algorithms (NCCL 2.18+; Jeaugey, "Massively Scale Your Deep Learning Training with NCCL 2.4", 2019; nccl-tests
doc/PERFORMANCE.md):
- ring: all-reduce 2(n-1)/n * S / B_bus + 2[(n-N) a_up + N a_net]; all-gather / reduce-scatter half of it.
  NCCL runs one ring channel per NIC, so across domains B_bus = min(B_up, g * B_net);
- tree (double binary tree between domains, chains inside): all-reduce max(k S / (g B_net), 2S / B_up) with
  k = 1 at two domains and 2 beyond (each domain is interior in one of the two trees)
  + 2 log2(N) a_net + (g-1) a_up — about 2x the ring at two domains, the ring's bandwidth at scale, and a
  logarithmic latency, which is why NCCL prefers it for small messages at scale;
- nvls (NVLink SHARP, NVSwitch gen 3+, from ``nvls_min_gpus`` GPUs): the switch reduces; all-reduce
  S / (B_link * nvls_fraction);
- hierarchical (NCCL NVLSTree, on NVLS GPUs): NVLS reduce-scatter / all-gather inside the domain and a tree of
  S/g per rail between domains, pipelined with overlap eta: max(a, b) + (1 - eta) min(a, b);
- sharp (CollNet, IB SHARP): the same with the switches reducing S/g per rail, sent and received once;
- pairwise all-to-all: (n-1)/n * S split into the local share over the scale-up links and the remote share over
  the NIC, which proceed in parallel; plus a per-peer cost;
- broadcast: pipelined ring, S / B_bus; send/recv: S / B + one step, B across domains the scale-out share of the
  pair, inside a domain the accelerator's p2p share of its link (NCCL's p2p channels: ~180 of 450 GB/s on H100).
On a mesh scale-up domain (AMD Infinity Fabric: one link to each peer) g members reach only (g-1)/(D-1) of
the GPU's scale-up bandwidth.
Protocols (NCCL src/graph/tuning.cc, its own cost model: baseLat + steps x hwLat + bytes / bandwidth): a ring or
tree runs the fastest of LL (half the bandwidth; the hardware's per-step latency, accelerator and fabric),
LL128 (120/128 of it, on NVLink paths) and Simple (all of it), LL128 and Simple paying NCCL's per-step chunk
latencies over NVLink and the network (calibration ``nccl_latency_s``): what makes a mid-size message slow, and a
long ring (a multi-rack NVL72 group) slower. NVLS, NVLSTree and CollNet run Simple only; they and the
point-to-point patterns keep a fill ramp: the bandwidth term stretched by (1 + R/S) with R the algorithm's
``collective_ramp_bytes``. NCCL runs NVLSTree only between single-node NVLink domains, not across multi-node ones
(GB200 NVL72), where ring and tree remain.
Contention: a pattern sends a fraction f_u of its traffic out of each tier-u subtree (ring: 1/m_u, the edges
that leave a block of m_u members; all-to-all: (n - m_u)/(n - 1); send/recv between ranks ``stride`` apart: the
share of a subtree's B_u GPUs whose partner lies outside it, min(1, stride / B_u), as sim.fabric routes them). With a share c of the GPUs under
a switch sending at once, a flow through uplinks oversubscribed O_u:1 (cumulative) gets B_nic / max(1, O_u c f_u),
and traffic turning around above the leaf keeps ``multipath_efficiency`` of it (ECMP collisions or adaptive
routing, a cited fabric figure). NCCL's tuner picks the algorithm its cost model says is fastest; so does this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..spec.calibration import Calibration
from ..spec.hardware import Cluster
from .placement import Placement
from .topology import Topology

Op = Literal["all_reduce", "reduce_scatter", "all_gather", "broadcast", "all_to_all", "send_recv"]
Algorithm = Literal["ring", "tree", "nvls", "hierarchical", "sharp", "pairwise", "direct"]
OPS: tuple[Op, ...] = ("all_reduce", "reduce_scatter", "all_gather", "broadcast", "all_to_all", "send_recv")
ALGORITHMS: tuple[Algorithm, ...] = ("ring", "tree", "nvls", "hierarchical", "sharp", "pairwise", "direct")
Pattern = Literal["ring", "all_to_all", "p2p"]

LL_BANDWIDTH_SHARE = 0.5  # NCCL's LL protocol: 8 bytes of data and 8 of flags per 16-byte store
# NCCL's LL protocol model (tuning.cc): a ring's LL bus bandwidth is 1/4 of Simple's for an all-reduce or across
# nodes, 1/3 otherwise, a tree's 1/3.8, and never above llMaxBw: 87.7 GB/s on one Ampere/Hopper node, 39.0 on two
# nodes, 20.4 beyond (Intel hosts)
LL_SHARE_RING_REDUCE = 1.0 / 4.0
LL_SHARE_RING = 1.0 / 3.0
LL_SHARE_TREE = 1.0 / 3.8
LL_MAX_BUS_BYTES_PER_S = (87.7e9, 39.0e9, 20.4e9)
LL_MULTI_NODE_STEP_FACTOR = 1.8  # NCCL tuning.cc: 'if (nNodes > 1 && p == NCCL_PROTO_LL) intraLat *= 1.8'
LL128_BANDWIDTH_SHARE = 120.0 / 128.0  # NCCL's LL128: 120 bytes of data and 8 of flags per 128-byte line
SIMPLE_ONLY = ("nvls", "hierarchical", "sharp")  # NCCL runs NVLS, NVLSTree and CollNet with the Simple protocol only

#: nccl-tests bus-bandwidth factor per operation (doc/PERFORMANCE.md): busbw = algbw * factor(n)
BUS_FACTOR = {
    "all_reduce": lambda n: 2.0 * (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "send_recv": lambda n: 1.0,
}


@dataclass(frozen=True)
class CollectiveTimes:
    time_s: np.ndarray
    algorithm: np.ndarray  # index into ALGORITHMS


def scale_out_bandwidth(cluster: Cluster, topo: Topology, p: Placement, pattern: Pattern,
                        concurrency: np.ndarray | float) -> np.ndarray:
    """Per-GPU scale-out bandwidth a traffic pattern of group ``p`` gets at its bottleneck, bytes/s."""
    fabric = cluster.fabric
    nic = cluster.scale_out_bandwidth_per_gpu_bytes_per_s * fabric.achievable_fraction
    n = p.size
    c = np.asarray(concurrency, dtype=np.float64)
    share = np.ones_like(n)
    oversub = topo.cumulative_oversubscription
    for u, m_u in enumerate(p.members_below[:-1], start=1):  # uplinks of tiers 1 .. T-1
        if pattern == "ring":
            f = 1.0 / m_u
        elif pattern == "all_to_all":
            f = np.where(n > 1, (n - m_u) / np.maximum(n - 1.0, 1.0), 0.0)
        else:  # a pair stride apart, every rank sending to its partner: the share of a tier-u subtree's GPUs whose
            # partner lies outside it (sim.fabric routes them: 73% of Memphis's pipeline pairs leave a 5,440-GPU pod)
            f = np.minimum(1.0, p.stride / p.fabric_gpus[u - 1])
        crosses = p.level > u
        load = np.maximum(1.0, oversub[u - 1] * c * f)
        share = np.where(crosses, np.minimum(share, 1.0 / load), share)
    multipath = np.where(p.level >= 2, fabric.multipath_efficiency, 1.0)
    return nic * share * multipath


def _latencies(cluster: Cluster, topo: Topology, p: Placement) -> tuple[float, np.ndarray]:
    """(a_up, a_net): per-step latency inside a domain, and across the fabric (2 switch hops per tier)."""
    a_up = cluster.accelerator.scale_up_latency_s
    switch = cluster.fabric.switch.latency_s if cluster.fabric.switch else 0.0
    a_net = cluster.fabric.link_latency_s + 2.0 * np.maximum(p.level - 1, 0) * switch
    return a_up, a_net


def collective_time(cluster: Cluster, topo: Topology, cal: Calibration, op: Op, S: np.ndarray, p: Placement, *,
                    concurrency: np.ndarray | float = 1.0, algorithm: Algorithm | None = None) -> CollectiveTimes:
    """Time of one collective for every candidate; the fastest available algorithm unless one is forced."""
    S = np.asarray(S, dtype=np.float64)
    n, g, N = p.size, p.per_domain, p.domains
    acc = cluster.accelerator
    link = acc.scale_up_bandwidth_bytes_per_s
    b_up: np.ndarray = np.full_like(S, link * acc.scale_up_achievable_fraction)
    if acc.scale_up_topology == "mesh":  # g members use the links to their g-1 peers out of domain-1
        b_up = np.where(g > 1, b_up * np.minimum(1.0, (g - 1) / max(cluster.domain_gpus - 1, 1)), b_up)
    a_up, a_net = _latencies(cluster, topo, p)
    inter = ~p.inside_domain
    launch = acc.collective_launch_s if acc.collective_launch_s is not None else cal.collective_launch_s
    inf = np.full_like(S, np.inf)
    b_ring = scale_out_bandwidth(cluster, topo, p, "ring", concurrency)
    bus = np.where(inter, np.where(g > 1, np.minimum(b_up, g * b_ring), b_ring), b_up)
    ring_lat = (n - N) * a_up + np.where(inter, N * a_net, 0.0)
    candidates: dict[str, np.ndarray] = {}

    ramp = cal.collective_ramp_bytes
    lat = cal.nccl_latency_s
    transport_s = cluster.fabric.link_latency_s  # the network's own per-message latency (NCCL: latencyInter)
    mnnvl = cluster.domain_gpus > cluster.gpus_per_node  # a multi-node NVLink domain (GB200 NVL72)

    def bw(seconds: np.ndarray, algo: str) -> np.ndarray:
        """A bandwidth term under NCCL's protocols: Simple fills a pipeline of chunks over channels (full bandwidth
        once S >> ramp), LL sends 8-byte flags with every 8 bytes (half the bandwidth, no fill); NCCL takes
        the faster (NCCL docs, NCCL_PROTO)."""
        simple = seconds * (1.0 + ramp.get(algo, 0.0) / np.maximum(S, 1.0))
        if algo in SIMPLE_ONLY:
            return simple
        return np.minimum(simple, seconds / LL_BANDWIDTH_SHARE)

    def protocols(t_bw: np.ndarray, algo: str, ll_latency: np.ndarray, steps_up: np.ndarray,
                  steps_net: np.ndarray, ll128: np.ndarray | bool) -> np.ndarray:
        """The fastest of NCCL's protocols for a ring or tree whose bandwidth term is ``t_bw``: LL (half the
        bandwidth, the hardware's per-step latency ``ll_latency``), LL128 (120 of 128 bytes; on NVLink paths) and
        Simple (full bandwidth). LL128 and Simple wait for whole chunks at every step: NCCL's per-step latencies
        over NVLink and the network (src/graph/tuning.cc: baseLat + steps x hwLat), relative to LL's, which make a
        long ring or chain slow for mid-size messages."""
        # LL moves its bytes at a share of the bus bandwidth; a ring's is capped at NCCL's llMaxBw for the node
        # count (the ring's bytes on the bus are t_bw x bus)
        if algo == "tree":
            ll = t_bw / LL_SHARE_TREE + ll_latency
        else:
            share = np.where(inter | (op == "all_reduce"), LL_SHARE_RING_REDUCE, LL_SHARE_RING)
            cap = np.where(~inter, LL_MAX_BUS_BYTES_PER_S[0], np.where(N <= 2, LL_MAX_BUS_BYTES_PER_S[1],
                                                                       LL_MAX_BUS_BYTES_PER_S[2]))
            ll = t_bw * np.maximum(1.0 / share, bus / cap) + ll_latency
        # NCCL adds the transport's own latency to every network step, twice for Simple (the flush)
        simple = t_bw + steps_up * lat[f"{algo}_simple_nvlink"] \
            + steps_net * (lat[f"{algo}_simple_net"] + 2.0 * transport_s) \
            + lat[f"{algo}_simple_base"] - lat[f"{algo}_ll_base"]
        ll128_t = t_bw / LL128_BANDWIDTH_SHARE + steps_up * lat[f"{algo}_ll128_nvlink"] \
            + steps_net * (lat[f"{algo}_ll128_net"] + transport_s) + lat[f"{algo}_ll128_base"] - lat[f"{algo}_ll_base"]
        return np.minimum(np.minimum(ll, simple), np.where(ll128, ll128_t, np.inf))

    nvlink_only = ~inter & (acc.scale_up_topology == "switch")  # NCCL enables LL128 on NVLink (NVSwitch) paths
    # NCCL's model stretches LL's intra-node step latency 1.8x once a ring also crosses the network
    ll_intra = np.where(inter, LL_MULTI_NODE_STEP_FACTOR, 1.0) * a_up
    if op in ("all_reduce", "reduce_scatter", "all_gather"):
        k = 2.0 if op == "all_reduce" else 1.0
        steps_net = np.where(inter, k * N, 0.0)
        steps_up = np.maximum(k * (n - 1.0) - steps_net, 0.0)
        ring_ll = (n - N) * ll_intra + np.where(inter, N * a_net, 0.0)
        candidates["ring"] = protocols(k * (n - 1) / n * S / bus, "ring", k * ring_ll, steps_up, steps_net,
                                       nvlink_only)
        if op == "all_reduce":
            # tree: chains inside the domains (reduce up and broadcast down the chain, 2S over the scale-up
            # links), a double binary tree across
            # them: a node sends and receives S per NIC rail at 2 domains (each is a root and a leaf), 2S beyond
            # (interior in one of the two trees) — ~2x the ring at two domains, the ring's bandwidth at scale.
            g_chain, n_tree = g, N
            across_tree = np.where(N <= 2, 1.0, 2.0) * S / (g * b_ring)
            chain, hops = 2.0 * (g_chain - 1.0), 2.0 * np.log2(np.maximum(n_tree, 1.0))
            candidates["tree"] = np.where(
                inter, protocols(np.maximum(across_tree, 2.0 * S / b_up), "tree", chain * a_up + hops * a_net,
                                 chain, hops, False), inf)
            nvls = acc.nvls_fraction
            has_nvls = bool(nvls) & (g >= cal.nvls_min_gpus)
            intra_nvls = bw(S / (link * nvls), "nvls") + 2 * a_up if nvls else inf
            candidates["nvls"] = np.where(~inter & has_nvls, intra_nvls, inf)
            # hierarchical (NCCL NVLSTree): NVLS reduce-scatter / all-gather inside the domain, a tree of S/g per
            # rail across; the phases pipeline, imperfectly. NCCL does not run it across multi-node NVLink
            # domains ("MNNVL: NVLS not yet supported", tuning.cc).
            eta = cal.hierarchical_overlap

            def pipelined(a: np.ndarray, b: np.ndarray) -> np.ndarray:
                return np.maximum(a, b) + (1.0 - eta) * np.minimum(a, b)

            across = bw(2.0 * (N - 1) / N * (S / g) / b_ring, "hierarchical") + 2.0 * np.log2(np.maximum(N, 2)) * a_net
            candidates["hierarchical"] = np.where(inter & has_nvls & (not mnnvl),
                                                  pipelined(intra_nvls, across) + 2 * a_up, inf)
            if cluster.fabric.in_network_reduction:
                # SHARP / CollNet: the switches reduce S/g per rail, sent and received once
                intra = np.where(has_nvls, intra_nvls,
                                 bw(2.0 * (g - 1) / g * S / b_up, "ring") + 2 * (g - 1) * a_up)
                intra = np.where(g > 1, intra, 0.0)
                across_sharp = bw((S / g) / b_ring, "sharp") + 2.0 * a_net * np.maximum(p.level, 1)
                candidates["sharp"] = np.where(inter, pipelined(intra, across_sharp) + 2 * a_up, inf)
    elif op == "all_to_all":
        b_a2a = scale_out_bandwidth(cluster, topo, p, "all_to_all", concurrency)
        sent = (n - 1) / n * S
        local = np.where(n > 1, (g - 1) / np.maximum(n - 1, 1), 0.0)
        t = np.maximum(sent * local / b_up, np.where(inter, sent * (1 - local) / b_a2a, 0.0))
        candidates["pairwise"] = bw(t, "pairwise") + np.where(inter, a_net, a_up) + (n - 1) * cal.a2a_per_peer_s
    elif op == "broadcast":
        candidates["ring"] = bw(S / bus, "ring") + ring_lat
    elif op == "send_recv":
        b_p2p = scale_out_bandwidth(cluster, topo, p, "p2p", concurrency)
        # inside a domain NCCL's p2p runs on a few SM-driven channels: a share of the link, not the ring's rate
        p2p_up = np.minimum(b_up, link * acc.p2p_achievable_fraction)
        candidates["direct"] = np.where(inter, bw(S / b_p2p, "direct") + a_net, bw(S / p2p_up, "direct") + a_up)

    if algorithm is not None:
        if algorithm not in candidates:
            raise ValueError(f"algorithm {algorithm!r} does not implement {op}")
        chosen = candidates[algorithm]
        best = np.full(S.shape, ALGORITHMS.index(algorithm))
    else:
        names = list(candidates)
        stack = np.stack([np.broadcast_to(candidates[a], S.shape) for a in names])
        idx = np.argmin(stack, axis=0)
        chosen = np.take_along_axis(stack, idx[None], axis=0)[0]
        best = np.array([ALGORITHMS.index(a) for a in names])[idx]
    single = n <= 1
    return CollectiveTimes(time_s=np.where(single, 0.0, chosen + launch), algorithm=best)
