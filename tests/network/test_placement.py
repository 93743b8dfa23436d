"""Where a parallel group sits: axis strides per layout order, members per scale-up domain, domains spanned, and
the highest switch tier its traffic reaches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supercluster.network import DEFAULT_ORDER, axis_strides, build_topology, place
from supercluster.network.placement import weight_replica_group
from supercluster.spec.hardware import Cluster
from supercluster.spec.load import _resolve_tree


def make_cluster(spec: str | dict[str, Any]) -> Cluster:
    """A cluster from a catalog name or a ``{base: NAME, ...}`` mapping, resolved as a scenario would be."""
    return Cluster.model_validate(_resolve_tree({"cluster": spec}, Path("."))["cluster"])


COLOSSUS = make_cluster("colossus")
COLOSSUS_TOPO = build_topology(COLOSSUS)


def place_one(size: int, stride: int, cluster: Cluster = COLOSSUS):
    topo = COLOSSUS_TOPO if cluster is COLOSSUS else build_topology(cluster)
    return place(cluster, topo, np.array([float(size)]), np.array([float(stride)]))


def degrees(**d: int) -> dict[str, np.ndarray]:
    return {axis: np.array([float(d.get(axis, 1))]) for axis in ("tp", "cp", "ep", "dp", "pp")}


# --- axis strides --------------------------------------------------------------------------------------------------


def test_default_order_is_megatrons() -> None:
    """The default layout order is Megatron-LM's tp-cp-ep-dp-pp, innermost first."""
    assert tuple(DEFAULT_ORDER) == ("tp", "cp", "ep", "dp", "pp")


def test_axis_strides_default_order() -> None:
    """tp-cp-ep-dp-pp: tp stride 1, cp stride tp, dp stride tp*cp, pp stride tp*cp*dp (ep carved out of them)."""
    s = axis_strides(DEFAULT_ORDER, degrees(tp=8, cp=2, ep=4, dp=16, pp=4))
    assert {a: float(v[0]) for a, v in s.items()} == {"tp": 1, "cp": 8, "dp": 16, "pp": 256}


def test_axis_strides_pp_inside_dp() -> None:
    """tp-cp-ep-pp-dp: pp stride tp*cp, dp stride tp*cp*pp."""
    s = axis_strides(("tp", "cp", "ep", "pp", "dp"), degrees(tp=8, cp=2, ep=4, dp=16, pp=4))
    assert {a: float(v[0]) for a, v in s.items()} == {"tp": 1, "cp": 8, "pp": 16, "dp": 64}


@given(tp=st.sampled_from([1, 2, 4, 8]), cp=st.sampled_from([1, 2, 4]), dp=st.sampled_from([1, 2, 8, 64]),
       pp=st.sampled_from([1, 2, 4, 16]), order=st.permutations(["tp", "cp", "ep", "dp", "pp"]))
def test_axis_strides_tile_the_ranks(tp: int, cp: int, dp: int, pp: int, order: list[str]) -> None:
    """For any order, each dense axis's stride is the product of the degrees inside it, and the outermost axis's
    stride x degree is the world size."""
    d = {"tp": tp, "cp": cp, "dp": dp, "pp": pp}
    s = axis_strides(order, degrees(**d))
    dense = [a for a in order if a != "ep"]
    expected = 1
    for axis in dense:
        assert float(s[axis][0]) == expected
        expected *= d[axis]
    assert float(s[dense[-1]][0]) * d[dense[-1]] == tp * cp * dp * pp


def test_axis_strides_vectorised() -> None:
    """Strides are computed element-wise over candidate arrays."""
    deg = {"tp": np.array([1.0, 8.0]), "cp": np.array([2.0, 1.0]), "ep": np.array([1.0, 1.0]),
           "dp": np.array([4.0, 4.0]), "pp": np.array([1.0, 2.0])}
    s = axis_strides(DEFAULT_ORDER, deg)
    np.testing.assert_array_equal(s["dp"], [2.0, 8.0])
    np.testing.assert_array_equal(s["pp"], [8.0, 32.0])


# --- levels ---------------------------------------------------------------------------------------------------------


def test_tp_group_inside_the_node() -> None:
    """A tp group of 8 on 8-GPU nodes stays inside the scale-up domain (level 0)."""
    p = place_one(8, 1)
    assert int(p.level[0]) == 0
    assert bool(p.inside_domain[0])
    assert (float(p.per_domain[0]), float(p.domains[0])) == (8, 1)


def test_dp_group_under_one_rail_leaf() -> None:
    """A dp group of 64 with stride 8 (one GPU per node, same rail, 64 nodes) sits under one rail-optimised leaf
    block of Colossus (64 down ports x 8 rails = 512 GPUs): level 1."""
    assert COLOSSUS_TOPO.tiers[0].block_gpus == 512
    p = place_one(64, 8)
    assert int(p.level[0]) == 1
    assert (float(p.per_domain[0]), float(p.domains[0])) == (1, 64)


def test_dp_group_beyond_one_leaf_reaches_the_spine() -> None:
    """The same stride-8 group over 65 nodes leaves the leaf block: level 2 (inside a pod)."""
    assert int(place_one(65, 8).level[0]) == 2


@pytest.mark.parametrize(("size", "stride"), [(8_192, 1), (2, 4_096), (16, 512), (100_000, 1)])
def test_group_beyond_a_pod_crosses_the_core(size: int, stride: int) -> None:
    """A group spanning more than a pod (4,096 GPUs on Colossus) turns around at tier 3 or above."""
    assert COLOSSUS_TOPO.tiers[1].block_gpus == 4_096
    assert int(place_one(size, stride).level[0]) >= 3


@settings(max_examples=100, deadline=None)
@given(size=st.integers(1, 4_096), stride=st.sampled_from([1, 2, 4, 8, 16, 64, 512, 4_096]))
def test_level_grows_with_the_span(size: int, stride: int) -> None:
    """Level 0 iff the group's span fits a domain; otherwise the lowest tier whose block holds the span; a longer
    span never lowers the level."""
    stride = min(stride, max(1, 100_000 // size))
    p = place_one(size, stride)
    span = size * stride
    level = int(p.level[0])
    if span <= 8:
        assert level == 0
    else:
        assert level >= 1
        assert COLOSSUS_TOPO.tiers[level - 1].block_gpus >= span
        assert level == 1 or COLOSSUS_TOPO.tiers[level - 2].block_gpus < span
    if (size + 1) * stride <= 100_000:
        assert int(place_one(size + 1, stride).level[0]) >= level


# --- members per domain ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "stride", "per_domain", "domains"), [
    (16, 1, 8, 2), (4, 2, 4, 1), (16, 4, 2, 8), (64, 8, 1, 64), (2, 4_096, 1, 2), (1, 1, 1, 1), (1_024, 1, 8, 128),
])
def test_per_domain_and_domains(size: int, stride: int, per_domain: int, domains: int) -> None:
    """Members per 8-GPU domain = min(size, 8 // stride) (at least 1); domains spanned = ceil(size / that)."""
    p = place_one(size, stride)
    assert (float(p.per_domain[0]), float(p.domains[0])) == (per_domain, domains)


def test_per_domain_on_a_72_gpu_domain() -> None:
    """On a 72-GPU NVL72 domain (4 GPUs per node) a group of 144 fills two domains of 72, and stays at level 0
    up to 72 members."""
    nvl72 = make_cluster({"base": "colossus", "num_gpus": 4_608, "gpus_per_node": 4, "scale_up_domain_gpus": 72,
                          "accelerator": "GB200", "fabric": {"tiers": None}})
    p = place_one(144, 1, nvl72)
    assert (float(p.per_domain[0]), float(p.domains[0])) == (72, 2)
    assert int(p.level[0]) >= 1
    assert int(place_one(72, 1, nvl72).level[0]) == 0


def test_members_below_each_tier() -> None:
    """Members under one tier-t subtree = min(size, block_t // stride), at least 1."""
    p = place_one(1_024, 8)
    assert [float(m[0]) for m in p.members_below] == [64, 512, 1_024]
    assert p.fabric_gpus == (512, 4_096, 100_000)


# --- the weight-replica group -----------------------------------------------------------------------------------------


def test_weight_replica_group_ignores_trivial_cp() -> None:
    """With cp = 1 the gradient group is the dp group, at dp's stride (not cp's)."""
    d = degrees(tp=8, cp=1, dp=32, pp=4)
    strides = axis_strides(DEFAULT_ORDER, d)
    size, stride = weight_replica_group(strides, d["dp"], d["cp"])
    assert (float(size[0]), float(stride[0])) == (32, 8)


def test_weight_replica_group_ignores_trivial_dp() -> None:
    """With dp = 1 the gradient group is the cp group, at cp's stride, even when cp sits outside pp."""
    d = degrees(tp=4, cp=2, dp=1, pp=8)
    strides = axis_strides(("tp", "pp", "ep", "dp", "cp"), d)
    size, stride = weight_replica_group(strides, d["dp"], d["cp"])
    assert (float(size[0]), float(stride[0])) == (2, 32)


def test_weight_replica_group_with_both_axes() -> None:
    """With cp and dp both real and adjacent, the group has dp x cp members at the inner axis's stride."""
    d = degrees(tp=8, cp=2, dp=16, pp=4)
    strides = axis_strides(DEFAULT_ORDER, d)
    size, stride = weight_replica_group(strides, d["dp"], d["cp"])
    assert (float(size[0]), float(stride[0])) == (32, 8)
