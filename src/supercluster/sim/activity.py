"""What the cluster's GPUs do over a simulated iteration, moment by moment: the input of its power trace (issue 14).

Each simulated (replica, stage) stands for the GPUs it represents (its stage's num_gpus / (dp x pp) GPUs in each
replica it stands for: in symmetric mode the one replica stands for all dp, or the slowest for itself and the
typical one for the other dp - 1; in full detail each replica for itself). At every moment each of those GPUs is in
one part of the step (perf.step.PARTS), read off what its stage's streams run then, the compute stream first:
its task's kind (compute, recompute, the optimizer, offloading; DualPipe's tensor- and context-parallel
collectives), else a collective the compute waits for on the comm stream, a blocking send on the pp stream, a
data-parallel collective on the dp stream, else the pipeline bubble (a stage waiting for its neighbour, or done
with its step before the slowest stage). The last ``host_wait_s`` of each optimizer task is the host's work of
the step (perf's step overhead: StepReport.host_wait_s), the SMs idle.

The result is piecewise constant: segment i, from ``edges_s[i]`` to ``edges_s[i + 1]``, has ``gpus[part][i]``
GPUs in each part. What those parts draw is facility.power's (one formula in one place; sim does not import it);
search.sim_power turns the timeline into watts. Over the step, each stage's parts add up to what
sim.run's breakdown reads off that stage, so the timeline's GPU-weighted mean breakdown (``mean_breakdown``) is
the busiest stage's breakdown when every stage does the same work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..perf.step import PARTS
from .graph import STREAMS, Graph

# the part of a step a task of each kind puts its stage's GPUs in (DualPipe's comm stream runs "ep overlapped"
# and "pp overlapped" under the pair's compute: exposed once the compute is done)
KIND_PARTS = {"compute": "compute", "recompute": "recompute", "optimizer": "optimizer", "offload": "offload",
              "tp": "tp_comm", "cp": "cp_comm", "ep": "ep_comm", "pp": "pp_comm", "dp": "dp_comm",
              "ep overlapped": "ep_comm", "pp overlapped": "pp_comm"}
_HOST = len(PARTS)  # the code of the optimizer's host wait, folded into "optimizer" (and host_wait_gpus)
_BUBBLE = PARTS.index("pipeline_bubble")


@dataclass(frozen=True)
class ActivityTimeline:
    """The cluster's GPUs by part of the step over a simulated iteration (see the module's docstring)."""

    edges_s: np.ndarray  # n + 1 increasing times, 0 to the step's end
    gpus: dict[str, np.ndarray]  # PARTS -> GPUs in that part over each of the n segments (summing to num_gpus)
    host_wait_gpus: np.ndarray  # of the "optimizer" GPUs, those waiting on the host's work of the step
    num_gpus: float

    @property
    def durations_s(self) -> np.ndarray:
        return np.diff(self.edges_s)

    def segment(self, i: int) -> dict[str, float]:
        """What the GPUs do over segment ``i``: GPUs per part (a breakdown of GPU-seconds per second)."""
        return {p: float(x[i]) for p, x in self.gpus.items()}

    def mean_breakdown(self) -> tuple[dict[str, float], float]:
        """The step's parts in seconds averaged over the cluster's GPUs (summing to the step), and of the
        optimizer part the host's wait."""
        dt = self.durations_s
        parts = {p: float(x @ dt) / self.num_gpus for p, x in self.gpus.items()}
        return parts, float(self.host_wait_gpus @ dt) / self.num_gpus


def replica_weights(labels: list[int], dp: int, detail: str) -> list[int]:
    """How many pipeline replicas each simulated one stands for (sim.variability.representatives' choice): all dp
    for the one replica of symmetric mode, 1 and dp - 1 for its slowest and typical replicas, 1 each in full
    detail."""
    if detail == "full":
        return [1] * len(labels)
    if len(labels) == 1:
        return [dp]
    return [1, dp - 1]


def activity_timeline(g: Graph, stage_gpus: dict[int, float], host_wait_s: float) -> ActivityTimeline:
    """The timeline of run graph ``g``; ``stage_gpus``: per replica label, the GPUs each of its simulated stages
    stands for; ``host_wait_s``: the end of each optimizer task the GPUs wait on the host."""
    stages: dict[tuple[int, int], list[list[tuple[float, float, int]]]] = {}
    step = 0.0
    for t, kind in zip(g.tasks, g.kinds, strict=True):
        step = max(step, t.end_s)
        if t.duration_s <= 0.0:
            continue
        rep, st, name = g.streams[t.stream]
        streams = stages.setdefault((rep, st), [[] for _ in STREAMS])
        spans = streams[STREAMS.index(name)]
        code = PARTS.index(KIND_PARTS[kind])
        wait = min(max(host_wait_s, 0.0), t.duration_s) if kind == "optimizer" else 0.0
        if wait > 0.0:
            if wait < t.duration_s:
                spans.append((t.start_s, t.end_s - wait, code))
            spans.append((t.end_s - wait, t.end_s, _HOST))
        else:
            spans.append((t.start_s, t.end_s, code))
    every = list(dict.fromkeys((rep, st) for rep, st, _ in g.streams))
    per_stage = [(stage_gpus[key[0]], *_stage_codes(stages.get(key, [[] for _ in STREAMS]), step)) for key in every]
    edges = np.unique(np.concatenate([e for _, e, _ in per_stage] + [np.array([0.0, step])]))
    mids = 0.5 * (edges[:-1] + edges[1:])
    counts = np.zeros((len(PARTS) + 1, len(mids)))
    cols = np.arange(len(mids))
    for weight, stage_edges, codes in per_stage:
        seg = np.searchsorted(stage_edges, mids, side="right") - 1  # the stage's segment holding each global one
        np.add.at(counts, (codes[seg], cols), weight)
    gpus = {p: counts[i] for i, p in enumerate(PARTS)}
    gpus["optimizer"] = gpus["optimizer"] + counts[_HOST]
    return ActivityTimeline(edges_s=edges, gpus=gpus, host_wait_gpus=counts[_HOST],
                            num_gpus=sum(stage_gpus[rep] for rep, _ in every))


def _stage_codes(streams: list[list[tuple[float, float, int]]], step: float) -> tuple[np.ndarray, np.ndarray]:
    """One stage's edges from 0 to ``step`` and the part code of each segment between them: the first stream
    (STREAMS' order) running a task over it, else the bubble. A stream runs one task at a time."""
    edges = np.unique(np.array([0.0, step] + [x for spans in streams for a, b, _ in spans for x in (a, b)]))
    mids = 0.5 * (edges[:-1] + edges[1:])
    codes = np.full(len(mids), _BUBBLE)
    for spans in reversed(streams):  # the compute stream last: it wins
        if not spans:
            continue
        arr = np.array(sorted(spans))
        i = np.searchsorted(arr[:, 0], mids, side="right") - 1
        hit = (i >= 0) & (arr[np.maximum(i, 0), 1] > mids)
        codes[hit] = arr[i[hit], 2].astype(int)
    return edges, codes
