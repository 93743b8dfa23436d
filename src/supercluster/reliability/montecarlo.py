"""Monte Carlo of whole training runs under failures: seeded, vectorised over runs (numpy), one loop over events.

A run must complete ``work_s`` of failure-free training. It computes in slices of ``interval_s`` separated by
checkpoints that stop it for ``blocking_s`` (a checkpoint is durable ``commit_lag_s`` after that: 0 when
synchronous, the write time when asynchronous). Interruptions arrive as a Poisson process (the sum of every failure
class's rate), during computation, checkpoints and restarts alike; each event's class is drawn in proportion to its
rate. After an unplanned interruption the run rolls back to its last durable checkpoint and pays the class's
restart (detection, relaunch, initialisation, reading the checkpoint back; a node swap, or a wait for a repair when
the spare pool is empty); planned maintenance first writes a checkpoint (nothing is lost) and pays the restart
without detection. A failure during a restart starts the restart over.

Spare nodes: the nodes away for repair form an M/G/inf queue, so their number is Poisson with mean (rate of
node-replacing failures x repair time); a spare is free when fewer than the pool are away. When none is free the
restart waits for the first of the pool's nodes to come back: repair time x the minimum of (spares + 1) uniforms.

Every event takes one row of draws from ``numpy.random.Generator(PCG64(seed))``: the same inputs and seed give the
same result bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InfeasibleError

MAX_EVENTS_PER_RUN = 2_000_000
# rate x (restart + checkpoint slice) beyond this: e^8 ~ 3,000 interruptions per slice of progress, a goodput under
# 0.1% (Daly 2006): the job cannot make progress
MAX_RATE_X_SLICE = 8.0


@dataclass(frozen=True)
class RunModel:
    """Everything the simulation needs, SI (seconds, per second)."""

    work_s: float
    interval_s: float
    blocking_s: float
    commit_lag_s: float
    rates_per_s: tuple[float, ...]
    restart_s: tuple[float, ...]  # per class, without any wait for a spare
    planned: tuple[bool, ...]
    needs_node_swap: tuple[bool, ...]
    node_swap_s: float
    node_repair_s: float
    hot_spare_nodes: int | None

    @property
    def total_rate_per_s(self) -> float:
        return float(sum(self.rates_per_s))

    @property
    def spare_free_probability(self) -> float:
        """P(a spare is free when a node must be replaced): P(Poisson(rate_swap x repair) <= spares - 1)."""
        if self.hot_spare_nodes is None:
            return 1.0
        if self.hot_spare_nodes == 0:
            return 0.0
        mean = sum(r for r, swap in zip(self.rates_per_s, self.needs_node_swap, strict=True) if swap) \
            * self.node_repair_s
        if mean == 0.0:
            return 1.0
        term = math.exp(-mean)
        total = term
        for k in range(1, self.hot_spare_nodes):
            term *= mean / k
            total += term
        return min(1.0, total)


@dataclass(frozen=True)
class RunSamples:
    """Per simulated run (arrays of length ``runs``), SI."""

    wall_s: np.ndarray
    events: np.ndarray  # (runs, classes) interruption counts
    restart_s: np.ndarray  # time spent restarting (incl. waits for repairs and planned-stop checkpoints)
    checkpoint_s: np.ndarray  # time training stood still for checkpoints
    lost_work_s: np.ndarray  # computation thrown away (rolled back to the last durable checkpoint)

    @property
    def goodput(self) -> np.ndarray:
        """Useful computation / wall time, per run."""
        return (self.wall_s - self.restart_s - self.checkpoint_s - self.lost_work_s) / self.wall_s


def check_progress(m: RunModel) -> None:
    """Raise InfeasibleError when model ``m`` cannot make progress (or its interval is shorter than an asynchronous
    write); the message names what dominates: the restarts alone, or the restarts with the checkpoint slice."""
    lam = m.total_rate_per_s
    tau, delta, lag = m.interval_s, m.blocking_s, m.commit_lag_s
    if tau < lag:
        raise InfeasibleError(f"checkpoint interval {tau:.0f} s is shorter than an asynchronous write "
                              f"({lag:.0f} s): the next snapshot would start before the last one is durable")
    if lam <= 0:
        return
    restart = max(m.restart_s)
    if lam * restart > MAX_RATE_X_SLICE:
        raise InfeasibleError(
            f"the job cannot make progress: it is interrupted every {1 / lam:,.0f} s on average, while a restart "
            f"takes up to {restart:,.0f} s")
    if lam * (restart + tau + delta) > MAX_RATE_X_SLICE:
        raise InfeasibleError(
            f"the job cannot make progress: it is interrupted every {1 / lam:,.0f} s on average, while a restart "
            f"takes up to {restart:,.0f} s and a checkpoint slice {tau + delta:,.0f} s")


def simulate(m: RunModel, *, runs: int, seed: int) -> RunSamples:
    """``runs`` independent runs of model ``m`` (see the module docstring)."""
    check_progress(m)
    lam = m.total_rate_per_s
    n_cls = len(m.rates_per_s)
    tau, delta, lag = m.interval_s, m.blocking_s, m.commit_lag_s
    rng = np.random.Generator(np.random.PCG64(seed))
    cum = np.cumsum(np.asarray(m.rates_per_s, dtype=float)) / lam if lam > 0 else np.ones(n_cls)
    cum[-1] = 1.0
    restart_cls = np.asarray(m.restart_s, dtype=float)
    planned_cls = np.asarray(m.planned, dtype=bool)
    swap_cls = np.asarray(m.needs_node_swap, dtype=bool)
    p_free = m.spare_free_probability
    spares = m.hot_spare_nodes or 0
    cycle = tau + delta
    full_write = delta + lag  # a checkpoint written before a planned stop

    out_wall = np.zeros(runs)
    out_restart = np.zeros(runs)
    out_ckpt = np.zeros(runs)
    out_lost = np.zeros(runs)
    events = np.zeros(runs * n_cls, dtype=np.int64)

    run = np.arange(runs)
    t = np.zeros(runs)
    committed = np.zeros(runs)
    pending = np.zeros(runs)  # restart still to pay before computing again
    acc_restart = np.zeros(runs)
    acc_ckpt = np.zeros(runs)
    acc_lost = np.zeros(runs)
    for _ in range(MAX_EVENTS_PER_RUN):
        if run.size == 0:
            break
        u = rng.random((4, run.size))
        gap = -np.log1p(-u[0]) / lam if lam > 0 else np.full(run.size, np.inf)
        # 1. the pending restart, interrupted or not
        spent = np.minimum(gap, pending)
        t += spent
        acc_restart += spent
        avail = gap - pending  # computing time before the next interruption (< 0: it hit the restart)
        computing = avail >= 0.0
        avail = np.where(computing, avail, 0.0)
        # 2. computing: finish, or run until the interruption
        remaining = m.work_s - committed
        checkpoints_left = np.maximum(np.ceil(remaining / tau) - 1.0, 0.0)
        finish_s = remaining + checkpoints_left * delta
        done = computing & (avail >= finish_s)
        ran = np.minimum(avail, finish_s)  # finite even without failures
        slices = np.floor(ran / cycle)
        into = ran - slices * cycle
        worked = slices * tau + np.minimum(into, tau)
        ckpt = slices * delta + np.maximum(into - tau, 0.0)
        durable = np.where(ran >= lag, np.floor((ran - lag) / cycle), 0.0) * tau
        cls = np.searchsorted(cum, u[1], side="right").clip(max=n_cls - 1)
        planned = planned_cls[cls]
        kept = np.where(planned, worked, np.minimum(durable, worked))
        t += ran
        acc_ckpt += np.where(done, checkpoints_left * delta, ckpt)
        acc_lost += np.where(done, 0.0, worked - kept)
        committed += np.where(done, remaining, kept)
        # 3. the next restart, for runs still going
        wait = np.where(u[2] < p_free, m.node_swap_s,
                        m.node_repair_s * (1.0 - u[3] ** (1.0 / (spares + 1))))
        pending = restart_cls[cls] + np.where(swap_cls[cls], wait, 0.0) + np.where(planned & computing,
                                                                                   full_write, 0.0)
        live = ~done
        events[run[live] * n_cls + cls[live]] += 1
        if done.any():
            fin = run[done]
            out_wall[fin], out_restart[fin] = t[done], acc_restart[done]
            out_ckpt[fin], out_lost[fin] = acc_ckpt[done], acc_lost[done]
            run, t, committed, pending = run[live], t[live], committed[live], pending[live]
            acc_restart, acc_ckpt, acc_lost = acc_restart[live], acc_ckpt[live], acc_lost[live]
    else:  # pragma: no cover - guarded by MAX_RATE_X_SLICE
        raise InfeasibleError(f"a simulated run needed more than {MAX_EVENTS_PER_RUN:,} interruptions")
    return RunSamples(out_wall, events.reshape(runs, n_cls), out_restart, out_ckpt, out_lost)
