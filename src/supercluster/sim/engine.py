"""A small, generic discrete-event engine and the streams that run tasks on it.

``Engine`` is one heap of ``(time_s, sequence, action)``: ``at(time_s, action)`` schedules, ``run()`` pops in time
order, ties broken by the order the events were scheduled (a per-run counter, never ``id()`` or set order), so
the same input gives the same timeline to the bit. ``Streams`` runs ``Task``s on it: each task belongs to one
stream (a GPU's compute or communication queue, a link), a stream runs its tasks one at a time in the order they
were submitted (as a CUDA stream does), and a task starts when it reaches the head of its stream and every task it
depends on has ended (as a CUDA event wait does). Nothing here knows about GPUs or training: sim.graph builds the
tasks, sim.run reads the timeline.

Why not SimPy: measured on the Memphis scenario's iteration in symmetric mode (plan's configuration, 15,355 tasks;
benchmarks/bench_sim.py, figures in benchmarks/RESULTS.md), the same task graph run on SimPy 4.1 (one process
per task waiting on its dependencies' and its stream predecessor's events) took 1.0 to 1.3 s against this
engine's 0.09 to 0.24 s (4 to 15 times as long, over runs on the shared 2-core build machine), to the same end
time. SimPy pays a generator and an event object per
task; this engine one heap entry. SimPy would also be one more dependency; its scheduler is the same idea (a heap
of (time, priority, sequence)), kept here in ~40 lines.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field


class Engine:
    """Events in time order; equal times in the order they were scheduled."""

    def __init__(self) -> None:
        self.now_s = 0.0
        self.events = 0
        self._heap: list[tuple[float, int, Callable[[int], None], int]] = []
        self._seq = itertools.count()

    def at(self, time_s: float, action: Callable[[int], None], arg: int = 0) -> None:
        """Call ``action(arg)`` at ``time_s``."""
        if time_s < self.now_s:
            raise ValueError(f"cannot schedule at {time_s} s, before now ({self.now_s} s)")
        heapq.heappush(self._heap, (time_s, next(self._seq), action, arg))

    def run(self) -> None:
        heap, pop = self._heap, heapq.heappop
        while heap:
            time_s, _, action, arg = pop(heap)
            self.now_s = time_s
            self.events += 1
            action(arg)


@dataclass(slots=True)
class Task:
    """One piece of work on one stream; ``deps`` are indices of tasks that must end before it starts."""

    name: str
    stream: int
    duration_s: float
    deps: list[int] = field(default_factory=list)
    start_s: float = -1.0
    end_s: float = -1.0


class StalledError(RuntimeError):
    """The tasks cannot all run: a dependency cycle, or a task waiting behind its stream's later task."""


class Streams:
    """Tasks on FIFO streams with dependencies, executed on an Engine."""

    def __init__(self, tasks: list[Task], n_streams: int) -> None:
        self.tasks = tasks
        self.engine = Engine()
        self._waiting = [len(t.deps) for t in tasks]
        self._dependents: list[list[int]] = [[] for _ in tasks]
        for i, t in enumerate(tasks):
            for d in t.deps:
                self._dependents[d].append(i)
        self._queues: list[list[int]] = [[] for _ in range(n_streams)]
        for i, t in enumerate(tasks):
            self._queues[t.stream].append(i)
        self._head = [0] * n_streams
        self._busy = [False] * n_streams

    def _try_start(self, stream: int) -> None:
        q, h = self._queues[stream], self._head[stream]
        if self._busy[stream] or h >= len(q):
            return
        i = q[h]
        if self._waiting[i]:
            return
        task = self.tasks[i]
        task.start_s = self.engine.now_s
        self._busy[stream] = True
        self.engine.at(task.start_s + task.duration_s, self._end, i)

    def _end(self, i: int) -> None:
        task = self.tasks[i]
        task.end_s = self.engine.now_s
        self._busy[task.stream] = False
        self._head[task.stream] += 1
        for j in self._dependents[i]:
            self._waiting[j] -= 1
            if not self._waiting[j]:
                self._try_start(self.tasks[j].stream)
        self._try_start(task.stream)

    def run(self) -> float:
        """Run every task; the time the last one ends (seconds)."""
        for stream in range(len(self._queues)):
            self._try_start(stream)
        self.engine.run()
        stuck = [t.name for t in self.tasks if t.end_s < 0.0]
        if stuck:
            raise StalledError(f"{len(stuck)} tasks never ran (first: {stuck[0]})")
        return max((t.end_s for t in self.tasks), default=0.0)
