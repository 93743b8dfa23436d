"""Files a long run writes (a sweep's results, its Parquet copy and plot, a calibration): each path is checked before
any work starts, so that a typo costs one located line, not the run.

The rule for a file that already exists is the caller's: supercluster overwrites only what it wrote itself (a
sweep's own results file, a plot or a calibration it made), never a file of the user's.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import InputError


def check_output_file(path: str | Path, *, field: str) -> Path:
    """``path`` as a file this process can create or replace: not a directory, in a folder that exists and takes a
    new file. Nothing is written (a probe file is made and removed)."""
    p = Path(path)
    if str(path) == "" or p.is_dir():
        raise InputError(f"{str(path)!r} is a directory; expected a file name", field=field)
    folder = p.parent
    if not folder.is_dir():
        raise InputError(f"folder {str(folder)!r} does not exist (for {str(path)!r})", field=field)
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".supercluster-", suffix=".probe")
    except OSError as exc:
        raise InputError(f"cannot write in folder {str(folder)!r} ({exc.strerror or exc})", field=field) from None
    os.close(handle)
    os.unlink(probe)
    if p.exists() and not os.access(p, os.W_OK):
        raise InputError(f"{str(path)!r} exists and cannot be written", field=field)
    return p
