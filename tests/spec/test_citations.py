"""Citations a user can follow: nothing shipped names the project's private working data as a source."""

from __future__ import annotations

import re
from pathlib import Path

import supercluster

PACKAGE = Path(supercluster.__file__).resolve().parent
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

# The compiled fact files and validation sets the project was built from live outside the repository
# (../shared/): users never have them, so a citation must name the original publication instead.
PRIVATE_SOURCE = re.compile(
    r"shared/(?:data|validation)\b"
    r"|\b(?:facts|failures|kernels)\.ya?ml\b"
    r"|\bshared (?:calibration|validation) set\b|\bthe shared file\b",
    re.IGNORECASE,
)
TEXT_SUFFIXES = {".py", ".yaml", ".yml", ".md", ".txt", ".json", ".toml", ".html", ".css", ".js"}


def _shipped_text_files() -> list[Path]:
    files = [p for root in (PACKAGE, SCENARIOS) for p in sorted(root.rglob("*"))
             if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts]
    return files


def test_shipped_files_cite_publications_not_private_data_files() -> None:
    """No file of the package or of scenarios/ cites shared/ data, facts.yaml, failures.yaml or kernels.yaml."""
    files = _shipped_text_files()
    assert any(p.name == "accelerators.yaml" for p in files) and any(p.parent == SCENARIOS for p in files)
    hits = [f"{p}:{n}: {line.strip()[:100]}"
            for p in files
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if PRIVATE_SOURCE.search(line)]
    assert not hits, "cite the original publication instead:\n" + "\n".join(hits)
