"""Design files: a workload (or a weighted list of them), a space of clusters to build for it, and the constraints a
design must meet.

A design file names a base scenario (its model and training are the workload; every part the space does not name
keeps the scenario's value or the catalog default) and the space, each option with the meaning it has in a
scenario::

    name: memphis-2024
    scenario: ../scenarios/memphis.yaml      # a scenario file (relative to the design file) or an inline scenario
    space:
      accelerators:                          # a catalog accelerator on the base cluster, or {cluster: ...}
        - H100-SXM5-80GB
        - {cluster: colossus-2-gb200}        # a catalog cluster (or a mapping as a scenario's cluster)
      num_gpus: [16384, 32768]               # a list, or {start: 8192, stop: 131072, step: 8192}
      domains: [8]                           # scale-up domain sizes (default: each option's own)
      fabrics: [spectrum-x, {base: quantum-2-ndr, tiers: 3, oversubscription: [1, 2]}]
      facilities: [memphis-colossus]
      storage: [{write_bandwidth_per_gpu_bytes_per_s: 78.1e+6, read_bandwidth_per_gpu_bytes_per_s: 156.3e+6}]
    constraints:
      budget_usd: 4.0e+9                     # capex of the parts in budget_parts (default: the total)
      budget_parts: [gpus]
      power_mw: 150                          # facility power at peak
      water_m3_per_day: 5000
      deadline_days: 120                     # time to train with failures (P50)

The cluster may run several workloads in turn (one pretraining and five fine-tunes): ``workloads:`` lists them,
each with its ``weight`` (how many times the cluster runs it, a positive number, default 1), an optional ``name``
and what it is: a ``scenario`` (a file relative to the design file, or inline) whose model and training are taken
(its cluster and facility are not: the design supplies them), and/or overrides laid over the base scenario (or over
that scenario): ``model`` (a catalog name or a mapping, as in a scenario), ``training`` (merged over the training)
and ``tokens`` (training.tokens)::

    workloads:
      - {name: pretrain, weight: 1}                            # the base scenario's own workload
      - {name: fine-tune, weight: 5, tokens: 2.0e+10, training: {global_batch: 512}}
      - {name: code, scenario: ../scenarios/code.yaml}

The base scenario's parallelism, reliability and calibration apply to every workload. Without ``workloads:`` the
base scenario is the single workload, weight 1. A design's times, energy, CO2 and run cost are the weighted sums over
its workloads (see design.evaluate).

Every option and every workload is checked alone on the base scenario when the file is read (a misspelt field, a
wrong type, an unknown catalog name is one located line before any work); a combination that breaks a rule is a
row.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from ..errors import InputError, SuperclusterError
from ..spec.base import MAX_GPUS, Name, NonNegativeFloat, PositiveFloat, PositiveInt, Spec, Text
from ..spec.load import build_scenario, names_hf_config, read_base_scenario, read_spec_file
from ..spec.scenario import Scenario

MAX_DESIGNS = 1_000_000
MAX_WORKLOADS = 64
CAPEX_PARTS = ("gpus", "servers", "switches", "nics", "optics", "storage", "facility")
CapexPart = Literal["gpus", "servers", "switches", "nics", "optics", "storage", "facility"]


class GpuRange(Spec):
    start: PositiveInt = Field(le=MAX_GPUS)
    stop: PositiveInt = Field(le=MAX_GPUS)
    step: PositiveInt

    @model_validator(mode="after")
    def _ordered(self) -> GpuRange:
        if self.stop < self.start:
            raise ValueError(f"stop({self.stop}) is below start({self.start})")
        return self

    def values(self) -> list[int]:
        return list(range(self.start, self.stop + 1, self.step))


class ClusterOption(Spec):
    """A cluster to build from: a catalog cluster name or a mapping as a scenario's ``cluster``, and (optionally)
    the scale-up domain sizes it comes in."""

    cluster: str | dict[str, Any]
    domains: list[PositiveInt] | None = Field(default=None, min_length=1)


def _kind(value: Any) -> str:
    return "mapping" if isinstance(value, dict) else "plain"


# A mapping is validated as the mapping form only (its errors located inside it), anything else as the plain form.
Counts = Annotated[Annotated[list[PositiveInt], Tag("plain")] | Annotated[GpuRange, Tag("mapping")],
                   Discriminator(_kind)]
Option = Annotated[Annotated[str, Tag("plain")] | Annotated[ClusterOption, Tag("mapping")], Discriminator(_kind)]


class Space(Spec):
    accelerators: list[Option] = Field(min_length=1)
    num_gpus: Counts
    domains: list[PositiveInt] | None = Field(default=None, min_length=1)
    fabrics: list[str | dict[str, Any]] | None = Field(default=None, min_length=1)
    facilities: list[str | dict[str, Any]] | None = Field(default=None, min_length=1)
    storage: list[dict[str, Any]] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _counts(self) -> Space:
        counts = self.num_gpus.values() if isinstance(self.num_gpus, GpuRange) else self.num_gpus
        if not counts:
            raise ValueError("num_gpus: an empty list")
        for n in counts:
            if n > MAX_GPUS:
                raise ValueError(f"num_gpus: {n:,} is more than {MAX_GPUS:,}")
        return self


class Constraints(Spec):
    budget_usd: PositiveFloat | None = Field(default=None, description="capex of budget_parts, USD")
    budget_parts: list[CapexPart] | None = Field(default=None, min_length=1,
                                                 description="the capex parts the budget pays for (default: all)")
    power_mw: PositiveFloat | None = Field(default=None, description="facility power at peak, MW")
    water_m3_per_day: NonNegativeFloat | None = Field(default=None, description="site water at the training "
                                                      "average power, m3 per day")
    deadline_days: PositiveFloat | None = Field(default=None, description="time to train with failures (P50), days")


class WorkloadSpec(Spec):
    """One workload of the cluster's portfolio (see the module docstring)."""

    name: Name | None = None
    weight: PositiveFloat = Field(default=1.0, description="how many times the cluster runs this workload")
    scenario: str | dict[str, Any] | None = Field(default=None, description="its model and training (a file "
                                                  "relative to the design file, or inline)")
    model: str | dict[str, Any] | None = None
    training: dict[str, Any] | None = Field(default=None, description="merged over the training")
    tokens: PositiveFloat | None = Field(default=None, description="training.tokens")


class DesignSpec(Spec):
    name: Name = "design"
    description: Text | None = None
    scenario: str | dict[str, Any]
    workloads: list[WorkloadSpec] | None = Field(default=None, min_length=1, max_length=MAX_WORKLOADS)
    space: Space
    constraints: Constraints = Field(default_factory=Constraints)


class DesignPoint(BaseModel):
    """One design: indices into the space's option lists and its GPU count."""

    model_config = ConfigDict(frozen=True)

    option: int
    domain: int  # scale-up domain GPUs
    num_gpus: int
    fabric: int
    facility: int
    storage: int


class Workload(BaseModel):
    """A loaded workload: ``part`` (its model and training, as a scenario's) laid over the base scenario."""

    model_config = ConfigDict(frozen=True)

    name: str
    weight: float
    part: dict[str, Any]  # {}: the base scenario's own workload
    shares: int  # the first workload that differs from this one in its tokens alone (the same space and memory)


class Design(BaseModel):
    """A loaded design file: the base scenario (as a dict), its workloads, the options of every axis and the designs
    in order."""

    model_config = ConfigDict(frozen=True)

    name: str
    file: str
    base: dict[str, Any]
    base_dir: str
    workloads: list[Workload]
    options: list[dict[str, Any]]  # cluster mappings (as a scenario's cluster), one per accelerator option
    option_domains: list[list[int]]
    counts: list[int]
    fabrics: list[Any]  # None: the option's own fabric
    facilities: list[Any]  # None: the scenario's facility
    storage: list[Any]  # None: the option's own storage
    constraints: Constraints

    @property
    def points(self) -> list[DesignPoint]:
        """Every design, the accelerator option outermost, then domain, count, fabric, facility, storage."""
        out = []
        for o, domains in enumerate(self.option_domains):
            for d, n, f, fa, st in itertools.product(domains, self.counts, range(len(self.fabrics)),
                                                     range(len(self.facilities)), range(len(self.storage))):
                out.append(DesignPoint(option=o, domain=d, num_gpus=n, fabric=f, facility=fa, storage=st))
        return out

    @property
    def size(self) -> int:
        return sum(len(d) for d in self.option_domains) * len(self.counts) * len(self.fabrics) * \
            len(self.facilities) * len(self.storage)

    @property
    def digest(self) -> str:
        """Identity of the design's work, to refuse resuming into another design's results file."""
        text = json.dumps({"base": self.base, "workloads": [w.model_dump() for w in self.workloads],
                           "options": self.options, "domains": self.option_domains,
                           "counts": self.counts, "fabrics": self.fabrics, "facilities": self.facilities,
                           "storage": self.storage, "constraints": self.constraints.model_dump()},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _try(base: dict[str, Any], base_dir: Path, base_file: str, file: str, field: str, part: dict[str, Any]
         ) -> Scenario:
    """The base scenario with ``part`` laid over it (fields and types only): a bad option is located at ``field``."""
    try:
        return build_scenario({**base, **part}, file=base_file, base_dir=base_dir, check_rules=False)
    except SuperclusterError as exc:
        where = getattr(exc, "field", None)
        message = getattr(exc, "message", str(exc))
        raise InputError(f"{where + ': ' if where else ''}{message}", file=file, field=field) from None


def _rebased(model: Any, source: Path, base_dir: Path) -> Any:
    """A model as written in ``source`` (a folder) for a scenario read from ``base_dir``: a config.json path it names
    made absolute (a catalog name, or a path under the same folder, stays as it is)."""
    if source.resolve() == base_dir.resolve():
        return model

    def path(value: Any) -> Any:
        return str((source / value).resolve()) if names_hf_config(value, source) else value

    if isinstance(model, dict):
        return {k: path(v) if k in ("base", "hf_config") else v for k, v in model.items()}
    return path(model)


def _workloads(spec: DesignSpec, base: dict[str, Any], base_dir: Path, base_file: str, file: str, path: Path,
               s0: Scenario) -> list[Workload]:
    """The design's workloads, each checked on the base scenario (one located line at ``workloads.I...``)."""
    if spec.workloads is None:
        return [Workload(name=s0.name, weight=1.0, part={}, shares=0)]
    out: list[Workload] = []
    made: list[Scenario] = []
    for i, w in enumerate(spec.workloads):
        field = f"workloads.{i}"
        if w.tokens is not None and w.training is not None and "tokens" in w.training:
            raise InputError("given twice (tokens and training.tokens); keep one", file=file, field=f"{field}.tokens")
        part: dict[str, Any] = {}
        name = w.name
        if w.scenario is not None:
            try:
                data, wdir, _ = read_base_scenario(w.scenario, path, file=file)
            except InputError as exc:
                raise exc.located(field_prefix=field) from None
            part = {k: data[k] for k in ("model", "training") if k in data}
            if "model" in part:
                part["model"] = _rebased(part["model"], wdir, base_dir)
            if name is None and isinstance(data.get("name"), str):
                name = data["name"]
        if w.model is not None:
            part["model"] = _rebased(w.model, path.parent, base_dir)
        if w.training is not None or w.tokens is not None:
            training = part.get("training", base.get("training"))
            part["training"] = {**(training if isinstance(training, dict) else {}), **(w.training or {}),
                                **({"tokens": w.tokens} if w.tokens is not None else {})}
        try:
            s = build_scenario({**base, **part}, file=base_file, base_dir=base_dir, check_rules=False)
        except SuperclusterError as exc:
            where = getattr(exc, "field", None)
            message = getattr(exc, "message", str(exc))
            raise InputError(message, file=file, field=f"{field}.{where}" if where else field) from None
        name = name or f"workload-{i}"
        for j, other in enumerate(out):
            if other.name == name:
                raise InputError(f"the name {name!r} is also workloads.{j}'s: name each workload once", file=file,
                                 field=f"{field}.name")
        tokenless = s.training.model_copy(update={"tokens": 1.0})
        shares = next((j for j, o in enumerate(made)
                       if o.model == s.model and o.training.model_copy(update={"tokens": 1.0}) == tokenless), i)
        made.append(s)
        out.append(Workload(name=name, weight=w.weight, part=part, shares=shares))
    return out


def load_design(path: str | Path) -> Design:
    """Read a design file and check every option against the base scenario; nothing is planned yet."""
    p = Path(path)
    file = str(path)
    spec = read_spec_file(p, DesignSpec)
    base, base_dir, base_file = read_base_scenario(spec.scenario, p, file=file)
    base = {k: v for k, v in base.items() if k != "claims"}  # a base cluster's claims say nothing of a design
    s0 = _try(base, base_dir, base_file, file, "scenario", {})
    workloads = _workloads(spec, base, base_dir, base_file, file, p, s0)
    space = spec.space
    options: list[dict[str, Any]] = []
    domains: list[list[int]] = []
    for i, opt in enumerate(space.accelerators):
        field = f"space.accelerators.{i}"
        if isinstance(opt, str):
            cluster: Any = {"base": base["cluster"], "accelerator": opt} if isinstance(base["cluster"], str) else \
                {**base["cluster"], "accelerator": opt}
            s = _try(base, base_dir, base_file, file, field, {"cluster": cluster})
            if s.cluster.accelerator.name != s0.cluster.accelerator.name:  # the part's own reference server
                cluster = {**cluster, "host_power": None}
            own = None
        else:
            cluster, own = opt.cluster, opt.domains
            s = _try(base, base_dir, base_file, file, f"{field}.cluster", {"cluster": cluster})
        options.append(cluster if isinstance(cluster, dict) else {"base": cluster})
        doms = own or space.domains or [s.cluster.domain_gpus]
        for d in doms:
            gpn = s.cluster.gpus_per_node
            if d < gpn and gpn % d:
                raise InputError(f"a scale-up domain of {d} GPUs must divide the option's {gpn} GPUs per node",
                                 file=file, field=f"{field}.domains" if own else "space.domains")
        domains.append(list(dict.fromkeys(doms)))
    counts = space.num_gpus.values() if isinstance(space.num_gpus, GpuRange) else list(dict.fromkeys(space.num_gpus))
    fabrics: list[Any] = list(space.fabrics) if space.fabrics else [None]
    for i, fab in enumerate(fabrics):
        if fab is not None:
            cluster = options[0]
            _try(base, base_dir, base_file, file, f"space.fabrics.{i}", {"cluster": {**cluster, "fabric": fab}})
    facilities: list[Any] = list(space.facilities) if space.facilities else [base.get("facility")]
    for i, fac in enumerate(facilities):
        s = _try(base, base_dir, base_file, file, f"space.facilities.{i}", {"facility": fac})
        if s.facility is None:
            raise InputError("a design needs a facility (its capex, power and water): name one in the scenario "
                             "or in space.facilities", file=file, field="space.facilities")
    storage: list[Any] = list(space.storage) if space.storage else [None]
    for i, st in enumerate(storage):
        if st is not None:
            _try(base, base_dir, base_file, file, f"space.storage.{i}", {"cluster": {**options[0], "storage": st}})
    design = Design(name=spec.name, file=file, base=base, base_dir=str(base_dir), workloads=workloads, options=options,
                    option_domains=domains, counts=counts, fabrics=fabrics, facilities=facilities, storage=storage,
                    constraints=spec.constraints)
    if design.size > MAX_DESIGNS:
        raise InputError(f"the space has {design.size:,} designs, more than {MAX_DESIGNS:,}", file=file,
                         field="space")
    return design


def budget_capex(capex_usd: dict[str, float], parts: Sequence[str] | None) -> float:
    """The capex a budget pays for: the named parts (all but the total, by default)."""
    names = parts or list(CAPEX_PARTS)
    return math.fsum(capex_usd.get(k, 0.0) for k in names)
