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


# Real paths asked for this run: a template's path is resolved by the parser, the project,
# the display name and the promptfoo lookup alike (~10 times a file, ~25 us each).
_REAL: dict[str, Path] = {}


def real(path: Path) -> Path:
    """``path.resolve()``, once a run (``forget_real`` starts a run: the command line, a
    project opened, ``Budgets.load``). ``confine.read_confined`` resolves a file's directory
    with it and checks the file's own name at the open (a pull request's tree does not change
    during a run; a symlink in it is resolved, and must stay in the project, whenever it was
    made)."""
    key = absolute(path)
    found = _REAL.get(key)
    if found is None:
        found = _REAL[key] = path.resolve()
    return found


def known_real(path: str, resolved: str) -> None:
    """``real(path)`` is ``resolved``, found already (a directory walk resolves each
    directory once: ``templates/source.list_prompt_files``)."""
    _REAL.setdefault(absolute(path), path_of(resolved))


# Path objects made from names this run: one object a name (a Path is immutable), made once
# (~3 us each: a full check of 10,000 templates made ~40,000 of them)
_PATHS: dict[str, Path] = {}


def path_of(name: str) -> Path:
    """``Path(name)``, the same object each time this run."""
    found = _PATHS.get(name)
    if found is None:
        found = _PATHS[name] = Path(name)
    return found


def forget_real() -> None:
    _REAL.clear()
    _PATHS.clear()
