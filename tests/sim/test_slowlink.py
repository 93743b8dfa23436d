"""Links named slow (--slow-link): parsed and checked against the fabric, slowed where flows cross them, and paid
for by the axes whose flows cross them."""

from __future__ import annotations

import numpy as np
import pytest

from supercluster.errors import InputError
from supercluster.sim.contention import axis_contention, contention_factors, contention_report, excess_factors
from supercluster.sim.fabric import KIND_SHIFT, route
from supercluster.sim.slowlink import parse_slow_link, slowed_capacity, unit_count

from .conftest import fabric, par, scenario

S8K = scenario(8192)  # 1,024 nodes; 128 leaves of 64 rail ports; 2 pods of 4,096 GPUs
F8K = fabric(S8K)


def test_parse_and_print() -> None:
    """node=, leaf= and pod= with a speed in (0, 1] parse and print back as written."""
    for text in ("node=12:0.5", "leaf=127:0.25", "pod=1:1"):
        assert str(parse_slow_link(text, S8K)) == text
    assert (unit_count(F8K, "node"), unit_count(F8K, "leaf"), unit_count(F8K, "pod")) == (1024, 128, 2)


@pytest.mark.parametrize("text, fragment", [
    ("node=1024:0.5", "node 1024 does not exist: the cluster has 1,024 nodes (0 to 1,023)"),
    ("leaf=128:0.5", "leaf 128 does not exist"),
    ("pod=2:0.5", "pod 2 does not exist"),
    ("node=3:0", "(0, 1]"),
    ("node=3:1.5", "(0, 1]"),
    ("spine=3:0.5", "expected node=INDEX:SPEED"),
    ("node=3", "expected node=INDEX:SPEED"),
], ids=["node", "leaf", "pod", "zero", "above-one", "unit", "no-speed"])
def test_bad_slow_links_are_located(text: str, fragment: str) -> None:
    """A slow link that cannot be is refused naming --slow-link and what was expected."""
    with pytest.raises(InputError, match="--slow-link") as exc:
        parse_slow_link(text, S8K)
    assert fragment in str(exc.value)


def test_a_pod_needs_three_tiers() -> None:
    """On a two-tier fabric there are no pod uplinks to slow."""
    with pytest.raises(InputError, match="no pod uplinks"):
        parse_slow_link("pod=0:0.5", scenario(4096, "cluster.fabric.tiers=2"))


@pytest.mark.parametrize("routing", ["ecmp", "adaptive"])
def test_the_named_links_are_slowed(routing: str) -> None:
    """A flow from node 0 to a GPU in the other pod: node=0 slows its NIC up-link only, leaf=0 its leaf's up and
    down ports to the spine only, pod=0 its pod's ports to the core only; speeds multiply."""
    r = route(F8K, np.array([0]), np.array([4096]), routing=routing, seed=1)
    kind = (r.key >> KIND_SHIFT).tolist()
    assert kind == [0, 1, 2, 3, 4, 5]  # NIC up, NIC down, leaf up/down, pod up/down (both ends' mirrored ports)

    def shares(*texts: str) -> list[float]:
        slow = tuple(parse_slow_link(t, S8K) for t in texts)
        return (slowed_capacity(F8K, r.key, r.capacity, slow, routing) / r.capacity).tolist()

    assert shares("node=0:0.5") == [0.5, 1, 1, 1, 1, 1]
    assert shares("node=512:0.5") == [1, 0.5, 1, 1, 1, 1]  # GPU 4096's node: the NIC coming down
    assert shares("leaf=0:0.5") == [1, 1, 0.5, 1, 1, 1]  # up from leaf 0; the way down enters leaf 64
    assert shares("leaf=64:0.5") == [1, 1, 1, 0.5, 1, 1]
    assert shares("pod=0:0.5", "pod=0:0.5") == [1, 1, 1, 1, 0.25, 1]
    assert shares("node=1:0.5", "leaf=1:0.5", "pod=1:0.5") == [1, 1, 1, 1, 1, 0.5]


def test_a_slow_nic_slows_the_rings_crossing_it() -> None:
    """Node 3's NICs at 50%: the data-parallel ring through it takes twice as long (the whole step waits for it),
    and the pipeline whose sends do not leave through it is untouched; at full speed nothing changes."""
    p = par(tp=8, pp=2, dp=512)  # dp ring over the nodes of each pipeline half; pp pairs 4,096 ranks apart
    healthy = contention_factors(S8K, p)
    slow = contention_factors(S8K, p, slow=(parse_slow_link("node=3:0.5", S8K),))
    assert healthy == dict.fromkeys(healthy, 1.0)
    assert slow["dp"] == pytest.approx(2.0, rel=1e-12) and slow["pp"] == pytest.approx(2.0, rel=1e-12)
    assert slow["tp"] == 1.0
    assert contention_factors(S8K, p, slow=(parse_slow_link("node=3:1", S8K),)) == healthy
    assert excess_factors(S8K, p, slow=(parse_slow_link("node=3:0.5", S8K),)) == slow  # nothing charged already


def test_a_slow_leaf_slows_only_the_axes_crossing_it() -> None:
    """Leaf 0's spine ports at 25%: the pipeline's sends between pods climb through it (1/0.25 under adaptive
    routing, its 64 flows on 64 ports); a data-parallel ring within a leaf block does not leave the leaf."""
    p = par(tp=8, dp=64, pp=16)  # dp ring: 64 nodes = one leaf block per rail; pp stride 512 GPUs
    slow = (parse_slow_link("leaf=0:0.25", S8K),)
    f = contention_factors(S8K, p, slow=slow)
    assert f["dp"] == 1.0
    assert f["pp"] == pytest.approx(4.0, rel=1e-12)
    bottleneck = {a.axis: a.bottleneck for a in contention_report(S8K, p, slow=slow)}
    assert bottleneck["pp"] == "tier-1 up-links" and bottleneck["tp"] == ""


@pytest.mark.parametrize("routing", ["ecmp", "adaptive"])
def test_slow_links_closed_form_matches_the_event_driven_run(routing: str) -> None:
    """With a slow node and a slow leaf, the closed form equals the event-driven max-min run of the same flows."""
    slow = (parse_slow_link("node=5:0.5", S8K), parse_slow_link("leaf=0:0.3", S8K))
    for axis, size, stride in (("pp", 8, 1024), ("dp", 128, 8), ("ep", 16, 4)):
        closed = axis_contention(S8K, axis, size, stride, routing=routing, seed=1, slow=slow)
        run = axis_contention(S8K, axis, size, stride, routing=routing, seed=1, simulate=True, slow=slow)
        assert run.all_s == pytest.approx(closed.all_s, rel=1e-9), axis
        assert run.alone_s == pytest.approx(closed.alone_s, rel=1e-9), axis
        assert closed.factor >= 1.0
