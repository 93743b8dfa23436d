"""Published collective measurements (nccl-tests and similar) → predicted vs measured time or bus bandwidth.

A file of this kind has a top-level ``measurements:`` list (schema: ``notes`` of validate/collectives.yaml). Each
measurement's machine is described from its free-text ``system`` the way a user would describe it to the tool —
a catalog accelerator, GPUs per node, the NIC rate per GPU, a generic fabric by transport — and the network model
(:func:`supercluster.network.report.collective_report`) predicts the collective on it:

- the published ``time_us`` when both the size and the time are given, otherwise the published ``busbw_GBps``
  (a ``peak`` figure without a size is predicted at a large message, :data:`PEAK_BYTES`);
- the published algorithm when one was forced (NCCL_ALGO, file name), else the one the tool picks as NCCL would;
- DeepEP MoE dispatch/combine as an all-to-all of tokens x top-k x hidden x dtype bytes per rank when the notes
  give those numbers and a time was published.

Nothing here is tuned per measurement: every rule reads the row's text and applies to any row. A measurement the
tool cannot model is listed with its reason and left out of the statistics.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..errors import FileFormatError, SuperclusterError
from ..network.report import CollectiveReport, collective_report
from ..spec import catalog
from ..spec.calibration import Calibration
from ..spec.hardware import Cluster
from ..spec.load import _resolve_tree, read_data_file, validate_part

DEFAULT_COLLECTIVES_FILE = Path(__file__).with_name("collectives.yaml")
DEFAULT_COLLECTIVE_TOLERANCE: dict[str, Any] = {"metric": "collective", "median_abs_rel_error": 0.15,
                                                "max_abs_rel_error_at_or_above_1MiB": 0.35}
LARGE_BYTES = 2**20  #: the max-error gate applies to measurements of at least this size (and to peak figures)
PEAK_BYTES = 8 * 2**30  #: where a 'peak' busbw without a published size is predicted (busbw has plateaued)

Metric = Literal["time_us", "busbw_GBps"]

#: nccl-tests operation names (and spelling variants) → the tool's operations
OP_NAMES = {
    "all_reduce": "all_reduce", "allreduce": "all_reduce",
    "all_gather": "all_gather", "allgather": "all_gather",
    "reduce_scatter": "reduce_scatter", "reducescatter": "reduce_scatter",
    "alltoall": "all_to_all", "all_to_all": "all_to_all",
    "sendrecv": "send_recv", "send_recv": "send_recv",
    "broadcast": "broadcast",
}
MOE_OPS = ("moe_dispatch", "moe_combine")

#: Per-GPU NIC line rate (Gb/s) of cloud instances and DGX systems whose measurements do not state it. Matched
#: against the system's gpu + platform text (lower case). Sources: AWS EC2 accelerated-computing instance specs
#: (p4d/p4de: 400 Gb/s EFA per 8-GPU instance; p5/p5e/p5en and p6-b200: 3,200 Gb/s), GCP A3 machine types (a3-high:
#: 4 x 200 Gb/s, a3-mega: 8 x 200 Gb/s GPUDirect-TCPXO, a3-ultra: 8 x 400 Gb/s), Azure ND A100 v4 (8 x 200 Gb/s
#: HDR) and ND H100/H200 v5 (8 x 400 Gb/s NDR), OCI BM.GPU4.8 / BM.GPU.A100-v2.8 (1,600 Gb/s RDMA) and BM.GPU.H100.8
#: (3,200 Gb/s), NVIDIA DGX A100 (8 x 200 Gb/s HDR) and DGX H100/H200/B200/GB200 (one 400 Gb/s ConnectX-7 per GPU),
#: CoreWeave HGX H100 (3,200 Gb/s NDR InfiniBand per node); the cloud figures agree with the inter-node table of
#: stas00/ml-engineering network/README.md quoted in collectives.yaml.
PLATFORM_NIC_GBPS: tuple[tuple[str, float, str], ...] = (
    (r"\bp4de?\b|\bp4de?\.24xlarge", 50.0, "AWS p4d/p4de: 400 Gb/s EFA per 8-GPU instance"),
    (r"\bp5(e|en)?\b|\bp5(e|en)?\.48xlarge", 400.0, "AWS p5: 3,200 Gb/s EFA per 8-GPU instance"),
    (r"p6-b200", 400.0, "AWS p6-b200: 3,200 Gb/s EFA per 8-GPU instance"),
    (r"a3-megagpu", 200.0, "GCP a3-megagpu-8g: 8 x 200 Gb/s GPUDirect-TCPXO"),
    (r"a3-highgpu", 100.0, "GCP a3-highgpu-8g: 4 x 200 Gb/s GPUDirect-TCPX"),
    (r"a3-ultragpu", 400.0, "GCP a3-ultragpu-8g: 8 x 400 Gb/s RDMA"),
    (r"nd a100 v4|nd96a?m?sr_a100|nd96asr_v4", 200.0, "Azure ND A100 v4: 8 x 200 Gb/s HDR InfiniBand"),
    (r"nd h[12]00 v5|nd96isr_h[12]00", 400.0, "Azure ND H100/H200 v5: 8 x 400 Gb/s NDR InfiniBand"),
    (r"\boci\b.*a100|bm\.gpu4\.8|bm\.gpu\.a100", 200.0, "OCI bare-metal A100: 1,600 Gb/s RDMA per 8-GPU node"),
    (r"\boci\b.*h100|bm\.gpu\.h100", 400.0, "OCI BM.GPU.H100.8: 3,200 Gb/s RDMA per 8-GPU node"),
    (r"dgx[- ]?a100", 200.0, "NVIDIA DGX A100: 8 x 200 Gb/s HDR InfiniBand"),
    (r"dgx[- ]?(h100|h200|b200|gb200)", 400.0, "NVIDIA DGX H100/H200/B200/GB200: one 400 Gb/s ConnectX-7 per GPU"),
    (r"coreweave.*h100|h100.*coreweave", 400.0, "CoreWeave HGX H100: 3,200 Gb/s NDR InfiniBand per 8-GPU node"),
)

#: The NIC rate per GPU of each accelerator's reference system (NVIDIA DGX), used when a measurement, its platform
#: and its NIC text say nothing usable: DGX A100 8 x 200 Gb/s HDR; DGX H100/H200 and DeepEP's H800 nodes one 400 Gb/s
#: ConnectX-7 per GPU; DGX B200 and GB200 NVL72 compute trays one 400 Gb/s ConnectX-7 per GPU.
REFERENCE_NIC_GBPS = {"A100-SXM4-40GB": 200.0, "A100-SXM4-80GB": 200.0, "H100-SXM5-80GB": 400.0,
                      "H100-PCIe": 400.0, "H800-SXM5-80GB": 400.0, "H200": 400.0, "B200": 400.0, "GB200": 400.0}
DEFAULT_NIC_GBPS = 400.0

#: InfiniBand generations (per-port Gb/s) and NIC generations named in NIC text
_LINK_RATES = {"edr": 100.0, "hdr": 200.0, "ndr": 400.0, "xdr": 800.0}
_NIC_RATES = {"connectx-6": 200.0, "cx6": 200.0, "connectx-7": 400.0, "cx7": 400.0, "connectx-8": 800.0,
              "cx8": 800.0}

GENERIC_FABRICS = {"infiniband": "infiniband", "roce": "roce", "ethernet": "ethernet"}
SHARP_FABRIC = "quantum-2-ndr-sharp"

_DTYPE_BYTES = (("fp8", 1), ("e4m3", 1), ("e5m2", 1), ("bf16", 2), ("fp16", 2), ("half", 2), ("fp32", 4),
                ("float32", 4), ("float", 4))


class CollectiveRow(BaseModel):
    """One measurement against its prediction (or the reason it cannot be predicted)."""

    model_config = ConfigDict(frozen=True)

    id: str
    op: str | None  # the tool's operation
    gpus: int | None  # GPUs in the collective
    nodes: int | None
    message_bytes: float | None  # the size predicted (published, or derived: see notes)
    accelerator: str | None
    fabric: str | None
    scale_out_gbps_per_gpu: float | None
    algorithm_published: str | None  # the file's text
    algorithm_forced: str | None  # what the tool was asked to run (None: it chose)
    algorithm_predicted: str | None
    metric: Metric | None
    expected: float | None
    predicted: float | None
    rel_error: float | None
    notes: list[str] = []
    error: str | None = None  # why the measurement cannot be modelled


class CollectiveValidationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    file: str
    rows: list[CollectiveRow]
    modelled: int
    not_modelled: int  # listed with their reason, excluded from the statistics
    median_abs_rel_error: float | None  # None when nothing could be modelled
    max_abs_rel_error: float | None
    max_abs_rel_error_at_or_above_1MiB: float | None
    tolerance: dict[str, Any]
    passed: bool
    failures: list[str]


class Unmodellable(Exception):
    """A measurement the tool cannot predict; the message is the reason."""


@dataclass
class _System:
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


def describe_system(m: dict[str, Any], *, algorithm_text: str = "") -> _System:
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
    domain = 72 if "nvl72" in described else None
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
    return _System(cluster=cluster, gpus=gpus, nodes=nodes, stride=stride, fabric=fabric_name, gbps=gbps,
                   notes=notes)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0 or value != int(value):
        raise Unmodellable(f"{name} is not a positive whole number ({value!r})")
    return int(value)


def _source_text(source: Any) -> str:
    if isinstance(source, dict):
        return " ".join(str(source[k]) for k in ("ref", "locator") if source.get(k)) or "collective measurement"
    return str(source) if source else "collective measurement"


# --- the published algorithm --------------------------------------------------------------------------------------

NO_NVLS = "no-nvls"  # NVLS disabled: the fastest of the algorithms NCCL keeps without it


def map_algorithm(text: str | None) -> tuple[str | None, str | None]:
    """Published algorithm text → (the tool's algorithm, or NO_NVLS, or None = the tool chooses; a note)."""
    if text is None:
        return None, None
    t = text.lower()
    if "default" in t or "enabled or disabled" in t:  # NCCL chose (even when the log shows which): so does the tool
        return None, None
    if t.startswith("ring"):
        return "ring", None
    if "nvls_enable=0" in t:
        return NO_NVLS, None
    if "nvlstree" in t:
        return "hierarchical", None
    if "collnet" in t or re.search(r"\bib sharp\b", t):
        return "sharp", None
    if t.startswith("nvls") or "nccl_algo=nvls" in t:
        return "nvls", None
    if t.startswith("tree") or "nccl_algo=tree" in t:
        return "tree", None
    if "nccl_algo=ring" in t:
        return "ring", None
    return None, f"published algorithm {text!r} has no counterpart in the tool: the tool chooses"


def _predict(cluster: Cluster, op: str, size: float, s: _System, forced: str | None,
             notes: list[str], cal: Calibration | None = None, gpus_per_process: int = 1) -> CollectiveReport:
    base = collective_report(cluster, op, size, s.gpus, stride=s.stride, calibration=cal,  # type: ignore[arg-type]
                             gpus_per_process=gpus_per_process)
    if forced is None:
        return base
    if forced == NO_NVLS:
        allowed = {a: t for a, t in base.alternatives.items() if a not in ("nvls", "hierarchical")}
        if not allowed:
            return base
        choice = min(allowed, key=allowed.__getitem__)
        notes.append(f"NVLS disabled: fastest of {', '.join(allowed)} without nvls/hierarchical")
        return collective_report(cluster, op, size, s.gpus, stride=s.stride, algorithm=choice,  # type: ignore[arg-type]
                                 calibration=cal, gpus_per_process=gpus_per_process)
    if forced not in base.alternatives:
        notes.append(f"published algorithm maps to {forced!r}, which the tool does not offer for {op} on this "
                     f"group (available: {', '.join(base.alternatives)}): the tool chooses")
        return base
    return collective_report(cluster, op, size, s.gpus, stride=s.stride, algorithm=forced,  # type: ignore[arg-type]
                             calibration=cal, gpus_per_process=gpus_per_process)


# --- DeepEP MoE dispatch / combine -------------------------------------------------------------------------------


def moe_bytes_per_rank(m: dict[str, Any], kind: str) -> tuple[float, str]:
    """Bytes one rank sends in a DeepEP dispatch/combine: tokens x top-k x hidden x dtype bytes, from the notes."""
    notes = _text(m.get("notes"))
    tokens = re.search(r"(\d+(?:\.\d+)?)\s*([km]?)\s*tokens", notes, re.IGNORECASE)
    hidden = re.search(r"hidden\s*(?:size\s*)?(\d+)", notes, re.IGNORECASE)
    top_k = re.search(r"top-?(\d+)\s*experts", notes, re.IGNORECASE) or re.search(
        r"top-?(\d+)(?!\s*groups)\b", notes, re.IGNORECASE)
    missing = [name for name, found in (("tokens", tokens), ("hidden", hidden), ("top-k", top_k)) if not found]
    if missing:
        raise Unmodellable(f"the notes do not give the {', '.join(missing)} needed for the bytes per rank")
    assert tokens and hidden and top_k
    scale = {"": 1, "k": 1024, "m": 1024**2}[tokens.group(2).lower()]
    n_tokens = float(tokens.group(1)) * scale
    dtype = _text(m.get("dtype")).lower()
    part = next((p for p in re.split(r"[/,;]", dtype) if kind in p), dtype)
    width = next((b for name, b in _DTYPE_BYTES if name in part), None)
    if width is None:
        raise Unmodellable(f"the {kind} data type is not given (dtype: {m.get('dtype')!r})")
    k, h = int(top_k.group(1)), int(hidden.group(1))
    size = n_tokens * k * h * width
    return size, (f"DeepEP {kind} as an all-to-all of {n_tokens:g} tokens x top-{k} x hidden {h} x {width} B = "
                  f"{size:,.0f} B per rank (FP8 scale factors and routing metadata not counted)")


# --- one measurement ----------------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def predict_measurement(m: dict[str, Any], *, index: int = 0, calibration: Calibration | None = None
                        ) -> CollectiveRow:
    """One measurement → its row: the prediction and relative error, or the reason it cannot be modelled."""
    rid = str(m.get("id") or f"measurements[{index}]")
    algo_text = m.get("algorithm")
    algo_text = None if algo_text is None else str(algo_text)
    collective = _text(m.get("collective")).strip()
    op_word = re.split(r"[\s(]", collective.lower(), maxsplit=1)[0] if collective else ""
    row: dict[str, Any] = {"id": rid, "op": None, "gpus": None, "nodes": None, "message_bytes": None,
                           "accelerator": None, "fabric": None, "scale_out_gbps_per_gpu": None,
                           "algorithm_published": algo_text, "algorithm_forced": None, "algorithm_predicted": None,
                           "metric": None, "expected": None, "predicted": None, "rel_error": None}
    notes: list[str] = []
    try:
        size = _number(m.get("message_bytes"))
        time_us, busbw = _number(m.get("time_us")), _number(m.get("busbw_GBps"))
        if op_word in MOE_OPS:
            op = "all_to_all"
            kind = op_word.split("_")[1]
            row["op"] = op
            if time_us is None:
                metric = _text(m.get("other_bw_metric")) or "DeepEP's own bandwidth"
                raise Unmodellable(f"only '{metric}' is published, no time; the bytes DeepEP counts on that link "
                                   "(after top-k routing and per-node deduplication) are not given")
            size, note = moe_bytes_per_rank(m, kind)
            notes.append(note)
            metric_name: Metric = "time_us"
            expected = time_us
            forced, algo_note = None, None
            if algo_text:
                algo_note = f"DeepEP kernel ({algo_text}) modelled as the tool's all-to-all"
        elif op_word in OP_NAMES:
            op = OP_NAMES[op_word]
            row["op"] = op
            if size is not None and time_us is not None:
                metric_name, expected = "time_us", time_us
            elif busbw is not None:
                metric_name, expected = "busbw_GBps", busbw
                if size is None:
                    size = float(PEAK_BYTES)
                    notes.append("peak figure without a size: predicted at 8 GiB, where busbw has plateaued")
            else:
                raise Unmodellable("neither time_us (with message_bytes) nor busbw_GBps is published")
            forced, algo_note = map_algorithm(algo_text)
        else:
            raise Unmodellable(f"operation {collective!r} is not one the tool models "
                               f"({', '.join(sorted(set(OP_NAMES.values())))}, DeepEP {', '.join(MOE_OPS)})")
        if algo_note:
            notes.append(algo_note)
        if size is None or size <= 0:
            raise Unmodellable(f"message_bytes must be positive ({m.get('message_bytes')!r})")
        if expected <= 0:
            raise Unmodellable(f"published {metric_name} is {expected:g} (rounded to zero): no relative error")
        row.update(metric=metric_name, expected=expected, message_bytes=size,
                   algorithm_forced=forced if forced != NO_NVLS else "ring/tree (no NVLS)")
        s = describe_system(m, algorithm_text=algo_text or "")
        notes.extend(s.notes)
        row.update(gpus=s.gpus, nodes=s.nodes, accelerator=s.cluster.accelerator.name, fabric=s.fabric,
                   scale_out_gbps_per_gpu=s.gbps)
        if s.gpus < 2:
            raise Unmodellable("a collective on one GPU moves nothing")
        launch = re.search(r"-g\s*(\d+|<ngpus>)", _text(m.get("notes")))
        per_process = 1
        if launch:
            per_process = s.gpus if launch.group(1) == "<ngpus>" else int(launch.group(1))
            per_process = max(1, min(per_process, s.gpus))
            notes.append(f"nccl-tests -g {per_process}: one process launches {per_process} GPUs")
        report = _predict(s.cluster, op, size, s, forced, notes, calibration, per_process)
        predicted = report.time_s * 1e6 if metric_name == "time_us" else report.busbw_bytes_per_s / 1e9
        row.update(algorithm_predicted=report.algorithm, predicted=predicted,
                   rel_error=(predicted - expected) / expected)
    except Unmodellable as exc:
        return CollectiveRow(**row, notes=notes, error=str(exc))
    except SuperclusterError as exc:
        return CollectiveRow(**row, notes=notes, error=str(exc))
    return CollectiveRow(**row, notes=notes)


# --- the file -----------------------------------------------------------------------------------------------------


def _tolerance(data: dict[str, Any], shown: str) -> dict[str, Any]:
    tol = dict(DEFAULT_COLLECTIVE_TOLERANCE)
    given = data.get("tolerance") or {}
    if not isinstance(given, dict):
        raise FileFormatError("expected a mapping 'tolerance'", file=shown, field="tolerance")
    tol.update(given)
    for key in ("median_abs_rel_error", "max_abs_rel_error_at_or_above_1MiB"):
        value = tol[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise FileFormatError(f"expected a non-negative number, got {value!r}", file=shown,
                                  field=f"tolerance.{key}")
    return tol


def validate_collectives(path: str | Path | None = None, calibration: Calibration | None = None
                         ) -> CollectiveValidationResult:
    """Predict every measurement of a collective-measurements file; gate on its tolerance.

    Measurements the tool cannot model are listed with their reason and excluded from the statistics.
    """
    p = Path(path) if path else DEFAULT_COLLECTIVES_FILE
    shown = str(path) if path else "collectives.yaml (built-in)"
    data = read_data_file(p)
    measurements = data.get("measurements")
    if not isinstance(measurements, list) or not measurements:
        raise FileFormatError("expected a non-empty list 'measurements'", file=shown, field="measurements")
    tol = _tolerance(data, shown)
    rows: list[CollectiveRow] = []
    for i, m in enumerate(measurements):
        if not isinstance(m, dict):
            raise FileFormatError(f"expected a mapping, got {type(m).__name__}", file=shown,
                                  field=f"measurements[{i}]")
        rows.append(predict_measurement(m, index=i, calibration=calibration))
    scored = [r for r in rows if r.rel_error is not None]
    errors = [abs(r.rel_error) for r in scored if r.rel_error is not None]
    large = [abs(r.rel_error) for r in scored
             if r.rel_error is not None and (r.message_bytes or 0) >= LARGE_BYTES]
    median = statistics.median(errors) if errors else None
    limit_median = float(tol["median_abs_rel_error"])
    limit_large = float(tol["max_abs_rel_error_at_or_above_1MiB"])
    failures: list[str] = []
    if not errors:
        failures.append("no measurement could be modelled")
    if median is not None and median > limit_median:
        failures.append(f"median |error| {median:.1%} exceeds {limit_median:.0%}")
    failures += [f"{r.id}: |error| {abs(r.rel_error):.1%} exceeds {limit_large:.0%} (message >= 1 MiB)"
                 for r in scored if r.rel_error is not None and (r.message_bytes or 0) >= LARGE_BYTES
                 and abs(r.rel_error) > limit_large]
    return CollectiveValidationResult(
        file=shown, rows=rows, modelled=len(scored), not_modelled=len(rows) - len(scored),
        median_abs_rel_error=median, max_abs_rel_error=max(errors) if errors else None,
        max_abs_rel_error_at_or_above_1MiB=max(large) if large else None, tolerance=tol, passed=not failures,
        failures=failures)


ValidationKind = Literal["runs", "measurements"]


def validation_kind(path: str | Path) -> ValidationKind:
    """Which validator a file is for, by content: a top-level ``runs:`` list (published training runs) or a
    ``measurements:`` list (collective measurements). Anything else is one located error."""
    data = read_data_file(path)
    has_runs, has_measurements = "runs" in data, "measurements" in data
    if has_runs and has_measurements:
        raise FileFormatError("has both 'runs' and 'measurements'; a validation file holds one kind", file=str(path))
    if has_runs:
        return "runs"
    if has_measurements:
        return "measurements"
    raise FileFormatError("expected a top-level 'runs' list (published training runs) or 'measurements' list "
                          "(collective measurements)", file=str(path))
