"""The fat tree built from counts: tiers needed, reach per tier count, switch / link / optic counts, bisection
bandwidth, fixed tier counts that cannot hold the cluster, and a million-GPU fabric."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from supercluster.errors import SpecError
from supercluster.network import build_topology, capacity
from supercluster.network.report import collective_report, fabric_report
from supercluster.spec import catalog
from supercluster.spec.hardware import Cluster, Fabric
from supercluster.spec.load import _resolve_tree, build_scenario

ONE_TO_ONE = [1.0, 1.0, 1.0, 1.0]
CLUSTERS = sorted(catalog.entries("clusters"))
SMALL_SCENARIO: dict[str, Any] = {
    "name": "fabric-test",
    "model": "llama3-8b",
    "training": {"tokens": 1.0e12, "global_batch": 512, "seq_len": 8192},
}


def make_cluster(spec: str | dict[str, Any]) -> Cluster:
    """A cluster from a catalog name or a ``{base: NAME, ...}`` mapping, resolved as a scenario would be."""
    return Cluster.model_validate(_resolve_tree({"cluster": spec}, Path("."))["cluster"])


COLOSSUS = make_cluster("colossus")
COLOSSUS_QM9700 = make_cluster({"base": "colossus", "fabric": {"base": "quantum-2-ndr"}})


# --- Colossus: SN5600 at 400G (radix 128) and the same cluster on Quantum-2 (radix 64) ---------------------------


def test_colossus_needs_exactly_three_tiers() -> None:
    """100,000 GPUs on radix-128 SN5600 switches need exactly 3 tiers; 2 tiers reach only k^2/2 = 8,192."""
    topo = build_topology(COLOSSUS)
    assert topo.radix == 128
    assert topo.min_tiers == 3
    assert len(topo.tiers) == 3
    assert capacity(128, 2, ONE_TO_ONE) == 8_192 < 100_000
    assert capacity(128, 3, ONE_TO_ONE) == 128**3 // 4 >= 100_000
    report = fabric_report(COLOSSUS)
    assert report.reach_by_tiers[2] == 8_192
    assert report.reach_by_tiers[3] == 524_288
    assert report.min_tiers == 3 and len(report.tiers) == 3


def test_colossus_on_quantum2_needs_four_tiers() -> None:
    """The same 100,000 GPUs on radix-64 QM9700 switches need 4 tiers: 3 tiers reach only 64^3/4 = 65,536."""
    assert COLOSSUS_QM9700.fabric.switch is not None
    assert COLOSSUS_QM9700.fabric.switch.name == "quantum-2-qm9700"
    topo = build_topology(COLOSSUS_QM9700)
    assert topo.radix == 64
    assert capacity(64, 3, ONE_TO_ONE) == 65_536 < 100_000
    assert topo.min_tiers == 4
    assert len(topo.tiers) == 4
    assert topo.max_endpoints == 64**4 // 8


def test_colossus_counts() -> None:
    """Colossus: leaves = ceil(100,000 / 64), every tier-t uplink lands on a tier-(t+1) port, ~3,900 switches."""
    topo = build_topology(COLOSSUS)
    leaf, spine, core = topo.tiers
    assert (leaf.down_ports, leaf.up_ports) == (64, 64)
    assert leaf.switches == math.ceil(100_000 / 64) == 1_563
    assert (spine.down_ports, spine.up_ports) == (64, 64)
    assert spine.switches == 1_563
    assert (core.down_ports, core.up_ports, core.links_up) == (128, 0, 0)
    assert core.switches == math.ceil(1_563 * 64 / 128)
    assert 3_800 <= topo.switches <= 4_000
    assert topo.nic_links == 100_000
    assert topo.transceivers == 2 * (100_000 + 2 * 1_563 * 64)


@given(k=st.integers(1, 128).map(lambda h: 2 * h), tiers=st.integers(1, 4))
def test_capacity_of_a_non_blocking_fat_tree(k: int, tiers: int) -> None:
    """At 1:1, T tiers of radix-k switches (k even) hold k^T / 2^(T-1) endpoints."""
    assert capacity(k, tiers, ONE_TO_ONE) == k**tiers // 2 ** (tiers - 1)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(CLUSTERS), gpus=st.integers(1, 3_000_000),
       leaf_ratio=st.sampled_from([1.0, 1.0, 1.5, 2.0, 3.0, 7.0]), spine_ratio=st.sampled_from([1.0, 1.0, 2.0]))
def test_counts_are_consistent(name: str, gpus: int, leaf_ratio: float, spine_ratio: float) -> None:
    """Fewest tiers that hold N; leaves = ceil(N/d1); links_up = switches x up ports; every uplink has a port above
    and no switch is idle; transceivers = 2 x (NIC links + switch links)."""
    base = make_cluster(name)
    fabric = base.fabric.model_copy(update={"tiers": None, "oversubscription": [leaf_ratio, spine_ratio]})
    cluster = base.model_copy(update={"num_gpus": gpus, "fabric": fabric})
    ratios = [leaf_ratio, spine_ratio, 1.0, 1.0]
    try:
        topo = build_topology(cluster)
    except SpecError as exc:
        radix = fabric.switch.radix(cluster.scale_out_bandwidth_per_gpu_bytes_per_s) if fabric.switch else 64
        assert capacity(radix, 4, ratios) < gpus, str(exc)
        return
    k, built = topo.radix, len(topo.tiers)
    assert topo.min_tiers == built
    assert capacity(k, built, ratios) >= gpus
    assert built == 1 or capacity(k, built - 1, ratios) < gpus
    assert topo.max_endpoints == capacity(k, built, ratios)
    assert topo.tiers[0].switches == math.ceil(gpus / topo.tiers[0].down_ports)
    for lower, upper in zip(topo.tiers, topo.tiers[1:], strict=False):
        assert lower.down_ports + lower.up_ports == k
        assert lower.links_up == lower.switches * lower.up_ports
        assert upper.switches * upper.down_ports >= lower.links_up  # every uplink lands on a port
        assert (upper.switches - 1) * upper.down_ports < lower.links_up  # no idle switch
    top = topo.tiers[-1]
    assert (top.down_ports, top.up_ports, top.links_up, top.oversubscription) == (k, 0, 0, 1.0)
    assert topo.nic_links == gpus
    assert topo.switches == sum(t.switches for t in topo.tiers)
    assert topo.switch_links == sum(t.links_up for t in topo.tiers)
    assert topo.transceivers == 2 * (topo.nic_links + topo.switch_links)


def test_every_catalog_cluster_builds() -> None:
    """Every catalog cluster's fabric holds its GPUs and reports consistent totals."""
    for name in CLUSTERS:
        report = fabric_report(make_cluster(name))
        assert report.max_endpoints >= report.gpus, name
        assert report.switches == sum(t.switches for t in report.tiers), name
        assert report.transceivers == 2 * (report.nic_links + report.switch_links), name
        assert report.power_w["total"] == pytest.approx(sum(v for k, v in report.power_w.items() if k != "total"))


# --- bisection and oversubscription --------------------------------------------------------------------------------


def test_bisection_halves_with_two_to_one_leaves() -> None:
    """A 2:1 leaf halves the bisection bandwidth of the 1:1 fabric (radix 144: 96 down / 48 up, exactly 2:1)."""
    def on_x800(ratio: float) -> Cluster:
        return make_cluster({"base": "colossus",
                             "fabric": {"switch": "quantum-x800-q3400", "tiers": None, "oversubscription": ratio}})

    full, half = build_topology(on_x800(1.0)), build_topology(on_x800(2.0))
    assert full.radix == half.radix == 144
    assert (half.tiers[0].down_ports, half.tiers[0].up_ports) == (96, 48)
    assert full.bisection_bytes_per_s == pytest.approx(100_000 * 50e9 / 2)
    assert half.bisection_bytes_per_s == pytest.approx(full.bisection_bytes_per_s / 2)


def test_bisection_follows_the_leaf_ratio_on_colossus() -> None:
    """On radix 128 a 2:1 leaf splits 85:43; bisection drops by exactly that ratio."""
    two = make_cluster({"base": "colossus", "fabric": {"tiers": None, "oversubscription": 2.0}})
    topo = build_topology(two)
    assert (topo.tiers[0].down_ports, topo.tiers[0].up_ports) == (85, 43)
    assert topo.bisection_bytes_per_s == pytest.approx(100_000 * 50e9 / 2 * 43 / 85)


@pytest.mark.parametrize("ratio", [0.5, [1.0, 0.9]])
def test_oversubscription_below_one_is_refused(ratio: float | list[float]) -> None:
    """A down:up ratio below 1 is a validation error, located at the fabric when it comes from a scenario."""
    fabric = {**catalog.entries("fabrics")["spectrum-x"], "oversubscription": ratio}
    fabric.pop("switch"), fabric.pop("nic"), fabric.pop("optic")
    with pytest.raises(ValidationError, match="below 1"):
        Fabric.model_validate(fabric)
    with pytest.raises(SpecError, match="below 1") as info:
        build_scenario({**SMALL_SCENARIO, "cluster": {"base": "colossus", "fabric": {"oversubscription": ratio}}})
    assert info.value.field is not None and info.value.field.startswith("cluster.fabric")


# --- fixed tier counts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fabric", [{"tiers": 2}, {"switch": "quantum-2-qm9700"}])
def test_fixed_tiers_too_few_is_a_located_error(fabric: dict[str, Any]) -> None:
    """A fabric fixing fewer tiers than the cluster needs (2 on SN5600, or spectrum-x's 3 on QM9700) is refused
    at cluster.fabric.tiers."""
    cluster = make_cluster({"base": "colossus", "fabric": fabric})
    with pytest.raises(SpecError, match="tiers are needed") as info:
        build_topology(cluster)
    assert info.value.field == "cluster.fabric.tiers"
    assert "100,000" in str(info.value)


def test_fixed_tiers_too_few_through_the_cli(cli, tmp_path: Path) -> None:
    """`supercluster fabric SCENARIO` with a 2-tier Colossus: one located error line, exit 2."""
    scenario = tmp_path / "two-tier.yaml"
    data = {**SMALL_SCENARIO, "cluster": {"base": "colossus", "fabric": {"tiers": 2}}}
    scenario.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    cli("fabric", str(scenario)).one_error_line("cluster.fabric.tiers", "3 tiers are needed")


def test_fixed_tiers_above_the_minimum_are_built() -> None:
    """A fabric may fix more tiers than needed: 3 tiers for 1,000 GPUs (2 would do) are all built."""
    topo = build_topology(make_cluster({"base": "colossus", "num_gpus": 1_000}))
    assert topo.min_tiers == 2
    assert len(topo.tiers) == 3
    assert [t.switches for t in topo.tiers] == [16, 16, 8]


# --- scale ---------------------------------------------------------------------------------------------------------


def test_a_million_gpus_from_counts() -> None:
    """A 1,000,000-GPU fabric is built and summarised from counts: 4 radix-128 tiers, no per-GPU objects (the
    whole build, report and a full-cluster all-reduce allocate well under a megabyte per 10,000 GPUs)."""
    cluster = make_cluster({"base": "colossus", "num_gpus": 1_000_000, "fabric": {"tiers": None}})
    tracemalloc.start()
    try:
        topo = build_topology(cluster)
        report = fabric_report(cluster)
        coll = collective_report(cluster, "all_reduce", 2**30, 1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert topo.min_tiers == len(topo.tiers) == 4  # 3 tiers reach 128^3/4 = 524,288
    assert topo.tiers[0].switches == math.ceil(1_000_000 / 64)
    assert report.gpus == topo.nic_links == 1_000_000
    assert report.transceivers == 2 * (report.nic_links + report.switch_links)
    assert coll.time_s > 0 and math.isfinite(coll.time_s)
    assert peak < 4 * 2**20, peak  # a list of 10^6 small objects alone would take ~50 MB
