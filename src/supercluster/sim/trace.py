"""A simulated iteration as a Chrome / Perfetto trace (JSON trace-event format, opens in ui.perfetto.dev): one
process per simulated replica and stage, one thread per stream, an "X" (complete) event per task, named as the
graph names it ("F mb3 chunk1 stage2"). Written to a temporary file beside the target, then renamed: a trace that
exists is complete."""

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


def write_trace(path: str, g: Graph) -> None:
    target = Path(path)
    body = json.dumps({"traceEvents": trace_events(g), "displayTimeUnit": "ms"}, separators=(",", ":"))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent if str(target.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
