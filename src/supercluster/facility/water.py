"""Water of evaporative cooling: the heat a tower rejects by evaporation, plus its blowdown.

Every kWh of heat evaporates 3.6e6 J / 2.443e6 J/kg = 1.47 kg of water (latent heat of vaporisation at 25 C:
44,020 kJ/kmol / 18.015 kg/kmol, NBS Circular 500). Dissolved solids concentrate in the recirculating water; to hold
them at `cycles` times the make-up concentration the tower bleeds blowdown = evaporation / (cycles - 1), so make-up
water = evaporation x cycles / (cycles - 1) (1.77-2.21 L/kWh of heat for 6..3 cycles). Drift (~0.001-0.005% of the
circulating flow with modern eliminators) is left out. All electrical power of the facility ends as heat; the share
of the year's heat rejected by evaporation (the rest by dry coolers or economisers) is the site's.
"""

from __future__ import annotations

from ..spec.hardware import Facility
from ..units import J_PER_KWH
from .power import PowerBreakdown

LATENT_HEAT_J_PER_KG = 2.443e6  # water at 25 C


def evaporation_l_per_kwh_heat() -> float:
    """Litres evaporated per kWh of heat rejected (1 kg of water = 1 L)."""
    return J_PER_KWH / LATENT_HEAT_J_PER_KG


def site_wue_l_per_kwh(f: Facility, average: PowerBreakdown) -> float | None:
    """Site water per kWh of IT energy: measured (``wue_l_per_kwh``) or from the cooling towers."""
    if f.wue_l_per_kwh is not None:
        return f.wue_l_per_kwh
    if f.cooling_tower_cycles is None or f.evaporative_heat_share is None:
        return None
    makeup = evaporation_l_per_kwh_heat() * f.cooling_tower_cycles / (f.cooling_tower_cycles - 1.0)
    heat_per_it = average.facility_w / average.it_w  # every watt drawn leaves as heat
    return makeup * f.evaporative_heat_share * heat_per_it
