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

_KIND = "jinja2 render/3"
# A render's entry as JSON is at most this long (the renderer's output bound, escaped)
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
    out: list[str] = []
    try:
        _canonical(parsed, out)
        _canonical(dict(values), out)
        _canonical(settings, out)
    except _Unkeyable:
        return None
    return cache_key(_KIND, "".join(out))


def _canonical(value: object, out: list[str]) -> None:
    """``value`` as text that is the same in every run (sets sorted, dataclasses by field),
    appended to ``out``; raises ``_Unkeyable`` for a value that has none. Every text of
    varying length is written after its length, so no two values make the same text."""
    kind = type(value)
    if kind is str:
        out.append(f"s{len(value)}:")  # type: ignore[arg-type]
        out.append(value)  # type: ignore[arg-type]
        return
    fields = _FIELDS.get(kind)
    if fields is not None:
        name = kind.__qualname__
        out.append(f"d{len(name)}:{name}")
        for field_name in fields:
            _canonical(getattr(value, field_name), out)
    elif value is None or isinstance(value, _SCALARS):
        text = f"{kind.__name__}:{value!r}"
        out.append(f"v{len(text)}:")
        out.append(text)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        _FIELDS[kind] = tuple(item.name for item in dataclasses.fields(value))
        _canonical(value, out)
    elif isinstance(value, dict | Mapping):
        out.append(f"m{len(value)}:")
        out.extend(sorted(_text(pair) for pair in value.items()))
    elif isinstance(value, list | tuple):
        out.append(f"{'l' if isinstance(value, list) else 't'}{len(value)}:")
        for item in value:
            _canonical(item, out)
    elif isinstance(value, set | frozenset):
        out.append(f"f{len(value)}:")
        out.extend(sorted(_text(item) for item in value))
    else:
        raise _Unkeyable(kind.__name__)


# A dataclass's field names, by class, as ``_canonical`` first met it
_FIELDS: dict[type, tuple[str, ...]] = {}


def _text(value: object) -> str:
    """``_canonical`` of ``value`` alone: a mapping's items and a set's members are sorted by
    it, so their order in this run does not matter."""
    out: list[str] = []
    _canonical(value, out)
    return "".join(out)


def lookup(
    store: Store,
    key: str,
    values: Mapping[str, VariableValue],
    answer: Callable[[str], LoadOutcome],
) -> RenderedPrompt | None:
    """The render kept under ``key``, if the loader (``answer(name)``: what it says of a name
    now) answers every name it was asked the same; None otherwise (a miss)."""
    found = store.get(key)
    if found is None:
        return None
    try:
        kept = unpacked(found)
        loads = kept["loads"]
        if not isinstance(loads, list):
            return None
        for item in loads:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                return None
            if answer(item[0]) != item[1]:
                return None
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
    entry = {
        "m": messages,
        "v": list(rendered.variables),
        "u": list(rendered.unbounded),
        "l": dict(rendered.variable_lines),
        "f": sorted(rendered.functions),
        "w": [list(warning) for warning in rendered.warnings],
        "loads": [[name, outcome] for name, outcome in loads.answers.items()],
    }
    store.put(key, packed(entry))


def packed(entry: dict[str, Any]) -> str:
    """An entry as the cache keeps it: JSON, zlib-compressed, in base64. One string, ~3 times
    smaller than the JSON: a warm cache holds every template's rendered text."""
    data = json.dumps(entry, separators=(",", ":")).encode("ascii")
    return base64.b64encode(zlib.compress(data, 1)).decode("ascii")


def unpacked(value: object) -> dict[str, Any]:
    """An entry ``packed`` made; ValueError for anything else, or past the size bound."""
    if not isinstance(value, str):
        raise ValueError("not a packed entry")
    inflate = zlib.decompressobj()
    try:
        data = inflate.decompress(base64.b64decode(value, validate=True), MAX_PACKED_BYTES)
    except (zlib.error, binascii.Error) as err:
        raise ValueError(str(err)) from err
    if inflate.unconsumed_tail or not inflate.eof:
        raise ValueError("a packed entry past the size bound, or cut short")
    entry = json.loads(data)
    if not isinstance(entry, dict):
        raise ValueError("not a packed entry")
    return entry


def _decode(kept: dict[str, Any], values: Mapping[str, VariableValue]) -> RenderedPrompt | None:
    messages = []
    for role, name, parts in kept["m"]:
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
