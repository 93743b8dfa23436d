"""Where a parallel group's traffic goes: inside the scale-up domain or over the scale-out fabric.

Ranks are laid out with the parallel axes in Megatron-LM's default order tp-cp-ep-dp-pp (tp innermost): a group
of ``size`` ranks whose members are ``stride`` ranks apart has min(size, domain/stride) members in each
scale-up domain (one when stride >= domain). A group that stays inside one domain runs at the scale-up
bandwidth; one that spans domains is bounded by the scale-out links: NCCL drives one ring channel per NIC,
so a ring's bus bandwidth is about (members per domain) x (per-GPU scale-out bandwidth), never more than the
scale-up bandwidth (collectives data: ~46-49 GB/s per 400G NIC, ~370-390 GB/s for 8 NICs per node).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec.hardware import Cluster


@dataclass(frozen=True)
class Link:
    """Bus bandwidth (bytes/s) and per-step latency (s) a group reaches; arrays over candidates."""

    bandwidth_bytes_per_s: np.ndarray
    latency_s: np.ndarray
    crosses_fabric: np.ndarray


def achievable_bandwidths(cluster: Cluster) -> tuple[float, float]:
    """(scale-up bus bandwidth per GPU, scale-out bandwidth per GPU) a collective reaches, bytes/s."""
    scale_up = cluster.accelerator.scale_up_bandwidth_bytes_per_s * cluster.scale_up_achievable_fraction
    per_gpu_out = (cluster.scale_out_bandwidth_per_gpu_bytes_per_s * cluster.fabric.achievable_fraction
                   / cluster.fabric.oversubscription)
    return scale_up, per_gpu_out


def members_per_domain(size: np.ndarray, stride: np.ndarray, domain: int) -> np.ndarray:
    size = np.asarray(size, dtype=np.float64)
    stride = np.asarray(stride, dtype=np.float64)
    return np.clip(np.floor(domain / stride), 1.0, size)


def group_link(cluster: Cluster, size: np.ndarray, stride: np.ndarray) -> Link:
    """Bandwidth and latency of a group of ``size`` ranks ``stride`` apart."""
    domain = cluster.domain_gpus
    size = np.asarray(size, dtype=np.float64)
    stride = np.asarray(stride, dtype=np.float64)
    scale_up, per_gpu_out = achievable_bandwidths(cluster)
    inside = size * stride <= domain
    g = members_per_domain(size, stride, domain)
    bw = np.where(inside, scale_up, np.minimum(scale_up, g * per_gpu_out))
    lat = np.where(inside, cluster.scale_up_latency_s, cluster.fabric.link_latency_s)
    return Link(bandwidth_bytes_per_s=bw, latency_s=lat, crosses_fabric=~inside)


def all_to_all_link(cluster: Cluster, size: np.ndarray, stride: np.ndarray) -> Link:
    """All-to-all: the share of a rank's traffic that leaves its domain goes over its own NIC only."""
    domain = cluster.domain_gpus
    size = np.asarray(size, dtype=np.float64)
    stride = np.asarray(stride, dtype=np.float64)
    scale_up, per_gpu_out = achievable_bandwidths(cluster)
    g = members_per_domain(size, stride, domain)
    remote_share = np.where(size > 1, (size - g) / np.maximum(size - 1.0, 1.0), 0.0)
    # time per byte = local part over NVLink and remote part over the NIC, which proceed in parallel
    inv = np.maximum((1.0 - remote_share) / scale_up, remote_share / per_gpu_out)
    bw = 1.0 / np.maximum(inv, 1e-30)
    inside = remote_share <= 0
    lat = np.where(inside, cluster.scale_up_latency_s, cluster.fabric.link_latency_s)
    return Link(bandwidth_bytes_per_s=bw, latency_s=lat, crosses_fabric=~inside)
