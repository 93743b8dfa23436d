"""Writing a file whole or not at all: the text goes to a temporary file beside the target, renamed over it once
complete, so nothing half-written ever looks complete (a trace, a report page); and the identity of the model that
wrote a results file."""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import cache
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


@cache
def model_fingerprint() -> str:
    """Identity of the model this installation computes with: a digest of the package's code and its catalog
    (hardware, calibration, data), so that results written by one version are never taken for another's."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".yaml", ".json") and p.is_file()
                       and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]
