"""group_rows: one representative per distinct combination, and the map back."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from supercluster.arrays import group_rows


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 10**7), st.booleans()), min_size=1, max_size=200))
def test_groups_are_the_distinct_rows(rows: list[tuple[int, int, bool]]) -> None:
    a = np.array([r[0] for r in rows])
    b = np.array([float(r[1]) for r in rows])
    c = np.array([r[2] for r in rows])
    rep, inv = group_rows(a, b, c)
    assert len(rep) == len(set(rows))
    np.testing.assert_array_equal(a[rep][inv], a)
    np.testing.assert_array_equal(b[rep][inv], b)
    np.testing.assert_array_equal(c[rep][inv], c)


def test_empty() -> None:
    rep, inv = group_rows(np.array([], dtype=np.int64))
    assert rep.size == 0 and inv.size == 0
