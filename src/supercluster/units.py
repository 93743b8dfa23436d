"""Unit conversions, used only at the edges (input parsing, output formatting). SI inside."""

from __future__ import annotations

GIB = 2**30
GB = 1e9
TERA = 1e12
GBPS_TO_BYTES_PER_S = 1e9 / 8  # 1 Gb/s in bytes/s
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0


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
