"""Hardware specs: Accelerator, Node, Fabric, Cluster, Facility.

Values are SI with the unit in the field name (bytes, bytes/s, FLOP/s, s, W).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from .base import (
    MAX_GPUS,
    AttentionBackend,
    Cited,
    Fraction,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Precision,
    Spec,
    Text,
    Transport,
)


class MatmulModel(Spec):
    """Shape-aware matmul efficiency: the achievable fraction of dense peak on a large, well-shaped GEMM
    (maximum achievable matmul FLOPs, MAMF) and the output tile a kernel computes per SM, which sets the
    wave quantisation of small or skinny GEMMs."""

    max_fraction: dict[Precision, Fraction]
    tile_m: PositiveInt = 128
    tile_n: PositiveInt = 256
    block: PositiveInt = Field(description="the smallest output tile edge a kernel computes whole: a GEMM's rows and "
                               "columns are padded to it")
    source: str = Field(min_length=1)


class AttentionGeneration(Spec):
    """An older generation of the part's fused-attention kernels: the training software released before ``before``
    ran attention fwd+bwd at ``fraction`` of the 16-bit peak (the newest generation, from then on, is the part's
    attention_fraction)."""

    before: date = Field(strict=False, description="the first release of the software whose kernels reach the next "
                         "generation")
    fraction: Fraction = Field(description="fused attention fwd+bwd / 16-bit dense peak with the older kernels, on the "
                               "same footing as attention_fraction")
    source: Text = Field(min_length=1)


class Host(Spec):
    """What a GPU's server offers it for offloading: its share of the CPU memory and the link to it."""

    link_bytes_per_s: PositiveFloat = Field(description="GPU-host link, per direction (PCIe x16, NVLink-C2C)")
    memory_bytes: PositiveFloat = Field(description="host memory per GPU")
    memory_bandwidth_bytes_per_s: PositiveFloat = Field(description="host memory bandwidth per GPU (a CPU optimizer "
                                                        "step streams its states through it)")
    shared_with_nic: bool = Field(default=True, description="the GPU's host link also carries its NIC's GPUDirect RDMA "
                                  "traffic (PCIe boards: GPU and NIC behind one PCIe switch); false for NVLink-C2C")


class HostPower(Spec):
    """A server's draw other than its GPUs and its scale-out NICs (with their optics) while it trains, part by part,
    in W per node on the DC side (what the power supplies deliver), and the supplies' AC-to-DC efficiency."""

    gpus_per_node: PositiveInt = Field(description="GPUs of the server these parts serve (a node with another GPU "
                                       "count scales them per GPU)")
    cpus_w: NonNegativeFloat = Field(description="the CPU packages at a training job's load")
    memory_w: NonNegativeFloat = Field(description="host DRAM")
    nics_w: NonNegativeFloat = Field(description="front-end, storage and management NICs (not the scale-out NICs, "
                                     "which the fabric counts)")
    switches_w: NonNegativeFloat = Field(description="scale-up switch chips (NVSwitch) and PCIe switches on the boards")
    storage_w: NonNegativeFloat = Field(description="the node's local drives")
    fans_w: NonNegativeFloat = Field(description="fans at a training job's heat (0 for immersion cooling)")
    other_w: NonNegativeFloat = Field(description="BMC, board logic, retimers and the conversion losses of the "
                                      "CPU and memory rails")
    psu_efficiency: float = Field(gt=0.5, le=1.0, allow_inf_nan=False,
                                  description="DC output / AC input of the node's power supplies at its load")
    source: Text = Field(min_length=1)

    def parts_w(self) -> dict[str, float]:
        """The parts by name (W per node of ``gpus_per_node`` GPUs, DC side)."""
        return {"cpus": self.cpus_w, "memory": self.memory_w, "nics": self.nics_w, "switches": self.switches_w,
                "storage": self.storage_w, "fans": self.fans_w, "other": self.other_w}


class Accelerator(Cited):
    vendor: str
    form_factor: str = "SXM"
    architecture: Literal["ampere", "hopper", "blackwell"] | None = Field(
        default=None, description="NVIDIA GPU generation, where software facts differ by it (library workspaces)")
    dense_peak_flops_per_s: dict[Precision, PositiveFloat]
    hbm_bytes: PositiveFloat
    hbm_bandwidth_bytes_per_s: PositiveFloat
    host: Host | None = Field(default=None, description="the server's CPU memory and link, for offloading")
    scale_up_bandwidth_bytes_per_s: PositiveFloat = Field(
        description="unidirectional scale-up (NVLink / Infinity Fabric) bandwidth per GPU"
    )
    tdp_w: PositiveFloat
    compute_units: PositiveInt = Field(description="SMs (NVIDIA) or CUs (AMD)")
    matmul: MatmulModel
    attention_fraction: Fraction = Field(
        description="achieved fraction of 16-bit dense peak by fused (flash) attention fwd+bwd, long sequences"
    )
    attention_history: list[AttentionGeneration] = Field(
        default_factory=list, description="older fused-attention kernel generations, for runs whose software predates "
        "the newest (training.software_date); empty: one generation (a scenario that sets attention_fraction sets "
        "the newest; `attention_history: []` beside it makes it hold for every date)")
    flash_attention_fraction: Fraction | None = Field(
        default=None, description="fused attention fwd+bwd / 16-bit dense peak with Dao-AILab's flash-attn package "
        "(FlashAttention-2), for runs whose software chose it over the part's default kernels "
        "(training.attention_backend 'flash', and 'flex': PyTorch's FlexAttention runs at FlashAttention-2's rate, "
        "catalog attention_note); None: the part's attention_fraction either way")
    attention_head_dim_exponent: NonNegativeFloat = Field(
        description="b in fused attention's throughput x (head_dim/128)^b for query/key heads narrower than the 128 "
        "attention_fraction was measured at (0: no change)")
    attention_window_half_keys: PositiveFloat = Field(
        description="w_half in a sliding-window layer's fused attention at w / (w + w_half) of the long-sequence "
        "rate for a w-token window (catalog attention_window_note)")
    memory_bound_fraction: Fraction = Field(description="achievable fraction of HBM bandwidth, streaming kernels")
    scale_up_latency_s: PositiveFloat = Field(description="latency of one collective step over the scale-up links")
    collective_launch_s: PositiveFloat | None = Field(
        default=None, description="fixed cost of one collective on this platform (launch, proxy, completion), where "
        "measured apart from the calibration's default (an 8-byte all-reduce minus its ring steps)")
    scale_up_achievable_fraction: Fraction = Field(description="ring bus bandwidth / scale-up bandwidth inside a "
                                                   "domain (nccl-tests busbw at large messages)")
    p2p_achievable_fraction: Fraction = Field(
        description="a NCCL send/recv between two GPUs of a scale-up domain / the unidirectional scale-up bandwidth "
        "(NCCL's p2p runs on a few SM-driven channels: ~180 of 450 GB/s on H100, nccl-tests#268)")
    scale_up_topology: Literal["switch", "mesh"] = Field(
        default="switch", description="switch: every GPU reaches every peer at full bandwidth (NVSwitch); mesh: "
        "point-to-point links to each peer (AMD Infinity Fabric), so a subset of the domain gets a share")
    price_usd: PositiveFloat | None = Field(default=None, description="purchase price of one GPU (module)")
    cloud_usd_per_gpu_hour: PositiveFloat | None = Field(
        default=None, description="a cited cloud rental price of one such GPU for an hour, for comparison")
    idle_power_w: PositiveFloat | None = Field(
        default=None, description="board power with a training job's CUDA context and no kernel running (the SMs "
        "idle): the floor a GPU draws while it waits in a step; None: the GPU is taken at TDP throughout")
    collective_sms: PositiveInt | None = Field(
        default=None, description="SMs (CUs) a collective kernel keeps busy while a GPU only communicates: one "
        "thread block per channel, NCCL and RCCL at most 32 channels; None: communication counted as compute")
    server_power: HostPower | None = Field(
        default=None, description="the non-GPU parts of the part's reference server (DGX/HGX), a cluster's default")
    nvls_fraction: Fraction | None = Field(
        default=None, description="NVLink SHARP all-reduce algorithm bandwidth / scale-up bandwidth (None: no NVLS)")

    def peak_flops_per_s(self, precision: str) -> float:
        """Dense peak for a precision; fp8 falls back to the 16-bit peak on GPUs without fp8 tensor cores."""
        if precision in self.dense_peak_flops_per_s:
            return self.dense_peak_flops_per_s[precision]
        for fallback in ("bf16", "fp16"):
            if fallback in self.dense_peak_flops_per_s:
                return self.dense_peak_flops_per_s[fallback]
        raise KeyError(precision)

    def attention_fraction_at(self, software_date: date | None, backend: AttentionBackend = "auto") -> float:
        """The fused-attention fraction of the kernels of software released on ``software_date`` (None: the newest):
        the oldest generation it predates, else attention_fraction; with ``backend`` "flash" (the flash-attn package,
        spec.training.attention_backend) or "flex" (PyTorch's FlexAttention, timed at FlashAttention-2's rate:
        catalog attention_note) that package's fraction where the part has one of its own."""
        if backend in ("flash", "flex") and self.flash_attention_fraction is not None:
            return self.flash_attention_fraction
        if software_date is not None:
            for generation in sorted(self.attention_history, key=lambda g: g.before):
                if software_date < generation.before:
                    return generation.fraction
        return self.attention_fraction

    def matmul_fraction(self, precision: str) -> float:
        mf = self.matmul.max_fraction
        if precision in mf:
            return mf[precision]
        for fallback in ("bf16", "fp16"):
            if fallback in mf:
                return mf[fallback]
        raise KeyError(precision)

    @model_validator(mode="after")
    def _has_16bit_peak(self) -> Accelerator:
        if not ({"bf16", "fp16"} & set(self.dense_peak_flops_per_s)):
            raise ValueError("dense_peak_flops_per_s needs a bf16 or fp16 entry")
        if not ({"bf16", "fp16"} & set(self.matmul.max_fraction)):
            raise ValueError("matmul.max_fraction needs a bf16 or fp16 entry")
        if self.idle_power_w is not None and self.idle_power_w >= self.tdp_w:
            raise ValueError(f"idle_power_w({self.idle_power_w:g}) must be below tdp_w({self.tdp_w:g})")
        return self


class Switch(Cited):
    """A scale-out switch; its radix at a port rate is min(max_ports, capacity / rate)."""

    vendor: str
    asic: str | None = None
    transport: Literal["infiniband", "ethernet"]
    capacity_bytes_per_s: PositiveFloat = Field(description="switching capacity (sum of port rates, one direction)")
    max_ports: PositiveInt = Field(description="most ports after breakout at the lowest supported rate")
    power_w: PositiveFloat = Field(description="typical power of the switch without pluggable optics")
    latency_s: PositiveFloat = Field(description="port-to-port forwarding latency")
    in_network_reduction: bool = Field(default=False, description="SHARP-class reduction in the switch")
    price_usd: PositiveFloat | None = None

    def radix(self, port_bytes_per_s: float) -> int:
        return int(min(self.max_ports, self.capacity_bytes_per_s // port_bytes_per_s))


class Nic(Cited):
    vendor: str
    bandwidth_bytes_per_s: PositiveFloat
    power_w: PositiveFloat
    latency_s: PositiveFloat = 1.0e-6
    price_usd: PositiveFloat | None = None


class Optic(Cited):
    """A pluggable transceiver (one per optical link end)."""

    bandwidth_bytes_per_s: PositiveFloat
    power_w: PositiveFloat
    price_usd: PositiveFloat | None = None


class Fabric(Cited):
    """The scale-out network: a rail-optimised folded-Clos (fat tree) of identical switches."""

    transport: Transport
    tiers: PositiveInt | None = Field(default=None, le=4,
                                      description="switch tiers; None: the fewest that hold the cluster")
    oversubscription: PositiveFloat | list[PositiveFloat] = Field(
        default=1.0, description="down:up port ratio per tier boundary, leaf first (one number: at the leaf only)")
    switch: Switch | None = None
    nic: Nic | None = None
    optic: Optic | None = None
    rail_optimized: bool = Field(default=True, description="NIC k of every node on leaf k (one rail per GPU index)")
    link_latency_s: PositiveFloat = Field(default=5e-6, description="latency of one collective step over the network")
    achievable_fraction: Fraction = Field(description="busbw / line rate a ring collective reaches per NIC")
    multipath_efficiency: Fraction = Field(
        default=1.0, description="share of bandwidth kept by traffic crossing spine tiers under load (ECMP hash "
        "collisions on plain Ethernet; adaptive routing on InfiniBand and Spectrum-X)")
    in_network_reduction: bool = Field(default=False, description="SHARP in-network all-reduce enabled")

    def oversubscription_at(self, boundary: int) -> float:
        """Down:up ratio at tier boundary ``boundary`` (1 = leaf to spine)."""
        o = self.oversubscription
        if isinstance(o, list):
            return o[boundary - 1] if boundary - 1 < len(o) else 1.0
        return o if boundary == 1 else 1.0

    @model_validator(mode="after")
    def _ratios(self) -> Fabric:
        ratios = self.oversubscription if isinstance(self.oversubscription, list) else [self.oversubscription]
        for r in ratios:
            if r < 1:
                raise ValueError(f"oversubscription {r} is below 1 (down:up ratios are >= 1)")
        if self.in_network_reduction and self.switch is not None and not self.switch.in_network_reduction:
            raise ValueError(f"in_network_reduction needs a switch that reduces; {self.switch.name} does not")
        return self


class Storage(Spec):
    """The training storage tier as the checkpoint model sees it: sustained bandwidth, per GPU of the cluster (so that
    a storage tier sized for the cluster scales with it)."""

    write_bandwidth_per_gpu_bytes_per_s: PositiveFloat = Field(
        description="sustained aggregate write bandwidth of the storage tier / GPUs of the cluster")
    read_bandwidth_per_gpu_bytes_per_s: PositiveFloat = Field(
        description="sustained aggregate read bandwidth of the storage tier / GPUs of the cluster")


class Cluster(Cited):
    accelerator: Accelerator
    num_gpus: PositiveInt = Field(le=MAX_GPUS)
    gpus_per_node: PositiveInt = 8
    scale_up_domain_gpus: PositiveInt | None = Field(
        default=None, description="GPUs sharing one NVLink/NVSwitch domain (8 for HGX, 72 for NVL72)"
    )
    scale_out_bandwidth_per_gpu_bytes_per_s: PositiveFloat = Field(
        description="network injection bandwidth per GPU (NIC line rate), bytes/s"
    )
    fabric: Fabric
    host_power: HostPower | None = Field(
        default=None, description="the servers' parts other than GPUs and scale-out NICs, where they differ from the "
        "accelerator's reference server (its server_power)")
    server_price_usd: NonNegativeFloat | None = Field(default=None, description="one server without its GPUs")
    storage_power_per_gpu_w: NonNegativeFloat | None = None
    storage_price_per_gpu_usd: NonNegativeFloat | None = None
    storage: Storage | None = Field(default=None, description="checkpoint storage bandwidth (reliability model)")

    @property
    def domain_gpus(self) -> int:
        return self.scale_up_domain_gpus or self.gpus_per_node

    @property
    def host(self) -> HostPower | None:
        """The servers' non-GPU parts: the cluster's own, else its accelerator's reference server's."""
        return self.host_power or self.accelerator.server_power

    @model_validator(mode="after")
    def _domain_fits(self) -> Cluster:
        if self.domain_gpus < self.gpus_per_node and self.gpus_per_node % self.domain_gpus:
            raise ValueError(
                f"scale_up_domain_gpus({self.domain_gpus}) must divide gpus_per_node({self.gpus_per_node})"
            )
        return self


class Climate(Spec):
    """A site's monthly climate normals (January first), cited: what the cooling towers' evaporation depends on."""

    monthly_mean_temperature_c: list[float] = Field(min_length=12, max_length=12,
                                                    description="mean dry-bulb air temperature per month, deg C")
    monthly_relative_humidity_pct: list[float] = Field(min_length=12, max_length=12,
                                                       description="mean relative humidity per month, %")
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _physical(self) -> Climate:
        for i, (t, rh) in enumerate(zip(self.monthly_mean_temperature_c, self.monthly_relative_humidity_pct,
                                        strict=True)):
            if not -20.0 <= t <= 50.0:
                raise ValueError(f"monthly_mean_temperature_c[{i}] = {t} is outside -20..50 C (the range of the "
                                 "wet-bulb and evaporation formulas)")
            if not 5.0 <= rh <= 99.0:
                raise ValueError(f"monthly_relative_humidity_pct[{i}] = {rh} is outside 5..99 %")
        return self


class Facility(Cited):
    """Where the cluster runs: cooling, water, carbon and money. Every figure cited in the catalog."""

    location: str | None = None
    cooling: str | None = None
    pue: float = Field(default=1.2, ge=1.0, le=3.0, allow_inf_nan=False,
                       description="facility power / IT power (annual average)")
    wue_l_per_kwh: NonNegativeFloat | None = Field(
        default=None, description="site water per kWh of IT energy, when measured; otherwise the cooling tower model")
    cooling_tower_cycles: float | None = Field(
        default=None, gt=1.0, allow_inf_nan=False,
        description="cycles of concentration of evaporative cooling towers (blowdown = evaporation / (cycles - 1))")
    evaporative_heat_share: float | None = Field(
        default=None, ge=0.0, le=1.0, description="share of the heat rejected through the evaporative towers (the "
        "rest by dry coolers or economisers): set by the cooling design")
    climate: Climate | None = Field(
        default=None, description="monthly climate normals; without them every kWh of tower heat is taken as "
        "rejected by evaporation (an upper bound)")
    generation_water_l_per_kwh: NonNegativeFloat | None = Field(
        default=None, description="water consumed to generate a kWh of the site's electricity (off site)")
    grid_carbon_g_per_kwh: NonNegativeFloat | None = None
    onsite_generation_share: float = Field(default=0.0, ge=0.0, le=1.0,
                                           description="share of the facility's energy generated on site")
    onsite_carbon_g_per_kwh: NonNegativeFloat = Field(default=0.0, description="e.g. gas turbines")
    electricity_usd_per_kwh: PositiveFloat | None = None
    water_usd_per_m3: NonNegativeFloat | None = None
    construction_usd_per_w: NonNegativeFloat | None = Field(
        default=None, description="building, power and cooling infrastructure per W of critical IT load")
    it_depreciation_years: PositiveFloat = 5.0
    facility_depreciation_years: PositiveFloat = 20.0
    maintenance_share_per_year: float = Field(default=0.0, ge=0.0, le=1.0,
                                              description="yearly maintenance and staff as a share of IT capex")
    household_kwh_per_year: PositiveFloat | None = Field(
        default=None, description="electricity of an average household where the site is (homes equivalent)")
