"""JSON documents as the JSON and SARIF reporters print them: ``json.dumps(value, indent=2,
ensure_ascii=False)`` and a newline, character for character, in bounded memory.

With ``indent``, ``json`` encodes in pure Python and joins one small string per token: for
the JSON report of 10,000 templates (15 MB of text) that list of chunks took ~140 MB beside
the report's ~36 MB of dicts. Here the containers near the top are written member by member
(each member encoded by ``json`` on its own, its lines indented to its depth: a JSON text
holds no raw newline but between tokens), down to the ``Items`` arrays, whose members are made
one at a time while they are written, so a report's templates never all exist as dicts at
once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

# The containers on the way to an ``Items`` shallower than this are written member by member
# (a SARIF log's results are at depth 3: log, runs, run, results); the rest are encoded whole
# by ``json`` (one call per report template, not one per value).
_SPLIT_DEPTH = 4
# Written pieces are joined this many at a time (a few thousand short strings, not millions).
_BATCH = 1024


class Items:
    """A JSON array whose members are made while it is written (once: it is an iterator)."""

    def __init__(self, members: Iterable[Any]) -> None:
        self._members = members

    def __iter__(self) -> Iterator[Any]:
        return iter(self._members)


def dumps(value: Any) -> str:
    """``json.dumps(value, indent=2, ensure_ascii=False) + "\\n"``, an ``Items`` taken as the
    array of its members."""
    pieces: list[str] = []
    batch: list[str] = []

    def out(text: str) -> None:
        batch.append(text)
        if len(batch) >= _BATCH:
            pieces.append("".join(batch))
            batch.clear()

    _write(value, 0, out)
    batch.append("\n")
    pieces.append("".join(batch))
    return "".join(pieces)


def _write(value: Any, depth: int, out: Callable[[str], None]) -> None:
    inner = "\n" + "  " * (depth + 1)
    if isinstance(value, Items):
        opened = False
        for member in value:
            out("," + inner if opened else "[" + inner)
            _write(member, depth + 1, out)
            opened = True
        out("\n" + "  " * depth + "]" if opened else "[]")
    elif isinstance(value, list) and _holds_items(value, depth):
        out("[")
        separator = inner
        for member in value:
            out(separator)
            _write(member, depth + 1, out)
            separator = "," + inner
        out("\n" + "  " * depth + "]")
    elif isinstance(value, dict) and _holds_items(value, depth):
        out("{")
        separator = inner
        for key, member in value.items():
            out(separator + json.dumps(key, ensure_ascii=False) + ": ")
            _write(member, depth + 1, out)
            separator = "," + inner
        out("\n" + "  " * depth + "}")
    else:  # encoded whole (an Items deep inside: by ``default``)
        text = json.dumps(value, indent=2, ensure_ascii=False, default=_as_list)
        out(text.replace("\n", "\n" + "  " * depth) if depth else text)


def _holds_items(value: list[Any] | dict[Any, Any], depth: int) -> bool:
    """Whether ``value`` (a list, or a dict with string keys) holds an ``Items`` less than
    ``_SPLIT_DEPTH`` levels down: then it is written member by member, down to it."""
    if depth >= _SPLIT_DEPTH:
        return False
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            return False  # json turns other keys into strings: encoded whole
        members = list(value.values())
    else:
        members = value
    return any(
        isinstance(member, Items)
        or (isinstance(member, list | dict) and _holds_items(member, depth + 1))
        for member in members
    )


def _as_list(value: object) -> list[Any]:
    """An ``Items`` deeper than the split depth, for ``json``'s ``default``."""
    if isinstance(value, Items):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
