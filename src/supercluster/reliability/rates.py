"""Interruption rates of a job from a published table, scaled by component counts.

A failure class observed ``events`` times over ``hours`` on a reference job that held ``U_ref`` units of what the
class scales with has the per-unit rate ``r = events / (U_ref x hours)`` (a constant hazard per component: the
exponential model of Kokolis et al. 2024, MTTF = 1 / (N x r)). A job holding ``U`` such units sees it at ``U x r``
per hour; the job's interruption rate is the sum over classes, and its mean time to failure the reciprocal.

Units are counted the same way for the reference and the job (one function): GPUs, nodes, scale-out NICs (one per
GPU), scale-out switches and cables (NIC-leaf and switch-switch links) of the fat tree the fabric spec builds for
that many GPUs, and the job itself (a cause whose rate does not grow with size, e.g. fleet-wide maintenance).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from ..network.topology import build_topology
from ..spec import catalog
from ..spec.hardware import Cluster
from ..spec.load import load_cluster
from ..spec.reliability import FAILURE_UNITS, FailureClass, Reliability
from ..units import SECONDS_PER_HOUR


def component_counts(cluster: Cluster, gpus: int | None = None) -> dict[str, float]:
    """Units of each failure class held by a job of ``gpus`` GPUs (default: the whole cluster) on ``cluster``."""
    n = cluster.num_gpus if gpus is None else gpus
    sized = cluster if n == cluster.num_gpus else cluster.model_copy(update={"num_gpus": n})
    topo = build_topology(sized)
    counts = {"gpu": float(n), "node": n / cluster.gpus_per_node, "nic": float(topo.nic_links),
              "switch": float(topo.switches), "link": float(topo.nic_links + topo.switch_links), "job": 1.0}
    assert set(counts) == set(FAILURE_UNITS)
    return counts


@dataclass(frozen=True)
class ClassRate:
    """One failure class on the job: its per-unit rate (from the reference) and the job's rate (per second)."""

    failure: FailureClass
    per_unit_per_s: float
    units: float

    @property
    def rate_per_s(self) -> float:
        return self.per_unit_per_s * self.units


def reference_counts(rel: Reliability) -> dict[str, float]:
    """Component counts of the reference job the failure table was observed on."""
    catalog.entry("clusters", rel.reference_cluster, field="reliability.reference_cluster")  # a located error
    ref = load_cluster(rel.reference_cluster)
    if rel.reference_gpus is not None and rel.reference_gpus > ref.num_gpus:
        raise SpecError(f"reference_gpus ({rel.reference_gpus}) exceeds the {ref.num_gpus} GPUs of cluster "
                        f"{rel.reference_cluster!r}", field="reliability.reference_gpus")
    return component_counts(ref, rel.reference_gpus)


def class_rates(rel: Reliability, cluster: Cluster, gpus: int | None = None) -> list[ClassRate]:
    """Every failure class's rate on a job of ``gpus`` GPUs of ``cluster``."""
    ref = reference_counts(rel)
    job = component_counts(cluster, gpus)
    hours_s = rel.observation_days * 24 * SECONDS_PER_HOUR
    return [ClassRate(f, f.events / (ref[f.per] * hours_s), job[f.per]) for f in rel.failures]


def job_mttf_s(rates: list[ClassRate], *, unexpected_only: bool = True) -> float:
    """Mean time between interruptions of the job (unplanned ones by default)."""
    total = sum(r.rate_per_s for r in rates if not (unexpected_only and r.failure.planned))
    return 1.0 / total if total > 0 else float("inf")
