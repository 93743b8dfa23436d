"""Analytic collective costs (NCCL's ring and tree algorithms), over numpy arrays.

S is the buffer in bytes as nccl-tests defines it (per-rank buffer for all-reduce; the total gathered or
scattered array for all-gather / reduce-scatter; the bytes one rank sends for all-to-all), n the group size,
bw the bus bandwidth a rank reaches (bytes/s), lat the latency of one algorithm step (s).

- ring all-reduce: 2(n-1)/n * S / bw + 2(n-1) * lat  (nccl-tests doc/PERFORMANCE.md bus-bandwidth factor 2(n-1)/n);
  NCCL switches to its double binary tree when latency dominates, whose step count grows as 2*log2(n):
  the latency term is the smaller of the two;
- ring all-gather / reduce-scatter: (n-1)/n * S / bw + (n-1) * lat;
- pairwise all-to-all: (n-1)/n * S / bw + (n-1) * lat;
- send/recv: S / bw + lat.
A group of one costs nothing.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray


def _steps(n: Array) -> Array:
    return np.maximum(np.asarray(n, dtype=np.float64) - 1.0, 0.0)


def all_reduce_s(S: Array, n: Array, bw: Array, lat: Array) -> Array:
    n = np.asarray(n, dtype=np.float64)
    ring_lat = 2.0 * _steps(n)
    tree_lat = 2.0 * np.log2(np.maximum(n, 1.0))
    t = 2.0 * _steps(n) / np.maximum(n, 1.0) * S / bw + np.minimum(ring_lat, tree_lat) * lat
    return np.where(n > 1, t, 0.0)


def all_gather_s(S: Array, n: Array, bw: Array, lat: Array) -> Array:
    n = np.asarray(n, dtype=np.float64)
    t = _steps(n) / np.maximum(n, 1.0) * S / bw + _steps(n) * lat
    return np.where(n > 1, t, 0.0)


reduce_scatter_s = all_gather_s
all_to_all_s = all_gather_s


def send_recv_s(S: Array, bw: Array, lat: Array, active: Array | bool = True) -> Array:
    return np.where(active, S / bw + lat, 0.0)
