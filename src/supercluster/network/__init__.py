"""The network: the fabric's topology, where parallel groups sit, and what their collectives cost."""

from .cost import ALGORITHMS, BUS_FACTOR, OPS, CollectiveTimes, collective_time, scale_out_bandwidth
from .placement import DEFAULT_ORDER, LEVEL_NAMES, Placement, axis_strides, place
from .topology import Tier, Topology, build_topology, capacity

__all__ = [
    "ALGORITHMS",
    "BUS_FACTOR",
    "DEFAULT_ORDER",
    "LEVEL_NAMES",
    "OPS",
    "CollectiveTimes",
    "Placement",
    "Tier",
    "Topology",
    "axis_strides",
    "build_topology",
    "capacity",
    "collective_time",
    "place",
    "scale_out_bandwidth",
]
