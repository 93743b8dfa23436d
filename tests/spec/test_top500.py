"""The TOP500 reference systems (catalog/top500.yaml): they load, name valid catalog accelerators with an FP64 peak,
and their accelerator counts and FP64 rates agree with the published Rpeak (a data-consistency check, not a model)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
import yaml

from supercluster.spec import catalog
from supercluster.spec.hardware import Accelerator

SEED_SYSTEMS = ("Frontier", "Aurora", "Eagle", "Fugaku", "El Capitan")
NUMBER_FIELDS = ("accelerators", "nodes", "accelerators_per_node", "rpeak_flops_per_s", "rmax_flops_per_s",
                 "node_power_other_w", "rpeak_fp64_per_accelerator_flops_per_s")
TEXT_FIELDS = ("accelerator", "rpeak_basis", "interconnect", "cooling", "list", "source")
RPEAK_TOLERANCE = 0.25  # accelerators x FP64 rate within 25% of Rpeak (host CPUs and list conventions make up the rest)
MAX_PEAK_OVER_RPEAK_BASIS = 2.0  # AMD matrix peak = 2 x vector; Max 1550 peak clock / base clock = 1.78


def _systems() -> dict[str, dict[str, Any]]:
    text = resources.files("supercluster.catalog").joinpath("top500.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict) and isinstance(data.get("systems"), dict)
    return data["systems"]


SYSTEMS = _systems()
NAMES = list(SYSTEMS)


def _accelerator(name: str) -> Accelerator:
    return Accelerator.model_validate(catalog.entry("accelerators", SYSTEMS[name]["accelerator"]))


def _fp64_peak(name: str) -> float:
    return _accelerator(name).dense_peak_flops_per_s["fp64"]


def test_file_loads_with_the_seed_systems() -> None:
    """top500.yaml is valid YAML with a `systems` mapping that holds every system the seed articles name."""
    assert set(SEED_SYSTEMS) <= set(SYSTEMS)


@pytest.mark.parametrize("name", NAMES)
def test_system_fields_are_present_and_typed(name: str) -> None:
    """Every system has numbers as numbers (not YAML-1.1 strings), its text fields, a source and explained estimates."""
    body = SYSTEMS[name]
    for field in NUMBER_FIELDS:
        assert isinstance(body.get(field), int | float) and not isinstance(body[field], bool), field
        assert body[field] >= 0, field
    for field in TEXT_FIELDS:
        assert isinstance(body.get(field), str) and body[field].strip(), field
    assert body["power_w"] is None or (isinstance(body["power_w"], int | float) and body["power_w"] > 0)
    assert isinstance(body.get("estimate"), bool)
    if body["estimate"]:
        assert isinstance(body.get("notes"), str) and body["notes"].strip()


@pytest.mark.parametrize("name", NAMES)
def test_accelerator_exists_and_validates(name: str) -> None:
    """Each system's accelerator is a catalog entry that builds an Accelerator spec."""
    assert SYSTEMS[name]["accelerator"] in catalog.entries("accelerators")
    assert _accelerator(name).name == SYSTEMS[name]["accelerator"]


@pytest.mark.parametrize("name", NAMES)
def test_accelerator_has_an_fp64_peak(name: str) -> None:
    """The accelerator of every system carries a dense FP64 peak."""
    assert _fp64_peak(name) > 0


@pytest.mark.parametrize("name", NAMES)
def test_counts_and_results_agree(name: str) -> None:
    """accelerators = nodes x accelerators_per_node, and 0 < Rmax <= Rpeak."""
    body = SYSTEMS[name]
    assert body["accelerators"] == body["nodes"] * body["accelerators_per_node"]
    assert 0 < body["rmax_flops_per_s"] <= body["rpeak_flops_per_s"]


@pytest.mark.parametrize("name", NAMES)
def test_rpeak_basis_is_bounded_by_the_catalog_peak(name: str) -> None:
    """The per-accelerator FP64 rate TOP500 counts is at most the catalog FP64 peak and at least half of it."""
    basis = SYSTEMS[name]["rpeak_fp64_per_accelerator_flops_per_s"]
    peak = _fp64_peak(name)
    assert basis <= peak * (1 + 1e-9)
    assert peak <= MAX_PEAK_OVER_RPEAK_BASIS * basis * (1 + 1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_accelerators_times_fp64_rate_is_near_rpeak(name: str) -> None:
    """accelerators x the FP64 rate TOP500 counts per accelerator is within 25% of the published Rpeak."""
    body = SYSTEMS[name]
    total = body["accelerators"] * body["rpeak_fp64_per_accelerator_flops_per_s"]
    assert abs(total / body["rpeak_flops_per_s"] - 1) <= RPEAK_TOLERANCE, total / body["rpeak_flops_per_s"]
