"""Collective costs: monotone in bandwidth, message size and oversubscription; scale-up groups never pay the
network; the algorithm NCCL would pick (NVLS, tree, hierarchical, SHARP) and nccl-tests bus bandwidth."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from supercluster.errors import SpecError
from supercluster.network import ALGORITHMS, OPS, build_topology, collective_time, place
from supercluster.network.cost import scale_out_bandwidth
from supercluster.network.report import collective_report
from supercluster.network.topology import Topology
from supercluster.spec import catalog
from supercluster.spec.calibration import default_calibration
from supercluster.spec.hardware import Cluster
from supercluster.spec.load import _resolve_tree, load_scenario

CAL = default_calibration()
MEMPHIS_SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "memphis.yaml"
CLUSTERS = sorted(catalog.entries("clusters"))
MiB, GiB = 2**20, 2**30
REL = 1e-12  # float slack for "never slower": costs are sums of a few terms

SETTINGS = settings(max_examples=300, deadline=None)


def make_cluster(spec: str | dict[str, Any]) -> Cluster:
    """A cluster from a catalog name or a ``{base: NAME, ...}`` mapping, resolved as a scenario would be."""
    return Cluster.model_validate(_resolve_tree({"cluster": spec}, Path("."))["cluster"])


@cache
def catalog_cluster(name: str) -> Cluster:
    return make_cluster(name)


@cache
def catalog_topology(name: str) -> Topology:
    return build_topology(catalog_cluster(name))


EOS_SHARP = make_cluster({"base": "eos", "fabric": {"base": "quantum-2-ndr-sharp"}})


def with_fabric(cluster: Cluster, **fabric: Any) -> Cluster:
    return cluster.model_copy(update={"fabric": cluster.fabric.model_copy(update=fabric)})


def time_of(cluster: Cluster, op: str, size_bytes: float, gpus: int, stride: int = 1, *,
            topo: Topology | None = None, concurrency: float = 1.0, algorithm: str | None = None) -> float:
    """Seconds for one collective on ``gpus`` members ``stride`` apart."""
    topo = topo or build_topology(cluster)
    p = place(cluster, topo, np.array([float(gpus)]), np.array([float(stride)]))
    res = collective_time(cluster, topo, CAL, op, np.array([float(size_bytes)]), p, concurrency=concurrency,
                          algorithm=algorithm)
    return float(res.time_s[0])


sizes = st.floats(1.0, 16.0 * GiB, allow_nan=False, allow_infinity=False)
big_sizes = st.floats(256.0 * MiB, 8.0 * GiB, allow_nan=False, allow_infinity=False)
strides = st.sampled_from([1, 1, 2, 4, 8, 8, 16, 64, 512, 4_096])


@st.composite
def groups(draw: st.DrawFn, num_gpus: int) -> tuple[int, int]:
    """(members, stride) of a group that fits the cluster, at least 2 members."""
    stride = draw(strides)
    most = min(8_192, num_gpus // stride)
    assume(most >= 2)
    size = draw(st.one_of(st.sampled_from([2, 4, 8, 16, 64, 72, 256, 1_024]), st.integers(2, most)))
    assume(size <= most)
    return size, stride


# --- (a) more bandwidth never makes a collective slower --------------------------------------------------------------


@SETTINGS
@given(data=st.data(), name=st.sampled_from(CLUSTERS), op=st.sampled_from(OPS), size_bytes=sizes,
       link_factor=st.floats(1.0, 8.0), fraction=st.floats(0.3, 1.0), more_fraction=st.floats(0.0, 1.0),
       concurrency=st.sampled_from([0.01, 0.5, 1.0]))
def test_more_scale_up_bandwidth_is_never_slower(data: st.DataObject, name: str, op: str, size_bytes: float,
                                                  link_factor: float, fraction: float, more_fraction: float,
                                                  concurrency: float) -> None:
    """Raising the scale-up link rate or its achievable fraction never makes a collective slower."""
    base = catalog_cluster(name)
    size, stride = data.draw(groups(base.num_gpus))
    slow_acc = base.accelerator.model_copy(update={"scale_up_achievable_fraction": fraction})
    slow = base.model_copy(update={"accelerator": slow_acc})
    fast_acc = base.accelerator.model_copy(update={
        "scale_up_bandwidth_bytes_per_s": base.accelerator.scale_up_bandwidth_bytes_per_s * link_factor,
        "scale_up_achievable_fraction": fraction + (1.0 - fraction) * more_fraction})
    fast = base.model_copy(update={"accelerator": fast_acc})
    topo = catalog_topology(name)
    t_slow = time_of(slow, op, size_bytes, size, stride, topo=topo, concurrency=concurrency)
    t_fast = time_of(fast, op, size_bytes, size, stride, topo=topo, concurrency=concurrency)
    assert t_fast <= t_slow * (1 + REL), (t_fast, t_slow)


@SETTINGS
@given(data=st.data(), name=st.sampled_from(CLUSTERS), op=st.sampled_from(OPS), size_bytes=sizes,
       rate=st.floats(12.5e9, 100e9), rate_up=st.floats(0.0, 1.0), frac=st.floats(0.3, 1.0),
       frac_up=st.floats(0.0, 1.0), multipath=st.floats(0.3, 1.0), multipath_up=st.floats(0.0, 1.0),
       concurrency=st.sampled_from([0.01, 0.5, 1.0]))
def test_more_scale_out_bandwidth_is_never_slower(data: st.DataObject, name: str, op: str, size_bytes: float,
                                                   rate: float, rate_up: float, frac: float, frac_up: float,
                                                   multipath: float, multipath_up: float, concurrency: float) -> None:
    """A faster NIC, a higher achievable fraction or better multipath never makes a collective slower.

    The switch is the 144-port Quantum-X800, whose radix is port-capped at every rate drawn here, so the fat tree
    (and where the group sits in it) is the same for both fabrics and only the bandwidth differs."""
    base = catalog_cluster(name)
    size, stride = data.draw(groups(base.num_gpus))
    generic = make_cluster({"base": name, "fabric": {"switch": "quantum-x800-q3400", "tiers": None,
                                                      "in_network_reduction": False}})

    def variant(r: float, f: float, m: float) -> Cluster:
        c = with_fabric(generic, achievable_fraction=f, multipath_efficiency=m)
        return c.model_copy(update={"scale_out_bandwidth_per_gpu_bytes_per_s": r})

    slow = variant(rate, frac, multipath)
    fast = variant(rate + (100e9 - rate) * rate_up, frac + (1 - frac) * frac_up,
                   multipath + (1 - multipath) * multipath_up)
    t_slow, t_fast = build_topology(slow), build_topology(fast)
    assert t_slow.tiers == t_fast.tiers and t_slow.radix == t_fast.radix == 144
    slow_s = time_of(slow, op, size_bytes, size, stride, topo=t_slow, concurrency=concurrency)
    fast_s = time_of(fast, op, size_bytes, size, stride, topo=t_fast, concurrency=concurrency)
    assert fast_s <= slow_s * (1 + REL), (fast_s, slow_s)


# --- (b) a bigger message never takes less time ------------------------------------------------------------------------


@SETTINGS
@given(data=st.data(), name=st.sampled_from(CLUSTERS), op=st.sampled_from(OPS),
       concurrency=st.sampled_from([0.01, 0.3, 1.0]))
def test_bigger_message_never_faster(data: st.DataObject, name: str, op: str, concurrency: float) -> None:
    """Over a sweep of message sizes from 1 B to 64 GiB, the chosen algorithm's time and every algorithm's own
    time are non-decreasing."""
    cluster, topo = catalog_cluster(name), catalog_topology(name)
    size, stride = data.draw(groups(cluster.num_gpus))
    extra = data.draw(st.lists(st.floats(1.0, 64.0 * GiB), min_size=1, max_size=20))
    S = np.unique(np.concatenate([np.logspace(0, 36, 60, base=2.0), extra]))
    p = place(cluster, topo, np.array([float(size)]), np.array([float(stride)]))
    chosen = collective_time(cluster, topo, CAL, op, S, p, concurrency=concurrency).time_s
    assert np.all(np.diff(chosen) >= -REL * chosen[1:]), chosen
    for algo in ALGORITHMS:
        try:
            t = collective_time(cluster, topo, CAL, op, S, p, concurrency=concurrency, algorithm=algo).time_s
        except ValueError:
            continue
        finite = t[np.isfinite(t)]
        assert np.all(np.diff(finite) >= -REL * finite[1:]), (algo, t)


# --- (c) a group inside one scale-up domain never pays the network ---------------------------------------------------


@SETTINGS
@given(name=st.sampled_from(CLUSTERS), op=st.sampled_from(OPS), size_bytes=sizes, data=st.data(),
       nic=st.floats(0.25, 4.0), latency=st.floats(0.1, 100.0), switch_latency=st.floats(0.1, 100.0),
       frac=st.floats(0.05, 1.0), multipath=st.floats(0.05, 1.0), oversub=st.floats(1.0, 8.0))
def test_intra_domain_group_ignores_the_fabric(name: str, op: str, size_bytes: float, data: st.DataObject,
                                               nic: float, latency: float, switch_latency: float, frac: float,
                                               multipath: float, oversub: float) -> None:
    """A group inside one scale-up domain takes the same time whatever the NIC rate, fabric latency, switch
    latency, achievable fraction, multipath efficiency or oversubscription."""
    base = catalog_cluster(name)
    domain = base.domain_gpus
    stride = data.draw(st.sampled_from([s for s in (1, 2, 4, 8, 9, 18, 36) if 2 * s <= domain]))
    size = data.draw(st.integers(2, domain // stride))
    fabric = base.fabric
    switch = fabric.switch.model_copy(update={"latency_s": fabric.switch.latency_s * switch_latency}) \
        if fabric.switch else None
    other = with_fabric(base, link_latency_s=fabric.link_latency_s * latency, switch=switch,
                        achievable_fraction=frac, multipath_efficiency=multipath, oversubscription=oversub,
                        tiers=None)
    other = other.model_copy(update={"scale_out_bandwidth_per_gpu_bytes_per_s":
                                     base.scale_out_bandwidth_per_gpu_bytes_per_s * nic})
    try:
        other_topo = build_topology(other)
    except SpecError:  # a faster NIC lowers the radix below what the cluster needs: keep the fabric's counts
        other_topo = catalog_topology(name)
    p = place(other, other_topo, np.array([float(size)]), np.array([float(stride)]))
    assert bool(p.inside_domain[0])
    t_base = time_of(base, op, size_bytes, size, stride, topo=catalog_topology(name))
    t_other = time_of(other, op, size_bytes, size, stride, topo=other_topo)
    assert t_other == pytest.approx(t_base, rel=1e-12)


# --- (d) hierarchical all-reduce vs a flat ring across nodes ------------------------------------------------------------


FLAT_NODES = [2, 3, 4, 8, 16, 32, 64, 128, 256]


def flat_ring_s(cluster: Cluster, n: int, size_bytes: float) -> float:
    """The flat one-channel ring: every step crosses a domain boundary on one NIC at its achievable rate."""
    b_nic = cluster.scale_out_bandwidth_per_gpu_bytes_per_s * cluster.fabric.achievable_fraction
    return 2.0 * (n - 1) / n * size_bytes / b_nic


@SETTINGS
@given(name=st.sampled_from(CLUSTERS), nodes=st.sampled_from(FLAT_NODES), size_bytes=big_sizes)
def test_hierarchical_beats_a_flat_ring_for_large_messages(name: str, nodes: int, size_bytes: float) -> None:
    """For >= 256 MiB over whole scale-up domains, hierarchical all-reduce (where the GPU offers it) and the chosen
    all-reduce are no slower than a flat one-channel ring crossing each domain boundary on one NIC,
    2(n-1)/n * S / B_nic."""
    cluster = catalog_cluster(name)
    n = nodes * cluster.domain_gpus
    assume(n <= cluster.num_gpus)
    flat = flat_ring_s(cluster, n, size_bytes)
    chosen = collective_report(cluster, "all_reduce", size_bytes, n)
    assert chosen.time_s <= flat, (chosen.time_s, flat, chosen.alternatives)
    if "hierarchical" in chosen.alternatives:
        forced = collective_report(cluster, "all_reduce", size_bytes, n, algorithm="hierarchical")
        assert forced.algorithm == "hierarchical"
        assert forced.time_s <= flat, (forced.time_s, flat)


@pytest.mark.parametrize("nodes", FLAT_NODES)
def test_multi_node_nvlink_domains_offer_no_nvlstree(nodes: int) -> None:
    """NCCL does not run NVLSTree across multi-node NVLink domains (GB200 NVL72: 'MNNVL: NVLS not yet supported',
    src/graph/tuning.cc); ring and tree remain, and the chosen all-reduce of 1 GiB still beats the flat ring."""
    cluster = catalog_cluster("colossus-2-gb200")
    n = nodes * cluster.domain_gpus
    chosen = collective_report(cluster, "all_reduce", GiB, n)
    assert "hierarchical" not in chosen.alternatives and chosen.time_s <= flat_ring_s(cluster, n, GiB)
    with pytest.raises(SpecError, match="hierarchical"):
        collective_report(cluster, "all_reduce", GiB, n, algorithm="hierarchical")


@pytest.mark.parametrize("name", ["colossus", "eos"])
@pytest.mark.parametrize("nodes", FLAT_NODES)
def test_hierarchical_is_offered_and_beats_a_flat_ring_on_nvls_gpus(name: str, nodes: int) -> None:
    """On NVLS GPUs in 8-GPU nodes (H100) hierarchical all-reduce of 1 GiB over 2-256 whole domains is offered and
    no slower than the flat ring."""
    if name not in CLUSTERS:
        pytest.skip(f"{name} is not in the catalog")
    cluster = catalog_cluster(name)
    n = nodes * cluster.domain_gpus
    forced = collective_report(cluster, "all_reduce", GiB, n, algorithm="hierarchical")
    assert forced.time_s <= flat_ring_s(cluster, n, GiB)


# --- (e) oversubscription ----------------------------------------------------------------------------------------------


@SETTINGS
@given(data=st.data(), name=st.sampled_from(["colossus", "eos", "llama3-16k", "gpt4-a100"]),
       op=st.sampled_from(OPS), size_bytes=sizes, leaf=st.floats(1.0, 8.0), leaf_up=st.floats(0.0, 4.0),
       spine=st.floats(1.0, 8.0), spine_up=st.floats(0.0, 4.0))
def test_oversubscription_never_speeds_up_at_full_load(data: st.DataObject, name: str, op: str, size_bytes: float,
                                                        leaf: float, leaf_up: float, spine: float,
                                                        spine_up: float) -> None:
    """At concurrency 1 (every GPU sending), a more oversubscribed fabric never makes a collective faster, for a
    group laid out the same way in both (a 2:1 leaf has more down ports, so a group can have more members under one
    leaf, or move under one: that is less traffic crossing up, not less oversubscription)."""
    base = make_cluster({"base": name, "fabric": {"tiers": None}})
    size, stride = data.draw(groups(base.num_gpus))
    low = with_fabric(base, oversubscription=[leaf, spine])
    high = with_fabric(base, oversubscription=[leaf + leaf_up, spine + spine_up])
    topo_low, topo_high = build_topology(low), build_topology(high)
    one = (np.array([float(size)]), np.array([float(stride)]))
    p_low, p_high = place(low, topo_low, *one), place(high, topo_high, *one)
    assume(int(p_low.level[0]) == int(p_high.level[0]))
    # more down ports per leaf can also put more of the group under one switch (less traffic crossing up)
    assume(all(float(a[0]) == float(b[0]) for a, b in zip(p_low.members_below, p_high.members_below, strict=False)))
    t_low = time_of(low, op, size_bytes, size, stride, topo=topo_low, concurrency=1.0)
    t_high = time_of(high, op, size_bytes, size, stride, topo=topo_high, concurrency=1.0)
    assert t_high >= t_low * (1 - REL), (t_high, t_low)


def test_oversubscription_slows_a_cross_pod_send() -> None:
    """At concurrency 1 a send/recv across the spine gets B_nic / O: 4:1 leaves make a 1 GiB transfer slower."""
    base = make_cluster({"base": "colossus", "fabric": {"tiers": None, "multipath_efficiency": 1.0}})
    one = time_of(base, "send_recv", GiB, 2, 4_096)
    four = time_of(with_fabric(base, oversubscription=4.0), "send_recv", GiB, 2, 4_096)
    assert four > 3.0 * one


# --- single members, forced algorithms, the argmin ---------------------------------------------------------------------


@pytest.mark.parametrize("op", OPS)
def test_a_single_member_costs_nothing(op: str) -> None:
    """A group of one GPU costs 0 s for every operation and every algorithm that implements it."""
    cluster, topo = catalog_cluster("colossus"), catalog_topology("colossus")
    assert time_of(cluster, op, GiB, 1, topo=topo) == 0.0
    assert time_of(cluster, op, GiB, 1, 4_096, topo=topo) == 0.0
    for algo in ALGORITHMS:
        try:
            t = time_of(cluster, op, GiB, 1, topo=topo, algorithm=algo)
        except ValueError:
            continue
        assert t == 0.0, algo


@pytest.mark.parametrize(("op", "algorithm"), [
    ("all_gather", "tree"), ("reduce_scatter", "nvls"), ("all_to_all", "ring"), ("broadcast", "hierarchical"),
    ("send_recv", "ring"), ("all_reduce", "pairwise"), ("all_reduce", "direct"), ("all_reduce", "sharp"),
])
def test_forcing_an_algorithm_that_does_not_implement_the_op(op: str, algorithm: str) -> None:
    """Forcing an algorithm that does not implement an operation (or SHARP on a fabric without it) is a
    ValueError, not a silent time."""
    with pytest.raises(ValueError, match=algorithm):
        time_of(catalog_cluster("colossus"), op, GiB, 16, topo=catalog_topology("colossus"), algorithm=algorithm)


@SETTINGS
@given(data=st.data(), name=st.sampled_from(CLUSTERS + ["eos-sharp"]), op=st.sampled_from(OPS), size_bytes=sizes)
def test_chosen_algorithm_is_the_argmin(data: st.DataObject, name: str, op: str, size_bytes: float) -> None:
    """The chosen algorithm is the fastest of the alternatives, and its time is theirs."""
    cluster = EOS_SHARP if name == "eos-sharp" else catalog_cluster(name)
    size, stride = data.draw(groups(cluster.num_gpus))
    r = collective_report(cluster, op, size_bytes, size, stride=stride)
    assert r.alternatives, r
    assert r.algorithm in r.alternatives
    assert r.time_s == r.alternatives[r.algorithm] == min(r.alternatives.values())
    assert all(math.isfinite(t) and t > 0 for t in r.alternatives.values())


# --- NVLS and SHARP ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["colossus", "eos", "eagle"])
@pytest.mark.parametrize("size_bytes", [256 * MiB, 1 * GiB, 8 * GiB])
def test_nvls_for_a_large_8_gpu_all_reduce_on_h100(name: str, size_bytes: float) -> None:
    """On H100 (NVSwitch gen 3, NVLS) an all-reduce of >= 256 MiB on one 8-GPU node runs as NVLS."""
    cluster = catalog_cluster(name)
    assert cluster.accelerator.nvls_fraction
    r = collective_report(cluster, "all_reduce", size_bytes, 8)
    assert r.algorithm == "nvls"
    assert r.alternatives["nvls"] < r.alternatives["ring"]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), name=st.sampled_from(["selene", "gpt4-a100"]), size_bytes=sizes)
def test_never_nvls_on_a100(data: st.DataObject, name: str, size_bytes: float) -> None:
    """A100 has no NVLS (nvls_fraction None): it is never chosen nor offered, for any group or size."""
    cluster = catalog_cluster(name)
    assert cluster.accelerator.nvls_fraction is None
    size, stride = data.draw(st.one_of(groups(cluster.num_gpus), st.sampled_from([(8, 1), (4, 1), (4, 2)])))
    r = collective_report(cluster, "all_reduce", size_bytes, size, stride=stride)
    assert r.algorithm != "nvls"
    assert "nvls" not in r.alternatives


@SETTINGS
@given(data=st.data(), name=st.sampled_from(CLUSTERS + ["eos-sharp"]), op=st.sampled_from(OPS), size_bytes=sizes)
def test_sharp_only_on_a_reducing_fabric(data: st.DataObject, name: str, op: str, size_bytes: float) -> None:
    """SHARP is offered only for an all-reduce that crosses domains on a fabric with in-network reduction."""
    cluster = EOS_SHARP if name == "eos-sharp" else catalog_cluster(name)
    size, stride = data.draw(groups(cluster.num_gpus))
    r = collective_report(cluster, op, size_bytes, size, stride=stride)
    expected = cluster.fabric.in_network_reduction and op == "all_reduce" and r.level >= 1
    assert ("sharp" in r.alternatives) == expected, (r.alternatives, r.level)


def test_sharp_on_the_sharp_fabric() -> None:
    """On Quantum-2 with SHARP, a large cross-node all-reduce offers SHARP and it beats the ring."""
    assert EOS_SHARP.fabric.in_network_reduction
    r = collective_report(EOS_SHARP, "all_reduce", GiB, 1_024)
    assert r.alternatives["sharp"] < r.alternatives["ring"]
    plain = collective_report(catalog_cluster("eos"), "all_reduce", GiB, 1_024)
    assert "sharp" not in plain.alternatives


# --- nccl-tests bandwidths -----------------------------------------------------------------------------------------------

NCCL_TESTS_BUS_FACTOR = {  # nccl-tests doc/PERFORMANCE.md
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "send_recv": lambda n: 1.0,
}


@SETTINGS
@given(data=st.data(), name=st.sampled_from(CLUSTERS), op=st.sampled_from(OPS), size_bytes=sizes)
def test_bus_bandwidth_is_nccl_tests(data: st.DataObject, name: str, op: str, size_bytes: float) -> None:
    """algbw = S / t and busbw = algbw x the nccl-tests factor (2(n-1)/n for all-reduce)."""
    cluster = catalog_cluster(name)
    size, stride = data.draw(groups(cluster.num_gpus))
    r = collective_report(cluster, op, size_bytes, size, stride=stride)
    assert r.algbw_bytes_per_s == pytest.approx(size_bytes / r.time_s, rel=1e-12)
    assert r.busbw_bytes_per_s == pytest.approx(r.algbw_bytes_per_s * NCCL_TESTS_BUS_FACTOR[op](size), rel=1e-12)


def test_all_reduce_bus_bandwidth_example() -> None:
    """An all-reduce on 16 GPUs: busbw = algbw x 30/16."""
    r = collective_report(catalog_cluster("colossus"), "all_reduce", GiB, 16)
    assert r.busbw_bytes_per_s == pytest.approx(r.algbw_bytes_per_s * 30 / 16)


# --- ECMP ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("op", "gpus", "stride"), [
    ("send_recv", 2, 4_096), ("send_recv", 2, 512), ("all_to_all", 64, 512), ("all_gather", 16, 4_096),
    ("all_reduce", 4_096, 1),
])
def test_ecmp_slows_traffic_across_the_spine(op: str, gpus: int, stride: int) -> None:
    """With multipath_efficiency < 1, traffic that turns around above the leaf is slower than with 1."""
    base = catalog_cluster("colossus")
    ideal, ecmp = with_fabric(base, multipath_efficiency=1.0), with_fabric(base, multipath_efficiency=0.5)
    topo = catalog_topology("colossus")
    p = place(base, topo, np.array([float(gpus)]), np.array([float(stride)]))
    assert int(p.level[0]) >= 2
    assert time_of(ecmp, op, GiB, gpus, stride, topo=topo) > time_of(ideal, op, GiB, gpus, stride, topo=topo)


@pytest.mark.parametrize(("op", "gpus", "stride"), [
    ("send_recv", 2, 8), ("all_to_all", 64, 8), ("all_gather", 64, 8), ("all_reduce", 512, 1), ("broadcast", 16, 1),
])
def test_ecmp_spares_traffic_under_one_leaf(op: str, gpus: int, stride: int) -> None:
    """Traffic that stays under one leaf takes the same time whatever the multipath efficiency."""
    base = catalog_cluster("colossus")
    ideal, ecmp = with_fabric(base, multipath_efficiency=1.0), with_fabric(base, multipath_efficiency=0.5)
    topo = catalog_topology("colossus")
    p = place(base, topo, np.array([float(gpus)]), np.array([float(stride)]))
    assert int(p.level[0]) == 1
    assert time_of(ecmp, op, GiB, gpus, stride, topo=topo) == time_of(ideal, op, GiB, gpus, stride, topo=topo)


# --- mesh scale-up domains -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["all_gather", "reduce_scatter", "broadcast", "all_reduce"])
def test_one_member_per_mesh_domain_pays_only_the_network(op: str) -> None:
    """A group with one GPU per domain (stride 8) never touches the scale-up links, so on a mesh domain (MI300X)
    it costs what it costs on an NVSwitch domain of the same bandwidth, and every algorithm is finite."""
    mesh = make_cluster({"base": "colossus", "accelerator": "MI300X", "num_gpus": 1_024, "fabric": {"tiers": None}})
    switch = mesh.model_copy(update={"accelerator": mesh.accelerator.model_copy(update={"scale_up_topology": "switch"})})
    topo = build_topology(mesh)
    r = collective_report(mesh, op, GiB, 16, stride=8)
    assert all(t < 1.0 for t in r.alternatives.values()), r.alternatives
    assert time_of(mesh, op, GiB, 16, 8, topo=topo) == pytest.approx(time_of(switch, op, GiB, 16, 8, topo=topo))


def test_the_analytic_model_charges_an_oversubscribed_core_the_share_of_pairs_that_cross_it() -> None:
    """A pipeline pair 4,000 ranks apart on Memphis leaves a 5,440-GPU pod for 73.5% of its GPUs (6,528: 61%): the
    analytic model's p2p share at a 2:1 (4:1) spine-to-core tier is that share of the oversubscription, as the routed
    flows find, not the whole of it."""
    for ratio, pod_gpus in (("[1,2]", 5440), ("[1,4]", 6528)):
        s = load_scenario(MEMPHIS_SCENARIO, [f"cluster.fabric.oversubscription={ratio}"])
        topo = build_topology(s.cluster)
        assert topo.tiers[1].block_gpus == pod_gpus
        expected = topo.cumulative_oversubscription[1] * 4000 / pod_gpus  # the ports' ratio, about 2:1 (4:1)
        pair = place(s.cluster, topo, np.array([2.0]), np.array([4000.0]))
        nic = s.cluster.scale_out_bandwidth_per_gpu_bytes_per_s * s.cluster.fabric.achievable_fraction
        share = float(scale_out_bandwidth(s.cluster, topo, pair, "p2p", 1.0)[0]) / (
            nic * s.cluster.fabric.multipath_efficiency)
        assert 1.0 / share == pytest.approx(expected, rel=1e-3)
