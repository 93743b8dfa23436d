"""`supercluster claims`: the public claims about the Memphis Supercluster, each beside what the model computes.

Verdict: holds when the computed figure is within 15% of the claim, loose within 50%, does not hold beyond;
threshold and unit claims say so directly. Every check names its inputs in ``basis``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from ..network.report import fabric_report
from ..network.topology import build_topology
from ..search.claims import metric_value
from ..search.plan import plan
from ..spec import catalog
from ..spec.hardware import Accelerator
from ..spec.load import build_scenario, load_cluster
from ..units import kwh_per_year_to_w

CLAIMS_FILE = Path(__file__).with_name("claims.yaml")
HOLDS, LOOSE = 0.15, 0.50


class ClaimVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    claim: str
    source: str
    claimed: float | None
    computed: float | None
    verdict: str  # holds | loose | does not hold
    basis: str


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
    model_config = ConfigDict(frozen=True)

    claims: list[ClaimVerdict]
    supercomputers: list[SupercomputerRow]


def _verdict(claimed: float, computed: float) -> str:
    rel = abs(computed - claimed) / abs(claimed)
    return "holds" if rel <= HOLDS else "loose" if rel <= LOOSE else "does not hold"


def check_claims_file(path: Path = CLAIMS_FILE) -> ClaimsReport:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    scenario = build_scenario(data["scenario"], file=str(path))
    report = plan(scenario)
    out = []
    for c in data["claims"]:
        chk: dict[str, Any] = c["check"]
        kind = chk["kind"]
        claimed_raw = chk.get("claimed")
        claimed = float(claimed_raw) if claimed_raw is not None else float("nan")
        computed: float | None = None
        verdict, basis = "", ""
        if kind == "fabric_tiers":
            topo = build_topology(load_cluster(chk["cluster"]))
            computed = float(len(topo.tiers))
            verdict = "holds" if computed == claimed else "does not hold"
            basis = (f"radix-{topo.radix} switches: 2 tiers hold {topo.radix ** 2 // 2:,} endpoints, "
                     f"{topo.min_tiers} tiers are needed for {topo.gpus:,} GPUs")
        elif kind == "fabric_switches":
            fab = fabric_report(load_cluster(chk["cluster"]))
            computed = float(fab.switches)
            verdict = _verdict(claimed, computed)
            basis = " + ".join(f"{t.switches:,} {t.tier}" for t in fab.tiers) + " (non-blocking fat tree)"
        elif kind == "scenario_metric":
            computed = metric_value(report, chk["metric"])
            verdict = _verdict(claimed, computed) if computed is not None else "not computed"
            basis = f"{scenario.name}: {chk['metric']} of the modelled cluster and run (catalog estimates)"
        elif kind == "scenario_threshold":
            computed = metric_value(report, chk["metric"])
            verdict = "holds" if computed is not None and computed > chk["threshold"] else "does not hold"
            basis = f"{chk['metric']} against the threshold {chk['threshold']:,.0f}"
        elif kind == "unit_error":
            verdict = "does not hold"
            basis = chk["note"]
        elif kind == "power_to_homes":
            home_w = kwh_per_year_to_w(chk["household_kwh_per_year"])
            computed = chk["power_w"] / home_w
            verdict = _verdict(claimed, computed)
            basis = f"{chk['power_w'] / 1e6:,.0f} MW / {home_w:,.0f} W per home ({chk['household_source']})"
        elif kind == "flops_ratio":
            a, b = load_cluster(chk["cluster"]), load_cluster(chk["versus"])
            fa = a.num_gpus * a.accelerator.peak_flops_per_s(chk["precision"])
            fb = b.num_gpus * b.accelerator.peak_flops_per_s(chk["precision"])
            computed = fa / fb
            verdict = "loose" if abs(a.num_gpus / b.num_gpus - claimed) / claimed <= HOLDS else "does not hold"
            basis = (f"count ratio {a.num_gpus / b.num_gpus:.1f}x, but {chk['precision']} peak ratio "
                     f"{computed:.1f}x ({fa / 1e18:.1f} vs {fb / 1e18:.1f} EFLOP/s): compare FLOP/s, not counts")
        elif kind == "compute_ratio":
            gpu_ratio = chk["gpus"] / chk["versus_gpus"]
            computed = gpu_ratio
            verdict = "loose"
            basis = (f"{gpu_ratio:.0f}x the GPUs gives {claimed:.0f}x the compute only with {claimed / gpu_ratio:.1f}x "
                     "the training time at the same MFU (plausible; the durations are not published)")
        out.append(ClaimVerdict(id=c["id"], claim=c["claim"], source=c["source"],
                                claimed=claimed if claimed_raw is not None else None, computed=computed,
                                verdict=verdict, basis=basis))
    return ClaimsReport(claims=out, supercomputers=supercomputers())


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
