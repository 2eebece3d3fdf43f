"""Jinja2 renders kept in the content cache (``cache.py``), so a warm run does not parse,
compile and render a template again when nothing it reads has changed.

A render is a function of the parsed template (its file's text, front matter, format, path),
the values it is given, the renderer's settings, and the files Jinja2's loader is asked for
while compiling and rendering it (includes, imports, extends, the cycle check's reads, and
names computed at render time alike). The first three make the key (``render_key``); the
loader's answers are recorded (``sandbox.loads_recorded``) and kept beside the result: a
cached render is used only when the loader, asked the same names now, answers the same
(the same file, the same text; or the same "not found"). So an edited partial, a partial
added earlier on the search path, or one deleted, is a miss, whatever the template names.

Only renders that succeeded are kept: a problem (PB001) is rendered again each run, so a
render stopped by the time limit, or by Python's recursion limit, is never remembered.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import enum
import json
import zlib
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from promptbudget.cache import Store, cache_key
from promptbudget.templates.meta import ParsedTemplate
from promptbudget.templates.rendered import Message, RenderedPrompt, Slot, VariableValue
from promptbudget.templates.sandbox import MAX_RENDERED_CHARS, LoadOutcome, Loads

_KIND = "jinja2 render/2"
# A render's messages as JSON are at most this long (the renderer's output bound, escaped)
MAX_PACKED_BYTES = 8 * MAX_RENDERED_CHARS


# Values whose repr is the same in every run
_SCALARS = (bool, int, float, Decimal, str, enum.Enum, PurePath, datetime.date, datetime.time)


class _Unkeyable(Exception):
    """A value with no stable text (an object shown by its address): not cached."""


def render_key(
    parsed: ParsedTemplate,
    values: Mapping[str, VariableValue],
    settings: tuple[object, ...],
) -> str | None:
    """The key of rendering ``parsed`` with ``values`` under ``settings`` (the include root,
    search directories, slots or values, time limit); None when something in them has no
    stable text."""
    parts: list[str] = []
    try:
        _canonical(parsed, parts)
        _canonical(dict(values), parts)
        _canonical(settings, parts)
    except _Unkeyable:
        return None
    return cache_key(_KIND, *parts)


def _canonical(value: object, out: list[str]) -> None:
    """``value`` as text that is the same in every run (sets sorted, dataclasses by field),
    appended to ``out``; raises ``_Unkeyable`` for a value that has none."""
    if isinstance(value, str):  # the texts: as they are (cache_key hashes each part's length)
        out.append("str")
        out.append(value)
    elif value is None or isinstance(value, _SCALARS):
        out.append(f"{type(value).__name__}:{value!r}")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        out.append(f"<{type(value).__qualname__}")
        for item in dataclasses.fields(value):
            out.append(item.name)
            _canonical(getattr(value, item.name), out)
        out.append(">")
    elif isinstance(value, Mapping):
        out.append(f"{{{len(value)}")
        for pair in sorted(_parts(pair) for pair in value.items()):
            out.extend(pair)
    elif isinstance(value, list | tuple):
        out.append(f"[{type(value).__name__}{len(value)}")
        for item in value:
            _canonical(item, out)
    elif isinstance(value, set | frozenset):
        out.append(f"({len(value)}")
        for parts in sorted(_parts(item) for item in value):
            out.extend(parts)
    else:
        raise _Unkeyable(type(value).__name__)


def _parts(value: object) -> list[str]:
    """``_canonical`` of ``value`` alone: a mapping's items and a set's members are sorted by
    it, so their order in this run does not matter."""
    parts: list[str] = []
    _canonical(value, parts)
    return parts


def lookup(
    store: Store,
    key: str,
    values: Mapping[str, VariableValue],
    answer: Callable[[str], LoadOutcome],
) -> RenderedPrompt | None:
    """The render kept under ``key``, if the loader (``answer(name)``: what it says of a name
    now) answers every name it was asked the same; None otherwise (a miss)."""
    kept = store.get(key)
    if not isinstance(kept, dict):
        return None
    loads = kept.get("loads")
    if not isinstance(loads, list):
        return None
    for item in loads:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            return None
        if answer(item[0]) != item[1]:
            return None
    try:
        return _decode(kept, values)
    except (KeyError, TypeError, ValueError):
        return None


def keep(store: Store, key: str, rendered: RenderedPrompt, loads: Loads) -> None:
    """Keep a render that succeeded, with the loader's answers it depends on."""
    if rendered.problem is not None or not loads.is_consistent:
        return
    messages = [
        [
            message.role,
            message.name,
            [
                part if isinstance(part, str) else [part.variable, part.max_tokens, part.whole]
                for part in message.parts
            ],
        ]
        for message in rendered.messages
    ]
    packed = zlib.compress(json.dumps(messages, separators=(",", ":")).encode("ascii"), 1)
    value = {
        "m": base64.b64encode(packed).decode("ascii"),
        "v": list(rendered.variables),
        "u": list(rendered.unbounded),
        "l": dict(rendered.variable_lines),
        "f": sorted(rendered.functions),
        "w": [list(warning) for warning in rendered.warnings],
        "loads": [[name, outcome] for name, outcome in loads.answers.items()],
    }
    store.put(key, value)


def _unpacked(packed: object) -> Any:
    """The messages as ``keep`` packs them (zlib-compressed JSON, in base64: a cache holds the
    rendered text of every template); ValueError for anything else, or past the size bound."""
    if not isinstance(packed, str):
        raise ValueError("not packed messages")
    inflate = zlib.decompressobj()
    try:
        data = inflate.decompress(base64.b64decode(packed, validate=True), MAX_PACKED_BYTES)
    except (zlib.error, binascii.Error) as err:
        raise ValueError(str(err)) from err
    if inflate.unconsumed_tail or not inflate.eof:
        raise ValueError("packed messages past the size bound, or cut short")
    return json.loads(data)


def _decode(kept: dict[str, Any], values: Mapping[str, VariableValue]) -> RenderedPrompt | None:
    messages = []
    for role, name, parts in _unpacked(kept["m"]):
        if not isinstance(role, str) or not (name is None or isinstance(name, str)):
            return None
        decoded: list[str | Slot] = []
        for part in parts:
            if isinstance(part, str):
                decoded.append(part)
            else:
                variable, max_tokens, whole = part
                if not (
                    isinstance(variable, str)
                    and type(max_tokens) is int
                    and isinstance(whole, bool)
                ):
                    return None
                decoded.append(Slot(variable, max_tokens, whole))
        messages.append(Message(role, tuple(decoded), name))
    used = _strings(kept["v"])
    lines = kept["l"]
    if not isinstance(lines, dict) or not all(type(n) is int for n in lines.values()):
        return None
    warnings = tuple((text, line) for text, line in kept["w"])
    if not all(isinstance(text, str) and type(line) is int for text, line in warnings):
        return None
    return RenderedPrompt(
        messages=tuple(messages),
        variables=used,
        values={name: values[name] for name in used if name in values},
        unbounded=_strings(kept["u"]),
        variable_lines=dict(lines),
        functions=frozenset(_strings(kept["f"])),
        warnings=warnings,
    )


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError("not a list of strings")
    return tuple(value)
