"""Writing files so that a crash or a full disk never leaves one half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data``: a temporary file in the same directory, flushed to
    disk, then renamed over it. Keeps the file's permissions. Raises ``OSError``."""
    temporary: str | None = None
    try:
        mode = target.stat().st_mode if target.exists() else None
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".promptbudget", dir=target.parent
        )
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, target)
        temporary = None
    finally:
        if temporary is not None:  # failed or interrupted before the rename
            Path(temporary).unlink(missing_ok=True)
