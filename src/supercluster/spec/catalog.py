"""Reads the catalog: cited YAML data shipped in ``supercluster/catalog/``. One file per kind."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from ..errors import CatalogNameError
from .safe_yaml import parse_yaml

SINGULAR = {"accelerators": "accelerator", "switches": "switch", "nics": "NIC", "optics": "optic",
            "fabrics": "fabric", "clusters": "cluster", "models": "model", "facilities": "facility",
            "reliability": "reliability profile", "software": "training software"}
KINDS = ("accelerators", "switches", "nics", "optics", "fabrics", "clusters", "models", "facilities", "reliability",
         "software")


@cache
def entries(kind: str) -> dict[str, dict[str, Any]]:
    """All entries of a kind, by name (each a dict with its ``name`` filled in)."""
    if kind not in KINDS:
        raise CatalogNameError.unknown("catalog kind", kind, KINDS)
    text = resources.files("supercluster.catalog").joinpath(f"{kind}.yaml").read_text(encoding="utf-8")
    data = parse_yaml(text, file=f"catalog/{kind}.yaml") or {}
    out: dict[str, dict[str, Any]] = {}
    for name, body in (data.get(kind) or {}).items():
        out[str(name)] = {"name": str(name), **body}
    return out


def entry(kind: str, name: str, *, field: str | None = None) -> dict[str, Any]:
    """One entry as a fresh dict; an unknown name raises with the nearest names."""
    table = entries(kind)
    if name not in table:
        lowered = {k.lower(): k for k in table}
        if name.lower() in lowered:
            name = lowered[name.lower()]
        else:
            raise CatalogNameError.unknown(SINGULAR.get(kind, kind), name, table, field=field)
    return _deep_copy(table[name])


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
