"""`supercluster claims`: a scenario's public claims (by default the Memphis Supercluster's), each judged by the one
rule of supercluster.search.claims against the scenario's plan, and the TOP500 systems the articles name beside
what the catalog hardware gives.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from ..search.claims import ClaimCheck
from ..search.plan import plan
from ..spec import catalog
from ..spec.hardware import Accelerator
from ..spec.load import load_scenario

MEMPHIS = Path(str(resources.files("supercluster").joinpath("scenarios", "memphis.yaml")))


class SupercomputerRow(BaseModel):
    """A TOP500 system: published peak and HPL power beside what the catalog hardware gives."""

    model_config = ConfigDict(frozen=True)

    system: str
    accelerator: str
    accelerators: int
    rpeak_published_flops_per_s: float
    rpeak_modelled_flops_per_s: float
    rmax_published_flops_per_s: float
    power_published_w: float | None
    power_modelled_w: float
    power_rel_error: float | None
    basis: str
    estimate: bool


class ClaimsReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: str
    claims: list[ClaimCheck]
    supercomputers: list[SupercomputerRow]


def check_claims_file(path: Path | str = MEMPHIS) -> ClaimsReport:
    """The claims of the scenario at ``path``, judged against its plan (the same checks `plan` prints)."""
    s = load_scenario(str(path))
    return ClaimsReport(scenario=s.name, claims=plan(s).claims, supercomputers=supercomputers())


def supercomputers() -> list[SupercomputerRow]:
    """Peak = accelerators x the FP64 rate the TOP500 credits; HPL power = the accelerators of the nodes the HPL run
    used at TDP + the rest of each such node (CPUs, memory, NICs) from the system's node design (catalog/top500.yaml)."""
    text = resources.files("supercluster.catalog").joinpath("top500.yaml").read_text(encoding="utf-8")
    rows = []
    for name, sysd in yaml.safe_load(text)["systems"].items():
        acc = Accelerator.model_validate(catalog.entry("accelerators", sysd["accelerator"]))
        count = int(sysd["accelerators"])
        hpl_nodes = int(sysd.get("hpl_nodes", sysd["nodes"]))
        hpl_count = hpl_nodes * count // int(sysd["nodes"])
        power = hpl_count * acc.tdp_w + hpl_nodes * float(sysd["node_power_other_w"])
        published = sysd.get("power_w")
        rows.append(SupercomputerRow(
            system=name, accelerator=acc.name, accelerators=count,
            rpeak_published_flops_per_s=float(sysd["rpeak_flops_per_s"]),
            rpeak_modelled_flops_per_s=count * float(sysd["rpeak_fp64_per_accelerator_flops_per_s"]),
            rmax_published_flops_per_s=float(sysd["rmax_flops_per_s"]),
            power_published_w=float(published) if published else None, power_modelled_w=power,
            power_rel_error=(power - float(published)) / float(published) if published else None,
            basis=f"{hpl_count:,} x {acc.tdp_w:,.0f} W + {hpl_nodes:,} nodes x "
                  f"{float(sysd['node_power_other_w']):,.0f} W; peak {sysd.get('rpeak_basis', '')}",
            estimate=bool(sysd.get("estimate", False) or acc.estimate)))
    return rows
