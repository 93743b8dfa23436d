"""The shipped catalog: every entry validates against its spec, is cited, and the names other code relies on exist."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from supercluster.spec import catalog
from supercluster.spec.hardware import Accelerator, Cluster, Fabric, Facility, Nic, Optic, Switch
from supercluster.spec.model import Model
from supercluster.spec.reliability import Reliability
from supercluster.spec.software import Software

SPEC_OF_KIND: dict[str, type[BaseModel]] = {
    "accelerators": Accelerator,
    "switches": Switch,
    "nics": Nic,
    "optics": Optic,
    "fabrics": Fabric,
    "clusters": Cluster,
    "models": Model,
    "facilities": Facility,
    "reliability": Reliability,
    "software": Software,
}

REQUIRED = {
    "accelerators": [
        "A100-SXM4-40GB", "A100-SXM4-80GB", "H100-SXM5-80GB", "H100-PCIe", "H800-SXM5-80GB",
        "H200", "B200", "GB200", "MI250X", "MI300X",
    ],
    "switches": ["quantum-2-qm9700", "spectrum-4-sn5600", "quantum-x800-q3400", "tomahawk-5-class",
                 "tomahawk-4-class", "quantum-qm8700"],
    "nics": ["connectx-7", "bluefield-3-supernic", "connectx-6", "connectx-8"],
    "optics": ["osfp-400g", "osfp-800g-2x400g", "qsfp56-200g"],
    "fabrics": ["infiniband", "roce", "ethernet", "spectrum-x", "quantum-2-ndr", "quantum-2-ndr-sharp", "hdr-200g-ib",
                "meta-roce-24k"],
    "clusters": ["colossus", "gpt4-a100", "llama3-16k", "meta-24k-ib", "meta-24k-roce", "eos", "eagle", "selene",
                 "meta-rsc1"],
    "models": [
        "gpt3-175b", "llama3-8b", "llama3-70b", "llama3-405b", "grok-1", "mixtral-8x7b", "mixtral-8x22b",
        "deepseek-v3", "qwen3-235b-a22b", "gpt4-moe", "llama4-maverick", "gpt-oss-120b", "kimi-k2", "nemotron-h-8b",
    ],
    "facilities": ["memphis-colossus", "generic-air-cooled", "generic-liquid-cooled"],
    "reliability": ["llama3-405b-h100", "meta-rsc1-a100"],
}

ALL_ENTRIES = [(kind, name) for kind in catalog.KINDS for name in catalog.entries(kind)]
REQUIRED_ENTRIES = [(kind, name) for kind, names in REQUIRED.items() for name in names]


FABRIC_PARTS = {"switch": "switches", "nic": "nics", "optic": "optics"}


def _resolved_fabric(body: dict[str, Any]) -> dict[str, Any]:
    """A fabric entry with its switch, NIC and optic names replaced by their catalog entries."""
    for part, kind in FABRIC_PARTS.items():
        if isinstance(body.get(part), str):
            body[part] = catalog.entry(kind, body[part], field=f"cluster.fabric.{part}")
    return body


def _resolved(kind: str, name: str) -> dict[str, Any]:
    """A catalog entry with every catalog name it holds (accelerator, fabric, switch, NIC, optic) resolved."""
    body = catalog.entry(kind, name)
    if kind == "fabrics":
        body = _resolved_fabric(body)
    if kind == "clusters":
        body["accelerator"] = catalog.entry("accelerators", body["accelerator"], field="cluster.accelerator")
        body["fabric"] = _resolved_fabric(catalog.entry("fabrics", body["fabric"], field="cluster.fabric"))
    return body


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def test_every_kind_has_entries() -> None:
    """Each catalog file loads and holds at least one entry."""
    for kind in catalog.KINDS:
        assert catalog.entries(kind), kind


@pytest.mark.parametrize(("kind", "name"), ALL_ENTRIES)
def test_entry_validates(kind: str, name: str) -> None:
    """Every entry of every kind builds its pydantic spec (after resolving the catalog names it holds)."""
    spec = SPEC_OF_KIND[kind].model_validate(_resolved(kind, name))
    assert spec.name == name  # type: ignore[attr-defined]


@pytest.mark.parametrize(("kind", "name"), ALL_ENTRIES)
def test_entry_is_cited(kind: str, name: str) -> None:
    """Every entry carries its own non-empty source (never the 'user input' default)."""
    source = catalog.entries(kind)[name].get("source")
    assert isinstance(source, str)
    assert source.strip()
    assert source != "user input"


@pytest.mark.parametrize(("kind", "name"), ALL_ENTRIES)
def test_estimates_are_explained(kind: str, name: str) -> None:
    """An entry marked as an estimate says in its notes what was estimated."""
    body = catalog.entries(kind)[name]
    if body.get("estimate"):
        assert isinstance(body.get("notes"), str) and body["notes"].strip()


@pytest.mark.parametrize(("kind", "name"), ALL_ENTRIES)
def test_numbers_are_numbers(kind: str, name: str) -> None:
    """No value is a number that YAML read as a string (YAML 1.1 needs a signed exponent: 1.0e+9, not 1.0e9)."""
    for leaf in _leaves(catalog.entries(kind)[name]):
        if isinstance(leaf, str):
            with pytest.raises(ValueError):
                float(leaf)


@pytest.mark.parametrize(("kind", "name"), REQUIRED_ENTRIES)
def test_required_name_exists(kind: str, name: str) -> None:
    """The names the validation loader, scenarios and docs rely on are present in the catalog."""
    assert name in catalog.entries(kind)


def test_cluster_references_resolve() -> None:
    """Every cluster names an accelerator and a fabric that exist in the catalog."""
    for name, body in catalog.entries("clusters").items():
        assert body["accelerator"] in catalog.entries("accelerators"), name
        assert body["fabric"] in catalog.entries("fabrics"), name


def test_generic_fabrics_match_their_transport() -> None:
    """The generic fabrics a transport name maps to have that transport."""
    for transport in ("infiniband", "roce", "ethernet"):
        assert Fabric.model_validate(_resolved("fabrics", transport)).transport == transport


def test_fabric_references_resolve() -> None:
    """Every fabric names a switch, a NIC and an optic that exist in the catalog."""
    for name, body in catalog.entries("fabrics").items():
        for part, kind in FABRIC_PARTS.items():
            assert isinstance(body.get(part), str), f"{name}.{part}"
            assert body[part] in catalog.entries(kind), f"{name}.{part} = {body[part]}"


def test_sharp_fabrics_use_reducing_switches() -> None:
    """In-network reduction is opt-in: only quantum-2-ndr-sharp enables it, on a switch that reduces."""
    on = {name for name, body in catalog.entries("fabrics").items() if body.get("in_network_reduction")}
    assert on == {"quantum-2-ndr-sharp"}
    fabric = Fabric.model_validate(_resolved("fabrics", "quantum-2-ndr-sharp"))
    assert fabric.switch is not None and fabric.switch.in_network_reduction


def test_switch_radix_at_line_rates() -> None:
    """Switch capacities are one-direction sums of port rates, so the radix at the native rate is the port count."""
    radix = {name: Switch.model_validate(catalog.entry("switches", name)) for name in catalog.entries("switches")}
    assert radix["quantum-2-qm9700"].radix(50e9) == 64
    assert radix["spectrum-4-sn5600"].radix(50e9) == 128
    assert radix["tomahawk-5-class"].radix(25e9) == 256
    assert radix["quantum-x800-q3400"].radix(100e9) == 144
    assert radix["quantum-qm8700"].radix(25e9) == 40
    assert radix["tomahawk-4-class"].radix(50e9) == 64


FACILITY_FIELDS = ("wue_l_per_kwh", "grid_carbon_g_per_kwh", "electricity_usd_per_kwh", "water_usd_per_m3",
                   "construction_usd_per_w", "household_kwh_per_year")


def _cluster(name: str) -> Cluster:
    return Cluster.model_validate(_resolved("clusters", name))


@pytest.mark.parametrize("name", list(catalog.entries("clusters")))
def test_cluster_accelerator_has_price_and_power_figures(name: str) -> None:
    """The accelerator of every catalog cluster carries a price, an idle floor well under its TDP and the SMs a
    collective keeps busy."""
    acc = _cluster(name).accelerator
    assert acc.price_usd is not None and acc.price_usd > 0
    assert acc.idle_power_w is not None and 0.05 * acc.tdp_w <= acc.idle_power_w <= 0.3 * acc.tdp_w
    assert acc.collective_sms is not None and acc.collective_sms < acc.compute_units


@pytest.mark.parametrize("name", list(catalog.entries("clusters")))
def test_cluster_has_ledger_inputs(name: str) -> None:
    """Every cluster has its servers' parts (its own or its accelerator's reference server's), server price and
    storage power and price per GPU, and an estimate flag."""
    c = _cluster(name)
    assert c.host is not None and sum(c.host.parts_w().values()) > 0
    for value in (c.server_price_usd, c.storage_power_per_gpu_w, c.storage_price_per_gpu_usd):
        assert value is not None and value > 0
    assert c.estimate, "ledger figures are estimates, so the entry says so"


@pytest.mark.parametrize("name", list(catalog.entries("clusters")))
def test_cluster_fabric_parts_are_priced(name: str) -> None:
    """The switch, NIC and optic of every cluster's fabric have a price."""
    fabric = _cluster(name).fabric
    for part in (fabric.switch, fabric.nic, fabric.optic):
        assert part is not None and part.price_usd is not None and part.price_usd > 0, part


@pytest.mark.parametrize("name", list(catalog.entries("facilities")))
def test_facility_is_complete(name: str) -> None:
    """Every facility validates with its water, carbon, money and homes figures set (none left to the ledger's gaps)."""
    f = Facility.model_validate(catalog.entry("facilities", name))
    for field in FACILITY_FIELDS:
        if field == "wue_l_per_kwh":  # measured WUE, or the cooling-tower model's inputs
            assert f.wue_l_per_kwh is not None or (
                f.cooling_tower_cycles is not None and f.evaporative_heat_share is not None), field
            continue
        assert getattr(f, field) is not None, field
    assert f.onsite_generation_share == 0 or f.onsite_carbon_g_per_kwh > 0


def test_hgx_h100_node_training_draw_stays_under_the_server_rating() -> None:
    """8 x H100 at TDP + the server's parts + scale-out NICs, at the wall, stay under the 10.2 kW rating of HGX H100
    servers (a rating is what the supplies must deliver at full fan speed and every part at its maximum)."""
    from supercluster.facility import node_power

    for name in catalog.entries("clusters"):
        c = _cluster(name)
        if c.accelerator.name != "H100-SXM5-80GB":
            continue
        node_w = node_power(c, 1.0).ac_w
        assert 7_000.0 <= node_w <= 10_200.0, (name, node_w)
