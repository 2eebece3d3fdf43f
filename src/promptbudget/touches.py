"""What one piece of work used, for a cache entry that must know all of its inputs
(``filecache.py``: one template's whole evaluation): every file it read, or used again from
memory, and every path it looked for, with what was there (a file, a directory, nothing).

A ``touching`` block opens a scope on the run's recorder (runmemo.py: only a recorded run
has one); the recorder adds every file used and path probed to each open scope. An
in-process memo whose answer was worked out inside a scope of its own keeps that scope and
notes it again (``retouch``) when it answers from memory, so that later work which asks it
is seen using the same files (a partial read once a run for thousands of templates).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from promptbudget.runmemo import active_recorder


class Touches:
    """The files used (absolute names) and the paths probed (as given -> their kind when
    first probed: ``kind_of``)."""

    __slots__ = ("files", "probes")

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.probes: dict[str, str] = {}

    def probe(self, raw: str) -> None:
        if raw not in self.probes:
            self.probes[raw] = kind_of(raw)


def kind_of(path: str) -> str:
    """What ``path`` is, following symlinks, as a lookup sees it: "file", "dir", "other" or
    "absent" (including a name no file system accepts)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return "absent"
    if stat.S_ISREG(mode):
        return "file"
    return "dir" if stat.S_ISDIR(mode) else "other"


@contextmanager
def touching() -> Iterator[Touches | None]:
    """What the code inside this block uses (None when the run is not recorded)."""
    recorder = active_recorder()
    if recorder is None:
        yield None
        return
    touches = Touches()
    recorder.scopes.append(touches)
    try:
        yield touches
    finally:
        recorder.scopes.remove(touches)


def retouch(touches: Touches | None) -> None:
    """A memo answers from memory what was worked out using ``touches``: the open scopes
    used them too."""
    recorder = active_recorder()
    if recorder is None or touches is None:
        return
    for scope in recorder.scopes:
        scope.files.update(touches.files)
        for raw, kind in touches.probes.items():
            scope.probes.setdefault(raw, kind)
