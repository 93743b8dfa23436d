"""How much slower one step of each axis's collective runs when every group of the axis runs it at once.

For an axis (tp, cp, ep, pp, dp) the groups are laid out as the step model lays them out (perf.report's
``group_placement``: size and rank stride from the candidate's order; group i holds the ranks
``o * size * stride + r + k * stride``, k < size, for r < stride). One step of the axis's collective is:

- tp, dp (ring all-gather, reduce-scatter, all-reduce): the neighbour exchange between scale-up domains. As
  network/cost.py's ring (NCCL runs one ring channel per NIC), a group with g members per domain runs g channels;
  in channel c the c-th member of each domain sends to the c-th member of the next domain, cyclically;
- cp (ring attention, a send/recv to the next rank, as perf/step.py times it): every member sends its K and V
  block to the next member, cyclically;
- pp (send/recv): every stage sends to the next one (one direction; the gradients going back use the reverse
  links and are left out);
- ep (all-to-all): every member sends to every member in another domain.

Flows inside a domain use no fabric link and are dropped. All flows of a step have the same size, so the factor
does not depend on it. The factor is T_all / T_alone: T_all the time the last flow of the whole cluster ends when
all groups send at once under max-min fair sharing (sim/flows), T_alone the same for each group on a fabric of its
own with adaptive routing (its flows spread evenly), the slowest group's. With ECMP, T_all also holds the
collisions of a group's flows with each other, and with links named slow (``slow``, sim/slowlink: ``--slow-link``)
the flows crossing them at the reduced rate (T_alone stays the healthy fabric's: the factor is what the slow link
costs). A factor is 1.0 exactly when no link carries two groups' flows, none is slowed and the routing is adaptive
(checked before anything is timed). Equal flows starting together end, under max-min
sharing, when the most loaded link has carried its load (proof at ``_step_s``), so both times are a closed form
over every flow of the cluster; ``simulate=True`` runs the event-driven model instead, and the tests check that
the two agree.

Exact: every flow of every group of the cluster is routed (no sampling and no symmetry shortcut is needed: on
Memphis's 100,000 GPUs an axis is 10^5 ring or pp flows or 6 x 10^5 all-to-all pairs, the five axes under a
second; they are routed in chunks of whole groups, so memory stays bounded at a million GPUs). The
symmetry used is the adaptive fabric's: perfect spraying loads every port of a bundle alike (sim/fabric). Assumed:
the fluid flow model (no packet loss, congestion-control dynamics or incast buffers), groups stepping in lock-step,
and the fabric of sim/fabric.py. network/cost.py's analytic times already charge an oversubscribed tier for the
traffic leaving a subtree (all groups at once, spread evenly) and a fabric's ``multipath_efficiency``: a consumer
multiplying them by these factors would count the spread-out share of an oversubscribed tier twice:
``analytic_factors`` is that share per axis and ``excess_factors`` the factors with it divided out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..network.cost import Pattern, scale_out_bandwidth
from ..network.placement import place
from ..network.topology import build_topology
from ..perf.report import group_placement
from ..spec.scenario import Scenario
from .fabric import KIND_SHIFT, FatTree, Routes, Routing, check_routing, compact, link_class, route
from .flows import FlowSet, run_flows
from .slowlink import SlowLink, slowed_capacity

AXES = ("tp", "cp", "ep", "pp", "dp")
CHUNK_FLOWS = 2_000_000  # flows routed at once by the closed form (memory: ~1 kB per flow at most)
ANALYTIC_PATTERNS: dict[str, Pattern] = {"tp": "ring", "cp": "p2p", "dp": "ring", "pp": "p2p", "ep": "all_to_all"}
PATTERNS = {"tp": "ring", "cp": "ring_p2p", "dp": "ring", "pp": "p2p", "ep": "all_to_all"}


@dataclass(frozen=True)
class AxisContention:
    """One axis's step with every group at once vs alone: flows, links, events of the run (0: closed form), times
    in units of a flow's size over a port's rate (the factor is their ratio)."""

    axis: str
    groups: int
    flows: int
    links: int
    events: int
    all_s: float
    alone_s: float
    bottleneck: str = ""  # the class of the most loaded link (sim/fabric.link_class; "": no flow crosses a link)

    @property
    def factor(self) -> float:
        return max(1.0, self.all_s / self.alone_s) if self.alone_s > 0 else 1.0


class ContentionSummary(BaseModel):
    """The fabric's contention as a simulated step saw it (sim/contended): the routing and ECMP seed, the links
    named slow, per axis its most loaded link class, the flow factor (``contention_factors``), what the analytic times already charge
    (``analytic_factors``) and what was applied (their ratio, ``excess_factors``), and the simulated step without
    any of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    routing: str
    seed: int
    slow_links: list[str]
    bottlenecks: dict[str, str]  # per axis whose flows cross the fabric, its most loaded link class
    flow_factors: dict[str, float]
    analytic_factors: dict[str, float]
    applied_factors: dict[str, float]
    uncontended_step_time_s: float

    def link_tracks(self) -> dict[str, str]:
        """Per axis whose flows cross the fabric, a trace track's name: its most loaded link class and factor."""
        return {a: f"{a}: {link}, {self.flow_factors[a]:.2f}x" for a, link in self.bottlenecks.items()}


def group_members(gpus: int, size: int, stride: int) -> np.ndarray:
    """(groups, size) ranks of every complete group of ``size`` ranks ``stride`` apart."""
    span = size * stride
    outer = gpus // span
    base = (np.arange(outer, dtype=np.int64)[:, None] * span + np.arange(stride, dtype=np.int64)[None, :]).ravel()
    return base[:, None] + np.arange(size, dtype=np.int64)[None, :] * stride


def pattern_flows(members: np.ndarray, pattern: str, domain_gpus: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, group) of one step of a pattern over every group (rows of ``members``)."""
    groups, n = members.shape
    gid = np.broadcast_to(np.arange(groups, dtype=np.int64)[:, None], members.shape)
    if pattern == "p2p":
        return members[:, :-1].ravel(), members[:, 1:].ravel(), gid[:, :-1].ravel()
    if pattern == "ring_p2p":
        return members.ravel(), np.roll(members, -1, axis=1).ravel(), gid.ravel()
    if pattern == "all_to_all":
        src = np.repeat(members, n, axis=1).ravel()
        dst = np.tile(members, (1, n)).ravel()
        g = np.repeat(gid, n, axis=1).ravel()
        keep = src != dst
        return src[keep], dst[keep], g[keep]
    dom = members // domain_gpus
    per = int(np.bincount(dom[0] - dom[0, 0]).max())  # members per domain
    if n % per or not _tiles(dom, per):
        per = 1  # uneven domains: one ring in rank order
    nd = n // per
    if nd <= 1:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    m = members.reshape(groups, nd, per)  # channel c: member c of each domain to member c of the next
    src = m.ravel()
    dst = np.roll(m, -1, axis=1).ravel()
    return src, dst, np.broadcast_to(gid[:, :1, None], m.shape).ravel()


def _distinct(x: np.ndarray) -> np.ndarray:
    """The distinct values of an int array, ascending (a sort: faster than a hash at 10^6 values)."""
    x = np.sort(x)
    return x[np.concatenate(([True], x[1:] != x[:-1]))] if x.size else x


def _tiles(dom: np.ndarray, per: int) -> bool:
    """Whether every run of ``per`` consecutive members sits in one domain, each run in its own."""
    d = dom.reshape(dom.shape[0], -1, per)
    return bool(np.all(d == d[:, :, :1]) and np.all(np.diff(d[:, :, 0], axis=1) != 0))


def _step_s(r: Routes, port_bytes_per_s: float, private: np.ndarray | None = None, simulate: bool = False
            ) -> tuple[float, int, int]:
    """(last finish of the routed unit flows, in units of a flow's size over a port's rate; events; links).
    ``private``: a group id per flow, each group on links of its own.

    Equal flows starting together: the max-min run ends at the largest load (flows / capacity) on any link, a
    closed form. Proof: progressive filling's first level, cap_l / n_l at the most loaded link l*, is its lowest,
    so every flow runs at >= 1 / max load throughout (loads only fall as flows end) and ends by then; the flows
    of l* are frozen at that level in the first round of every re-solve until they end, together, at that time.
    ``simulate`` runs sim/flows.run_flows instead (the same figure; tests and the benchmark check it)."""
    ids, cap = compact(r.key, r.capacity)
    if private is not None:  # (group, link) pairs as links: each group on a copy of the fabric
        ids, cap = compact(private[r.flow] * np.int64(cap.size) + ids, cap[ids])
    cap = cap / port_bytes_per_s
    if not simulate:
        return float((np.bincount(ids, minlength=cap.size) / cap).max()), 0, int(cap.size)
    run = run_flows(FlowSet(flow=r.flow, link=ids, capacity=cap, flows=r.flows), np.ones(r.flows))
    return run.makespan_s, run.events, int(cap.size)


def _loads(keys: np.ndarray, cap: np.ndarray, weight: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct keys, flows or ``weight`` summed per key, capacity per key)."""
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    first = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1]))) if k.size else np.zeros(0, dtype=np.int64)
    w = np.ones(k.size) if weight is None else weight[order]
    return k[first], np.add.reduceat(w, first) if k.size else w, cap[order][first]


def _slowed(fab: FatTree, r: Routes, slow: tuple[SlowLink, ...], routing: Routing) -> Routes:
    """``r`` with the slowed links at their share of the rate."""
    if not slow:
        return r
    return Routes(flow=r.flow, key=r.key, capacity=slowed_capacity(fab, r.key, r.capacity, slow, routing),
                  flows=r.flows)


def _closed_form(fab: FatTree, src: np.ndarray, dst: np.ndarray, gid: np.ndarray, routing: Routing, seed: int,
                 slow: tuple[SlowLink, ...] = ()) -> tuple[int, int, bool, bool, float, float, str]:
    """(flows crossing the fabric, links, shared by two groups or slowed, a flow on a switch port, T_all,
    T_alone, the class of the most loaded link) by the closed form, over chunks of whole groups (``gid`` ascending) so that memory stays bounded: per
    chunk, flows per link and groups per link; then summed over chunks (a group is in one chunk only). T_all runs
    on the fabric with the ``slow`` links slowed, T_alone on the healthy one."""
    cuts = np.searchsorted(gid, np.arange(0, int(gid[-1]) + 1, max(1, int(CHUNK_FLOWS * (gid[-1] + 1) / gid.size))))
    bounds = np.concatenate((cuts, [gid.size]))
    keys, flows, groups, caps = [], [], [], []
    crossing, switched, slowed, alone = 0, False, False, 0.0
    port = fab.port_bytes_per_s
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        a, b, g = src[lo:hi], dst[lo:hi], gid[lo:hi]
        healthy = route(fab, a, b, routing=routing, seed=seed)
        r = _slowed(fab, healthy, slow, routing)
        slowed |= bool(np.any(r.capacity < healthy.capacity))
        crossing += _distinct(r.flow).size
        switched |= bool(np.any(r.key >= np.int64(2) << np.int64(KIND_SHIFT)))
        k, n, c = _loads(r.key, r.capacity)
        pair_ids, _ = compact(r.key, r.capacity)
        pairs = _distinct(g[r.flow] * np.int64(k.size) + pair_ids)  # (group, link) pairs in use
        keys.append(k)
        flows.append(n)
        caps.append(c)
        groups.append(np.bincount(pairs % k.size, minlength=k.size).astype(np.float64))
        spread = healthy if routing == "adaptive" else route(fab, a, b, routing="adaptive")
        ids, cap = compact(spread.key, spread.capacity)
        _, n_alone, c_alone = _loads(g[spread.flow] * np.int64(cap.size) + ids, cap[ids])
        alone = max(alone, float((n_alone * port / c_alone).max()) if n_alone.size else 0.0)
    k, n, c = _loads(np.concatenate(keys), np.concatenate(caps), np.concatenate(flows))
    _, per_link_groups, _ = _loads(np.concatenate(keys), np.concatenate(caps), np.concatenate(groups))
    load = n * port / c
    all_s = float(load.max()) if n.size else 0.0
    worst = link_class(int(k[int(np.argmax(load))] >> np.int64(KIND_SHIFT))) if n.size else ""
    return crossing, int(k.size), bool(np.any(per_link_groups > 1)) or slowed, switched, all_s, alone, worst


def axis_contention(s: Scenario, axis: str, size: int, stride: int, *, routing: Routing = "adaptive",
                    seed: int = 0, simulate: bool = False, slow: tuple[SlowLink, ...] = ()) -> AxisContention:
    """One axis's step, all groups at once (with the ``slow`` links slowed) vs each alone on the healthy
    fabric, on the scenario's fabric (``simulate``: by the event-driven run rather than its closed form)."""
    cluster = s.cluster
    fab = FatTree.of(cluster, build_topology(cluster))
    members = group_members(fab.gpus, size, stride)
    if members.size == 0:
        raise ValueError(f"{axis}: a group of {size} ranks {stride} apart does not fit in {fab.gpus} GPUs")
    src, dst, gid = pattern_flows(members, PATTERNS[axis], cluster.domain_gpus)
    groups = members.shape[0]
    if src.size == 0:
        return AxisContention(axis, groups, 0, 0, 0, 1.0, 1.0)
    crossing, links, shared, switched, all_s, alone_s, worst = _closed_form(fab, src, dst, gid, routing, seed, slow)
    if crossing == 0 or (not shared and (routing == "adaptive" or not switched)):  # each group as if alone
        return AxisContention(axis, groups, crossing, links, 0, 1.0, 1.0, worst)
    if not simulate:
        return AxisContention(axis, groups, crossing, links, 0, all_s, alone_s, worst)
    port = fab.port_bytes_per_s
    healthy = route(fab, src, dst, routing=routing, seed=seed)
    spread = healthy if routing == "adaptive" else route(fab, src, dst, routing="adaptive")
    alone_s, _, _ = _step_s(spread, port, private=gid, simulate=True)
    all_s, events, links = _step_s(_slowed(fab, healthy, slow, routing), port, simulate=True)
    return AxisContention(axis, groups, crossing, links, events, all_s, alone_s, worst)


def contention_factors(s: Scenario, parallelism: dict[str, Any], *, routing: Routing = "adaptive",
                       seed: int = 0, slow: tuple[SlowLink, ...] = ()) -> dict[str, float]:
    """For each axis, the time of one step of its collective with every group of the cluster at once (on the
    fabric with the ``slow`` links slowed) over the time of a group alone on the healthy fabric (>= 1.0);
    ``parallelism`` is a StepReport's (tp, pp, dp, cp, ep, etp, order, ...)."""
    return {a.axis: a.factor for a in contention_report(s, parallelism, routing=routing, seed=seed, slow=slow)}


def analytic_factors(s: Scenario, parallelism: dict[str, Any]) -> dict[str, float]:
    """For each axis, the slowdown network/cost.py already charges its scale-out traffic for sharing oversubscribed
    tiers (1 / the share ``scale_out_bandwidth`` leaves it, at the step model's concurrency 1, without the fabric's
    ``multipath_efficiency``), on the groups perf/step.py times: tp and dp rings, cp and pp pairs, ep all-to-all."""
    cluster = s.cluster
    topo = build_topology(cluster)
    nic = cluster.scale_out_bandwidth_per_gpu_bytes_per_s * cluster.fabric.achievable_fraction
    groups = group_placement(s, parallelism)
    out = {}
    for axis in AXES:
        size, stride = int(groups[axis]["size"]), int(groups[axis]["stride"])
        pattern = ANALYTIC_PATTERNS[axis]
        n = min(size, 2) if pattern == "p2p" else size
        p = place(cluster, topo, np.array([float(n)]), np.array([float(stride)]))
        if n <= 1 or int(p.level[0]) == 0:
            out[axis] = 1.0
            continue
        multipath = cluster.fabric.multipath_efficiency if int(p.level[0]) >= 2 else 1.0
        bw = float(scale_out_bandwidth(cluster, topo, p, pattern, 1.0)[0])
        out[axis] = nic * multipath / bw
    return out


def excess_factors(s: Scenario, parallelism: dict[str, Any], *, routing: Routing = "adaptive", seed: int = 0,
                   slow: tuple[SlowLink, ...] = ()) -> dict[str, float]:
    """``contention_factors`` over ``analytic_factors``: what to multiply the analytic model's times by without
    charging an oversubscribed tier twice. Below 1.0 where the analytic model charges more than the flows see (its
    send/recv once assumed every pair leaves a subtree: Memphis's pp pairs at a [1, 2] core, 1.98x charged where
    the flows see 1.45x; network/cost.py now charges the 1.45x, so the excess there is 1.0)."""
    return divide_out(contention_factors(s, parallelism, routing=routing, seed=seed, slow=slow),
                      analytic_factors(s, parallelism))


def divide_out(flow: dict[str, float], analytic: dict[str, float]) -> dict[str, float]:
    """Flow factors with what the analytic model already charges divided out, per axis."""
    return {a: flow[a] / analytic[a] for a in AXES}


def contention_report(s: Scenario, parallelism: dict[str, Any], *, routing: Routing = "adaptive",
                      seed: int = 0, slow: tuple[SlowLink, ...] = ()) -> list[AxisContention]:
    """``contention_factors`` with the flows, links and events behind each factor."""
    check_routing(routing)
    groups = group_placement(s, parallelism)
    out = []
    for axis in AXES:
        size, stride = int(groups[axis]["size"]), int(groups[axis]["stride"])
        if size <= 1:
            out.append(AxisContention(axis, s.cluster.num_gpus, 0, 0, 0, 1.0, 1.0))
            continue
        out.append(axis_contention(s, axis, size, stride, routing=routing, seed=seed, slow=slow))
    return out
