"""Power of a training run from its mechanisms: how busy the GPUs are over a step, what the servers around them draw,
what the power supplies lose, and the network, storage and facility on top.

GPU: a board draws more the larger the share of time its SMs are busy, from the floor it draws holding a CUDA
context with no kernel running (``idle_power_w``) to its power limit (``tdp_w``):

    P_gpu = P_idle + (P_tdp - P_idle) x activity

(on an H200, nvidia-smi power follows idle + slope x DCGM SM-activity within ~20 W from 4% to 89% activity,
whatever the tensor-core share: accelerators.yaml power header). A step's activity comes from its breakdown
(perf.step.PARTS): compute, recompute and the optimizer keep every SM busy (a tensor-core GEMM draws the power
limit whatever the precision); exposed communication and the pipeline bubble (a stage waiting inside a receive)
keep only the collective's thread blocks busy, ``collective_sms`` of the ``compute_units``; offloading waits on the
copy engines with the SMs idle. So a communication-bound step draws less than a compute-bound one, and no step draws
more than TDP or less than the idle floor. An accelerator without an idle figure is taken at TDP throughout.

Node: GPUs + the server's other parts at a training job's load (the cluster's ``host_power``, else the
accelerator's reference server's, scaled per GPU to the node's GPU count) + the scale-out NICs and their node-side
optics, on the DC side of the power supplies; at the AC input, divided by the supplies' efficiency.

IT power = nodes (AC) + the scale-out network's switches and switch-side optics (the fabric's counts, catalog
figures at face value) + storage (per GPU). ``peak`` is the draw while every GPU computes (activity 1: the top of a
step, host parts at their training draw), not a nameplate rating. Facility power = IT power x PUE (The Green Grid:
total facility / IT equipment power).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from ..network.report import FabricReport
from ..spec.hardware import Accelerator, Cluster, HostPower

BUSY_PARTS = ("compute", "recompute", "optimizer")  # every SM busy
COMMUNICATION_PARTS = ("tp_comm", "cp_comm", "ep_comm", "pp_comm", "dp_comm", "pipeline_bubble")  # collective SMs
WAIT_PARTS = ("offload",)  # the copy engines move data, the SMs wait


class NodePower(BaseModel):
    """One node's draw in W: DC parts and the AC input (``ac_w`` = ``dc_w`` / the supplies' efficiency)."""

    model_config = ConfigDict(frozen=True)

    gpus_w: float
    host_w: float  # the server's other parts (CPUs, memory, front-end NICs, switch chips, drives, fans, boards)
    nics_w: float  # scale-out NICs and their node-side optics
    dc_w: float
    conversion_w: float  # power-supply losses
    ac_w: float
    host_parts_w: dict[str, float]


class PowerBreakdown(BaseModel):
    """Watts; ``it_w`` is the sum of the parts, ``facility_w`` = ``it_w`` x PUE. ``hosts_w`` holds the servers'
    non-GPU parts and every power-supply loss of the nodes; ``network_w`` the fabric's switches, NICs and optics."""

    model_config = ConfigDict(frozen=True)

    gpus_w: float
    hosts_w: float
    network_w: float
    storage_w: float
    it_w: float
    facility_w: float


def gpu_activity(breakdown: Mapping[str, float], acc: Accelerator) -> float:
    """The share of a step the GPU's SMs are busy (0..1), from a StepReport's breakdown (parts in seconds):
    busy parts count whole, communication and bubble at collective_sms / compute_units (whole when the
    accelerator does not say), waits for the host not at all."""
    total = sum(breakdown.values())
    if total <= 0:
        return 1.0
    comm = 1.0 if acc.collective_sms is None else min(1.0, acc.collective_sms / acc.compute_units)
    busy = sum(breakdown.get(p, 0.0) for p in BUSY_PARTS)
    talk = sum(breakdown.get(p, 0.0) for p in COMMUNICATION_PARTS)
    unknown = total - busy - talk - sum(breakdown.get(p, 0.0) for p in WAIT_PARTS)  # a part this module does not
    return min(1.0, max(0.0, (busy + max(unknown, 0.0) + comm * talk) / total))  # know counts as busy


def gpu_power_w(acc: Accelerator, activity: float) -> float:
    """One GPU's average board power at an SM activity in [0, 1]: idle floor + (TDP - floor) x activity."""
    a = min(1.0, max(0.0, activity))
    if acc.idle_power_w is None:
        return acc.tdp_w
    return acc.idle_power_w + (acc.tdp_w - acc.idle_power_w) * a


def host_parts_w(cluster: Cluster) -> tuple[dict[str, float], float]:
    """The non-GPU parts of one of the cluster's nodes (W, DC, scaled per GPU from the parts' own server) and the
    power supplies' efficiency; no parts and an efficiency of 1 when the catalog has none."""
    host: HostPower | None = cluster.host
    if host is None:
        return {}, 1.0
    scale = cluster.gpus_per_node / host.gpus_per_node
    return {k: v * scale for k, v in host.parts_w().items()}, host.psu_efficiency


def node_power(cluster: Cluster, activity: float) -> NodePower:
    """One node of the cluster while its GPUs are busy ``activity`` of the time."""
    acc, fab = cluster.accelerator, cluster.fabric
    gpus = cluster.gpus_per_node * gpu_power_w(acc, activity)
    parts, efficiency = host_parts_w(cluster)
    host = sum(parts.values())
    per_nic = (fab.nic.power_w if fab.nic else 0.0) + (fab.optic.power_w if fab.optic else 0.0)
    nics = cluster.gpus_per_node * per_nic  # one scale-out NIC per GPU (rail-optimised fabrics), one optic at it
    dc = gpus + host + nics
    ac = dc / efficiency
    return NodePower(gpus_w=gpus, host_w=host, nics_w=nics, dc_w=dc, conversion_w=ac - dc, ac_w=ac,
                     host_parts_w=parts)


def power(cluster: Cluster, fabric: FabricReport, pue: float, *, activity: float) -> PowerBreakdown:
    """The cluster's power with its GPUs busy ``activity`` of the time (1: every GPU computing)."""
    nodes = math.ceil(cluster.num_gpus / cluster.gpus_per_node)
    node = node_power(cluster, activity)
    gpus = cluster.num_gpus * gpu_power_w(cluster.accelerator, activity)
    network = fabric.power_w["total"]  # switches, NICs and every optic
    hosts = nodes * (node.host_w + node.conversion_w)  # host parts and every supply loss of the nodes
    storage = cluster.num_gpus * (cluster.storage_power_per_gpu_w or 0.0)
    it = gpus + hosts + network + storage
    return PowerBreakdown(gpus_w=gpus, hosts_w=hosts, network_w=network, storage_w=storage, it_w=it,
                          facility_w=it * pue)
