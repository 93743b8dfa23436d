"""A Hugging Face ``config.json`` as typed getters whose errors name the file and the key, and the findings (notes and
assumptions) gathered while it is read into a Model."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FileFormatError
from .safe_yaml import MAX_INPUT_BYTES


@dataclass
class Findings:
    """What reading a config found beside the figures: ``notes`` (how a key was read, nothing the count rests on)
    and ``assumptions`` (what the file does not state and the model rests on; --strict refuses them), each
    assumption with the Model fields it concerns (a scenario that sets one of them makes it moot)."""

    notes: list[str] = field(default_factory=list)
    assumptions: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def assume(self, text: str, *fields: str) -> None:
        self.assumptions[text] = fields


class HfConfig:
    """A parsed config.json (or one block of it, ``prefix``: the language model of a multimodal config) with typed
    getters whose errors name the file and the key."""

    def __init__(self, data: dict[str, Any], file: str, prefix: str | None = None) -> None:
        self.data = data
        self.file = file
        self.prefix = prefix

    def where(self, key: str) -> str:
        """The key as a user finds it in the file."""
        return f"{self.prefix}.{key}" if self.prefix else key

    def error(self, message: str, key: str | None) -> FileFormatError:
        return FileFormatError(message, file=self.file, field=self.where(key) if key else self.prefix)

    def present(self, keys: Sequence[str]) -> str | None:
        """The first of ``keys`` present with a non-null value."""
        return next((k for k in keys if self.data.get(k) is not None), None)

    def missing(self, keys: Sequence[str], what: str = "an integer") -> FileFormatError:
        alternatives = f" (or {', '.join(repr(k) for k in keys[1:])})" if len(keys) > 1 else ""
        return self.error(f"expected {what} {keys[0]!r}{alternatives}", keys[0])

    def optional(self, keys: Sequence[str], *, minimum: int = 1, what: str = "an integer"
                 ) -> tuple[int | None, str]:
        """(value, key it came from) for the first present key; ``(None, keys[0])`` when none is."""
        key = self.present(keys)
        if key is None:
            return None, keys[0]
        value = self.data[key]
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected {what} {key!r}, got {value!r}", key)
        if value < minimum:
            bound = "a positive integer" if minimum == 1 else f"an integer >= {minimum} for"
            raise self.error(f"expected {bound} {key!r}, got {value}", key)
        return value, key

    def need(self, keys: Sequence[str], *, what: str = "an integer") -> tuple[int, str]:
        """(value, key it came from) for the first present key; missing is an error naming ``keys[0]``."""
        value, key = self.optional(keys, what=what)
        if value is None:
            raise self.missing(keys, what)
        return value, key

    def boolean(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.error(f"expected true or false for {key!r}, got {value!r}", key)
        return value

    def string(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(f"expected a string {key!r}, got {value!r}", key)
        return value

    def int_list(self, key: str, layers: int | None = None) -> list[int] | None:
        """A list of layer indices (each below ``layers`` when given); None when the key is absent or null."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise self.error(f"expected a list of layer indices {key!r}, got {value!r}", key)
        if layers is not None and any(not 0 <= v < layers for v in value):
            raise self.error(f"expected layer indices from 0 to {layers - 1} in {key!r}, got {value!r}", key)
        return list(value)


def read_json(path: Path, file: str) -> dict[str, Any]:
    """A config.json's top-level object; anything else is a FileFormatError naming the file."""
    try:
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise FileFormatError(f"is {size:,} bytes; supercluster reads files of at most {MAX_INPUT_BYTES:,}",
                                  file=file)
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError("file not found", file=file) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise FileFormatError(f"cannot read file ({exc.__class__.__name__}: {reason})", file=file) from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                              file=file) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise FileFormatError(f"not a UTF-8 JSON file ({exc.__class__.__name__})", file=file) from None
    except RecursionError:
        raise FileFormatError("malformed JSON: nested too deeply", file=file) from None
    if not isinstance(data, dict):
        raise FileFormatError(f"expected a JSON object at the top level, got {type(data).__name__}", file=file)
    return data
