"""Control characters in user-controlled strings, escaped before any line-oriented reporter
sees them.

File names, model names, variable names, workflow names and exception messages come from a
pull request. Printed raw, a newline in one starts a new output line, and under GitHub
Actions a line starting with ``::`` is a workflow command (``::add-mask::``,
``::stop-commands::``, ``::warning``); an ESC starts a terminal escape sequence. So every
string of a ``Report`` has its control characters (C0, DEL, C1, and the Unicode line and
paragraph separators) written as visible escapes (``\\n``, ``\\x1b``, ``\\u2028``) before the
text, JUnit and Markdown reporters run: no line a pull request controls can start where a
reporter did not start one. JSON and SARIF escape control characters by their grammar, and
the GitHub reporter percent-encodes CR and LF, so they receive the report as it is.

A compression diff keeps its line breaks (each line starts with a diff marker of ours) and
has every other control character escaped.
"""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from typing import Any, TypeVar

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u0085]")
_COMMAND_START = re.compile(r"^([ \t]*)::", re.MULTILINE)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x00": "\\0", "\x1b": "\\x1b"}

T = TypeVar("T")


def escape_control(text: str) -> str:
    """``text`` on one line: each control character as a visible escape."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(_escape_match, text)


def escape_control_keep_lines(text: str) -> str:
    """Like ``escape_control``, but line feeds stay (for multi-line text we frame)."""
    if _CONTROL_BUT_NEWLINE.search(text) is None:
        return text
    return _CONTROL_BUT_NEWLINE.sub(_escape_match, text)


def guard_line_starts(text: str) -> str:
    """No line of ``text`` starts (after blanks, which the Actions runner trims) with ``::``:
    the first colon of such a line is written ``\\x3a``. A last guard behind the escaping
    above: a user string can still begin a line (a file named ``::warning::x.j2`` at the
    project root begins a finding line), and none of our own lines starts with ``::``."""
    if "::" not in text:
        return text
    return _COMMAND_START.sub(r"\1\\x3a:", text)


def escape_report(report: T) -> T:
    """A copy of ``report`` (any tree of dataclasses, tuples, lists and dicts) with every
    string escaped by ``escape_control``; unchanged parts are shared, not copied."""
    result: T = _escape(report, None)
    return result


# Values that hold no string: returned as they are, before any other test (most leaves of
# a report are numbers: a report of 10,000 templates has ~700,000 values)
_NO_STRING = frozenset({int, float, bool, type(None), Decimal})


def _escape(value: Any, field_name: str | None) -> Any:
    if type(value) in _NO_STRING:
        return value
    if isinstance(value, str):
        if field_name == "diff":
            return escape_control_keep_lines(value)
        return escape_control(value)
    names = _init_fields(type(value))
    if names is not None:
        changes = {}
        for name in names:
            current = getattr(value, name)
            if type(current) in _NO_STRING:
                continue
            escaped = _escape(current, name)
            if escaped is not current:
                changes[name] = escaped
        return dataclasses.replace(value, **changes) if changes else value
    if isinstance(value, tuple | list):
        items = [item if type(item) in _NO_STRING else _escape(item, None) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        if isinstance(value, list):
            return items
        if hasattr(value, "_fields"):  # a named tuple
            return type(value)(*items)
        return tuple(items)
    if isinstance(value, dict):
        escaped_items = {_escape(k, None): _escape(v, None) for k, v in value.items()}
        if all(
            k is old_k and escaped_items[k] is old_v
            for k, (old_k, old_v) in zip(escaped_items, value.items(), strict=False)
        ) and len(escaped_items) == len(value):
            return value
        return escaped_items
    return value


_INIT_FIELDS: dict[type, tuple[str, ...] | None] = {}


def _init_fields(cls: type) -> tuple[str, ...] | None:
    """The fields a dataclass's ``__init__`` takes (what ``replace`` can set); None for any
    other type. Once per class: a report of 10,000 templates holds ~100,000 dataclasses."""
    try:
        return _INIT_FIELDS[cls]
    except KeyError:
        names = None
        if dataclasses.is_dataclass(cls):
            names = tuple(item.name for item in dataclasses.fields(cls) if item.init)
        _INIT_FIELDS[cls] = names
        return names


def _escape_match(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
