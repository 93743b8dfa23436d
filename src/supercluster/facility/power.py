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
copy engines with the SMs idle, and so does the host work of every step (the calibrated ``step_overhead_s`` inside
the optimizer part: kernel launches, the gradient norm's host synchronisation, logging, the next batch). So a communication-bound step draws less than a compute-bound one, and no step draws
more than TDP or less than the idle floor. An accelerator without an idle figure is taken at TDP throughout.
A measured window the GPUs work only part of (a short run's set-up inside its timed window) draws the working
activity times the working share (window_activity): the SMs idle through the rest.

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


def activity_phases(breakdown: Mapping[str, float], acc: Accelerator, host_wait_s: float = 0.0
                    ) -> list[tuple[str, float, float]]:
    """A step's breakdown (parts in seconds) grouped by how busy the parts keep the SMs: (phase, seconds, activity).
    Busy parts count whole; communication and the bubble at collective_sms / compute_units (whole when the
    accelerator does not say); waits for the host not at all: offloading's, and ``host_wait_s`` of the optimizer
    part (the step's host work, StepReport.host_wait_s); a part this module does not know counts as busy."""
    comm = 1.0 if acc.collective_sms is None else min(1.0, acc.collective_sms / acc.compute_units)
    host_wait_s = min(max(host_wait_s, 0.0), breakdown.get("optimizer", 0.0))
    busy = sum(breakdown.get(p, 0.0) for p in BUSY_PARTS) - host_wait_s
    talk = sum(breakdown.get(p, 0.0) for p in COMMUNICATION_PARTS)
    wait = sum(breakdown.get(p, 0.0) for p in WAIT_PARTS) + host_wait_s
    busy += max(sum(breakdown.values()) - busy - talk - wait, 0.0)
    return [("compute", busy, 1.0), ("communication and pipeline bubble", talk, comm), ("waiting on the host", wait, 0.0)]


def gpu_activity(breakdown: Mapping[str, float], acc: Accelerator, host_wait_s: float = 0.0) -> float:
    """The share of a step the GPU's SMs are busy (0..1): the time-weighted activity of its phases."""
    phases = activity_phases(breakdown, acc, host_wait_s)
    total = sum(seconds for _, seconds, _ in phases)
    if total <= 0:
        return 1.0
    return min(1.0, max(0.0, sum(seconds * a for _, seconds, a in phases) / total))


def window_activity(activity: float, busy_s: float, window_s: float) -> float:
    """The SMs' activity averaged over a measured window the GPUs work ``busy_s`` of at ``activity`` (training steps,
    evaluation passes) and wait through the rest with the SMs idle (a run's set-up inside its timed window: the
    first iteration's, the data loaders', the first evaluation's). Board power is linear in activity
    (gpu_power_w), so the window's mean draw is the draw at this activity."""
    if window_s <= 0:
        return activity
    return activity * min(1.0, max(busy_s, 0.0) / window_s)


class PowerPhase(BaseModel):
    """One kind of time in a step and the cluster's draw through it: ``seconds`` of the step, ``activity`` of the
    SMs, IT and facility watts."""

    model_config = ConfigDict(frozen=True)

    phase: str
    seconds: float
    activity: float
    it_w: float
    facility_w: float


class StepPower(BaseModel):
    """The draw over one training step, phase by phase (compute, exposed communication and pipeline bubble, waits
    for the host), its lowest and highest level and the swing between them, and the floor of a cluster that stops
    (a checkpoint stall, a restart: every GPU idle). W, IT and facility side; the swing at the IT boundary, which is
    what the grid connection sees within a step (the cooling plant's draw does not follow a step)."""

    model_config = ConfigDict(frozen=True)

    phases: list[PowerPhase]
    min_it_w: float
    max_it_w: float
    swing_it_w: float  # max - min within a step
    stopped_it_w: float  # every GPU idle: a checkpoint stall, a restart
    swing_to_stopped_it_w: float  # max - stopped: a synchronous stop or start of the whole job


def step_power(cluster: Cluster, fabric: FabricReport, pue: float, breakdown: Mapping[str, float],
               host_wait_s: float = 0.0) -> StepPower:
    """The step's draw phase by phase (the breakdown's parts grouped by how busy they keep the SMs: see
    gpu_activity). The order inside a real step interleaves them; the levels and their durations are what the
    breakdown gives. Llama 3's operators saw synchronous swings of tens of MW across a data centre (Dubey et al.,
    arXiv:2407.21783, Sec. 3.3.4); this is that swing for one job."""
    phases = []
    for name, seconds, activity in activity_phases(breakdown, cluster.accelerator, host_wait_s):
        if seconds > 0:
            p = power(cluster, fabric, pue, activity=activity)
            phases.append(PowerPhase(phase=name, seconds=seconds, activity=activity, it_w=p.it_w,
                                     facility_w=p.facility_w))
    stopped = power(cluster, fabric, pue, activity=0.0).it_w
    if not phases:
        return StepPower(phases=[], min_it_w=stopped, max_it_w=stopped, swing_it_w=0.0, stopped_it_w=stopped,
                         swing_to_stopped_it_w=0.0)
    low, high = min(p.it_w for p in phases), max(p.it_w for p in phases)
    return StepPower(phases=phases, min_it_w=low, max_it_w=high, swing_it_w=high - low, stopped_it_w=stopped,
                     swing_to_stopped_it_w=high - stopped)


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
