"""The facility ledger: power from components, PUE, homes, water, carbon and money follow their formulas."""

from __future__ import annotations

from typing import Any

import pytest

from supercluster import InputError, build_scenario, plan
from supercluster.facility import facility_ledger
from supercluster.network.report import fabric_report

FACILITY: dict[str, Any] = {
    "name": "test-site", "source": "test", "pue": 1.25, "wue_l_per_kwh": 1.5, "grid_carbon_g_per_kwh": 400.0,
    "onsite_generation_share": 0.25, "onsite_carbon_g_per_kwh": 500.0, "electricity_usd_per_kwh": 0.1,
    "water_usd_per_m3": 2.0, "construction_usd_per_w": 10.0, "it_depreciation_years": 5.0,
    "facility_depreciation_years": 20.0, "maintenance_share_per_year": 0.05, "household_kwh_per_year": 8760.0,
}


HOST: dict[str, Any] = {
    "gpus_per_node": 8, "cpus_w": 400.0, "memory_w": 200.0, "nics_w": 50.0, "switches_w": 250.0, "storage_w": 50.0,
    "fans_w": 0.0, "other_w": 50.0, "psu_efficiency": 0.95, "source": "test",
}  # 1,000 W of parts per node


def scenario(facility: dict[str, Any] | None = None, **cluster: Any) -> Any:
    acc = {"base": "H100-SXM5-80GB", "price_usd": 30000.0, "idle_power_w": 100.0}
    fabric = {"base": "spectrum-x", "switch": {"base": "spectrum-4-sn5600", "price_usd": 40000.0},
              "nic": {"base": "connectx-7", "price_usd": 2000.0}, "optic": {"base": "osfp-400g", "price_usd": 500.0}}
    return build_scenario({
        "name": "ledger", "model": "llama3-8b",
        "cluster": {"base": "llama3-16k", "num_gpus": 1024, "accelerator": acc, "fabric": fabric,
                    "host_power": HOST, "server_price_usd": 100000.0, "storage_power_per_gpu_w": 50.0,
                    "storage_price_per_gpu_usd": 1000.0, **cluster},
        "training": {"tokens": 1e12, "global_batch": 1024, "seq_len": 8192},
        "facility": facility if facility is not None else FACILITY,
    })


@pytest.fixture(scope="module")
def ledger() -> Any:
    s = scenario()
    report = plan(s).step
    return s, report, facility_ledger(s, report)


def test_power_parts_sum_and_pue_scales(ledger: Any) -> None:
    """IT power is the sum of GPUs, hosts, network and storage; facility power is IT power x PUE."""
    s, _, f = ledger
    for p in (f.peak, f.average):
        assert p.it_w == pytest.approx(p.gpus_w + p.hosts_w + p.network_w + p.storage_w, rel=1e-12)
        assert p.facility_w == pytest.approx(p.it_w * 1.25, rel=1e-12)
    assert f.peak.gpus_w == pytest.approx(1024 * 700.0)
    assert f.average.gpus_w == pytest.approx(1024 * (100.0 + 600.0 * f.gpu_activity))
    assert f.gpu_training_power_fraction == pytest.approx(f.average.gpus_w / (1024 * 700.0))
    nics = 8 * (25.0 + 8.0)  # connectx-7 and one osfp-400g per GPU, inside the node
    for p in (f.peak, f.average):  # host parts + every supply loss of the nodes (GPUs, parts, NICs) at 95%
        assert p.hosts_w == pytest.approx(128 * (1000.0 + (p.gpus_w / 128 + 1000.0 + nics) * (1 / 0.95 - 1)))
    assert f.peak.network_w == pytest.approx(fabric_report(s.cluster).power_w["total"])


def test_homes_water_and_carbon_follow_their_formulas(ledger: Any) -> None:
    """Homes = power / (household kWh per year / 8,760 h); water = IT kWh x WUE; CO2 mixes grid and on-site."""
    _, report, f = ledger
    assert f.homes_equivalent_peak == pytest.approx(f.peak.facility_w / 1000.0, rel=1e-12)  # 8,760 kWh/yr = 1 kW
    assert f.water_m3_per_day == pytest.approx(f.average.it_w * 24 / 1000 * 1.5 / 1000, rel=1e-12)
    kwh = f.average.facility_w * report.time_to_train_s / 3.6e6
    assert f.run_co2_kg == pytest.approx(kwh * (0.75 * 400 + 0.25 * 500) / 1000, rel=1e-12)


def test_capex_and_costs_add_up(ledger: Any) -> None:
    """Capex parts sum to the total; cost per GPU-hour and the run's cost follow from the hourly cost."""
    s, report, f = ledger
    parts = {k: v for k, v in f.capex_usd.items() if k != "total"}
    assert f.capex_usd["total"] == pytest.approx(sum(parts.values()), rel=1e-12)
    assert parts["gpus"] == pytest.approx(1024 * 30000.0)
    assert parts["facility"] == pytest.approx(10.0 * f.peak.it_w)
    hourly = f.cost_per_hour_usd
    assert hourly["total"] == pytest.approx(sum(v for k, v in hourly.items() if k != "total"), rel=1e-12)
    assert hourly["electricity"] == pytest.approx(f.average.facility_w / 1000 * 0.1, rel=1e-12)
    assert f.cost_per_gpu_hour_usd == pytest.approx(hourly["total"] / 1024, rel=1e-12)
    assert f.run_cost_usd == pytest.approx(hourly["total"] * report.time_to_train_s / 3600, rel=1e-12)
    assert plan(s).facility == f  # plan's run report carries the same ledger


def test_missing_inputs_are_named_not_invented() -> None:
    """A facility without prices leaves the money figures out and names what is missing."""
    s = scenario({"name": "bare", "source": "test", "pue": 1.1})
    f = facility_ledger(s, plan(s).step)
    assert f.cost_per_gpu_hour_usd is None and f.run_cost_usd is None and f.water_m3_per_day is None
    assert "facility.electricity_usd_per_kwh" in f.missing
    assert any(m.startswith("facility.wue_l_per_kwh") for m in f.missing)


@pytest.mark.parametrize("change", [{"pue": 0.9}, {"onsite_generation_share": 1.5},
                                    {"electricity_usd_per_kwh": -0.1}, {"electricity_usd_per_kwh": 0.0},
                                    {"wue_l_per_kwh": -1.0}])
def test_bad_facility_values_are_located_errors(change: dict[str, Any]) -> None:
    """PUE below 1, shares outside 0..1, negative or zero prices are refused with the field named."""
    with pytest.raises(InputError, match="facility"):
        scenario({**FACILITY, **change})


def test_facility_command_needs_a_facility(cli, tmp_path) -> None:
    """`supercluster facility` on a scenario without a facility is one located error, exit 2."""
    f = tmp_path / "s.yaml"
    f.write_text("cluster: llama3-16k\nmodel: llama3-8b\ntraining: {tokens: 1e12, global_batch: 2048}\n")
    result = cli("facility", str(f))
    assert result.code == 2 and "facility" in result.err and "Traceback" not in result.err


def test_cooling_tower_water_follows_evaporation_and_blowdown() -> None:
    """Without a measured WUE, site water = 1.47 L/kWh of heat x cycles/(cycles-1) x evaporative share x PUE."""
    from supercluster.facility.water import evaporation_l_per_kwh_heat

    assert evaporation_l_per_kwh_heat() == pytest.approx(1.4736, rel=1e-3)
    towers = {k: v for k, v in FACILITY.items() if k != "wue_l_per_kwh"}
    towers.update(cooling_tower_cycles=5.0, evaporative_heat_share=0.5, generation_water_l_per_kwh=2.0)
    s = scenario(towers)
    report = plan(s).step
    f = facility_ledger(s, report)
    expected = evaporation_l_per_kwh_heat() * 5 / 4 * 0.5 * 1.25
    assert f.wue_l_per_kwh == pytest.approx(expected, rel=1e-12)
    assert f.water_m3_per_day == pytest.approx(f.average.it_w * 24 / 1000 * expected / 1000, rel=1e-12)
    assert f.run_generation_water_m3 == pytest.approx(f.run_energy_facility_j / 3.6e6 * 2.0 / 1000, rel=1e-12)
    with pytest.raises(InputError, match="cooling_tower_cycles"):
        scenario({**towers, "cooling_tower_cycles": 1.0})


@pytest.mark.parametrize(("override", "fragments"), [
    ("facility.pue=0.95", ("facility.pue", "greater than or equal to 1")),
    ("facility.electricity_usd_per_kwh=0", ("facility.electricity_usd_per_kwh", "greater than 0")),
    ("facility.water_usd_per_m3=-1", ("facility.water_usd_per_m3",)),
    ("cluster.accelerator.price_usd=-30000", ("cluster.accelerator.price_usd", "greater than 0")),
    ("cluster.accelerator.idle_power_w=800", ("cluster.accelerator", "idle_power_w(800) must be below tdp_w(700)")),
    ("cluster.accelerator.idle_power_w=0", ("cluster.accelerator.idle_power_w",)),
    ("cluster.host_power.psu_efficiency=1.2", ("cluster.host_power.psu_efficiency",)),
    ("facility.onsite_generation_share=-0.2", ("facility.onsite_generation_share",)),
    ("facility=mars-base", ("facility", "mars-base")),
    ("facility.climate.monthly_relative_humidity_pct=[50]", ("facility.climate.monthly_relative_humidity_pct",)),
])
def test_facility_command_bad_input_is_one_located_line(cli, override: str, fragments: tuple[str, ...]) -> None:
    """Issue 4's bad input at the command line: negative or zero prices, PUE below 1, utilisation outside 0..1,
    an unknown site, a malformed climate: one located line, exit 2."""
    cli("facility", "scenarios/memphis.yaml", "--set", override).one_error_line(*fragments)
