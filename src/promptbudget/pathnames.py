"""Absolute path names, fast: the run memo and the cache name thousands of files a run."""

from __future__ import annotations

import os
from pathlib import Path


def absolute(path: Path | str) -> str:
    """``os.path.abspath(path)``, without its cost for the common case: an absolute path with
    nothing to normalise (no ``.`` or ``..`` component, no doubled or trailing separator)."""
    raw = os.fspath(path)
    if (
        raw.startswith("/")
        and os.sep == "/"
        and "/." not in raw
        and "//" not in raw
        and not raw.endswith("/")
    ):
        return raw
    return os.path.abspath(raw)
