"""Array helpers shared by the vectorised layers (no domain knowledge)."""

from __future__ import annotations

import numpy as np

_DENSE_LIMIT = 1 << 22  # a presence table up to this size is cheaper than a sort


def _dense_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """0..k-1 codes of non-negative-offset integers, in value order, and k (a presence table, no sort)."""
    lo, hi = int(values.min()), int(values.max())
    if hi - lo >= _DENSE_LIMIT:
        _, codes = np.unique(values, return_inverse=True)
        return codes.astype(np.int64), int(codes.max()) + 1
    present = np.zeros(hi - lo + 1, dtype=bool)
    present[values - lo] = True
    lut = np.cumsum(present, dtype=np.int64) - 1
    return lut[values - lo], int(lut[-1]) + 1


def group_rows(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by the distinct combinations of integer-valued columns: ``(rep, inverse)`` with ``rep`` one row
    index per group and ``inverse`` each row's group, so that ``f(rows[rep])[inverse] == f(rows)`` for any row-wise
    ``f`` of those columns. Linear time for the small integer ranges of parallel degrees."""
    n = len(columns[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    key = np.zeros(n, dtype=np.int64)
    size = 1
    for col in columns:
        codes, k = _dense_codes(np.asarray(col).astype(np.int64))
        key = key * k + codes
        size *= k
        if size >= _DENSE_LIMIT:
            key, size = _dense_codes(key)
    key, size = _dense_codes(key)
    rep = np.empty(size, dtype=np.int64)
    rep[key] = np.arange(n, dtype=np.int64)
    return rep, key
