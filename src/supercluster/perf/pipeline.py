"""Closed forms of the pipeline schedules: the time of one step's pipeline from one micro-batch on the busiest stage.

Codes (perf.candidates SCHEDULE_CODES): 1F1B and interleaved (v > 1), ZB-H1, DualPipe. Every time is one
micro-batch on the busiest stage: ``t_mb`` its forward and backward (the step model's t_max), ``t_w`` the
backward's weight-gradient passes, ``t_crit`` one micro-batch through every stage (perf.step).

- 1F1B / interleaved (Narayanan et al. SC'21 §2.2; perf.step's docstring):
  max(m t_mb + (t_crit - t_mb)/v, t_crit + (m - 1) t_mb / v).
- ZB-H1 (Qi et al. 2023, arXiv:2401.10241 §3.1): the backward split into its input-gradient pass B and its
  weight-gradient pass W, which leaves the critical path and fills the cool-down. With equal stages the bubble is
  (pp - 1)(F + B - W) against 1F1B's (pp - 1)(F + B + W): 1F1B's bubble (t_crit - t_mb) times (t_mb - 2 W) / t_mb
  (uneven stages scaled the same way). With fewer micro-batches than stages the last one's path is
  t_crit - (pp - 1) W + (m - 1)(t_mb - W) (each stage's W but the first's off the path), never less than t_crit
  (the guard every schedule keeps: all of one micro-batch's work through every stage, a conservative bound here).
- DualPipe (DeepSeek-V3 report, arXiv:2412.19437 §3.2.1, Table 2; deepseek-ai/DualPipe README): m micro-batches,
  half from each end of the pipeline; in the steady state a rank runs one micro-batch's forward and another's
  backward as a pair, each one's communication (the expert all-to-all, the pipeline sends) under the other's
  compute: the pair takes ``t_pair`` = the compute plus what communication the compute does not cover
  (perf.step), every time that of the busiest rank, which runs half its micro-batches through each of its two
  stages (r and pp - 1 - r): the mean of the busiest stage and its mirror (perf.step). Bubble (pp/2 - 1)(F&B + B - 3W), F&B = t_pair, B the whole backward of a micro-batch run alone;
  and the chunks DualPipe does not pair, at their unoverlapped time: the middle ranks, on the pipeline's critical
  path, run pp + 1 of their m forwards (and as many backwards) outside a pair (deepseek-ai/DualPipe dualpipe.py
  steps 1-3, 5 and 6, and the first chunk of step 4, left unoverlapped there), charged as (pp + 1)(t_mb - t_pair).
  The report's bubble omits them: it is stated for F&B with nothing hidden (F&B = F + B). perf.schedule's
  drawing of dualpipe.py's own order ends at this with pp = 2 and up to 3% before it otherwise (the report's
  bubble is itself at or above the drawing).
"""

from __future__ import annotations

import numpy as np

from ..spec.training import SCHEDULES

ONE_F_ONE_B, INTERLEAVED, ZB_H1, DUALPIPE = (SCHEDULES.index(n) for n in ("1f1b", "interleaved", "zb-h1", "dualpipe"))


def one_f_one_b_s(m: np.ndarray, vs: np.ndarray, t_mb: np.ndarray, t_crit: np.ndarray) -> np.ndarray:
    """1F1B and the interleaved schedule."""
    return np.maximum(m * t_mb + (t_crit - t_mb) / vs, t_crit + (m - 1.0) * t_mb / vs)


def unequal_chunks_s(m: np.ndarray, pp: np.ndarray, vs: np.ndarray, layers: int, t_mb: np.ndarray) -> np.ndarray:
    """What the interleaved schedule loses when every stage's layers split unevenly over its ``vs`` chunks (the
    busiest stage's ceil(L/pp) into chunks of s_max and s_min = s_max - 1 layers): in the steady state the stages
    pair forwards and backwards of chunks of different sizes at different moments and wait for each other, each
    micro-batch past the first 1.5 pp losing (s_max - s_min - (2 s_max - s_min) / pp) layer times (never below
    0). Read off the execution of perf.schedule's interleaved order with chunk-sized blocks (equal stages and
    stages of n and n + 1 layers both split unevenly; v 2-6, pp 4-16, backward/forward 1-3: within 2%). Zero when
    the busiest stage's layers divide evenly and for one chunk a stage; not charged either when the busiest stage
    splits unevenly but the smaller ones evenly (the simulator finds 0.3-9% there: no closed form yet)."""
    lps = np.ceil(layers / pp)
    s_max, s_min = np.ceil(lps / vs), np.floor(lps / vs)
    small = np.floor(layers / pp)
    every = (np.mod(layers, pp) == 0) | (np.mod(small, vs) != 0)
    per_mb = t_mb / lps * np.maximum(s_max - s_min - (2.0 * s_max - s_min) / pp, 0.0)
    return np.where(every, per_mb * np.maximum(m - 1.5 * pp, 0.0), 0.0)


def zb_h1_s(m: np.ndarray, pp: np.ndarray, t_mb: np.ndarray, t_w: np.ndarray, t_crit: np.ndarray) -> np.ndarray:
    """ZB-H1 (one chunk a stage)."""
    filled = m * t_mb + (t_crit - t_mb) * (t_mb - 2.0 * t_w) / t_mb
    last = t_crit - (pp - 1.0) * t_w + (m - 1.0) * (t_mb - t_w)
    return np.maximum(filled, np.maximum(last, t_crit))


def dualpipe_s(m: np.ndarray, pp: np.ndarray, t_mb: np.ndarray, t_pair: np.ndarray, t_b: np.ndarray,
               t_w: np.ndarray, t_crit: np.ndarray) -> np.ndarray:
    """DualPipe: ``t_pair`` a forward and a backward overlapped, ``t_b`` a whole backward alone."""
    bubble = (pp / 2.0 - 1.0) * (t_pair + t_b - 3.0 * t_w) + (pp + 1.0) * (t_mb - t_pair)
    return np.maximum(m * t_pair + np.maximum(bubble, 0.0), t_crit)


def pipeline_s(schedule: np.ndarray, m: np.ndarray, pp: np.ndarray, vs: np.ndarray, t_mb: np.ndarray,
               t_crit: np.ndarray, t_w: np.ndarray, t_pair: np.ndarray, t_b: np.ndarray) -> np.ndarray:
    """Each candidate's pipeline time under its schedule (1F1B and interleaved to the bit as before ZB-H1 and
    DualPipe were added)."""
    out = one_f_one_b_s(m, vs, t_mb, t_crit)
    zb, dual = schedule == ZB_H1, schedule == DUALPIPE
    if zb.any():
        out = np.where(zb, zb_h1_s(m, pp, t_mb, t_w, t_crit), out)
    if dual.any():
        out = np.where(dual, dualpipe_s(m, pp, t_mb, t_pair, t_b, t_w, t_crit), out)
    return out


def dualpipe_exposed_s(comm: np.ndarray, compute: np.ndarray) -> np.ndarray:
    """The communication of a DualPipe pair left exposed: what the pair's compute does not cover (DeepSeek-V3
    report §3.2.1: the all-to-all and the pipeline sends of one chunk run under the other chunk's compute)."""
    return np.maximum(comm - compute, 0.0)
