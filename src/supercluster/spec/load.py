"""Scenario files in, validated specs out: YAML/TOML/JSON, catalog names, Hugging Face configs, --set overrides.

Every failure is an :class:`~supercluster.errors.InputError` naming the file and the field.
"""

from __future__ import annotations

import difflib
import json
import tomllib
import typing
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import FileFormatError, InputError, SpecError
from . import catalog
from .base import error_message
from .hardware import Cluster
from .hf import SOURCE_PREFIX, read_hf_config
from .model import Model
from .rules import rules_for, violations
from .safe_yaml import MAX_DEPTH, MAX_INPUT_BYTES, parse_yaml, shorten, too_deep
from .scenario import DEFAULT_RELIABILITY, Scenario
from .training import SCHEDULES

SpecT = TypeVar("SpecT", bound=BaseModel)

# Positions in a scenario where a string names a catalog entry.
NAMED_PARTS = {
    "cluster": "clusters",
    "model": "models",
    "facility": "facilities",
    "reliability": "reliability",
    "cluster.accelerator": "accelerators",
    "cluster.fabric": "fabrics",
    "cluster.fabric.switch": "switches",
    "cluster.fabric.nic": "nics",
    "cluster.fabric.optic": "optics",
}


# Parts a scenario may leave out that have a catalog default (an override starts from it).
DEFAULT_PARTS = {"reliability": DEFAULT_RELIABILITY}


def read_data_file(path: str | Path) -> dict[str, Any]:
    """Parse a YAML, TOML or JSON file into a dict (by extension; YAML otherwise), within the bounds of
    :mod:`.safe_yaml`: a file larger than MAX_INPUT_BYTES, a repeated key, an alias bomb are refused."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise FileFormatError(f"is {size:,} bytes; supercluster reads files of at most {MAX_INPUT_BYTES:,}",
                                  file=str(path))
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileFormatError("file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"cannot read file ({exc.__class__.__name__}: {exc})", file=str(path)) from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text, object_pairs_hook=_json_object)
        elif p.suffix.lower() == ".toml":
            data = tomllib.loads(text)  # TOML refuses a repeated key itself
        else:
            data = parse_yaml(text, file=str(path))
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                              file=str(path)) from None
    except _RepeatedJsonKey as exc:
        raise FileFormatError(f"key {shorten(exc.key)!r} is given twice in one object (JSON would keep the last "
                              "silently); keep one", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise FileFormatError(f"malformed TOML: {exc}", file=str(path)) from None
    except RecursionError:  # JSON deeper than its parser follows
        raise FileFormatError(f"nested more than {MAX_DEPTH} levels deep", file=str(path)) from None
    if p.suffix.lower() in (".json", ".toml") and too_deep(data):  # parse_yaml bounds YAML's depth itself
        raise FileFormatError(f"nested more than {MAX_DEPTH} levels deep", file=str(path))
    if not isinstance(data, dict):
        raise FileFormatError(f"expected a mapping at the top level, got {type(data).__name__}", file=str(path))
    return data


class _RepeatedJsonKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def read_spec_file(path: str | Path, model: type[SpecT]) -> SpecT:
    """A sweep or design file read and checked against its schema ``model``: a missing file, a bad format or a
    field that breaks the schema is one located line."""
    raw = read_data_file(Path(path))
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise validation_error_to_input_error(exc, file=str(path)) from None


def read_base_scenario(scenario: str | dict[str, Any], path: Path, *, file: str
                       ) -> tuple[dict[str, Any], Path, str]:
    """The base scenario a sweep or design file names: ``scenario`` a file (relative to ``path``, the file naming
    it) or the scenario inline. Returns its data, the folder its relative paths start from and the file to name in
    its errors; a missing file is one located line (``file``, field ``scenario``)."""
    if isinstance(scenario, str):
        scenario_path = path.parent / scenario
        if not scenario_path.is_file():
            raise InputError(f"no scenario file {str(scenario_path)!r}", file=file, field="scenario")
        return read_data_file(scenario_path), scenario_path.parent, str(scenario_path)
    return dict(scenario), path.parent, file


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _RepeatedJsonKey(k)
        out[k] = v
    return out


def names_hf_config(value: Any, base_dir: Path) -> bool:
    """Whether a model value names a Hugging Face config.json (a path, relative to ``base_dir``) rather than a
    catalog model."""
    return isinstance(value, str) and (value.endswith(".json") or (base_dir / value).is_file())


def _is_hf_path(position: str, value: Any, base_dir: Path) -> bool:
    """Whether a model position names a Hugging Face config.json (rather than a catalog model)."""
    return position == "model" and names_hf_config(value, base_dir)


def _hf_model(path: Path, given: Any = ()) -> dict[str, Any]:
    """A config.json's Model fields, without the assumptions about a field the scenario sets itself (``given``)."""
    return read_hf_config(path).overlaid(given)


def _resolve_named(position: str, value: Any, base_dir: Path) -> Any:
    """Turn a catalog name (or, for a model, a config.json path) at a named position into a dict.

    A mapping with ``base: NAME`` is that entry with the mapping's other keys laid over it (one level deep for
    nested mappings), e.g. ``cluster: {base: gpt4-a100, num_gpus: 25200}``.
    """
    if isinstance(value, dict) and "base" in value:
        rest = {k: v for k, v in value.items() if k != "base"}
        if not isinstance(value["base"], str):
            raise InputError(f"'base' must be a catalog name, got {value['base']!r}", field=f"{position}.base")
        if _is_hf_path(position, value["base"], base_dir):
            merged = _hf_model(base_dir / value["base"], rest)
        else:
            merged = _resolve_named(position, value["base"], base_dir)
        for k, v in rest.items():
            sub = f"{position}.{k}"
            if isinstance(v, dict) and sub in NAMED_PARTS and isinstance(merged.get(k), str) and "base" not in v:
                merged[k] = {"base": merged[k], **v}  # resolved below, with its own catalog entry as the base
            elif isinstance(v, dict) and isinstance(merged.get(k), dict):
                merged[k] = {**merged[k], **v}
            else:
                merged[k] = v
        return merged
    if not isinstance(value, str):
        return value
    if _is_hf_path(position, value, base_dir):
        return _hf_model(base_dir / value)
    return catalog.entry(NAMED_PARTS[position], value, field=position)


def _resolve_tree(raw: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Resolve every catalog name and model path in a scenario dict (a new dict; the input is untouched)."""
    data = dict(raw)
    for part in ("cluster", "model", "facility", "reliability"):
        if part in data:
            data[part] = _resolve_named(part, data[part], base_dir)
    model = data.get("model")
    if isinstance(model, dict) and "hf_config" in model:
        rest = {k: v for k, v in model.items() if k != "hf_config"}
        data["model"] = {**_hf_model(base_dir / str(model["hf_config"]), rest), **rest}
    cluster = data.get("cluster")
    if isinstance(cluster, dict):
        cluster = dict(cluster)
        for sub in ("accelerator", "fabric"):
            if sub in cluster:
                cluster[sub] = _resolve_named(f"cluster.{sub}", cluster[sub], base_dir)
        fabric = cluster.get("fabric")
        if isinstance(fabric, dict):
            fabric = dict(fabric)
            for sub in ("switch", "nic", "optic"):
                if sub in fabric:
                    fabric[sub] = _resolve_named(f"cluster.fabric.{sub}", fabric[sub], base_dir)
            cluster["fabric"] = fabric
        data["cluster"] = cluster
    claims = data.get("claims")
    if isinstance(claims, list):  # a claim's `versus` cluster: a catalog name or an inline cluster, as `cluster`
        data["claims"] = [{**c, "versus": _resolve_tree({"cluster": c["versus"]}, base_dir)["cluster"]}
                          if isinstance(c, dict) and c.get("versus") is not None else c for c in claims]
    calibration = data.get("calibration")
    if isinstance(calibration, str):  # a calibration file, relative to the scenario
        data["calibration"] = str((base_dir / calibration).resolve())
    elif isinstance(calibration, dict) and isinstance(calibration.get("file"), str):
        data["calibration"] = {**calibration, "file": str((base_dir / calibration["file"]).resolve())}
    if data.get("parallelism") in ("auto", None):
        data.pop("parallelism", None)
    return data


def apply_override(data: dict[str, Any], assignment: str, base_dir: Path) -> dict[str, Any]:
    """Apply one ``dotted.key=value`` (value parsed as YAML) to a scenario dict; returns a new dict."""
    if "=" not in assignment:
        raise InputError(f"--set expects key=value, got {shorten(assignment)!r}")
    key, _, text = assignment.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise InputError(f"--set expects key=value, got {shorten(assignment)!r}")
    value = parse_yaml(text, field=key, malformed_as_text=True)
    root = _deep(data)
    node: Any = root
    for depth, part in enumerate(path):
        position = ".".join(path[: depth + 1])
        if isinstance(node, list):  # a list item by index: failures.0.events
            if not (part.isdigit() and int(part) < len(node)):
                raise InputError(f"cannot set {key}: {'.'.join(path[:depth])} has {len(node)} items, no item "
                                 f"{part!r}", field=key)
            index: Any = int(part)
        else:
            index = part
        if depth == len(path) - 1:
            node[index] = value
            break
        child = node[index] if isinstance(node, list) else node.get(part)
        if child is None and position in DEFAULT_PARTS:
            child = DEFAULT_PARTS[position]
        if _is_hf_path(position, child, base_dir):  # the field set below makes its assumptions moot
            child = _hf_model(base_dir / child, path[depth + 1:depth + 2])
        elif position in NAMED_PARTS and (isinstance(child, str) or (isinstance(child, dict) and "base" in child)):
            child = _resolve_named(position, child, base_dir)
        if child is None or child == "auto":
            child = {}
        if not isinstance(child, dict | list):
            raise InputError(f"cannot set {key}: {position} is {child!r}, not a mapping", field=key)
        node[index] = child = dict(child) if isinstance(child, dict) else list(child)
        node = child
    return root


def _deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return value


def _fields_at(loc: tuple[Any, ...], root: type[BaseModel] = Scenario) -> list[str]:
    """Field names of the spec model at a location path (for suggesting a misspelt key)."""
    model: Any = root
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return []
        model = _model_in(model.model_fields[part].annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The BaseModel class inside an annotation such as ``X | None`` or ``list[X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def validation_error_to_input_error(exc: ValidationError, *, file: str | None, prefix: str | None = None
                                    ) -> SpecError:
    """The first pydantic error as one located line (and how many more there are)."""
    errors = exc.errors()
    first = errors[0]
    loc = ".".join(str(p) for p in first["loc"])
    if prefix:
        loc = f"{prefix}.{loc}" if loc else prefix
    if first["type"] == "extra_forbidden":
        known = _fields_at(first["loc"][:-1])
        near = difflib.get_close_matches(str(first["loc"][-1]), known, n=2, cutoff=0.6)
        msg = "unknown key" + (f"; did you mean {', '.join(repr(n) for n in near)}?" if near else "")
    else:
        msg = error_message(first)
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return SpecError(msg + more, file=file, field=loc or None)


def check_parallelism(scenario: Scenario, *, file: str | None = None) -> None:
    """Raise on the first rule the given (possibly partial) parallelism breaks."""
    par = scenario.parallelism
    given = {k: getattr(par, k) for k in ("tp", "pp", "dp", "cp", "ep", "etp", "micro_batch",
                                          "virtual_stages", "zero_stage")}
    given["sp"] = par.sequence_parallel
    given["schedule"] = None if par.schedule is None else SCHEDULES.index(par.schedule)
    n = scenario.cluster.num_gpus
    if given["dp"] is None and all(given[k] for k in ("tp", "pp", "cp")) \
            and n % (given["tp"] * given["pp"] * given["cp"]) == 0:  # dp follows from the others
        given["dp"] = n // (given["tp"] * given["pp"] * given["cp"])
    rules = rules_for(scenario.model, scenario.cluster, scenario.training, par.uneven_pipeline)
    broken = violations(rules, given)
    if broken:
        field, message = broken[0]
        raise SpecError(message, file=file, field=field)
    degrees = [given[k] for k in ("tp", "pp", "dp", "cp") if given[k] is not None]
    product = 1
    for d in degrees:
        product *= d
    if scenario.cluster.num_gpus % product:
        named = " * ".join(f"{k}({given[k]})" for k in ("tp", "pp", "dp", "cp") if given[k] is not None)
        raise SpecError(f"{named} = {product} does not divide num_gpus({scenario.cluster.num_gpus})",
                        file=file, field="parallelism")


def refuse_assumptions(model: Model, *, file: str | None) -> None:
    """--strict: a model resting on any assumption is an error naming every assumption and where the model was read
    (its config.json; else the scenario ``file``, at model.assumptions)."""
    if not model.assumptions:
        return
    config = model.source.removeprefix(SOURCE_PREFIX) if model.source.startswith(SOURCE_PREFIX) else None
    n = len(model.assumptions)
    listed = "; ".join(f"({i}) {a}" for i, a in enumerate(model.assumptions, 1))
    raise SpecError(f"--strict refuses model {model.name!r}: it rests on {n} assumption{'s' if n > 1 else ''}: "
                    f"{listed}", file=config or file, field=None if config else "model.assumptions")


def build_scenario(data: dict[str, Any], *, file: str | None = None, base_dir: Path | None = None,
                   overrides: list[str] | tuple[str, ...] = (), check_rules: bool = True,
                   strict: bool = False) -> Scenario:
    """Validate a scenario dict (names resolved, overrides applied, the parallelism rules checked unless
    ``check_rules`` is false: fields and types only). ``strict``: a model resting on assumptions (what its
    config.json or catalog entry does not state) is refused."""
    base = base_dir or Path(".")
    try:
        for assignment in overrides:
            data = apply_override(data, assignment, base)
        resolved = _resolve_tree(data, base)
        scenario = Scenario.model_validate(resolved)
    except ValidationError as exc:
        raise validation_error_to_input_error(exc, file=file) from None
    except InputError as exc:
        raise exc.located(file=file) from None
    if strict:
        refuse_assumptions(scenario.model, file=file)
    if check_rules:
        check_parallelism(scenario, file=file)
    return scenario


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = (), *, strict: bool = False
                  ) -> Scenario:
    """Read and validate a scenario file (``strict``: refuse a model resting on assumptions)."""
    p = Path(path)
    return build_scenario(read_data_file(p), file=str(path), base_dir=p.parent, overrides=overrides, strict=strict)


def validate_part(model_cls: type[BaseModel], data: Any, *, file: str | None = None,
                  field: str | None = None) -> Any:
    """Validate one spec part with located errors."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise validation_error_to_input_error(exc, file=file, prefix=field) from None


def load_cluster(target: str) -> Cluster:
    """A cluster from a scenario file (its ``cluster``) or a catalog cluster name."""
    p = Path(target)
    if p.is_file():
        return load_scenario(p).cluster
    return catalog_cluster(target)


def catalog_cluster(name: str) -> Cluster:
    """A catalog cluster by name, never read from a file (the web app's clusters)."""
    try:
        data = _resolve_tree({"cluster": name}, Path("."))
        return Cluster.model_validate(data["cluster"])
    except ValidationError as exc:
        raise validation_error_to_input_error(exc, file=None, prefix="cluster") from None
