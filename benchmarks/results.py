"""Where every benchmark writes: printed, and appended to benchmarks/RESULTS.md under a heading with the date, the
machine's core count and the Python version."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def append_results(lines: list[str], title: str = "", *, bullets: bool = True) -> None:
    """Print ``lines`` (as a list, or as they are with ``bullets`` False: a table) under a dated heading and append
    them to RESULTS.md."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    heading = f"## {stamp} · {os.cpu_count()} cores · Python {sys.version.split()[0]}" + (f" · {title}" if title else "")
    block = [heading, ""] + ([f"- {line}" for line in lines] if bullets else lines) + [""]
    print("\n".join(block))
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results (appended by `make bench`)\n\n", encoding="utf-8")
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(block) + "\n")
