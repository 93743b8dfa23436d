"""The shipped catalog: every entry validates against its spec, is cited, and the names other code relies on exist."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from supercluster.spec import catalog
from supercluster.spec.hardware import Accelerator, Cluster, Fabric, Facility
from supercluster.spec.model import Model

SPEC_OF_KIND: dict[str, type[BaseModel]] = {
    "accelerators": Accelerator,
    "fabrics": Fabric,
    "clusters": Cluster,
    "models": Model,
    "facilities": Facility,
}

REQUIRED = {
    "accelerators": [
        "A100-SXM4-40GB", "A100-SXM4-80GB", "H100-SXM5-80GB", "H100-PCIe", "H800-SXM5-80GB",
        "H200", "B200", "GB200", "MI250X", "MI300X",
    ],
    "fabrics": ["infiniband", "roce", "ethernet", "spectrum-x", "quantum-2-ndr", "hdr-200g-ib"],
    "clusters": ["colossus", "gpt4-a100", "llama3-16k", "meta-24k-ib", "meta-24k-roce", "eos", "eagle", "selene"],
    "models": [
        "gpt3-175b", "llama3-8b", "llama3-70b", "llama3-405b", "grok-1", "mixtral-8x7b", "mixtral-8x22b",
        "deepseek-v3", "qwen3-235b-a22b", "gpt4-moe",
    ],
    "facilities": ["memphis-colossus", "generic-air-cooled"],
}

ALL_ENTRIES = [(kind, name) for kind in catalog.KINDS for name in catalog.entries(kind)]
REQUIRED_ENTRIES = [(kind, name) for kind, names in REQUIRED.items() for name in names]


def _resolved(kind: str, name: str) -> dict[str, Any]:
    """A catalog entry with a cluster's accelerator and fabric names replaced by their catalog entries."""
    body = catalog.entry(kind, name)
    if kind == "clusters":
        body["accelerator"] = catalog.entry("accelerators", body["accelerator"], field="cluster.accelerator")
        body["fabric"] = catalog.entry("fabrics", body["fabric"], field="cluster.fabric")
    return body


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def test_every_kind_has_entries() -> None:
    """Each of the five catalog files loads and holds at least one entry."""
    for kind in catalog.KINDS:
        assert catalog.entries(kind), kind


@pytest.mark.parametrize(("kind", "name"), ALL_ENTRIES)
def test_entry_validates(kind: str, name: str) -> None:
    """Every entry of every kind builds its pydantic spec (clusters after resolving accelerator and fabric names)."""
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
        assert Fabric.model_validate(catalog.entry("fabrics", transport)).transport == transport
