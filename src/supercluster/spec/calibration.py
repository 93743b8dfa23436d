"""Global calibration knobs of the step model: named, documented, fitted on the calibration set only.

A calibration file (the shipped ``catalog/calibration.yaml``, or one ``supercluster calibrate`` writes from a
user's own measured runs) holds::

    calibration:                    # every knob: its value, what it means, and (fitted knobs) the range searched
      matmul_scale: {value: 0.78, doc: "...", fit: {low: 0.5, high: 1.0, neutral: 1.0, resolution: 0.005}}
      nccl_latency_s: {value: {...}, doc: "..."}      # read off a source, not fitted
    fit: {...}                      # how the values were fitted (file, rows, errors in-sample and cross-validated)
    residuals: [...]                # per fitted row: its features and its cross-validated relative error

A scenario may name such a file (``calibration: path.yaml``) or override knobs inline to ask "what if"
(``calibration: {ep_comm_overlap: 1.0}``).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError

from ..errors import FileFormatError, SpecError
from .base import Fraction, NonNegativeFloat, Spec, error_message
from .safe_yaml import parse_yaml, shorten


class Residual(Spec):
    """One fitted run: what kind of run it is (``features``) and how far off the prediction was, in-sample and
    when its source was left out of the fit."""

    id: str
    group: str = Field(description="the source the run came from (the unit left out by cross-validation)")
    features: dict[str, str | float | bool]
    rel_error: float = Field(description="predicted / measured - 1 with the fitted knobs")
    cv_rel_error: float = Field(description="predicted / measured - 1 with knobs fitted without the run's source")
    listed: bool = Field(default=False, description="a run the set lists and does not fit (exclude_from_gate): "
                         "its error, out of the fit by construction, is drawn on only for a kind no fitted run has")


class KnobRange(Spec):
    """Where the fit searches a knob, and its neutral value (no effect assumed) for a fit from scratch."""

    low: float
    high: float
    neutral: float
    resolution: float = Field(gt=0, description="fitted values are rounded to a multiple of this")


class CollectiveRamps(Spec):
    """``collective_ramp_bytes``: the message size at which an algorithm reaches half its asymptotic bandwidth."""

    ring: NonNegativeFloat = Field(description="ring broadcast and the intra-domain part of CollNet")
    nvls: NonNegativeFloat = Field(description="NVLink SHARP all-reduce inside a domain")
    hierarchical: NonNegativeFloat = Field(description="NVLSTree: the tree across domains")
    sharp: NonNegativeFloat = Field(description="CollNet / SHARP: the switches' reduction across domains")
    pairwise: NonNegativeFloat = Field(description="pairwise all-to-all")
    direct: NonNegativeFloat = Field(description="point-to-point send/recv")


class NcclLatencies(Spec):
    """``nccl_latency_s``: NCCL's cost-model latencies (src/graph/tuning.cc baseLat and hwLat), named
    ``algorithm_protocol_base`` (once per collective) and ``algorithm_protocol_nvlink`` / ``_net`` (per step over
    each kind of link)."""

    ring_ll_base: NonNegativeFloat
    ring_ll128_base: NonNegativeFloat
    ring_ll128_nvlink: NonNegativeFloat
    ring_ll128_net: NonNegativeFloat
    ring_simple_base: NonNegativeFloat
    ring_simple_nvlink: NonNegativeFloat
    ring_simple_net: NonNegativeFloat
    tree_ll_base: NonNegativeFloat
    tree_ll128_base: NonNegativeFloat
    tree_ll128_nvlink: NonNegativeFloat
    tree_ll128_net: NonNegativeFloat
    tree_simple_base: NonNegativeFloat
    tree_simple_nvlink: NonNegativeFloat
    tree_simple_net: NonNegativeFloat
    nvls_nvlink: NonNegativeFloat
    nvlstree_net: NonNegativeFloat
    collnet_nvlink: NonNegativeFloat
    collnet_net: NonNegativeFloat


def _keyed_by(model: type[Spec]) -> BeforeValidator:
    """A knob that is a mapping of named numbers, checked key by key against ``model`` (every key known, each a
    valid number, none missing) and kept as a plain dict of all of them."""

    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            return value  # the dict type refuses it, with its own message
        known = ", ".join(model.model_fields)
        try:
            return model.model_validate(value).model_dump()
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            if first["type"] == "extra_forbidden":
                raise ValueError(f"unknown key {shorten(key)!r} (known: {known})") from None
            if first["type"] == "missing":
                absent = [str(e["loc"][0]) for e in exc.errors() if e["type"] == "missing"]
                raise ValueError(f"missing key(s) {', '.join(absent)} (known: {known})") from None
            raise ValueError(f"{key}: {error_message(first)}") from None

    return BeforeValidator(check)


class Calibration(Spec):
    tp_comm_overlap: float = Field(ge=0, le=1, description="share of tensor-parallel communication hidden")
    dp_comm_overlap: float = Field(ge=0, le=1, description="share of the last backward (forward) that hides "
                                   "the gradient reduce (parameter all-gather)")
    fsdp_prefetch_overlap: float = Field(ge=0, le=1, description="share of a layer's compute that hides the "
                                         "ZeRO-3 / FSDP gathers and reductions of its neighbour (prefetch)")
    cp_comm_overlap: float = Field(ge=0, le=1, description="share of attention compute that hides ring KV traffic")
    ep_comm_overlap: float = Field(ge=0, le=1, description="share of expert all-to-all hidden")
    kernel_gap_s: NonNegativeFloat = Field(description="GPU idle time between consecutive kernels")
    step_overhead_s: NonNegativeFloat = Field(description="host work of every optimizer step the GPUs wait for")
    attention_half_seq: NonNegativeFloat = Field(description="key length at which flash attention reaches half "
                                                 "its asymptotic throughput")
    matmul_scale: Fraction = Field(
        description="GEMM throughput sustained inside a training step / the isolated best-shape benchmark (MAMF)")
    gemm_overlap_exponent: float = Field(
        ge=1, description="p of a GEMM's time (t_compute^p + t_memory^p)^(1/p): how imperfectly tensor cores and HBM "
        "overlap (infinity: the plain roofline)")
    collective_launch_s: NonNegativeFloat = Field(description="fixed cost of launching one NCCL collective")
    a2a_per_peer_s: NonNegativeFloat = Field(description="cost per peer of a pairwise all-to-all (send/recv posting)")
    serial_launch_per_gpu_s: NonNegativeFloat = Field(description="extra launch time per additional GPU driven by "
                                                      "one process (nccl-tests -g N)")
    zero3_host_per_rank_s: NonNegativeFloat = Field(description="host time per rank of one ZeRO-3 collective of "
                                                    "DeepSpeed before 0.6 (a Python loop over the group)")
    nvls_min_gpus: int = Field(ge=2, description="fewest GPUs in a domain for NVLS to be used")
    hierarchical_overlap: float = Field(ge=0, le=1, description="overlap of the intra- and inter-domain phases "
                                        "of a hierarchical all-reduce")
    collective_ramp_bytes: Annotated[dict[str, float], _keyed_by(CollectiveRamps)] = Field(
        description="message size at which each point-to-point algorithm (pairwise all-to-all, send/recv, "
        "broadcast) reaches half its asymptotic bandwidth (keys: CollectiveRamps)")
    nccl_latency_s: Annotated[dict[str, float], _keyed_by(NcclLatencies)] = Field(
        description="NCCL's own cost-model latencies (src/graph/tuning.cc): base latency per algorithm and "
        "protocol, per-step latency over NVLink and the network (keys: NcclLatencies)")
    source: str = "catalog/calibration.yaml"
    residuals: tuple[Residual, ...] = Field(default=(), strict=False, description="the fitted runs' "
                                            "cross-validated errors, from which a prediction's interval is drawn")


#: fields of Calibration that are not knobs
NOT_KNOBS = frozenset({"source", "residuals"})


def knob_names() -> list[str]:
    return [k for k in Calibration.model_fields if k not in NOT_KNOBS]


def overlay(base: Calibration | None, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` laid over ``base``'s knobs: a mapping knob (``nccl_latency_s``, ``collective_ramp_bytes``) key by
    key, so a partial override keeps the other keys; without a base, ``values`` as they are."""
    if base is None:
        return dict(values)
    out = base.model_dump()
    for name, value in values.items():
        current = out.get(name)
        out[name] = {**current, **value} if isinstance(value, dict) and isinstance(current, dict) else value
    return out


def parse_calibration(data: Any, *, file: str, source: str | None = None, base: Calibration | None = None
                      ) -> Calibration:
    """A calibration document (``calibration:`` knobs with values, optional ``residuals``) as a Calibration, every
    problem one located error. Every knob must be given; a mapping knob's keys left out take ``base``'s values (the
    shipped calibration for a user's file)."""
    if not isinstance(data, dict) or not isinstance(data.get("calibration"), dict):
        raise FileFormatError("expected a mapping 'calibration' of knobs, each {value: ..., doc: ...}", file=file,
                              field="calibration")
    values: dict[str, Any] = {}
    known = set(knob_names())
    for name, entry in data["calibration"].items():
        if name not in known:
            raise SpecError(f"unknown calibration knob (known: {', '.join(sorted(known))})", file=file,
                            field=f"calibration.{shorten(str(name))}")
        if not isinstance(entry, dict) or "value" not in entry:
            raise FileFormatError("expected a mapping with a 'value'", file=file, field=f"calibration.{name}")
        values[name] = entry["value"]
    missing = [k for k in knob_names() if k not in values]
    if missing:
        raise SpecError("required knob is missing", file=file, field=f"calibration.{missing[0]}")
    residuals = data.get("residuals") or []
    if not isinstance(residuals, list):
        raise FileFormatError("expected a list", file=file, field="residuals")
    merged = {**overlay(base, values), "residuals": residuals, "source": source or file}
    try:
        return Calibration.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        where = loc if loc.startswith("residuals") else f"calibration.{loc}"
        raise SpecError(error_message(first), file=file, field=where) from None


def read_calibration_document(path: str | Path) -> dict[str, Any]:
    """The parsed file (YAML, TOML or JSON), located errors for unreadable input."""
    from .load import read_data_file  # load imports the scenario, which imports this module

    return read_data_file(path)


@cache
def load_calibration(path: str) -> Calibration:
    """The calibration a file holds (cached: a file named by many scenarios is read once per process)."""
    return parse_calibration(read_calibration_document(path), file=path, base=default_calibration())


def _catalog_text() -> str:
    return resources.files("supercluster.catalog").joinpath("calibration.yaml").read_text(encoding="utf-8")


@cache
def default_calibration() -> Calibration:
    """The shipped calibration: catalog/calibration.yaml."""
    return parse_calibration(shipped_document(), file="catalog/calibration.yaml")


@cache
def shipped_document() -> dict[str, Any]:
    """catalog/calibration.yaml as data (its knobs' docs and fit ranges)."""
    data: dict[str, Any] = parse_yaml(_catalog_text(), file="catalog/calibration.yaml")
    return data


def knob_ranges() -> dict[str, KnobRange]:
    """The knobs a fit may move (those with a ``fit:`` range in the shipped file), in the file's order."""
    out = {}
    for name, entry in shipped_document()["calibration"].items():
        if isinstance(entry, dict) and entry.get("fit"):
            out[name] = KnobRange.model_validate(entry["fit"])
    return out
