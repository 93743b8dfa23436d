"""Failure rates: per-component rates from the published table, scaled by the job's component counts."""

from __future__ import annotations

import pytest

from supercluster.errors import CatalogNameError, SpecError
from supercluster.reliability.rates import class_rates, component_counts, job_mttf_s
from supercluster.spec.load import load_cluster
from supercluster.spec.reliability import Reliability
from supercluster.spec.scenario import default_reliability

DAY_S = 86400.0


def test_the_reference_job_gets_back_the_published_counts() -> None:
    """On the Llama 3 cluster at 16,384 GPUs over 54 days, the expected interruptions are the table's: 419
    unexpected and 47 planned, each cause its own count."""
    rel = default_reliability()
    rates = class_rates(rel, load_cluster("llama3-16k"), 16384)
    by_cause = {r.failure.cause: r.rate_per_s * 54 * DAY_S for r in rates}
    for f in rel.failures:
        assert by_cause[f.cause] == pytest.approx(f.events, rel=1e-12)
    assert sum(r.rate_per_s for r in rates if not r.failure.planned) * 54 * DAY_S == pytest.approx(419)
    assert job_mttf_s(rates) / 3600 == pytest.approx(54 * 24 / 419)


def test_rates_scale_with_component_counts() -> None:
    """A job of twice the GPUs sees twice the GPU, node and NIC failures; job-level causes stay; switch and cable
    causes follow the fat tree built for that size (never fewer links for more GPUs)."""
    rel = default_reliability()
    cluster = load_cluster("colossus")
    small, big = class_rates(rel, cluster, 8192), class_rates(rel, cluster, 16384)
    for a, b in zip(small, big, strict=True):
        ratio = b.rate_per_s / a.rate_per_s
        if a.failure.per in ("gpu", "node", "nic"):
            assert ratio == pytest.approx(2.0)
        elif a.failure.per == "job":
            assert ratio == pytest.approx(1.0)
        else:
            assert ratio >= 1.9
    counts = component_counts(cluster, 16384)
    assert counts["node"] == 2048 and counts["nic"] == 16384 and counts["link"] > counts["nic"]


def test_mttf_falls_inversely_with_size() -> None:
    """Job MTTF on the same cluster design: 100,000 GPUs fail ~6x as often as 16,384."""
    rel = default_reliability()
    cluster = load_cluster("colossus")
    m16 = job_mttf_s(class_rates(rel, cluster, 16384))
    m100 = job_mttf_s(class_rates(rel, cluster, 100000))
    assert 5.0 < m16 / m100 < 7.0


def test_unknown_reference_cluster_is_located() -> None:
    rel = Reliability.model_validate({**default_reliability().model_dump(), "reference_cluster": "lama3-16k"})
    with pytest.raises(CatalogNameError, match="reliability.reference_cluster.*llama3-16k"):
        class_rates(rel, load_cluster("colossus"))


def test_reference_gpus_beyond_the_reference_cluster_is_located() -> None:
    rel = Reliability.model_validate({**default_reliability().model_dump(), "reference_gpus": 10**6})
    with pytest.raises(SpecError, match="reliability.reference_gpus"):
        class_rates(rel, load_cluster("colossus"))


def test_research_cluster_profile_reproduces_kokolis_projections() -> None:
    """The meta-rsc1-a100 profile (one per-node rate, 6.50 per 1,000 node-days) gives Kokolis et al.'s projected
    MTTF: 1.8 h at 16,384 GPUs and 0.23 h at 131,072 (their fit: MTTF = 1 / (N_nodes r_f))."""
    from supercluster.spec import catalog

    rel = Reliability.model_validate(catalog.entry("reliability", "meta-rsc1-a100"))
    cluster = load_cluster("meta-rsc1")
    assert job_mttf_s(class_rates(rel, cluster, 16384)) / 3600 == pytest.approx(1.8, rel=0.01)
    assert job_mttf_s(class_rates(rel, cluster, 131072)) / 3600 == pytest.approx(0.23, rel=0.03)
    production = job_mttf_s(class_rates(default_reliability(), cluster, 16384))
    assert production > 1.5 * job_mttf_s(class_rates(rel, cluster, 16384))  # Llama 3's production run: fewer
