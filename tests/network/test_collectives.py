"""Collective costs follow the ring formulas of nccl-tests; groups land inside a node or on the fabric as placed."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from supercluster.network import (
    all_gather_s,
    all_reduce_s,
    all_to_all_link,
    all_to_all_s,
    group_link,
    reduce_scatter_s,
    send_recv_s,
)
from supercluster.spec.catalog import entry
from supercluster.spec.hardware import Cluster

SIZES = [2, 3, 4, 8, 16, 64, 1024]
S = 256.0 * 2**20  # bytes
BW = 40.0e9  # bytes/s
LAT = 5.0e-6  # s


def cluster(name: str, **changes: Any) -> Cluster:
    body = entry("clusters", name)
    body["accelerator"] = entry("accelerators", body["accelerator"])
    body["fabric"] = entry("fabrics", body["fabric"])
    body.update(changes)
    return Cluster.model_validate(body)


@pytest.mark.parametrize("n", SIZES)
def test_all_reduce(n: int) -> None:
    """Ring all-reduce: 2(n-1)/n * S/bw plus a latency of min(2(n-1), 2*log2 n) steps (ring vs NCCL tree)."""
    t = all_reduce_s(np.array([S]), np.array([n]), BW, LAT)
    steps = min(2 * (n - 1), 2 * math.log2(n))
    assert t[0] == pytest.approx(2 * (n - 1) / n * S / BW + steps * LAT, rel=1e-12)
    no_latency = all_reduce_s(np.array([S]), np.array([n]), BW, 0.0)
    assert no_latency[0] == pytest.approx(2 * (n - 1) / n * S / BW, rel=1e-12)


@pytest.mark.parametrize("n", SIZES)
def test_all_gather_equals_reduce_scatter(n: int) -> None:
    """All-gather = reduce-scatter = (n-1)/n * S/bw + (n-1)*lat; all-to-all has the same pairwise form."""
    expected = (n - 1) / n * S / BW + (n - 1) * LAT
    for fn in (all_gather_s, reduce_scatter_s, all_to_all_s):
        assert fn(np.array([S]), np.array([n]), BW, LAT)[0] == pytest.approx(expected, rel=1e-12)


def test_group_of_one_costs_nothing() -> None:
    """A collective over one rank takes no time, whatever the buffer, bandwidth and latency."""
    for fn in (all_reduce_s, all_gather_s, reduce_scatter_s, all_to_all_s):
        assert fn(np.array([S, 0.0]), np.array([1, 1]), BW, LAT).tolist() == [0.0, 0.0]


def test_all_reduce_is_reduce_scatter_plus_all_gather_in_bandwidth() -> None:
    """Bandwidth term: an all-reduce moves what a reduce-scatter followed by an all-gather moves."""
    n = np.array(SIZES, dtype=float)
    ar = all_reduce_s(np.full_like(n, S), n, BW, 0.0)
    rs_ag = reduce_scatter_s(np.full_like(n, S), n, BW, 0.0) + all_gather_s(np.full_like(n, S), n, BW, 0.0)
    np.testing.assert_allclose(ar, rs_ag, rtol=1e-12)


def test_vectorised_over_sizes() -> None:
    """One call over an array of group sizes equals a call per size."""
    n = np.array([1, *SIZES], dtype=float)
    batch = all_reduce_s(np.full_like(n, S), n, BW, LAT)
    single = [all_reduce_s(np.array([S]), np.array([k]), BW, LAT)[0] for k in n]
    np.testing.assert_array_equal(batch, single)


def test_send_recv() -> None:
    """Send/recv is S/bw + lat when active and free when not."""
    t = send_recv_s(np.array([S, S]), BW, LAT, np.array([True, False]))
    assert t[0] == pytest.approx(S / BW + LAT, rel=1e-12)
    assert t[1] == 0.0


@pytest.mark.parametrize("name", ["colossus", "llama3-16k", "selene"])
def test_tp_group_stays_in_node(name: str) -> None:
    """A tp group of 8 adjacent ranks on an 8-GPU node runs at the achievable scale-up bandwidth."""
    c = cluster(name)
    link = group_link(c, np.array([8.0]), np.array([1.0]))
    scale_up = c.accelerator.scale_up_bandwidth_bytes_per_s * c.scale_up_achievable_fraction
    assert link.bandwidth_bytes_per_s[0] == pytest.approx(scale_up, rel=1e-12)
    assert not link.crosses_fabric[0]
    assert link.latency_s[0] == c.scale_up_latency_s


@pytest.mark.parametrize("name", ["colossus", "llama3-16k", "selene"])
@pytest.mark.parametrize("size", [2, 16, 1024])
def test_strided_dp_group_crosses_fabric(name: str, size: int) -> None:
    """A dp group with stride 8 (one member per node) runs at the per-GPU NIC rate x the achievable fraction."""
    c = cluster(name)
    assert c.fabric.oversubscription == 1.0
    link = group_link(c, np.array([float(size)]), np.array([8.0]))
    nic = c.scale_out_bandwidth_per_gpu_bytes_per_s * c.fabric.achievable_fraction
    assert link.bandwidth_bytes_per_s[0] == pytest.approx(nic, rel=1e-12)
    assert link.crosses_fabric[0]
    assert link.latency_s[0] == c.fabric.link_latency_s


def test_oversubscription_divides_fabric_bandwidth() -> None:
    """A 1:4 oversubscribed fabric gives a cross-node group a quarter of the non-blocking bandwidth."""
    c1 = cluster("llama3-16k")
    fabric = {**entry("fabrics", "roce"), "oversubscription": 4.0}
    c4 = cluster("llama3-16k", fabric=fabric)
    args = (np.array([64.0]), np.array([8.0]))
    assert group_link(c4, *args).bandwidth_bytes_per_s[0] == pytest.approx(
        group_link(c1, *args).bandwidth_bytes_per_s[0] / 4, rel=1e-12)


def test_all_to_all_bandwidth_between_scale_up_and_nic() -> None:
    """All-to-all bandwidth: scale-up inside a node, NIC/remote-share across nodes (between the two), NIC if all remote."""
    c = cluster("colossus")
    scale_up = c.accelerator.scale_up_bandwidth_bytes_per_s * c.scale_up_achievable_fraction
    nic = c.scale_out_bandwidth_per_gpu_bytes_per_s * c.fabric.achievable_fraction
    sizes = np.array([8.0, 16.0, 32.0, 64.0])
    link = all_to_all_link(c, sizes, np.ones_like(sizes))
    bw = link.bandwidth_bytes_per_s
    assert bw[0] == pytest.approx(scale_up, rel=1e-12) and not link.crosses_fabric[0]
    assert np.all((bw[1:] > nic) & (bw[1:] < scale_up))
    assert np.all(link.crosses_fabric[1:])
    assert np.all(np.diff(bw) <= 0)
    # a remote share r of the bytes over the NIC: bw = nic / r when the NIC is the bottleneck
    remote_share = (sizes[1:] - 8) / (sizes[1:] - 1)
    np.testing.assert_allclose(bw[1:], nic / remote_share, rtol=1e-12)
    # with stride 8 every peer is remote: the NIC rate exactly
    strided = all_to_all_link(c, np.array([16.0]), np.array([8.0]))
    assert strided.bandwidth_bytes_per_s[0] == pytest.approx(nic, rel=1e-12)
