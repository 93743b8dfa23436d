"""A simulated iteration as a Chrome / Perfetto trace (JSON trace-event format, opens in ui.perfetto.dev): one
process per simulated replica and stage, one thread per stream, an "X" (complete) event per task, named as the
graph names it ("F mb3 chunk1 stage2"). With the fabric's contention on (sim/contended), a "fabric" process with a
thread per axis whose flows cross the fabric, named by its most loaded link class and factor ("dp: tier-1 up-links,
2.00x"), shows when that link class is busy: the axis's collectives of the busiest stage (every group of the axis
runs them at once). With the step's power (search.sim_power), a "cluster" process holds a counter track, "cluster
power (MW)": the cluster's IT draw over the step, a "C" event wherever it changes (ui.perfetto.dev draws it as a
stepped line). Written to a temporary file beside the target, then renamed: a trace that exists is complete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..files import atomic_write
from .engine import Task
from .graph import STREAMS, Graph

POWER_TRACK = "cluster power (MW)"


def check_trace_target(path: str) -> None:
    """Refuse, before any work, a trace path whose directory is missing or which names a directory."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{path} is a directory; expected a file name for the trace", field="--trace")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"directory {parent} does not exist", field="--trace")


def _us(t_s: float) -> float:
    """A time in the trace's unit: microseconds, to the nanosecond."""
    return round(t_s * 1e6, 3)


def _process(pid: int, name: str) -> list[dict[str, Any]]:
    """The metadata naming process ``pid`` and placing it in the order of its id."""
    return [{"ph": "M", "name": "process_name", "pid": pid, "args": {"name": name}},
            {"ph": "M", "name": "process_sort_index", "pid": pid, "args": {"sort_index": pid}}]


def _complete(t: Task, kind: str, pid: int, tid: int) -> dict[str, Any]:
    """The complete ("X") event of task ``t`` on thread ``tid`` of process ``pid``."""
    return {"ph": "X", "name": t.name, "cat": kind, "pid": pid, "tid": tid, "ts": _us(t.start_s),
            "dur": _us(t.duration_s)}


def trace_events(g: Graph) -> list[dict[str, Any]]:
    """The trace's events: process and thread names, then one complete event per task of non-zero length."""
    pids: dict[tuple[int, int], int] = {}
    events: list[dict[str, Any]] = []
    for rep, st, name in g.streams:
        if (rep, st) not in pids:
            pids[(rep, st)] = pid = len(pids) + 1
            label = "typical replica" if rep < 0 else f"replica {rep}"
            events += _process(pid, f"{label} stage {st}")
        events.append({"ph": "M", "name": "thread_name", "pid": pids[(rep, st)], "tid": STREAMS.index(name) + 1,
                       "args": {"name": name}})
    for t, kind in zip(g.tasks, g.kinds, strict=True):
        if t.duration_s <= 0.0:
            continue
        rep, st, name = g.streams[t.stream]
        events.append(_complete(t, kind, pids[(rep, st)], STREAMS.index(name) + 1))
    return events


def link_events(g: Graph, links: dict[str, str], stage: int) -> list[dict[str, Any]]:
    """A "fabric" process after the GPUs' with a thread per axis of ``links`` (axis -> track name), holding the
    axis's collectives on ``stage`` of the first simulated replica."""
    if not links:
        return []
    first = g.streams[0][0]
    pid = len({(rep, st) for rep, st, _ in g.streams}) + 1
    events = _process(pid, "fabric")
    tids = {axis: i + 1 for i, axis in enumerate(links)}
    for axis, name in links.items():
        events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tids[axis], "args": {"name": name}})
    for t, kind in zip(g.tasks, g.kinds, strict=True):
        rep, st, _ = g.streams[t.stream]
        if kind in tids and rep == first and st == stage and t.duration_s > 0.0:
            events.append(_complete(t, kind, pid, tids[kind]))
    return events


def power_events(edges_s: np.ndarray, power_w: np.ndarray, pid: int) -> list[dict[str, Any]]:
    """A "cluster" process ``pid`` with the POWER_TRACK counter: ``power_w[i]`` (W) from ``edges_s[i]`` on, shown
    in MW (0.001 MW), a point where the shown value changes and one at the step's end; timestamps in the trace's
    microseconds, strictly increasing (a change within the same rounded microsecond keeps the later value)."""
    events = _process(pid, "cluster")
    points: list[tuple[float, float]] = []
    for t_s, w in zip(edges_s[:-1].tolist(), power_w.tolist(), strict=True):
        ts, mw = _us(t_s), round(w / 1e6, 3)
        if points and points[-1][0] == ts:
            points.pop()
        if not points or points[-1][1] != mw:
            points.append((ts, mw))
    end = _us(float(edges_s[-1]))
    if points and end > points[-1][0]:
        points.append((end, points[-1][1]))
    events += [{"ph": "C", "name": POWER_TRACK, "pid": pid, "ts": ts, "args": {"MW": mw}} for ts, mw in points]
    return events


def write_trace(path: str, g: Graph, links: dict[str, str] | None = None, stage: int = 0,
                power: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """The trace of ``g`` to ``path``; ``links``: the fabric's tracks (``link_events``) for ``stage``; ``power``:
    the cluster's draw (edges in s, W from each: SimResult.power_trace) as a counter track."""
    target = Path(path)
    events = trace_events(g) + link_events(g, links or {}, stage)
    if power is not None:
        pid = len({(rep, st) for rep, st, _ in g.streams}) + (2 if links else 1)
        events += power_events(power[0], power[1], pid)
    body = json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}, separators=(",", ":"))
    atomic_write(target, body)
