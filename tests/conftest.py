"""Shared test helpers: run the ``supercluster`` command line in-process, as a user's shell would see it."""

from __future__ import annotations

import contextlib
import io
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from supercluster.cli import main

# Tests assert behaviour, never timing: hypothesis's per-example deadline (200 ms) fails a correct test on a loaded
# machine (two cores shared with other work), so it is off for every property test.
settings.register_profile("supercluster", deadline=None)
settings.load_profile("supercluster")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class CliResult:
    """Exit code and output of one command line run."""

    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    def one_error_line(self, *fragments: str, code: int = 2) -> str:
        """Assert the run failed with ``code``, printed nothing on stdout and exactly one ``error:`` line on
        stderr holding every fragment (and no traceback); return that line."""
        assert "Traceback" not in self.err, self.err
        assert self.code == code, (self.code, self.err)
        assert self.out.strip() == "", self.out
        assert len(self.err_lines) == 1, self.err
        line = self.err_lines[0]
        assert line.startswith("error: "), line
        for fragment in fragments:
            assert fragment in line, (fragment, line)
        return line


def run_cli(*args: str, cwd: Path | None = None, columns: int = 400) -> CliResult:
    """Run ``supercluster ARGS`` through ``main()`` with argv patched and stdout/stderr captured.

    An exception escaping ``main()`` is what a user would see as a traceback and exit code 1, so it is turned
    into exactly that (the formatted traceback on stderr) instead of failing the calling test by itself.
    """
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["supercluster", *args])
        mp.setattr(sys, "excepthook", sys.excepthook)  # typer installs its own hook when called
        mp.setenv("COLUMNS", str(columns))  # wide tables: names and sources are not truncated
        if cwd is not None:
            mp.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Exception:
                err.write(traceback.format_exc())
                code = 1
    return CliResult(code, _ANSI.sub("", out.getvalue()), _ANSI.sub("", err.getvalue()))


@pytest.fixture(scope="session")
def cli() -> Callable[..., CliResult]:
    """The in-process command line runner (see :func:`run_cli`)."""
    return run_cli

