"""The facility ledger of a training run: power, energy, homes, water, carbon and money, each with its inputs.

- Power from the step (facility/power.py): the GPUs' activity over the step's breakdown sets their average draw;
  ``peak`` is every GPU computing (the top of a step), ``average`` the step as a whole.
- Energy of the run = average facility power x time-to-train (failure-free).
- Homes equivalent = facility power / the average household's power (its yearly kWh / 8,760 h; EIA).
- Site water = IT energy x WUE (L per kWh of IT energy, The Green Grid's WUE), the WUE measured or from the
  cooling towers and the site's monthly climate (facility/water.py); per day at the average power, over the year
  and in the peak month. Water consumed to generate the electricity
  is reported apart, where the facility gives it.
- CO2 = facility energy x ((1 - on-site share) x grid intensity + on-site share x on-site intensity).
- Capex = GPUs + servers + network (switches, NICs, optics from the fabric's counts) + storage + building, power
  and cooling infrastructure (per W of peak IT load). Cost per hour = IT capex / IT depreciation + facility capex
  / facility depreciation + maintenance share of IT capex per year + electricity and water at the average power;
  cost of the run = cost per hour x its hours; cost per GPU-hour = cost per hour / GPUs, beside a cited cloud price.
A figure whose inputs the catalog lacks is left out (None) and named in ``missing``.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from ..network.report import FabricReport, fabric_report
from ..perf.report import StepReport
from ..spec.scenario import Scenario
from ..units import HOURS_PER_YEAR, J_PER_KWH, SECONDS_PER_HOUR, kwh_per_year_to_w
from .power import PowerBreakdown, StepPower, gpu_activity, gpu_power_w, power, step_power
from .water import MonthlyWater, monthly_wue, site_wue_l_per_kwh


class FacilityReport(BaseModel):
    """SI inside: W, J, m3, kg, USD, s."""

    model_config = ConfigDict(frozen=True)

    facility: str
    pue: float
    gpu_activity: float  # share of the step the GPUs' SMs are busy (facility.power.gpu_activity)
    gpu_training_power_fraction: float  # the GPUs' average draw over the step / TDP
    peak: PowerBreakdown
    average: PowerBreakdown
    step_power: StepPower  # the draw over a step, its swing, and the floor of a stopped job
    homes_equivalent_peak: float | None
    homes_equivalent_average: float | None
    run_time_s: float
    run_energy_it_j: float
    run_energy_facility_j: float
    wue_l_per_kwh: float | None
    water_m3_per_day: float | None
    water_by_month: list[MonthlyWater] | None  # the tower model month by month, where the site has a climate
    water_m3_per_day_peak_month: float | None
    run_water_m3: float | None
    run_generation_water_m3: float | None
    run_co2_kg: float | None
    co2_kg_per_year: float | None
    capex_usd: dict[str, float]
    cost_per_hour_usd: dict[str, float]
    cost_per_gpu_hour_usd: float | None
    cloud_usd_per_gpu_hour: float | None
    run_cost_usd: float | None
    estimates: list[str]
    missing: list[str]


def _m3_per_day(it_w: float, wue_l_per_kwh: float) -> float:
    return it_w * 86400.0 / J_PER_KWH * wue_l_per_kwh / 1000.0


def facility_ledger(s: Scenario, step: StepReport, fabric: FabricReport | None = None) -> FacilityReport | None:
    """The ledger of a scenario's run, or None when the scenario names no facility."""
    f = s.facility
    if f is None:
        return None
    cluster = s.cluster
    acc = cluster.accelerator
    fabric = fabric or fabric_report(cluster)
    missing: list[str] = []
    estimates = [name for name, cited in (("facility", f), ("cluster", cluster), ("accelerator", acc),
                                          ("fabric", cluster.fabric)) if cited.estimate]

    activity = gpu_activity(step.breakdown, acc, step.host_wait_s)
    if acc.idle_power_w is None:
        missing.append("accelerator.idle_power_w (GPUs taken at TDP)")
    if acc.collective_sms is None:
        missing.append("accelerator.collective_sms (communication counted as compute)")
    if cluster.host is None:
        missing.append("cluster.host_power or accelerator.server_power (servers counted as their GPUs and NICs)")
    if cluster.storage_power_per_gpu_w is None:
        missing.append("cluster.storage_power_per_gpu_w (counted as 0)")
    peak, capex, capex_missing = build_figures(s, fabric)
    avg = power(cluster, fabric, f.pue, activity=activity)

    home_w = kwh_per_year_to_w(f.household_kwh_per_year) if f.household_kwh_per_year else None
    if home_w is None:
        missing.append("facility.household_kwh_per_year")
    t = step.time_to_train_s
    e_it = avg.it_w * t
    e_fac = avg.facility_w * t
    water_day = run_water = generation_water = None
    wue = site_wue_l_per_kwh(f, avg)
    months = monthly_wue(f, avg)
    if months:  # each month's site water per day at the training average power
        months = [m.model_copy(update={"water_m3_per_day": _m3_per_day(avg.it_w, m.wue_l_per_kwh)}) for m in months]
    water_day_peak = None
    if wue is not None:
        water_day = _m3_per_day(avg.it_w, wue)
        run_water = e_it / J_PER_KWH * wue / 1000.0
        water_day_peak = _m3_per_day(avg.it_w, max(m.wue_l_per_kwh for m in months)) if months else water_day
    else:
        missing.append("facility.wue_l_per_kwh or facility.cooling_tower_cycles + evaporative_heat_share")
    if f.generation_water_l_per_kwh is not None:
        generation_water = e_fac / J_PER_KWH * f.generation_water_l_per_kwh / 1000.0
    co2 = co2_year = None
    if f.grid_carbon_g_per_kwh is not None:
        g_per_kwh = (1 - f.onsite_generation_share) * f.grid_carbon_g_per_kwh + \
            f.onsite_generation_share * f.onsite_carbon_g_per_kwh
        co2 = e_fac / J_PER_KWH * g_per_kwh / 1000.0
        co2_year = avg.facility_w * HOURS_PER_YEAR / 1000.0 * g_per_kwh / 1000.0
    else:
        missing.append("facility.grid_carbon_g_per_kwh")

    missing += capex_missing
    per_hour: dict[str, float] = {}
    it_capex = sum(v for k, v in capex.items() if k not in ("facility", "total"))
    per_hour["it_depreciation"] = it_capex / (f.it_depreciation_years * HOURS_PER_YEAR)
    if "facility" in capex:
        per_hour["facility_depreciation"] = capex["facility"] / (f.facility_depreciation_years * HOURS_PER_YEAR)
    per_hour["maintenance"] = it_capex * f.maintenance_share_per_year / HOURS_PER_YEAR
    if f.electricity_usd_per_kwh is not None:
        per_hour["electricity"] = avg.facility_w / 1000.0 * f.electricity_usd_per_kwh
    else:
        missing.append("facility.electricity_usd_per_kwh")
    if f.water_usd_per_m3 is not None and water_day is not None:
        per_hour["water"] = water_day / 24.0 * f.water_usd_per_m3
    total_hour = sum(per_hour.values())
    complete = not capex_missing and f.electricity_usd_per_kwh is not None
    return FacilityReport(
        facility=f.name, pue=f.pue, gpu_activity=activity,
        gpu_training_power_fraction=gpu_power_w(acc, activity) / acc.tdp_w, peak=peak, average=avg,
        step_power=step_power(cluster, fabric, f.pue, step.breakdown, step.host_wait_s),
        homes_equivalent_peak=peak.facility_w / home_w if home_w else None,
        homes_equivalent_average=avg.facility_w / home_w if home_w else None,
        run_time_s=t, run_energy_it_j=e_it, run_energy_facility_j=e_fac, wue_l_per_kwh=wue,
        water_m3_per_day=water_day, water_by_month=months, water_m3_per_day_peak_month=water_day_peak,
        run_water_m3=run_water, run_generation_water_m3=generation_water,
        run_co2_kg=co2, co2_kg_per_year=co2_year, capex_usd=capex,
        cost_per_hour_usd={**per_hour, "total": total_hour},
        cost_per_gpu_hour_usd=total_hour / cluster.num_gpus if complete else None,
        cloud_usd_per_gpu_hour=acc.cloud_usd_per_gpu_hour,
        run_cost_usd=total_hour * t / SECONDS_PER_HOUR if complete else None,
        estimates=estimates, missing=missing)


def build_figures(s: Scenario, fabric: FabricReport | None = None
                  ) -> tuple[PowerBreakdown, dict[str, float], list[str]]:
    """What a cluster costs to build and the most it draws, known before any step is timed: the facility's peak
    power (every GPU computing), the capex by part with its total, and the capex inputs the catalog lacks. The
    scenario must name a facility."""
    assert s.facility is not None
    fabric = fabric or fabric_report(s.cluster)
    peak = power(s.cluster, fabric, s.facility.pue, activity=1.0)
    capex, missing = _capex(s, fabric, peak)
    return peak, {**capex, "total": sum(capex.values())}, missing


def _capex(s: Scenario, fabric: FabricReport, peak: PowerBreakdown) -> tuple[dict[str, float], list[str]]:
    cluster, f = s.cluster, s.facility
    assert f is not None
    acc, fab = cluster.accelerator, cluster.fabric
    nodes = math.ceil(cluster.num_gpus / cluster.gpus_per_node)
    out: dict[str, float] = {}
    missing: list[str] = []
    parts: list[tuple[str, float | None, float, str]] = [
        ("gpus", acc.price_usd, cluster.num_gpus, "accelerator.price_usd"),
        ("servers", cluster.server_price_usd, nodes, "cluster.server_price_usd"),
        ("switches", fab.switch.price_usd if fab.switch else None, fabric.switches, "fabric.switch.price_usd"),
        ("nics", fab.nic.price_usd if fab.nic else None, fabric.nic_links, "fabric.nic.price_usd"),
        ("optics", fab.optic.price_usd if fab.optic else None, fabric.transceivers, "fabric.optic.price_usd"),
        ("storage", cluster.storage_price_per_gpu_usd, cluster.num_gpus, "cluster.storage_price_per_gpu_usd"),
        ("facility", f.construction_usd_per_w, peak.it_w, "facility.construction_usd_per_w"),
    ]
    for name, unit, count, field in parts:
        if unit is None:
            missing.append(field)
        else:
            out[name] = unit * count
    return out, missing

