"""Water of evaporative cooling: the heat a tower rejects by evaporation, plus its blowdown; by month of the year.

Every kWh of heat evaporated takes 3.6e6 J / 2.443e6 J/kg = 1.47 kg of water (latent heat of vaporisation at 25 C:
44,020 kJ/kmol / 18.015 kg/kmol, NBS Circular 500). A wet tower does not reject all its heat by evaporation: part
leaves as sensible heat of the air, more of it the colder the air. The evaporation ratio (latent / total heat) is
the USGS heat-budget fit in the ambient air temperature T (deg C): ER = 1 - (26.7 - 0.345 T + 0.00109 T^2
- 0.000279 T^3) / 100 (Diehl, Harris, Murphy, Hutson & Ladd 2013, 'Methods for estimating water consumption for
thermoelectric power plants in the United States', USGS SIR 2013-5188, as implemented in UKAEA PROCESS
water_use.py): 0.73 at 0 C, 0.82 at 20 C, 0.90 at 30 C. Without a climate every kWh of tower heat counts as
evaporated (ER = 1, an upper bound).

Dissolved solids concentrate in the recirculating water; to hold them at `cycles` times the make-up concentration
the tower bleeds blowdown = evaporation / (cycles - 1), so make-up = evaporation x cycles / (cycles - 1). Drift
(~0.001-0.005% of the circulating flow with modern eliminators) is left out. All electrical power of the facility
ends as heat; the share of it sent through the wet towers (the rest by dry coolers) is the cooling design's.

The site's monthly wet-bulb temperature (the floor a tower can cool water to, what sizes it) is reported beside,
from the monthly mean temperature and relative humidity by Stull (2011, 'Wet-bulb temperature from relative humidity
and air temperature', J. Appl. Meteor. Climatol. 50, 2267-2269; valid for RH 5-99% and -20..50 C, mean absolute
error < 0.3 C).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from ..spec.hardware import Facility
from ..units import J_PER_KWH
from .power import PowerBreakdown

LATENT_HEAT_J_PER_KG = 2.443e6  # water at 25 C
DAYS_PER_MONTH = (31, 28.25, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def evaporation_l_per_kwh_heat() -> float:
    """Litres evaporated per kWh of heat rejected by evaporation (1 kg of water = 1 L)."""
    return J_PER_KWH / LATENT_HEAT_J_PER_KG


def evaporation_ratio(air_temperature_c: float) -> float:
    """Share of a wet tower's heat rejected by evaporation at this ambient temperature (Diehl et al. 2013)."""
    t = air_temperature_c
    sensible_pct = 26.7 - 0.345 * t + 0.00109 * t ** 2 - 0.000279 * t ** 3
    return min(1.0, max(0.0, 1.0 - sensible_pct / 100.0))


def wet_bulb_c(temperature_c: float, relative_humidity_pct: float) -> float:
    """Wet-bulb temperature from air temperature and relative humidity at sea-level pressure (Stull 2011)."""
    t, rh = temperature_c, relative_humidity_pct
    return (t * math.atan(0.151977 * math.sqrt(rh + 8.313659)) + math.atan(t + rh) - math.atan(rh - 1.676331)
            + 0.00391838 * rh ** 1.5 * math.atan(0.023101 * rh) - 4.686035)


class MonthlyWater(BaseModel):
    """One month of the tower model (January first)."""

    model_config = ConfigDict(frozen=True)

    month: int
    temperature_c: float
    wet_bulb_c: float
    evaporation_ratio: float
    wue_l_per_kwh: float
    water_m3_per_day: float | None = None  # site water per day at the training average power (facility.ledger)


def monthly_wue(f: Facility, average: PowerBreakdown) -> list[MonthlyWater] | None:
    """Site water per kWh of IT energy, month by month, from the towers and the site's climate (None without one)."""
    if f.climate is None or f.wue_l_per_kwh is not None or f.cooling_tower_cycles is None \
            or f.evaporative_heat_share is None:
        return None
    full = _tower_wue_at_full_evaporation(f, average)
    c = f.climate
    return [MonthlyWater(month=m + 1, temperature_c=t, wet_bulb_c=wet_bulb_c(t, rh),
                         evaporation_ratio=evaporation_ratio(t), wue_l_per_kwh=full * evaporation_ratio(t))
            for m, (t, rh) in enumerate(zip(c.monthly_mean_temperature_c, c.monthly_relative_humidity_pct,
                                            strict=True))]


def site_wue_l_per_kwh(f: Facility, average: PowerBreakdown) -> float | None:
    """Site water per kWh of IT energy over a year: measured (``wue_l_per_kwh``), or from the cooling towers (the
    day-weighted mean of the months where the site has a climate; every kWh evaporated where it has none)."""
    if f.wue_l_per_kwh is not None:
        return f.wue_l_per_kwh
    if f.cooling_tower_cycles is None or f.evaporative_heat_share is None:
        return None
    months = monthly_wue(f, average)
    if months is None:
        return _tower_wue_at_full_evaporation(f, average)
    return sum(d * m.wue_l_per_kwh for d, m in zip(DAYS_PER_MONTH, months, strict=True)) / sum(DAYS_PER_MONTH)


def _tower_wue_at_full_evaporation(f: Facility, average: PowerBreakdown) -> float:
    assert f.cooling_tower_cycles is not None and f.evaporative_heat_share is not None
    makeup = evaporation_l_per_kwh_heat() * f.cooling_tower_cycles / (f.cooling_tower_cycles - 1.0)
    heat_per_it = average.facility_w / average.it_w  # every watt drawn leaves as heat
    return makeup * f.evaporative_heat_share * heat_per_it
