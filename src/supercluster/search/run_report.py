"""RunReport: everything `plan` says about a scenario, typed, built once and read by attribute by every consumer
(console, JSON, sweep rows, the HTML report and the web API)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ..facility.ledger import FacilityReport
from ..network.report import FabricReport
from ..perf.report import StepReport
from ..reliability.report import ReliabilityReport
from ..spec.base import Cited
from ..spec.scenario import Scenario
from ..workload.model_report import ModelReport
from ..workload.software import software
from .claims import ClaimCheck


class CatalogEntryUsed(BaseModel):
    """One input the figures rest on, with where its numbers come from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str  # accelerator, cluster, fabric, switch, nic, optic, model, facility, reliability, software, calibration
    name: str
    source: str
    estimate: bool


class SearchSummary(BaseModel):
    """What the search looked at (deterministic: no wall time; the console measures that)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    candidates: int  # configurations in the space (offload variants not counted)
    offload: str | None = None  # when the chosen configuration offloads: what the offload buys


class RunReport(BaseModel):
    """A scenario's run: the model as it is counted (its assumptions listed), the chosen configuration's step, the
    cluster's fabric, the facility and reliability ledgers (when the scenario names a facility / checkpoint storage), its public claims
    judged, and the provenance of every input."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelReport
    step: StepReport
    search: SearchSummary
    fabric: FabricReport | None = None  # the cluster's scale-out fabric (tiers, switches, optics, bisection)
    facility: FacilityReport | None = None
    reliability: ReliabilityReport | None = None
    reliability_note: str | None = None  # why ``reliability`` is None: not asked, no storage, or no progress
    reliability_infeasible: bool = False  # the job cannot make progress: time to train with failures is never
    claims: list[ClaimCheck] = []
    provenance: list[CatalogEntryUsed] = []


def provenance(s: Scenario, calibration_source: str) -> list[CatalogEntryUsed]:
    """The catalog entries (or user inputs) the scenario's figures rest on, each with its source."""
    out: list[CatalogEntryUsed] = []

    def add(kind: str, entry: Cited | None) -> None:
        if entry is not None:
            out.append(CatalogEntryUsed(kind=kind, name=entry.name, source=entry.source, estimate=entry.estimate))

    c = s.cluster
    add("cluster", c)
    add("accelerator", c.accelerator)
    add("fabric", c.fabric)
    add("switch", c.fabric.switch)
    add("nic", c.fabric.nic)
    add("optic", c.fabric.optic)
    add("model", s.model)
    add("facility", s.facility)
    add("reliability", s.reliability)
    add("software", software(s.training.framework))
    out.append(CatalogEntryUsed(kind="calibration", name="global knobs", source=calibration_source, estimate=False))
    return out
