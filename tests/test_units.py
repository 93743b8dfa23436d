"""Unit conversions and the one way durations, sizes and plain numbers are printed."""

from __future__ import annotations

import pytest

from supercluster.units import format_bytes, format_duration, format_number, format_ordinal, format_usd


@pytest.mark.parametrize(("seconds", "text"), [
    (43.83e-6, "43.8 us"), (25.4e-6, "25.4 us"), (0.0123, "12.3 ms"), (0.00520, "5.20 ms"), (0.10041, "100 ms"),
    (7.101, "7.10 s"), (26.385, "26.4 s"), (59.96, "1.00 min"), (105.0, "1.75 min"), (3.09 * 3600, "3.09 h"),
    (47.9 * 3600, "47.9 h"), (19.6 * 86400, "19.6 days"), (1234.5 * 86400, "1,234 days"), (0.0, "0 s"),
    (-3.2, "-3.20 s"), (0.999996, "1.00 s"),
])
def test_format_duration(seconds: float, text: str) -> None:
    """Three significant figures in the unit that reads best; the unit chosen after rounding (59.96 s is 1.00 min)."""
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("n_bytes", "text"), [
    (8, "8 B"), (1023, "1,023 B"), (1024, "1 KiB"), (32768, "32 KiB"), (2**30, "1 GiB"), (1e9, "953.7 MiB"),
    (1.5 * 2**30, "1.5 GiB"), (3 * 2**40, "3 TiB"),
])
def test_format_bytes(n_bytes: float, text: str) -> None:
    """Binary units (nccl-tests' convention), four significant figures."""
    assert format_bytes(n_bytes) == text


@pytest.mark.parametrize(("value", "text"), [
    (1.5e8, "150,000,000"), (1.747e8, "174,700,000"), (3.0, "3"), (12.68, "12.68"), (999.95, "1,000"),
    (4921.0, "4,921"), (0.0, "0"),
])
def test_format_number_never_uses_an_exponent(value: float, text: str) -> None:
    """A plain number to four significant figures, thousands separated, never '1.5e+08'."""
    assert format_number(value) == text


@pytest.mark.parametrize(("usd", "text"), [(5.1292e9, "$5.13 B"), (46.21e6, "$46.2 M"), (1470.4, "$1,470")])
def test_format_usd(usd: float, text: str) -> None:
    """Money in billions, millions or dollars, one way everywhere (HTML report, design verdicts)."""
    assert format_usd(usd) == text


@pytest.mark.parametrize(("n", "text"), [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"),
                                         (13, "13th"), (21, "21st"), (22, "22nd"), (101, "101st"), (111, "111th")])
def test_format_ordinal(n: int, text: str) -> None:
    assert format_ordinal(n) == text
