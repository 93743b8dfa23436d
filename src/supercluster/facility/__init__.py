"""The facility: power, water, carbon and money of a cluster and of a training run."""

from .ledger import FacilityReport, facility_ledger
from .power import PowerBreakdown, power

__all__ = ["FacilityReport", "PowerBreakdown", "facility_ledger", "power"]
