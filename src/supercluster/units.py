"""Unit conversions, used only at the edges (input parsing, output formatting). SI inside."""

from __future__ import annotations

import math

GIB = 2**30
GB = 1e9
TERA = 1e12
GBPS_TO_BYTES_PER_S = 1e9 / 8  # 1 Gb/s in bytes/s
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0
HOURS_PER_YEAR = 8760.0
J_PER_KWH = 3.6e6
GALLONS_PER_M3 = 264.172  # US liquid gallons in a cubic metre


def gbps_to_bytes_per_s(gbps: float) -> float:
    """Link rate in Gb/s (decimal) to bytes/s."""
    return gbps * GBPS_TO_BYTES_PER_S


def tflops_to_flops(tflops: float) -> float:
    return tflops * TERA


def bytes_to_gib(n_bytes: float) -> float:
    return n_bytes / GIB


def seconds_to_days(seconds: float) -> float:
    return seconds / SECONDS_PER_DAY


def seconds_to_hours(seconds: float) -> float:
    return seconds / SECONDS_PER_HOUR


_BYTE_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str) -> float:
    """'1GiB', '512 MiB', '4e9', '1.5GB' -> bytes (binary units for KiB/MiB/GiB/TiB, decimal for KB/MB/GB/TB)."""
    t = str(text).strip().lower().replace(" ", "")
    i = len(t)
    while i > 0 and t[i - 1].isalpha():
        i -= 1
    number, unit = t[:i], t[i:]
    if unit not in _BYTE_UNITS:
        raise ValueError(f"unknown byte unit {unit!r} (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")
    value = float(number) * _BYTE_UNITS[unit]
    if not value > 0 or value == float("inf"):
        raise ValueError(f"expected a positive size, got {text!r}")
    return value


# --- output formatting: one way to print a duration and a size, everywhere ------------------------------------------

_DURATION_UNITS = (  # (unit, seconds in it, the largest value shown in it before the next unit)
    ("us", 1e-6, 1000.0), ("ms", 1e-3, 1000.0), ("s", 1.0, 60.0), ("min", 60.0, 60.0), ("h", 3600.0, 48.0),
    ("days", SECONDS_PER_DAY, float("inf")))


def _significant(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant figures without an exponent (thousands separated above that)."""
    if value == 0:
        return "0"
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    value = float(f"{value:.{digits}g}")
    decimals = digits - 1 - math.floor(math.log10(abs(value)))
    return f"{value:.{max(decimals, 0)}f}"


def format_number(value: float, digits: int = 4) -> str:
    """A plain number to ``digits`` significant figures, never in exponent notation: ``174,700,000``, ``3``,
    ``1.75``."""
    if not math.isfinite(value) or value == 0:
        return f"{value:g}"
    value = float(f"{value:.{digits}g}")
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    return f"{value:.{digits}g}" if abs(value) >= 1e-4 else f"{value:.{digits - 1}e}"


def format_duration(seconds: float, digits: int = 3) -> str:
    """A duration in the unit that reads best (us, ms, s, min, h, days), to ``digits`` significant figures:
    ``26.4 s``, ``1.75 min``, ``43.8 us``, ``3.09 h``, ``19.6 days``."""
    if not math.isfinite(seconds):
        return f"{seconds} s"
    if seconds == 0:
        return "0 s"
    rounded = float(f"{abs(seconds):.{digits}g}")  # choose the unit after rounding: 59.96 s is 1.00 min
    unit, size = next((u, size) for u, size, limit in _DURATION_UNITS if rounded < limit * size)
    value = seconds / size
    if abs(value) < 1 and unit != "us":  # just below the unit, rounded up into it: 59.96 s is 1.00 min
        value = math.copysign(rounded, seconds) / size
    return f"{_significant(value, digits)} {unit}"


_BYTE_STEPS = (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))


def format_bytes(n_bytes: float, digits: int = 4) -> str:
    """A size in binary units (KiB ... PiB, the nccl-tests convention) to ``digits`` significant figures:
    ``1 GiB``, ``953.7 MiB``, ``8 B``."""
    for unit, size in _BYTE_STEPS:
        if abs(n_bytes) >= size:
            return f"{float(f'{n_bytes / size:.{digits}g}'):g} {unit}"
    return f"{n_bytes:,.0f} B"


def format_usd(usd: float) -> str:
    """Money in billions, millions or dollars: ``$5.13 B``, ``$46.2 M``, ``$1,470``."""
    return f"${usd / 1e9:,.2f} B" if usd >= 1e9 else f"${usd / 1e6:,.1f} M" if usd >= 1e6 else f"${usd:,.0f}"


def format_ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th`` ... ``11th``, ``12th``, ``13th`` ... ``21st``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def kwh_per_year_to_w(kwh_per_year: float) -> float:
    """Average power of a yearly energy use: kWh/yr over 8,760 h, in W."""
    return kwh_per_year * 1000.0 / HOURS_PER_YEAR


# The units a public claim may state its figure in: name -> (dimension, SI value of one unit). Counts and ratios
# are dimensionless. A claim whose unit has another dimension than the quantity it is about is judged a unit error.
CLAIM_UNITS: dict[str, tuple[str, float]] = {
    "W": ("power", 1.0), "kW": ("power", 1e3), "MW": ("power", 1e6), "GW": ("power", 1e9),
    "MW/h": ("power per time", 1e6 / SECONDS_PER_HOUR),
    "J": ("energy", 1.0), "kWh": ("energy", J_PER_KWH), "MWh": ("energy", 1e3 * J_PER_KWH),
    "m3/day": ("volume per time", 1.0 / SECONDS_PER_DAY),
    "gal/day": ("volume per time", 1.0 / GALLONS_PER_M3 / SECONDS_PER_DAY),
    "s": ("time", 1.0), "h": ("time", SECONDS_PER_HOUR), "days": ("time", SECONDS_PER_DAY),
    "USD": ("money", 1.0),
    "tokens/s": ("rate", 1.0),
    "%": ("count", 0.01), "fraction": ("count", 1.0), "x": ("count", 1.0), "count": ("count", 1.0), "GPUs": ("count", 1.0),
    "homes": ("count", 1.0), "switches": ("count", 1.0), "tiers": ("count", 1.0), "parameters": ("count", 1.0),
    "GPU-hours": ("count", 1.0),
}
