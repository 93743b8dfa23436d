"""Flows sharing links max-min fairly: progressive filling, and an event-driven run of flows of given sizes.

A flow is a path of link ids; every link has a capacity (bytes/s). The max-min fair allocation (Bertsekas &
Gallager, *Data Networks*, 2nd ed. 1992, ch. 6, max-min flow control) is the one in which no flow's rate can grow without
lowering the rate of a flow that is no faster. Progressive filling (water-filling, ibid.) computes it: raise every
unfrozen flow's rate together; when a link saturates, freeze the flows crossing it at the level reached; repeat with
the residual capacities until every flow is frozen. Here each round jumps straight to the next saturation: a link
with residual capacity c and k unfrozen flows saturates at level c / k, the smallest such level over the links is
reached first, and all links reaching it (to a relative 1e-12) saturate together.

Everything is vectorised over an edge list (one entry per flow and link it crosses): a round is a few numpy passes
over the edges, and there are as many rounds as distinct bottleneck levels (one on a symmetric fat tree, a few
dozen under ECMP's collisions), so 100,000 flows on Memphis's fabric solve in under a second.

``run_flows`` is the fluid event-driven model of flows of given sizes (the flow-level model of SimGrid; Velho et
al., "On the validity of flow-level TCP network models for grid and cloud simulations", ACM TOMACS 2013): rates are
recomputed whenever a flow starts or ends, and every flow's completion time comes out. Only the component of flows
linked through shared links to one that starts or ends is re-solved (the others' rates cannot change). Flows
finishing within a relative 1e-9 of each other end in the same event, so a symmetric pattern takes a few events,
not one per flow. Deterministic: the same inputs give the same outputs bit for bit (no random
part, no order-dependent container).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

SATURATION_RTOL = 1e-12  # links whose fill level is within this of the lowest one saturate in the same round
COMPLETION_RTOL = 1e-9  # flows finishing within this relative time of the next completion end in the same event


@dataclass(frozen=True)
class FlowSet:
    """Flows as an edge list: edge e is flow ``flow[e]`` crossing link ``link[e]``; ``capacity[l]`` in bytes/s.

    A flow crosses a link at most once. A flow with no edge is unconstrained (rate ``inf``)."""

    flow: np.ndarray  # int64, one per edge
    link: np.ndarray  # int64, one per edge, 0 .. links-1
    capacity: np.ndarray  # float64, one per link
    flows: int

    @classmethod
    def from_paths(cls, paths: list[list[int]], capacity: list[float] | np.ndarray) -> FlowSet:
        """From explicit paths (lists of link ids): for tests and small cases."""
        flow = np.array([f for f, p in enumerate(paths) for _ in p], dtype=np.int64)
        link = np.array([lk for p in paths for lk in p], dtype=np.int64)
        return cls(flow=flow, link=link, capacity=np.asarray(capacity, dtype=np.float64), flows=len(paths))

    @property
    def links(self) -> int:
        return int(self.capacity.size)


def max_min_rates(fs: FlowSet, active: np.ndarray | None = None) -> np.ndarray:
    """The max-min fair rate of every flow (bytes/s) by progressive filling; inactive flows get 0."""
    rate = np.full(fs.flows, np.inf)
    if active is None:
        rate[:] = _fill(fs.flow, fs.link, fs.capacity, fs.flows)
        return rate
    rate[~active] = 0.0
    keep = active[fs.flow]
    local = np.cumsum(active) - 1  # flow -> index among the active ones
    rate[active] = _fill(local[fs.flow[keep]], fs.link[keep], fs.capacity, int(active.sum()))
    return rate


def _fill(e_flow: np.ndarray, e_link: np.ndarray, capacity: np.ndarray, k: int) -> np.ndarray:
    """Progressive filling of flows 0..k-1 over the edges given (links by global id). A link only one of these
    flows crosses is that flow's own cap and is folded into a per-flow cap first (the same allocation, fewer
    links to scan each round)."""
    used, e_link = np.unique(e_link, return_inverse=True)
    e_link = e_link.ravel()
    count = np.bincount(e_link, minlength=used.size)
    alone = count[e_link] == 1
    cap = np.full(k, np.inf)
    np.minimum.at(cap, e_flow[alone], capacity[used[e_link[alone]]])
    e_flow, e_link = e_flow[~alone], e_link[~alone]
    residual = capacity[used].astype(np.float64)
    count = np.where(count == 1, 0, count).astype(np.float64)
    out = np.full(k, np.inf)
    unfrozen = np.ones(k, dtype=bool)
    while unfrozen.any():
        share = np.divide(residual, count, out=np.full(used.size, np.inf), where=count > 0)
        level = min(float(share.min()) if share.size else np.inf, float(cap[unfrozen].min()))
        if level == np.inf:  # the flows left cross no shared link and have no cap
            break
        top = level * (1.0 + SATURATION_RTOL)
        saturated = share <= top
        newly = np.zeros(k, dtype=bool)
        newly[e_flow[saturated[e_link]]] = True
        newly |= cap <= top
        newly &= unfrozen
        out[newly] = level
        unfrozen &= ~newly
        gone = newly[e_flow]
        dec = np.bincount(e_link[gone], minlength=used.size)
        residual -= level * dec
        count -= dec
        residual[saturated] = 0.0
        np.maximum(residual, 0.0, out=residual)
        e_flow, e_link = e_flow[~gone], e_link[~gone]
    return out


def components(fs: FlowSet) -> np.ndarray:
    """A label per flow: flows linked through shared links, transitively. Max-min rates of one component do not
    depend on any other's, so a component is re-solved only when one of its flows starts or ends."""
    n = fs.flows + fs.links
    graph = coo_matrix((np.ones(fs.flow.size), (fs.flow, fs.flows + fs.link)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    return np.asarray(label[:fs.flows], dtype=np.int64)


def _ranges(ptr: np.ndarray, which: np.ndarray) -> np.ndarray:
    """The concatenated index ranges ptr[c] .. ptr[c+1] of the components ``which``."""
    lo, n = ptr[which], ptr[which + 1] - ptr[which]
    out: np.ndarray = np.repeat(lo - np.concatenate(([0], np.cumsum(n)[:-1])), n) + np.arange(int(n.sum()))
    return out


@dataclass(frozen=True)
class FlowRun:
    """The outcome of ``run_flows``: every flow's finish time (s) and how many events (flows starting or ending
    together) it took."""

    finish_s: np.ndarray
    events: int

    @property
    def makespan_s(self) -> float:
        return float(self.finish_s.max()) if self.finish_s.size else 0.0


def run_flows(fs: FlowSet, size_bytes: np.ndarray, start_s: np.ndarray | None = None) -> FlowRun:
    """Event-driven fluid run: each flow starts at ``start_s`` (default 0) with ``size_bytes`` to send; when a
    flow starts or ends, the max-min rates of its component are recomputed (the others' cannot change). A flow of
    size 0 finishes when it starts."""
    size = np.asarray(size_bytes, dtype=np.float64)
    start = np.zeros(fs.flows) if start_s is None else np.asarray(start_s, dtype=np.float64)
    if size.shape != (fs.flows,) or start.shape != (fs.flows,):
        raise ValueError(f"size_bytes and start_s need one value per flow ({fs.flows})")
    if (fs.capacity <= 0.0).any():
        raise ValueError("every link needs a positive capacity")
    comp = components(fs)
    n_comp = int(comp.max()) + 1 if comp.size else 0
    e_order = np.argsort(comp[fs.flow], kind="stable")  # edges and flows grouped by component
    e_ptr = np.searchsorted(comp[fs.flow][e_order], np.arange(n_comp + 1))
    f_order = np.argsort(comp, kind="stable")
    f_ptr = np.searchsorted(comp[f_order], np.arange(n_comp + 1))
    remaining = size.copy()
    done = size <= 0.0
    finish = np.where(done, start, np.nan)
    rate = np.zeros(fs.flows)
    eta = np.full(fs.flows, np.inf)  # when each running flow ends at its current rate
    since = np.zeros(fs.flows)  # when its remaining bytes were last brought up to date
    local = np.full(fs.flows, -1, dtype=np.int64)
    stale = np.zeros(n_comp, dtype=bool)
    starts = np.unique(start[~done])  # start times, ascending
    t, events, nxt = 0.0, 0, 0
    while True:
        if nxt < starts.size and starts[nxt] <= t:  # flows starting now
            stale[comp[(start == starts[nxt]) & ~done]] = True
            nxt += 1
            continue
        which = np.flatnonzero(stale)
        if which.size:
            stale[which] = False
            f = f_order[_ranges(f_ptr, which)]
            f = f[(start[f] <= t) & ~done[f]]
            remaining[f] -= rate[f] * (t - since[f])
            since[f] = t
            local[f] = np.arange(f.size)
            e = e_order[_ranges(e_ptr, which)]
            e = e[local[fs.flow[e]] >= 0]
            r = _fill(local[fs.flow[e]], fs.link[e], fs.capacity, f.size)
            local[f] = -1
            rate[f] = np.where(np.isinf(r), 0.0, r)
            eta[f] = np.where(np.isinf(r), t, t + remaining[f] / np.where(np.isinf(r), 1.0, r))
        end = float(eta.min())
        later = float(starts[nxt]) if nxt < starts.size else np.inf
        if end == np.inf and later == np.inf:
            break
        events += 1
        if later < end:
            t = later
            continue
        ended = np.flatnonzero(eta - t <= (end - t) * (1.0 + COMPLETION_RTOL))
        t = end
        finish[ended], done[ended], rate[ended], eta[ended] = t, True, 0.0, np.inf
        remaining[ended] = 0.0
        stale[comp[ended]] = True
    return FlowRun(finish_s=finish, events=events)
