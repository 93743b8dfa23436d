"""A measurement's free-text system description → the Cluster a user would describe for that machine.

GPU names map to catalog accelerators, NIC text and known platforms to a per-GPU scale-out rate, fabric text to a
catalog fabric; every assumption is written into the row's notes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..spec import catalog
from ..spec.hardware import Cluster
from ..spec.load import _resolve_tree, validate_part

_PLATFORMS = yaml.safe_load(Path(__file__).with_name("platforms.yaml").read_text(encoding="utf-8"))
#: per-GPU NIC rate of known platforms: (pattern, Gb/s, source); see platforms.yaml
PLATFORM_NIC_GBPS: tuple[tuple[str, float, str], ...] = tuple(
    (p["pattern"], float(p["nic_gbps_per_gpu"]), p["source"]) for p in _PLATFORMS["platforms"])
REFERENCE_NIC_GBPS: dict[str, float] = {k: float(v) for k, v in _PLATFORMS["reference_nic_gbps_per_gpu"].items()}
DEFAULT_NIC_GBPS = float(_PLATFORMS["default_nic_gbps_per_gpu"])
_LINK_RATES: dict[str, float] = {k: float(v) for k, v in _PLATFORMS["link_generations_gbps"].items()}
_NIC_RATES: dict[str, float] = {k: float(v) for k, v in _PLATFORMS["nic_generations_gbps"].items()}

GENERIC_FABRICS = {"infiniband": "infiniband", "roce": "roce", "ethernet": "ethernet"}
SHARP_FABRIC = "quantum-2-ndr-sharp"


class Unmodellable(Exception):
    """A measurement the tool cannot predict; the message is the reason."""


@dataclass
class System:
    """A measurement's machine as a cluster spec plus where the group sits."""

    cluster: Cluster
    gpus: int
    nodes: int
    stride: int
    fabric: str
    gbps: float
    notes: list[str] = field(default_factory=list)


# --- the system text ---------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def match_accelerator(text: str) -> tuple[str, str | None] | None:
    """A GPU description (free text) → (catalog accelerator, note on an assumption) or None."""
    t = text.lower()
    if "mi325x" in t:
        return "MI300X", "MI325X taken as MI300X (the same CDNA 3 compute and Infinity Fabric links; more HBM)"
    for amd, name in (("mi300x", "MI300X"), ("mi300a", "MI300A"), ("mi250x", "MI250X")):
        if amd in t:
            return name, None
    if "gb300" in t:
        return "GB300", None
    if re.search(r"\bb300\b", t):
        return "B300", None
    if "gb200" in t:
        return "GB200", None
    if re.search(r"\bb200\b", t):
        return "B200", None
    if "h800" in t:
        return "H800-SXM5-80GB", None
    if "h200" in t:
        return "H200", None
    if "h100" in t:
        return ("H100-PCIe", None) if "pcie" in t else ("H100-SXM5-80GB", None)
    if "sm90" in t or "hopper" in t:
        return "H100-SXM5-80GB", "a Hopper GPU without a model name is taken as H100-SXM5-80GB"
    if "sm100" in t or "blackwell" in t:
        return "B200", "a Blackwell GPU without a model name is taken as B200"
    if "a100" in t:
        if "40gb" in t.replace(" ", ""):
            return "A100-SXM4-40GB", None
        if "80gb" in t.replace(" ", ""):
            return "A100-SXM4-80GB", None
        return "A100-SXM4-80GB", "A100 memory size not stated: the 80GB part is assumed (same compute and NVLink)"
    return None


def _accelerator(system: dict[str, Any], notes: list[str]) -> str:
    gpu, platform = _text(system.get("gpu")), _text(system.get("platform"))
    found = match_accelerator(gpu)
    if found is None and platform:
        found = match_accelerator(platform)
        if found is not None:
            notes.append(f"GPU not stated: {found[0]} taken from the platform text ({platform!r})")
    if found is None:
        raise Unmodellable(f"GPU model not recognised or not stated (gpu: {system.get('gpu')!r})")
    name, note = found
    if note:
        notes.append(note)
    return name


def _nic_from_text(nic: str, gpus_per_node: int) -> tuple[float, str] | None:
    """Per-GPU Gb/s from NIC text such as '8x 400 Gb RoCE NICs', '4x Mellanox HDR IB' or 'ConnectX-7 NDR 400G'
    (rates in Gb/s or G; a figure in GB/s is a measured bandwidth, not a NIC rate)."""
    t = nic.lower()
    if not t.strip() or re.match(r"\s*(not stated|unknown|n/a|none)\b", t):
        return None
    count_rate = re.search(r"(\d+)\s*[xX]\s*(\d+(?:\.\d+)?)\s*(?:Gb|G\b)", nic)
    if count_rate:
        n, rate = int(count_rate.group(1)), float(count_rate.group(2))
        return n * rate / gpus_per_node, f"{n} x {rate:g} Gb/s per node over {gpus_per_node} GPUs"
    count_gen = re.search(r"(\d+)\s*x\s*(?:[a-z]+\s+)?(edr|hdr|ndr|xdr)\b", t)
    if count_gen:
        n, rate = int(count_gen.group(1)), _LINK_RATES[count_gen.group(2)]
        return n * rate / gpus_per_node, f"{n} x {count_gen.group(2).upper()} ({rate:g} Gb/s) per node over " \
                                         f"{gpus_per_node} GPUs"
    rate_only = re.search(r"(\d+(?:\.\d+)?)\s*(?:Gb|G\b)", nic)
    if rate_only:
        return float(rate_only.group(1)), "one NIC per GPU assumed"
    for gen, rate in _LINK_RATES.items():
        if re.search(rf"\b{gen}\b", t):
            return rate, f"{gen.upper()} = {rate:g} Gb/s, one NIC per GPU assumed"
    for nic_name, rate in _NIC_RATES.items():
        if nic_name in t:
            return rate, f"{nic_name} = {rate:g} Gb/s, one NIC per GPU assumed"
    return None


def _scale_out_gbps(system: dict[str, Any], accelerator: str, gpus_per_node: int, multi_node: bool,
                    notes: list[str]) -> float:
    given = system.get("nic_gbps_per_gpu")
    if given is not None:
        try:
            value = float(given)
        except (TypeError, ValueError):
            raise Unmodellable(f"nic_gbps_per_gpu is not a number ({given!r})") from None
        if value <= 0:
            raise Unmodellable(f"nic_gbps_per_gpu must be positive ({given!r})")
        return value
    described = f"{_text(system.get('gpu'))}; {_text(system.get('platform'))}".lower()
    for pattern, gbps, doc in PLATFORM_NIC_GBPS:
        if re.search(pattern, described):
            if multi_node:
                notes.append(f"NIC rate not stated: {gbps:g} Gb/s per GPU, the documented rate of {doc}")
            return gbps
    parsed = _nic_from_text(_text(system.get("nic")), gpus_per_node)
    if parsed is not None:
        if multi_node:
            notes.append(f"NIC rate {parsed[0]:g} Gb/s per GPU read from the NIC text ({parsed[1]})")
        return parsed[0]
    gbps = REFERENCE_NIC_GBPS.get(accelerator, DEFAULT_NIC_GBPS)
    if multi_node:
        notes.append(f"NIC rate not stated: {gbps:g} Gb/s per GPU of the {accelerator} reference system (DGX) "
                     "assumed")
    return gbps


def _fabric(system: dict[str, Any], algorithm_text: str, multi_node: bool, notes: list[str]) -> str | dict[str, Any]:
    """The fabric's catalog name (or a ``{base: name, ...}`` merge) from the fabric text."""
    t = _text(system.get("fabric")).lower()
    nic = _text(system.get("nic")).lower()
    reduces = bool(re.search(r"\bsharp\b|collnet", f"{t} {nic}")) or bool(
        re.search(r"collnet|\bib sharp\b", algorithm_text.lower()))
    if "efa" in t:
        v1 = "v1" in nic or "4x100" in nic.replace(" ", "") or re.search(r"\bp4de?\b", _text(system.get("platform")).lower())
        name = "aws-efa-v1" if v1 else "aws-efa-v2"
        if multi_node:
            notes.append(f"AWS EFA (SRD over Ethernet): fabric {name}")
        return name
    if "tcpx" in t:
        if multi_node:
            notes.append("GPUDirect-TCPXO: fabric gcp-tcpxo")
        return "gcp-tcpxo"
    if re.search(r"\btcp\b", t):
        if multi_node:
            notes.append("TCP (not RDMA) modelled as the generic 'ethernet' fabric")
        return GENERIC_FABRICS["ethernet"]
    if "roce" in t:
        return GENERIC_FABRICS["roce"]
    if "infiniband" in t or re.search(r"\bib\b", t) or "rdma" in t:
        if reduces:
            return _sharp_fabric(notes)
        return GENERIC_FABRICS["infiniband"]
    if multi_node:
        notes.append(f"fabric not stated ({system.get('fabric')!r}): generic InfiniBand assumed")
    return GENERIC_FABRICS["infiniband"]


def _sharp_fabric(notes: list[str]) -> str | dict[str, Any]:
    if SHARP_FABRIC in catalog.entries("fabrics"):
        notes.append(f"InfiniBand with SHARP (CollNet): fabric {SHARP_FABRIC}")
        return SHARP_FABRIC
    notes.append(f"InfiniBand with SHARP (CollNet): no '{SHARP_FABRIC}' in the catalog, generic InfiniBand with "
                 "in_network_reduction used")
    return {"base": GENERIC_FABRICS["infiniband"], "in_network_reduction": True}


def describe_system(m: dict[str, Any], *, algorithm_text: str = "") -> System:
    """The measurement's machine as a Cluster, and the group (GPUs, nodes, stride) its collective runs on."""
    system = m.get("system")
    if not isinstance(system, dict):
        raise Unmodellable("no 'system' mapping")
    notes: list[str] = []
    accelerator = _accelerator(system, notes)
    gpn_raw = system.get("gpus_per_node")
    if gpn_raw is None:
        gpn = 8
        notes.append("gpus_per_node not stated: 8 assumed")
    else:
        gpn = _positive_int(gpn_raw, "system.gpus_per_node")
    gpus_raw, nodes_raw = m.get("num_gpus"), m.get("num_nodes")
    nodes = _positive_int(nodes_raw, "num_nodes") if nodes_raw is not None else None
    if gpus_raw is None:
        if nodes is None:
            raise Unmodellable("number of GPUs not published (num_gpus and num_nodes are null)")
        gpus = nodes * gpn
        notes.append(f"num_gpus not stated: {nodes} node(s) x {gpn} GPUs")
    else:
        gpus = _positive_int(gpus_raw, "num_gpus")
    if nodes is None:
        nodes = math.ceil(gpus / gpn)
    if gpus % nodes or gpus // nodes > gpn:
        raise Unmodellable(f"{gpus} GPUs do not spread evenly over {nodes} node(s) of {gpn} GPUs")
    per_node = gpus // nodes
    stride = 1
    if nodes > 1 and per_node < gpn:
        if gpn % per_node:
            raise Unmodellable(f"{per_node} GPUs per node do not divide the node's {gpn} GPUs evenly")
        stride = gpn // per_node
        notes.append(f"{per_node} GPU(s) used per node: a group of {gpus} GPUs {stride} apart")
    multi_node = nodes > 1
    described = " ".join(_text(system.get(k)) for k in ("gpu", "platform", "topology", "nvlink")).lower()
    said = f"{described} {_text(m.get('notes')).lower()} {algorithm_text.lower()}"
    # An NVL72 rack is one NVLink domain only where NCCL uses it across trays: not with multi-node NVLink switched
    # off, nor for trays reached over InfiniBand / Ethernet in other racks
    nvlink_off = any(k in said for k in ("mnnvl_enable=0", "mnnvl disabled", "without mnnvl", "mnnvl off"))
    over_network = bool(re.search(r"(racks?|trays?|nodes?)\b[^.;]{0,60}\b(over|via|through|joined by|connected by|"
                                  r"across)\b[^.;]{0,30}\b(infiniband|ib|roce|ethernet|cx-?7|cx-?8)\b", said))
    domain = 72 if "nvl72" in described and not nvlink_off and not (over_network and gpn < 72) else None
    gbps = _scale_out_gbps(system, accelerator, gpn, multi_node, notes)
    fabric = _fabric(system, algorithm_text, multi_node, notes)
    if not multi_node:
        notes.append("one node: the scale-out fabric is not exercised")
    cluster_data: dict[str, Any] = {
        "name": f"{m.get('id', 'measurement')}-system",
        "source": _source_text(m.get("source")),
        "accelerator": accelerator,
        "num_gpus": max(gpus * stride, nodes * gpn),
        "gpus_per_node": gpn,
        "scale_out_bandwidth_per_gpu_bytes_per_s": gbps * 1e9 / 8,
        "fabric": fabric,
    }
    if domain is not None:
        cluster_data["scale_up_domain_gpus"] = domain
        notes.append("NVL72 rack: one 72-GPU NVLink domain")
    resolved = _resolve_tree({"cluster": cluster_data}, Path("."))
    cluster = validate_part(Cluster, resolved["cluster"], field="system")
    fabric_name = fabric if isinstance(fabric, str) else f"{fabric['base']} (+in-network reduction)"
    return System(cluster=cluster, gpus=gpus, nodes=nodes, stride=stride, fabric=fabric_name, gbps=gbps,
                   notes=notes)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0 or value != int(value):
        raise Unmodellable(f"{name} is not a positive whole number ({value!r})")
    return int(value)


def _source_text(source: Any) -> str:
    if isinstance(source, dict):
        return " ".join(str(source[k]) for k in ("ref", "locator") if source.get(k)) or "collective measurement"
    return str(source) if source else "collective measurement"
