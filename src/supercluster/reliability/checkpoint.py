"""Checkpoint size and cost, restart cost, and the optimal checkpoint interval (Young 1974, Daly 2006).

- A checkpoint is one copy of the training state: every parameter's bf16 weight and its fp32 master weight and Adam
  moments (the workload's WEIGHT_BYTES + OPTIMIZER_BYTES per parameter), written once however it is sharded.
- Writing it takes bytes / the storage tier's aggregate write bandwidth (per GPU x GPUs of the cluster). At a
  restart every GPU reads back its own shard: GPUs x (weights + optimizer bytes on a GPU) / the read bandwidth.
- Synchronous checkpoints stop training for the whole write. Asynchronous ones stop it only to snapshot a GPU's
  shard to host memory (bytes on a GPU / the device-to-host rate) and write in the background; the checkpoint
  becomes durable one write time after the snapshot, and the interval cannot be shorter than a write.
- Young: tau = sqrt(2 delta M); Daly (2006, eq. 37): tau = sqrt(2 delta M) [1 + sqrt(delta / 2M) / 3 +
  (delta / 2M) / 9] - delta for delta < 2M, else M; delta = the time a checkpoint stops training, M = the job's mean
  time between interruptions that lose work.
- Daly's expected wall time for T_s of work with exponential failures, restart R, interval tau and cost delta:
  T_w = M e^(R/M) (e^((tau + delta)/M) - 1) T_s / tau (failures during checkpoints and restarts included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import SpecError
from ..spec.hardware import Cluster
from ..spec.model import Model
from ..spec.reliability import Reliability
from ..workload.memory import OPTIMIZER_BYTES, WEIGHT_BYTES
from ..workload.params import param_counts


@dataclass(frozen=True)
class CheckpointCost:
    """SI: bytes and seconds."""

    bytes: float  # one copy of weights + optimizer states
    per_gpu_bytes: float  # the largest shard one GPU holds (weights + optimizer states)
    write_s: float
    read_s: float  # every GPU of the job reading its shard back
    snapshot_s: float  # device-to-host copy of an asynchronous checkpoint
    blocking_s: float  # what one checkpoint stops training for
    commit_lag_s: float  # from the end of the block until the checkpoint is durable

    @property
    def min_interval_s(self) -> float:
        """An asynchronous write must finish before the next snapshot."""
        return self.commit_lag_s


def checkpoint_cost(model: Model, cluster: Cluster, rel: Reliability, *, gpus: int,
                    per_gpu_state_bytes: float) -> CheckpointCost:
    """Checkpoint costs of a job of ``gpus`` GPUs whose GPUs each hold ``per_gpu_state_bytes`` of weights and
    optimizer states (from the memory model of the chosen parallelism). Needs ``cluster.storage``."""
    if cluster.storage is None:
        raise SpecError("the cluster names no storage: the checkpoint model needs its write and read bandwidth "
                        "(storage: {write_bandwidth_per_gpu_bytes_per_s: ..., read_bandwidth_per_gpu_bytes_per_s: "
                        "...})", field="cluster.storage")
    total = float(param_counts(model).total) * (WEIGHT_BYTES + OPTIMIZER_BYTES)
    write_bw = cluster.storage.write_bandwidth_per_gpu_bytes_per_s * cluster.num_gpus
    read_bw = cluster.storage.read_bandwidth_per_gpu_bytes_per_s * cluster.num_gpus
    write_s = total / write_bw
    read_s = gpus * per_gpu_state_bytes / read_bw
    snapshot_s = per_gpu_state_bytes / rel.snapshot_bandwidth_per_gpu_bytes_per_s
    if rel.async_checkpoint:
        return CheckpointCost(total, per_gpu_state_bytes, write_s, read_s, snapshot_s, snapshot_s, write_s)
    return CheckpointCost(total, per_gpu_state_bytes, write_s, read_s, snapshot_s, write_s, 0.0)


def young_interval_s(blocking_s: float, mttf_s: float) -> float:
    """Young (1974), Communications of the ACM 17(9): 530-531."""
    return math.sqrt(2.0 * blocking_s * mttf_s)


def daly_interval_s(blocking_s: float, mttf_s: float) -> float:
    """Daly (2006), Future Generation Computer Systems 22(3): 303-312, higher-order optimum."""
    d, m = blocking_s, mttf_s
    if d >= 2.0 * m:
        return m
    x = d / (2.0 * m)
    return math.sqrt(2.0 * d * m) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - d


def daly_expected_wall_s(work_s: float, *, interval_s: float, blocking_s: float, restart_s: float,
                         mttf_s: float) -> float:
    """Daly (2006) expected wall time of ``work_s`` of computation under exponential failures (mean ``mttf_s``)."""
    m = mttf_s
    return m * math.exp(restart_s / m) * math.expm1((interval_s + blocking_s) / m) * work_s / interval_s
