"""Checkpoint cost and the optimal interval (Young 1974, Daly 2006)."""

from __future__ import annotations

import math

import pytest

from supercluster.errors import SpecError
from supercluster.reliability.checkpoint import (
    checkpoint_cost,
    daly_expected_wall_s,
    daly_interval_s,
    young_interval_s,
)
from supercluster.spec import catalog
from supercluster.spec.load import load_cluster
from supercluster.spec.model import Model
from supercluster.spec.scenario import default_reliability
from supercluster.workload.params import param_counts

MIN = 60.0
HOUR = 3600.0


@pytest.mark.parametrize(("mttf_h", "expected_min"), [(24.0, 117.0), (6.0, 57.0), (0.25, 9.1)])
def test_daly_reproduces_his_worked_examples(mttf_h: float, expected_min: float) -> None:
    """Daly (2006), figures: delta = 5 min gives tau_opt = 117 min at M = 24 h, 57 min at 6 h, 9.1 min at 15 min."""
    assert daly_interval_s(5 * MIN, mttf_h * HOUR) / MIN == pytest.approx(expected_min, abs=0.5)


def test_young_and_daly_agree_when_checkpoints_are_cheap() -> None:
    assert young_interval_s(5 * MIN, 24 * HOUR) == pytest.approx(120 * MIN)
    assert daly_interval_s(1.0, 1e6) == pytest.approx(young_interval_s(1.0, 1e6), rel=1e-3)
    assert daly_interval_s(10.0, 4.0) == 4.0  # delta >= 2M: checkpoint every MTTF


def test_daly_wall_time_is_minimal_at_his_optimum() -> None:
    kw = {"blocking_s": 60.0, "restart_s": 600.0, "mttf_s": 4 * HOUR}
    tau = daly_interval_s(60.0, 4 * HOUR)
    best = daly_expected_wall_s(1e6, interval_s=tau, **kw)
    for f in (0.5, 0.8, 1.25, 2.0):
        assert daly_expected_wall_s(1e6, interval_s=tau * f, **kw) > best
    assert daly_expected_wall_s(1e6, interval_s=tau, blocking_s=0.0, restart_s=0.0, mttf_s=1e12) == \
        pytest.approx(1e6)


def test_checkpoint_size_and_times() -> None:
    """One copy of bf16 weights + fp32 master and Adam moments (14 B per parameter), written at the storage tier's
    aggregate bandwidth; asynchronous checkpoints block only for the snapshot."""
    model = Model.model_validate(catalog.entry("models", "llama3-405b"))
    cluster = load_cluster("llama3-16k")
    sync = checkpoint_cost(model, cluster, default_reliability(), gpus=16384, per_gpu_state_bytes=7e9)
    assert sync.bytes == pytest.approx(14 * param_counts(model).total)
    assert cluster.storage is not None
    assert sync.write_s == pytest.approx(sync.bytes / (cluster.storage.write_bandwidth_per_gpu_bytes_per_s * 16384))
    assert sync.read_s == pytest.approx(16384 * 7e9 / (cluster.storage.read_bandwidth_per_gpu_bytes_per_s * 16384))
    assert sync.blocking_s == sync.write_s and sync.commit_lag_s == 0.0
    rel = default_reliability().model_copy(update={"async_checkpoint": True})
    asy = checkpoint_cost(model, cluster, rel, gpus=16384, per_gpu_state_bytes=7e9)
    assert asy.blocking_s == pytest.approx(7e9 / rel.snapshot_bandwidth_per_gpu_bytes_per_s)
    assert asy.commit_lag_s == sync.write_s and asy.blocking_s < sync.blocking_s
    assert math.isclose(asy.min_interval_s, sync.write_s)


def test_no_storage_is_a_located_error() -> None:
    model = Model.model_validate(catalog.entry("models", "llama3-8b"))
    cluster = load_cluster("llama3-16k").model_copy(update={"storage": None})
    with pytest.raises(SpecError, match="cluster.storage"):
        checkpoint_cost(model, cluster, default_reliability(), gpus=8, per_gpu_state_bytes=1e9)
