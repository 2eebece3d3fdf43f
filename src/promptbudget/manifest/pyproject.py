"""``[tool.promptbudget]`` in ``pyproject.toml``: the manifest as a TOML table.

TOML parsers give no line numbers, so the lines that error messages name are found by reading
the text: table headers (``[tool.promptbudget.workflows.faq]``, ``[[...steps]]``) and
``key = value`` lines. Values inside inline tables get the line of their table, which is
where a person would look anyway.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from promptbudget.bounded import InputBoundsError, load_toml
from promptbudget.errors import ManifestError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TABLE = ("tool", "promptbudget")

_HEADER = re.compile(r"^\s*(\[\[?)\s*(?P<name>[^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(
    r"^\s*(?P<key>(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)
_PART = re.compile(r"\s*(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'|(?P<bare>[A-Za-z0-9_-]+))\s*")


def has_tool_table(text: str) -> bool:
    """Whether ``pyproject.toml`` text has a ``[tool.promptbudget]`` table (cheap check
    first: most pyproject files never mention it)."""
    if "promptbudget" not in text:
        return False
    try:
        data = load_toml(text)
    except ValueError:  # TOMLDecodeError or a bound: let loading it say where
        return True
    tool = data.get("tool")
    return isinstance(tool, dict) and "promptbudget" in tool


def load_tool_table(text: str, shown: str) -> tuple[dict[str, Any], dict[str, int]]:
    """The ``[tool.promptbudget]`` table and a map of JSON path -> line."""
    try:
        data = load_toml(text)
    except InputBoundsError as err:
        raise ManifestError(err.message, path=shown, line=err.line) from err
    except tomllib.TOMLDecodeError as err:
        found = re.search(r"at line (\d+)", str(err))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(err))
        raise ManifestError(
            f"is not valid TOML: {message}",
            path=shown,
            line=int(found.group(1)) if found else None,
        ) from err
    tool = data.get("tool")
    table = tool.get("promptbudget") if isinstance(tool, dict) else None
    if not isinstance(table, dict):
        raise ManifestError(
            "has no [tool.promptbudget] table; add one, or use a budgets.yaml", path=shown
        )
    return table, _lines(text)


def _parts(dotted: str) -> list[str] | None:
    parts = []
    for piece in _split_dots(dotted):
        match = _PART.fullmatch(piece)
        if match is None:
            return None
        parts.append(match.group("dq") or match.group("sq") or match.group("bare") or "")
    return parts


def _split_dots(dotted: str) -> list[str]:
    pieces, current, quote = [], "", ""
    for char in dotted:
        if quote:
            current += char
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
            current += char
        elif char == ".":
            pieces.append(current)
            current = ""
        else:
            current += char
    pieces.append(current)
    return pieces


def format_json_path(parts: list[str | int]) -> str:
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier():
            path += f".{part}"
        else:
            path += f"[{json.dumps(part)}]"
    return path


def _lines(text: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    table: list[str | int] | None = None  # the current table, relative to [tool.promptbudget]
    arrays: dict[tuple[str, ...], int] = {}
    in_multiline = False
    for number, line in enumerate(text.split("\n"), start=1):
        if in_multiline:
            if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
                in_multiline = False
            continue
        header = _HEADER.match(line)
        if header:
            parts = _parts(header.group("name"))
            if parts is None or parts[:2] != list(TABLE):
                table = None
                continue
            relative: list[str | int] = list(parts[2:])
            if header.group(1) == "[[":
                array = tuple(parts[2:])
                arrays[array] = arrays.get(array, -1) + 1
                relative.append(arrays[array])
            table = relative
            for depth in range(len(relative) + 1):
                lines.setdefault(format_json_path(relative[:depth]), number)
            continue
        if table is None:
            continue
        key = _KEY.match(line)
        if key:
            parts = _parts(key.group("key"))
            if parts is not None:
                full = [*table, *parts]
                for depth in range(len(table) + 1, len(full) + 1):
                    lines.setdefault(format_json_path(full[:depth]), number)
            value = line[key.end() :]
            if value.count('"""') == 1 or value.count("'''") == 1:
                in_multiline = True
    return lines
