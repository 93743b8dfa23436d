"""YAML in, within bounds: every YAML text supercluster reads (a user's file, a ``--set`` value, the shipped catalog)
goes through :func:`parse_yaml`.

PyYAML's ``safe_load`` has three traps for input a user wrote or was sent:

- aliases are shared, not copied, when the document is built, but whatever walks the result afterwards (validation,
  copies, reports) sees every alias expanded: 351 bytes of nested aliases ("billion laughs") become ~10^9 values.
  The node graph is measured before anything is built: a document whose aliases expand to more than
  ``MAX_VALUES`` values, nests deeper than ``MAX_DEPTH`` or holds an alias to a node that contains it is refused;
- a key given twice in one mapping silently keeps the last value. It is refused, naming the key and both lines;
- YAML 1.1 reads ``15e12`` (an exponent without a dot or sign) as a string, which a strict number field refuses;
  it is read as the float every other format (JSON, TOML, YAML 1.2) makes of it;
- a timestamp that names no day (``2025-13-40``) raises a bare ValueError: it is a located error here.

The parser is libyaml's (``yaml.CSafeLoader``) where PyYAML was built with it (the pure-Python parser took 0.56 s of
a 0.8 s ``plan`` reading the catalog), the pure-Python one otherwise; both give the same nodes, checked the same way.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import FileFormatError

MAX_INPUT_BYTES = 16 * 2**20  # the largest file read (the shipped validation sets are under 1 MB)
MAX_VALUES = 2_000_000  # values (scalars, lists, mappings) in a document once its aliases are expanded
MAX_DEPTH = 64  # mappings and lists inside one another (a scenario nests 4 deep)
SHOWN_CHARS = 60  # the most of a key or value an error message repeats

_MERGE_TAG = "tag:yaml.org,2002:merge"

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type, misc]
    """The safe loader with YAML 1.2's exponent floats (``15e12``, ``1.5e12``) added to YAML 1.1's (``1.5e+12``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _timestamp(loader: Any, node: ScalarNode) -> Any:
    """A YAML timestamp (``2025-04-01``), or a located error for one that names no day (``2025-13-40``): PyYAML
    raises a bare ValueError there."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(None, None, f"{shorten(str(node.value))!r} is not a date ({exc})",
                                                node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters (with how many more there were), for an error message."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def parse_yaml(text: str, *, file: str | None = None, field: str | None = None, malformed_as_text: bool = False
               ) -> Any:
    """The data of a YAML document (None for an empty one). A malformed document (unless ``malformed_as_text``:
    then the text itself, as a ``--set`` value is), a repeated key, a document too large, too deep or expanding too
    far through its aliases raise one located FileFormatError."""
    if len(text) > MAX_INPUT_BYTES:
        raise FileFormatError(f"is {len(text):,} characters long; supercluster reads YAML of at most "
                              f"{MAX_INPUT_BYTES:,}", file=file, field=field)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _inspect(node, file=file, field=field)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        if malformed_as_text:
            return text
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise FileFormatError(f"malformed YAML{at}: {problem}", file=file, field=field) from None
    finally:
        loader.dispose()


def too_deep(data: Any) -> bool:
    """Whether parsed data (JSON, TOML) nests mappings and lists more than MAX_DEPTH deep."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                return True
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return False


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _inspect(root: Node, *, file: str | None, field: str | None) -> None:
    """Walk the node graph once (each anchored node once, however many aliases name it): refuse a repeated key,
    a nesting deeper than MAX_DEPTH, an alias inside the node it names, and more than MAX_VALUES values with every
    alias expanded (each node's expanded size is counted once and reused for its aliases)."""
    size: dict[int, int] = {}
    open_nodes: set[int] = set()
    # (node, its dotted path, depth, whether its children are counted)
    stack: list[tuple[Node, str, int, bool]] = [(root, field or "", 0, False)]
    while stack:
        node, path, depth, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            total = 1 + sum(size[id(child)] for child in _children(node))
            if total > MAX_VALUES:
                raise FileFormatError(
                    f"expands to more than {MAX_VALUES:,} values once its aliases (*name) are expanded; "
                    "supercluster reads documents of at most that many", file=file, field=field)
            size[key] = total
            continue
        if key in size:  # an alias of a node already counted
            continue
        mark = node.start_mark
        if key in open_nodes:
            raise FileFormatError(f"the alias at line {mark.line + 1} names a node that contains it (a document "
                                  "without end)", file=file, field=path or None)
        if depth > MAX_DEPTH:
            raise FileFormatError(f"nested more than {MAX_DEPTH} levels deep at line {mark.line + 1}", file=file,
                                  field=field)
        open_nodes.add(key)
        stack.append((node, path, depth, True))
        if isinstance(node, MappingNode):
            _refuse_repeated_keys(node, path, file=file)
            for k, v in node.value:
                name = shorten(str(k.value)) if isinstance(k, ScalarNode) else "?"
                child_path = f"{path}.{name}" if path else name
                stack.append((k, child_path, depth + 1, False))
                stack.append((v, child_path, depth + 1, False))
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                stack.append((item, f"{path}.{i}" if path else str(i), depth + 1, False))


def _refuse_repeated_keys(node: MappingNode, path: str, *, file: str | None) -> None:
    seen: dict[tuple[str, str], int] = {}
    for k, _ in node.value:
        if not isinstance(k, ScalarNode) or k.tag == _MERGE_TAG:
            continue  # a '<<' merge may be overridden by the mapping's own keys, as YAML intends
        line = k.start_mark.line + 1
        if (k.tag, k.value) in seen:
            name = shorten(str(k.value))
            first = seen[(k.tag, k.value)]
            lines = f"twice on line {line}" if first == line else f"twice, at lines {first} and {line}"
            raise FileFormatError(f"key {name!r} is given {lines} (YAML would keep the last silently); keep one",
                                  file=file, field=f"{path}.{name}" if path else name)
        seen[(k.tag, k.value)] = line
