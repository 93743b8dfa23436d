"""A simulated iteration as a Chrome / Perfetto trace (JSON trace-event format, opens in ui.perfetto.dev): one
process per simulated replica and stage, one thread per stream, an "X" (complete) event per task, named as the
graph names it ("F mb3 chunk1 stage2"). With the fabric's contention on (sim/contended), a "fabric" process with a
thread per axis whose flows cross the fabric, named by its most loaded link class and factor ("dp: tier-1 up-links,
2.00x"), shows when that link class is busy: the axis's collectives of the busiest stage (every group of the axis
runs them at once). Written to a temporary file beside the target, then renamed: a trace that exists is
complete."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import InputError
from .graph import STREAMS, Graph


def check_trace_target(path: str) -> None:
    """Refuse, before any work, a trace path whose directory is missing or which names a directory."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{path} is a directory; expected a file name for the trace", field="--trace")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"directory {parent} does not exist", field="--trace")


def trace_events(g: Graph) -> list[dict[str, Any]]:
    """The trace's events: process and thread names, then one complete event per task of non-zero length."""
    pids: dict[tuple[int, int], int] = {}
    events: list[dict[str, Any]] = []
    for rep, st, name in g.streams:
        if (rep, st) not in pids:
            pids[(rep, st)] = pid = len(pids) + 1
            label = "typical replica" if rep < 0 else f"replica {rep}"
            events.append({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": f"{label} stage {st}"}})
            events.append({"ph": "M", "name": "process_sort_index", "pid": pid, "args": {"sort_index": pid}})
        events.append({"ph": "M", "name": "thread_name", "pid": pids[(rep, st)], "tid": STREAMS.index(name) + 1,
                       "args": {"name": name}})
    for t, kind in zip(g.tasks, g.kinds, strict=True):
        if t.duration_s <= 0.0:
            continue
        rep, st, name = g.streams[t.stream]
        events.append({"ph": "X", "name": t.name, "cat": kind, "pid": pids[(rep, st)],
                       "tid": STREAMS.index(name) + 1, "ts": round(t.start_s * 1e6, 3),
                       "dur": round(t.duration_s * 1e6, 3)})
    return events


def link_events(g: Graph, links: dict[str, str], stage: int) -> list[dict[str, Any]]:
    """A "fabric" process after the GPUs' with a thread per axis of ``links`` (axis -> track name), holding the
    axis's collectives on ``stage`` of the first simulated replica."""
    if not links:
        return []
    first = g.streams[0][0]
    pid = len({(rep, st) for rep, st, _ in g.streams}) + 1
    events: list[dict[str, Any]] = [{"ph": "M", "name": "process_name", "pid": pid, "args": {"name": "fabric"}},
                                    {"ph": "M", "name": "process_sort_index", "pid": pid, "args": {"sort_index": pid}}]
    tids = {axis: i + 1 for i, axis in enumerate(links)}
    for axis, name in links.items():
        events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tids[axis], "args": {"name": name}})
    for t, kind in zip(g.tasks, g.kinds, strict=True):
        rep, st, _ = g.streams[t.stream]
        if kind in tids and rep == first and st == stage and t.duration_s > 0.0:
            events.append({"ph": "X", "name": t.name, "cat": kind, "pid": pid, "tid": tids[kind],
                           "ts": round(t.start_s * 1e6, 3), "dur": round(t.duration_s * 1e6, 3)})
    return events


def write_trace(path: str, g: Graph, links: dict[str, str] | None = None, stage: int = 0) -> None:
    """The trace of ``g`` to ``path``; ``links``: the fabric's tracks (``link_events``) for ``stage``."""
    target = Path(path)
    events = trace_events(g) + link_events(g, links or {}, stage)
    body = json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}, separators=(",", ":"))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent if str(target.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
