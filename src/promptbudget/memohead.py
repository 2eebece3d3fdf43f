"""The head of a run memo (runmemo.py): what a replay reads when nothing moved.

A memo's head names every file its run read (relative to the working directory, joined by
NUL) and holds one digest of their recorded stats; the rest of the memo (each file's entry,
PB204's projections) is parsed only when a stat moved (``cache.read_memo_head``). So a
repeated run whose inputs all keep their stats costs one ``os.stat`` a file, through
``map``, and a digest: no per-file JSON, no per-file comparison in Python.
"""

from __future__ import annotations

import hashlib
import marshal
import os
from functools import cache
from operator import attrgetter
from typing import Any

Stat = list[int]
# What a memo keeps of a stat, in this order.
_STAT_FIELDS = attrgetter("st_size", "st_mtime_ns", "st_ctime_ns", "st_ino", "st_mode")


@cache
def package_files() -> tuple[str, ...]:
    """The installed package's files (name, size, mtime): part of the key of anything kept
    that its code decides (a run memo, a template's evaluation: filecache.py). Listed once a
    process: a run asks for it up to three times (memo lookup, context key, memo write)."""
    package = os.path.dirname(os.path.abspath(__file__))
    files: list[str] = []
    for current, dirnames, filenames in os.walk(package):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(".pyc"):
                continue
            found = os.stat(os.path.join(current, name))
            files.append(f"{current}/{name}:{found.st_size}:{found.st_mtime_ns}")
    return tuple(files)


def stat_of(found: os.stat_result) -> Stat:
    return list(_STAT_FIELDS(found))


def files_now(head: dict[str, Any]) -> list[os.stat_result] | None:
    """The stat of each file the memo's head names, in its order (none while a file's entry
    is inside the racy window: ``settle``); None when one cannot be taken."""
    names = head["names"]
    if not isinstance(names, str) or not names:
        return []
    try:
        return list(map(os.stat, names.split("\0")))
    except OSError:
        return None


def is_unmoved(head: dict[str, Any], files: list[os.stat_result]) -> bool:
    """Whether every directory and file the memo's run read has the stat recorded, recorded
    outside the racy window: then ``is_still_valid`` would trust each by its stat, and the
    memo answers as it is. The files (their stats ``files``, from ``files_now``) are checked
    against the head's one digest of all their stats (``settle``), so a memo's cost stays
    that of one ``os.stat`` a file."""
    recorded = head["stats"]
    if not isinstance(recorded, str) or not isinstance(head["names"], str):
        return False
    for name, entry in head["dirs"].items():
        try:
            found = os.stat(name)
        except OSError:
            return False
        if entry[2] or stat_of(found) != entry[0]:
            return False
    return _stats_digest(list(map(_STAT_FIELDS, files))) == recorded


def settle(memo: dict[str, Any]) -> dict[str, Any]:
    """``memo`` with its head's names of the files read (joined by NUL, relative to the
    working directory) and the digest of their recorded stats, which ``is_unmoved`` checks;
    both None while a file's entry is inside the racy window (it is hashed on every use)."""
    files: dict[str, list[Any]] = memo["files"]
    memo["names"] = memo["stats"] = None
    if any(entry[2] for entry in files.values()):
        return memo
    stats = [tuple(entry[0]) for entry in files.values()]
    if not all(len(row) == 5 and all(type(n) is int for n in row) for row in stats):
        return memo
    memo["names"] = "\0".join(files)
    memo["stats"] = _stats_digest(stats)
    return memo


def _stats_digest(stats: list[tuple[int, ...]]) -> str:
    """One digest of a list of stats (``marshal``'s version 2 has no references: the same
    numbers give the same bytes)."""
    return hashlib.blake2b(marshal.dumps(stats, 2), digest_size=16).hexdigest()
