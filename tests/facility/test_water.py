"""The tower model by month: wet-bulb (Stull 2011), the evaporation ratio (USGS, Diehl et al. 2013), and the
site's monthly climate from the catalog."""

from __future__ import annotations

from typing import Any

import pytest
from test_ledger import FACILITY, scenario

from supercluster import InputError, plan
from supercluster.facility import facility_ledger
from supercluster.facility.water import (
    DAYS_PER_MONTH,
    evaporation_l_per_kwh_heat,
    evaporation_ratio,
    wet_bulb_c,
)
from supercluster.spec import catalog

CLIMATE = {"monthly_mean_temperature_c": [0.0, 5, 10, 15, 20, 25, 30, 30, 25, 20, 10, 0],
           "monthly_relative_humidity_pct": [70.0] * 12, "source": "test"}


def test_stull_reproduces_his_worked_example() -> None:
    """Stull (2011): T = 20 C, RH = 50% gives a wet-bulb of 13.7 C; saturated air is its own wet-bulb (~)."""
    assert wet_bulb_c(20.0, 50.0) == pytest.approx(13.7, abs=0.05)
    assert wet_bulb_c(25.0, 99.0) == pytest.approx(25.0, abs=0.3)
    assert wet_bulb_c(30.0, 30.0) < wet_bulb_c(30.0, 60.0) < 30.0


def test_evaporation_ratio_grows_with_air_temperature() -> None:
    """USGS fit: 0.733 at 0 C, 0.820 at 20 C, 0.902 at 30 C (more sensible heat in cold air)."""
    assert evaporation_ratio(0.0) == pytest.approx(0.733, abs=1e-3)
    assert evaporation_ratio(20.0) == pytest.approx(0.820, abs=1e-3)
    assert evaporation_ratio(30.0) == pytest.approx(0.902, abs=1e-3)
    ratios = [evaporation_ratio(t) for t in range(-20, 45)]
    assert ratios == sorted(ratios) and all(0.0 <= r <= 1.0 for r in ratios)


def _towers(**extra: Any) -> dict[str, Any]:
    towers = {k: v for k, v in FACILITY.items() if k != "wue_l_per_kwh"}
    return {**towers, "cooling_tower_cycles": 5.0, "evaporative_heat_share": 1.0, **extra}


def test_a_climate_gives_monthly_water_below_the_upper_bound() -> None:
    """With a climate the yearly WUE is the day-weighted mean of the months, each the full-evaporation figure x
    that month's evaporation ratio; the hottest month uses the most."""
    s0, s1 = scenario(_towers()), scenario(_towers(climate=CLIMATE))
    f0, f1 = facility_ledger(s0, plan(s0).step), facility_ledger(s1, plan(s1).step)
    assert f0.water_by_month is None and f0.water_m3_per_day_peak_month == f0.water_m3_per_day
    full = evaporation_l_per_kwh_heat() * 5 / 4 * 1.25
    assert f0.wue_l_per_kwh == pytest.approx(full)
    months = f1.water_by_month
    assert months is not None and len(months) == 12
    for m, t in zip(months, CLIMATE["monthly_mean_temperature_c"], strict=True):
        assert m.wue_l_per_kwh == pytest.approx(full * evaporation_ratio(t))
    mean = sum(d * m.wue_l_per_kwh for d, m in zip(DAYS_PER_MONTH, months, strict=True)) / sum(DAYS_PER_MONTH)
    assert f1.wue_l_per_kwh == pytest.approx(mean)
    assert f1.wue_l_per_kwh < f0.wue_l_per_kwh
    assert f1.water_m3_per_day < f1.water_m3_per_day_peak_month < f0.water_m3_per_day
    # each month's water per day: the average IT power at that month's WUE; the peak month's is the largest
    daily = [m.water_m3_per_day for m in months]
    assert all(d is not None for d in daily)
    for m in months:
        assert m.water_m3_per_day == pytest.approx(f1.water_m3_per_day * m.wue_l_per_kwh / f1.wue_l_per_kwh)
    assert max(d for d in daily if d is not None) == pytest.approx(f1.water_m3_per_day_peak_month)


def test_memphis_has_a_cited_climate_and_a_summer_peak() -> None:
    body = catalog.entry("facilities", "memphis-colossus")
    assert body["climate"]["source"].strip()
    temps = body["climate"]["monthly_mean_temperature_c"]
    assert max(range(12), key=lambda i: temps[i]) in (6, 7)  # July or August


@pytest.mark.parametrize(("climate", "fragment"), [
    ({**CLIMATE, "monthly_mean_temperature_c": [10.0] * 11}, "monthly_mean_temperature_c"),
    ({**CLIMATE, "monthly_relative_humidity_pct": [150.0] * 12}, "monthly_relative_humidity_pct"),
    ({**CLIMATE, "monthly_mean_temperature_c": [80.0] * 12}, "monthly_mean_temperature_c"),
])
def test_bad_climate_is_located(climate: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputError, match=f"facility.climate.*{fragment}|{fragment}"):
        scenario(_towers(climate=climate))
