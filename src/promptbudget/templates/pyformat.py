"""Python ``str.format`` prompts: ``{name}``, ``{obj.attr}``, ``{items[0]}``, ``{x!r:>10}``,
``{{`` and ``}}`` for literal braces.

Parsed with Python's own ``string.Formatter`` (so what it rejects is rejected here), then
rendered over sample data only: ``.attr`` and ``[key]`` look into the sample's mappings and
lists, never into a Python object, and a format spec's width is capped so a template cannot
ask for a gigabyte of padding.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_FORMAT_WIDTH = 10_000  # a width above this is capped (and reported)

_ROOT = re.compile(r"[A-Za-z_]\w*|\d+")
_LOOKUP = re.compile(r"\.([A-Za-z_]\w*)|\[([^\]]+)\]")
# Python's standard format spec: [[fill]align][sign][z][#][0][width][,|_][.precision][type]
_STANDARD_SPEC = re.compile(r"^(?:.?[<>=^])?[+\- ]?z?#?0?\d*[,_]?(?:\.\d+)?[bcdeEfFgGnosxX%]?$")
_WIDTH = re.compile(r"^(?P<head>(?:.?[<>=^])?[+\- ]?z?#?0?)(?P<width>\d+)(?P<tail>.*)$", re.DOTALL)


class FormatTemplateError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class FormatField:
    """One replacement field: ``{root.path!conversion:spec}``."""

    root: str  # the keyword argument it reads (a number for a positional field)
    lookups: tuple[str | int, ...]  # attribute names and index keys, in order
    conversion: str | None
    spec: str
    line: int
    source: str  # the field as written, for messages

    @property
    def is_positional(self) -> bool:
        return self.root.isdigit()


def parse_format(body: str, first_line: int = 1) -> list[str | FormatField]:
    """Literal text (escaped braces already single) and fields. Raises
    ``FormatTemplateError`` where ``str.format`` would raise, with the line."""
    try:
        parsed = list(string.Formatter().parse(body))
    except ValueError as err:
        raise FormatTemplateError(
            f"str.format error: {err}", unmatched_brace_line(body, first_line)
        ) from err
    pieces: list[str | FormatField] = []
    line = first_line
    automatic = 0
    for literal, name, spec, conversion in parsed:
        if literal:
            pieces.append(literal)
        line += literal.count("\n")
        if name is None:
            continue
        source = (
            "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
        )
        source += "}"
        root_match = _ROOT.match(name)
        if name == "" or name[0] in ".[":  # automatic numbering: {} or {.attr}
            root, rest = str(automatic), name
            automatic += 1
        elif root_match is None:
            raise FormatTemplateError(
                f"'{source}' is not a field str.format can fill (a name, name.attr or "
                "name[key]); write {{ and }} for literal braces",
                line,
            )
        else:
            root, rest = root_match.group(0), name[root_match.end() :]
        lookups: list[str | int] = []
        position = 0
        for match in _LOOKUP.finditer(rest):
            if match.start() != position:
                break
            attribute, key = match.group(1), match.group(2)
            lookups.append(attribute if attribute is not None else _index_key(key))
            position = match.end()
        if position != len(rest):
            raise FormatTemplateError(
                f"'{source}' is not a field str.format can fill (a name, name.attr or "
                "name[key]); write {{ and }} for literal braces",
                line,
            )
        if conversion is not None and conversion not in {"r", "s", "a"}:
            raise FormatTemplateError(
                f"'{source}': unknown conversion '!{conversion}' (str.format knows !r, !s, !a)",
                line,
            )
        pieces.append(FormatField(root, tuple(lookups), conversion, spec or "", line, source))
        line += (spec or "").count("\n")
    return pieces


def _index_key(key: str) -> str | int:
    """``[0]`` indexes with an integer, ``[name]`` with the string, as str.format does."""
    return int(key) if key.isdigit() else key


def spec_fields(spec: str) -> list[str]:
    """Names a nested format spec reads (``{x:{width}}``)."""
    return [name for _, name, _, _ in string.Formatter().parse(spec) if name]


def looks_like_format(body: str) -> bool:
    """True when ``body`` parses as str.format with at least one named field and every field
    is a name, attribute or index (so JSON or code with braces does not pass)."""
    try:
        pieces = parse_format(body)
    except FormatTemplateError:
        return False
    fields = [piece for piece in pieces if isinstance(piece, FormatField)]
    return bool(fields) and all(_is_plain_field(field) for field in fields)


def accepts_escapes_only(body: str) -> bool:
    """True when ``body`` has ``{{``/``}}`` and parses as str.format with no positional
    field: what is left of a str.format prompt whose fields are all escaped braces."""
    if "{{" not in body and "}}" not in body:
        return False
    try:
        pieces = parse_format(body)
    except FormatTemplateError:
        return False
    return all(_is_plain_field(p) for p in pieces if isinstance(p, FormatField))


def _is_plain_field(field: FormatField) -> bool:
    """A field a prompt author writes: a name, no positional index, a standard spec (a
    ``{key: value}`` inside a JSON example or a shell command is not one)."""
    return not field.is_positional and (
        "{" in field.spec or _STANDARD_SPEC.match(field.spec) is not None
    )


class _Missing:
    """A sample without the attribute or key a field asks for."""


MISSING = _Missing()


def lookup(value: Any, lookups: tuple[str | int, ...]) -> Any:
    """Follow ``.attr``/``[key]`` into sample data: mapping keys and list indexes only."""
    for key in lookups:
        if isinstance(value, Mapping):
            if key in value:
                value = value[key]
            elif str(key) in value:
                value = value[str(key)]
            else:
                return MISSING
        elif isinstance(value, list | tuple) and isinstance(key, int) and key < len(value):
            value = value[key]
        else:
            return MISSING
    return value


def format_value(value: Any, field: FormatField, spec: str, warn: Callable[[str], None]) -> str:
    """``value`` converted and formatted as str.format would, with the width capped."""
    if field.conversion == "r":
        value = repr(value)
    elif field.conversion == "a":
        value = ascii(value)
    elif field.conversion == "s":
        value = str(value)
    match = _WIDTH.match(spec)
    if match is not None and int(match["width"]) > MAX_FORMAT_WIDTH:
        warn(
            f"'{field.source}' asks for a width of {int(match['width']):,}; counted at "
            f"{MAX_FORMAT_WIDTH:,}"
        )
        spec = f"{match['head']}{MAX_FORMAT_WIDTH}{match['tail']}"
    if not spec:
        return str(value)
    try:
        return format(value, spec)
    except (ValueError, TypeError) as err:
        warn(f"'{field.source}' cannot format its sample ({err}); counted without the spec")
        return str(value)


def unmatched_brace_line(body: str, first_line: int) -> int:
    """The line of the first single brace that str.format cannot match."""
    index = 0
    while index < len(body):
        char = body[index]
        if char in "{}":
            if body.startswith(char * 2, index):
                index += 2
                continue
            if char == "}":
                return first_line + body.count("\n", 0, index)
            close = body.find("}", index)
            if close < 0:
                return first_line + body.count("\n", 0, index)
            index = close + 1
            continue
        index += 1
    return first_line
