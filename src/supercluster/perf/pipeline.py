"""Closed forms of the pipeline schedules: the time of one step's pipeline from one micro-batch on the busiest stage.

Codes (perf.candidates SCHEDULE_CODES): 1F1B and interleaved (v > 1), ZB-H1, DualPipe. Every time is one
micro-batch on the busiest stage: ``t_mb`` its forward and backward (the step model's t_max), ``t_w`` the
backward's weight-gradient passes, ``t_crit`` one micro-batch through every stage (perf.step).

- 1F1B / interleaved (Narayanan et al. SC'21 §2.2; perf.step's docstring):
  max(m t_mb + (t_crit - t_mb)/v, t_crit + (m - 1) t_mb / v).
- ZB-H1 (Qi et al. 2023, arXiv:2401.10241 §3.1): the backward split into its input-gradient pass B and its
  weight-gradient pass W, which leaves the critical path and fills the cool-down. With equal stages the bubble is
  (pp - 1)(F + B - W) against 1F1B's (pp - 1)(F + B + W): 1F1B's bubble (t_crit - t_mb) times (t_mb - 2 W) / t_mb
  (uneven stages scaled the same way). With fewer micro-batches than stages the last micro-batch's path: its
  forwards and input-gradient passes through every stage, behind each earlier micro-batch's forward and
  input-gradient pass on the busiest stage, then the first stage's W; every other stage's W runs off the path (the
  first stage runs each W right after its input-gradient pass, the others defer theirs, perf.schedule):
  t_crit - (W_all - W) + (m - 1)(t_mb - W), ``W_all`` one micro-batch's weight-gradient passes over all stages
  (pp W with equal stages; the busiest stage's W standing for the first stage's). Its guard: one micro-batch's
  critical path under ZB-H1, t_crit - W_all + W (t_crit less the weight-gradient passes off it), and t_mb.
- DualPipe (DeepSeek-V3 report, arXiv:2412.19437 §3.2.1, Table 2; deepseek-ai/DualPipe README): m micro-batches,
  half from each end of the pipeline; in the steady state a rank runs one micro-batch's forward and another's
  backward as a pair, each one's communication (the expert all-to-all, the pipeline sends) under the other's
  compute: the pair takes ``t_pair`` = the compute plus what communication the compute does not cover
  (perf.step), every time that of the busiest rank (the longest pair), which runs half its micro-batches through
  each of its two stages (r and pp - 1 - r): their mean, the layers split as they run (perf.step). Bubble
  (pp/2 - 1)(F&B + B - 3W), F&B = t_pair, B the whole backward of a micro-batch run alone; and the chunks
  DualPipe does not pair, at their unoverlapped time: the middle ranks, on the pipeline's critical path, run
  pp + 1 of their m forwards (and as many backwards) outside a pair (deepseek-ai/DualPipe dualpipe.py steps 1-3, 5
  and 6, and the first chunk of step 4, left unoverlapped there), charged as (pp + 1)(t_mb - t_pair).
  The report's bubble omits them: it is stated for F&B with nothing hidden (F&B = F + B). perf.schedule's
  drawing of dualpipe.py's own order ends at this with pp = 2 and up to 3% before it otherwise (the report's
  bubble is itself at or above the drawing).
"""

from __future__ import annotations

import numpy as np

from ..spec.training import pipeline_group
from .candidates import SCHEDULE_CODES

ZB_H1, DUALPIPE = SCHEDULE_CODES["zb-h1"], SCHEDULE_CODES["dualpipe"]  # 1F1B and interleaved: one_f_one_b_s
Fill = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # DualPipe's heaviest stage: t_mb, t_pair, t_b, t_w


def one_f_one_b_s(m: np.ndarray, vs: np.ndarray, t_mb: np.ndarray, t_crit: np.ndarray) -> np.ndarray:
    """1F1B and the interleaved schedule."""
    return np.maximum(m * t_mb + (t_crit - t_mb) / vs, t_crit + (m - 1.0) * t_mb / vs)


def unequal_chunks_s(m: np.ndarray, pp: np.ndarray, vs: np.ndarray, layers: int | np.ndarray, lps: np.ndarray,
                     t_mb: np.ndarray) -> np.ndarray:
    """What the interleaved schedule loses when every stage's layers split unevenly over its ``vs`` chunks (the
    busiest stage's ``lps`` = ceil(L/pp) into chunks of s_max and s_min = s_max - 1 layers): in the steady state the stages
    pair forwards and backwards of chunks of different sizes at different moments and wait for each other, each
    micro-batch past the first 1.5 pp losing (s_max - s_min - (2 s_max - s_min) / pp) layer times (never below
    0). Read off the execution of perf.schedule's interleaved order with chunk-sized blocks (equal stages and
    stages of n and n + 1 layers both split unevenly; v 2-6, pp 4-16, backward/forward 1-3: within 2%). Zero when
    the busiest stage's layers divide evenly and for one chunk a stage; not charged either when the busiest stage
    splits unevenly but the smaller ones evenly (the simulator finds 0.3-9% there: no closed form yet), nor when the
    schedule runs micro-batch groups larger than pp (m not a multiple of pp, spec.training.microbatch_group): the
    group's extra micro-batches absorb the chunks' difference (the simulator finds the closed form alone within 0.2%
    there, with the loss charged 5-7% slow). Where the split counts the embedding and the loss as layers, ``layers``
    and ``lps`` count them too (slots)."""
    s_max, s_min = np.ceil(lps / vs), np.floor(lps / vs)
    small = np.floor(layers / pp)
    every = ((np.mod(layers, pp) == 0) | (np.mod(small, vs) != 0)) & (pipeline_group(m, pp) == pp)
    per_mb = t_mb / lps * np.maximum(s_max - s_min - (2.0 * s_max - s_min) / pp, 0.0)
    return np.where(every, per_mb * np.maximum(m - 1.5 * pp, 0.0), 0.0)


def zb_h1_s(m: np.ndarray, t_mb: np.ndarray, t_w: np.ndarray, t_crit: np.ndarray, t_w_all: np.ndarray
            ) -> np.ndarray:
    """ZB-H1 (one chunk a stage); ``t_w_all`` one micro-batch's weight-gradient passes over every stage."""
    filled = m * t_mb + (t_crit - t_mb) * (t_mb - 2.0 * t_w) / t_mb
    path = np.maximum(t_crit - (t_w_all - t_w), t_mb)  # one micro-batch, the other stages' W off its path
    last = path + (m - 1.0) * (t_mb - t_w)
    return np.maximum(filled, last)


def dualpipe_s(m: np.ndarray, pp: np.ndarray, t_mb: np.ndarray, t_pair: np.ndarray, t_b: np.ndarray,
               t_w: np.ndarray, t_crit: np.ndarray, fill: Fill | None = None) -> np.ndarray:
    """DualPipe: ``t_pair`` a forward and a backward overlapped, ``t_b`` a whole backward alone, ``t_mb`` a
    micro-batch alone, ``t_w`` its weight-gradient pass, on the busiest rank (the steady state). ``fill``: the
    same four (t_mb, t_pair, t_b, t_w) of the heaviest single stage, which paces the fill and the drain when the
    stages are unequal (the LM head's); None: the busiest rank's."""
    f_mb, f_pair, f_b, f_w = fill if fill is not None else (t_mb, t_pair, t_b, t_w)
    bubble = (pp / 2.0 - 1.0) * (f_pair + f_b - 3.0 * f_w) + (pp + 1.0) * (f_mb - f_pair)
    return np.maximum(m * t_pair + np.maximum(bubble, 0.0), t_crit)


def pipeline_s(schedule: np.ndarray, m: np.ndarray, pp: np.ndarray, vs: np.ndarray, t_mb: np.ndarray,
               t_crit: np.ndarray, t_w: np.ndarray, t_pair: np.ndarray, t_b: np.ndarray, t_w_all: np.ndarray,
               fill: Fill | None = None) -> np.ndarray:
    """Each candidate's pipeline time under its schedule (1F1B and interleaved to the bit as before ZB-H1 and
    DualPipe were added)."""
    out = one_f_one_b_s(m, vs, t_mb, t_crit)
    zb, dual = schedule == ZB_H1, schedule == DUALPIPE
    if zb.any():
        out = np.where(zb, zb_h1_s(m, t_mb, t_w, t_crit, t_w_all), out)
    if dual.any():
        out = np.where(dual, dualpipe_s(m, pp, t_mb, t_pair, t_b, t_w, t_crit, fill), out)
    return out


def dualpipe_exposed_s(comm: np.ndarray, compute: np.ndarray) -> np.ndarray:
    """The communication of a DualPipe pair left exposed: what the pair's compute does not cover (DeepSeek-V3
    report §3.2.1: the all-to-all and the pipeline sends of one chunk run under the other chunk's compute)."""
    return np.maximum(comm - compute, 0.0)
