"""IT and facility power of a cluster, from its components (catalog figures) and the fabric's counts.

IT power = GPUs (TDP x the average draw during training, or x 1 at peak) + hosts (server power other than GPUs and
scale-out NICs, per node, at the same share of its rating: measured 8-GPU nodes train at ~76-82% of their rated
power as a whole, Latif et al. / Newkirk et al.) + the scale-out network (switches, NICs and optics from the fabric's counts) + storage
(per GPU). Facility power = IT power x PUE (The Green Grid's definition: total facility / IT equipment power).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from ..network.report import FabricReport
from ..spec.hardware import Cluster


class PowerBreakdown(BaseModel):
    """Watts; ``it_w`` is the sum of the parts, ``facility_w`` = ``it_w`` x PUE."""

    model_config = ConfigDict(frozen=True)

    gpus_w: float
    hosts_w: float
    network_w: float
    storage_w: float
    it_w: float
    facility_w: float


def power(cluster: Cluster, fabric: FabricReport, pue: float, *, gpu_fraction: float) -> PowerBreakdown:
    """Power with the GPUs drawing ``gpu_fraction`` of their TDP."""
    nodes = math.ceil(cluster.num_gpus / cluster.gpus_per_node)
    gpus = cluster.num_gpus * cluster.accelerator.tdp_w * gpu_fraction
    hosts = nodes * (cluster.host_power_per_node_w or 0.0) * gpu_fraction
    network = fabric.power_w["total"]
    storage = cluster.num_gpus * (cluster.storage_power_per_gpu_w or 0.0)
    it = gpus + hosts + network + storage
    return PowerBreakdown(gpus_w=gpus, hosts_w=hosts, network_w=network, storage_w=storage, it_w=it,
                          facility_w=it * pue)
