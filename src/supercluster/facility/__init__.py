"""The facility: power, water, carbon and money of a cluster and of a training run."""

from .ledger import FacilityReport, facility_ledger
from .power import NodePower, PowerBreakdown, gpu_activity, gpu_power_w, node_power, power, window_activity

__all__ = ["FacilityReport", "NodePower", "PowerBreakdown", "facility_ledger", "gpu_activity", "gpu_power_w",
           "node_power", "power", "window_activity"]
