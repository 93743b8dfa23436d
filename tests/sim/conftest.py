"""Shared helpers of the fabric tests: Memphis's cluster cut to a size, its fat tree, and a parallelism layout."""

from __future__ import annotations

from typing import Any

from supercluster.network.topology import build_topology
from supercluster.sim.fabric import FatTree
from supercluster.spec.load import load_scenario
from supercluster.spec.scenario import Scenario


def scenario(gpus: int, *sets: str) -> Scenario:
    """Memphis's cluster (Spectrum-X, 3 tiers of 128-port switches, rail-optimised) cut to ``gpus`` GPUs."""
    return load_scenario("scenarios/memphis.yaml", [f"cluster.num_gpus={gpus}", *sets])


def par(**deg: Any) -> dict[str, Any]:
    """A parallelism layout of degree 1 on every axis but those given, in Megatron's default order."""
    out: dict[str, Any] = {"tp": 1, "pp": 1, "dp": 1, "cp": 1, "ep": 1, "etp": 1, "order": "tp-cp-ep-dp-pp"}
    out.update(deg)
    return out


def fabric(s: Scenario) -> FatTree:
    """The fat tree of ``s``'s cluster."""
    return FatTree.of(s.cluster, build_topology(s.cluster))
