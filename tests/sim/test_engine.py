"""The event engine and its streams: time order, deterministic ties, FIFO streams, dependencies."""

from __future__ import annotations

import pytest

from supercluster.sim.engine import Engine, StalledError, Streams, Task


def test_equal_times_run_in_the_order_scheduled() -> None:
    """Events at the same time run in the order they were scheduled; earlier times first."""
    e, seen = Engine(), []
    for label, t in (("a", 2.0), ("b", 1.0), ("c", 2.0), ("d", 1.0)):
        e.at(t, lambda _, label=label: seen.append(label))
    e.run()
    assert seen == ["b", "d", "a", "c"] and e.events == 4 and e.now_s == 2.0


def test_streams_run_in_order_and_wait_for_dependencies() -> None:
    """A stream runs its tasks one after another; a task waits for its dependencies on other streams."""
    tasks = [Task("a", 0, 1.0), Task("b", 1, 3.0), Task("c", 0, 1.0, deps=[1]), Task("d", 0, 0.5)]
    end = Streams(tasks, 2).run()
    assert [(t.start_s, t.end_s) for t in tasks] == [(0.0, 1.0), (0.0, 3.0), (3.0, 4.0), (4.0, 4.5)]
    assert end == 4.5


def test_a_cycle_is_reported_not_hung() -> None:
    """Tasks waiting on each other raise StalledError naming one of them."""
    with pytest.raises(StalledError, match="never ran"):
        Streams([Task("a", 0, 1.0, deps=[1]), Task("b", 1, 1.0, deps=[0])], 2).run()
