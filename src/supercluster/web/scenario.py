"""A scenario from a web request: given inline (a JSON object, or YAML/JSON text) with its parts inline or by
catalog name only. A request never names a file: a model's ``hf_config``, a model that is not a catalog name
(a config.json path) and a calibration file are refused before anything is resolved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CatalogNameError, InputError
from ..spec import Scenario
from ..spec import catalog as catalog_data
from ..spec.load import build_scenario
from ..spec.safe_yaml import parse_yaml
from .limits import check_gpus

WHERE = "request"  #: what a located error names in place of a file
#: where a name is resolved from: a folder that holds nothing, so even a name that slipped through reads no file
NOWHERE = Path("/nonexistent/supercluster-web")


def _no_file(field: str) -> InputError:
    return InputError("a web request cannot name a file; give the part inline or by catalog name", field=field)


def refuse_paths(data: dict[str, Any]) -> None:
    """Refuse every scenario field that names a file (the model's config.json, a calibration file)."""
    model = data.get("model")
    if isinstance(model, dict):
        if "hf_config" in model:
            raise _no_file("model.hf_config")
        name, field = model.get("base"), "model.base"
    else:
        name, field = model, "model"
    if isinstance(name, str):
        known = catalog_data.entries("models")
        if name not in known:
            if name.endswith(".json") or "/" in name or "\\" in name:
                raise _no_file(field)
            raise CatalogNameError.unknown("model", name, known, field=field)
    calibration = data.get("calibration")
    if isinstance(calibration, str):
        raise _no_file("calibration")
    if isinstance(calibration, dict) and "file" in calibration:
        raise _no_file("calibration.file")


def scenario_data(given: dict[str, Any] | str) -> dict[str, Any]:
    """The scenario's data: a JSON object as given, or YAML/JSON text parsed (bounded by the safe YAML reader)."""
    if isinstance(given, dict):
        return given
    data = parse_yaml(given, file=WHERE, field="scenario")
    if not isinstance(data, dict):
        raise InputError(f"expected a mapping at the top level, got {type(data).__name__}", file=WHERE,
                         field="scenario")
    return data


def web_scenario(given: dict[str, Any] | str, *, strict: bool = False) -> Scenario:
    """The validated scenario of a request, its GPU count within the server's bound."""
    data = scenario_data(given)
    try:
        refuse_paths(data)
        s = build_scenario(data, base_dir=NOWHERE, strict=strict)
        check_gpus(s.cluster.num_gpus, field="cluster.num_gpus")
    except InputError as exc:
        raise exc.located(file=WHERE, field_prefix="scenario") from None
    return s
