"""Every error supercluster raises on purpose, in one place.

Hierarchy::

    SuperclusterError            base: a message a user can act on, exit code 2 at the CLI
    ├── LocatedError             names a file and/or a field where it arose
    ├── InputError               a located problem in something the user wrote (file, field, expected)
    │   ├── SpecError            a value breaks a rule of the specs (types, ranges, cross-field rules)
    │   ├── CatalogNameError     a catalog name that does not exist (nearest names suggested)
    │   └── FileFormatError      a file that cannot be read or parsed
    ├── InfeasibleError          a well-formed request that has no answer (nothing fits in memory), located
    └── InterruptedRunError      a long run stopped midway (a worker died); its work so far is kept, exit code 1

The CLI prints ``str(error)`` on one line and exits with ``exit_code``; no traceback reaches a user.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Self


class SuperclusterError(Exception):
    """Base class; ``str()`` is the whole one-line message."""

    exit_code = 2


class LocatedError(SuperclusterError):
    """An error that names where it arose: a file and/or a dotted field path."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None) -> None:
        self.file = file
        self.field = field
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = ": ".join(part for part in (self.file, self.field) if part)
        return f"{where}: {self.message}" if where else self.message

    def located(self, *, file: str | None = None, field_prefix: str | None = None) -> Self:
        """The same error with the file (unless it already names one: the innermost file wins) and/or a leading
        field path filled in."""
        field = self.field
        if field_prefix:
            field = f"{field_prefix}.{field}" if field else field_prefix
        err = type(self).__new__(type(self))
        LocatedError.__init__(err, self.message, file=self.file or file, field=field)
        return err


class InputError(LocatedError):
    """A problem located in user input: ``where`` is a file and/or a dotted field path."""


class SpecError(InputError):
    """A value in a spec breaks a rule."""


class CatalogNameError(InputError):
    """An unknown catalog name."""

    @classmethod
    def unknown(cls, kind: str, name: str, known: Iterable[str], *, field: str | None = None) -> CatalogNameError:
        known = sorted(known)
        near = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        return cls(f"unknown {kind} {name!r}{hint} (known: {', '.join(known)})", field=field)


class FileFormatError(InputError):
    """A file that cannot be read or parsed."""


class InfeasibleError(LocatedError):
    """A valid request without an answer, e.g. no parallel configuration fits in memory (located at the field that
    decides it, when one does)."""


class InterruptedRunError(SuperclusterError):
    """A long run (a sweep) stopped before the end for a reason outside the input; what it finished is kept."""

    exit_code = 1
