"""Reliability inputs: the failure statistics a run is exposed to, and how the job checkpoints and restarts.

A :class:`Reliability` part is a catalog entry (``catalog/reliability.yaml``) or inline in a scenario. Its failure
classes are *observed counts* on a reference job (events over a period on a named catalog cluster), so that every rate
the model uses is traceable to a published table: rate per unit-hour = events / (units of the reference x hours),
where a unit is what the class scales with (a GPU, a node, a NIC, a switch, a cable, or the job itself).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Cited, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Spec

FailureUnit = Literal["gpu", "node", "nic", "switch", "link", "job"]
FAILURE_UNITS: tuple[FailureUnit, ...] = ("gpu", "node", "nic", "switch", "link", "job")


class FailureClass(Spec):
    """One row of a published interruption table, and what it scales with."""

    cause: str = Field(min_length=1)
    per: FailureUnit = Field(description="the component count the rate scales with")
    events: NonNegativeFloat = Field(description="interruptions of this cause observed on the reference job")
    needs_node_swap: bool = Field(default=False, description="hardware: the node is replaced before the restart")
    planned: bool = Field(default=False, description="planned maintenance: announced, so no work is lost")


class Reliability(Cited):
    """Failure statistics (from a reference job) and the job's checkpoint and restart policy."""

    reference_cluster: str = Field(min_length=1, description="catalog cluster the failures were counted on")
    reference_gpus: PositiveInt | None = Field(default=None,
                                               description="GPUs of the reference job (default: the whole cluster)")
    observation_days: PositiveFloat = Field(description="length of the reference observation")
    failures: list[FailureClass] = Field(min_length=1)
    # restart
    detection_s: NonNegativeFloat = Field(description="from the failure to the job being torn down")
    relaunch_s: NonNegativeFloat = Field(description="scheduling, containers, process start")
    init_s_per_1k_gpus: NonNegativeFloat = Field(
        description="communicator and framework initialisation, per 1,000 GPUs of the job (linear in size)")
    node_swap_s: NonNegativeFloat = Field(description="swapping a failed node for a hot spare")
    node_repair_s: PositiveFloat = Field(description="repairing (or replacing) a failed node when no spare is free")
    hot_spare_nodes: NonNegativeInt | None = Field(
        default=None, description="spare nodes kept for the job; null = enough (a restart never waits for a repair)")
    # checkpoints
    checkpoint_interval_s: PositiveFloat | None = Field(
        default=None, description="time between checkpoints; null = the interval the simulation finds best")
    async_checkpoint: bool = Field(default=False, description="snapshot to host memory, write in the background")
    snapshot_bandwidth_per_gpu_bytes_per_s: PositiveFloat = Field(
        description="device-to-host copy rate of an asynchronous checkpoint's snapshot")

    @model_validator(mode="after")
    def _unique_causes(self) -> Reliability:
        seen: set[str] = set()
        for i, f in enumerate(self.failures):
            if f.cause in seen:
                raise ValueError(f"failures.{i}.cause: {f.cause!r} appears twice")
            seen.add(f.cause)
        return self
