"""Writing a file whole or not at all: the text goes to a temporary file beside the target, renamed over it once
complete, so nothing half-written ever looks complete (a trace, a report page)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, text: str) -> None:
    """``text`` to ``path`` through a temporary file in the same folder, with an ordinary new file's mode."""
    handle, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=".supercluster-",
                                   suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary new file (mkstemp makes it private)
        with os.fdopen(handle, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
