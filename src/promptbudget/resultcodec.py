"""Settled results as JSON and back, for the cache (``evaluation.FileCheck``: issue 13).

Type-directed: what a value becomes, and what JSON is accepted back, follows from the type it
is declared as (the dataclasses' type hints), never from names in the data. Nothing in the
data selects a class, a module or a function but the tags of ``Any`` values, a fixed table
(``_ANY_CLASSES``). No pickle: a cache restored from a pull request's CI run must never be
able to run code.

* a dataclass: the list of its ``init`` fields' values, built again through ``__init__`` (a
  ``cached_property`` is computed again; no class ``FileCheck`` reaches has an ``init=False``
  field);
* ``None``, ``bool``, ``int``, ``float``, ``str`` as they are (never a bool for an int nor an
  int for a bool; no NaN, which is not equal to itself); ``bytes`` as hex; ``Path`` as
  ``os.fspath``; an enum or a ``Literal`` by its value;
* ``tuple``, ``list``, ``frozenset`` as lists; ``dict[str, X]`` and ``Mapping[str, X]`` as
  objects (decoded to dict); ``X | None``, and a union whose members JSON tells apart by shape
  (``str | Slot``: a string or a list; any other union is refused when its codec is built);
* ``Any`` (template samples, tool parameters): JSON scalars as they are, a dict (str keys) as
  an object, a list as ``["l", ...]``, a tuple as ``["t", ...]``, a ``Distribution`` as
  ``["D", p50, p95]``, a date or a date and time (YAML timestamps) as ``["d", ISO 8601]``
  and ``["T", ISO 8601]``; anything else (a set, a non-str key) is ``Unencodable``, as is a
  container nested more than ``MAX_DEPTH`` deep.

``decode`` checks everything and raises ``ValueError`` alone, whatever JSON it is given. A
codec is built once per type; a record's and a container's are one generated function each,
their scalar parts checked inline. Per FileCheck of examples/ and tests/corpus/ (115 files,
rendered messages and text not kept; medians, CPU time, 2 cores at load 3:
``benchmarks/bench_resultcodec.py``): decode 26 us, encode 15 us (json.loads of its text: 7
us), 2.1 kB of JSON (the largest: 52 us, 101 kB); with text and messages kept, 27 us, 3.8 kB.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import importlib
import json
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping
from operator import attrgetter
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar, Union, cast

from promptbudget.pathnames import path_of

T = TypeVar("T")
Code = Callable[[Any], Any]

MAX_DEPTH = 100  # containers nested in an Any (bounded.py lets YAML nest 64 deep)
MAX_INT = 2**1024  # ints within +-MAX_INT: far from the digits json.dumps refuses to write

# Names the dataclasses' modules import only under TYPE_CHECKING, and the classes an Any may
# hold (by tag): resolved when a codec is first built, so that this module imports no other
# module of the package but pathnames.py (which imports none) and any module (cache.py
# included) may import it.
_TYPE_NAMES = {
    "CompressionResult": "promptbudget.compression",
    "ParsedTemplate": "promptbudget.templates.meta",
    "RenderedPrompt": "promptbudget.templates.rendered",
    "TemplateCount": "promptbudget.counting",
}
_ANY_CLASSES = {"D": ("promptbudget.manifest.model", "Distribution")}

_SCALAR_SHAPES = frozenset({type(None), bool, int, float, str})


# The dates and times YAML reads (``2025-01-31``, ``2025-01-31 10:00:00+01:00``), by tag, as
# ISO 8601 text: ``fromisoformat`` gives back the same value, its UTC offset included.
_TIMES: dict[type, str] = {datetime.date: "d", datetime.datetime: "T"}
_TIME_TAGS: dict[str, type[datetime.date]] = {tag: kind for kind, tag in _TIMES.items()}


class Unencodable(ValueError):
    """A value the codec cannot keep exactly (a NaN, a set in an ``Any``, a wrong type)."""


@dataclasses.dataclass(frozen=True)
class _Codec:
    encode: Code
    decode: Code  # raises ValueError alone
    shapes: frozenset[type]  # the JSON types its encoded form may be (unions tell them apart)
    accepts: Callable[[Any], bool]  # a value is of this type (unions pick their member)
    # A value kept as it is: the expression (of ``{0}``) true when it is not one
    refused: str | None = None


def encode(value: T, kind: type[T]) -> Any:
    """``value`` (declared as ``kind``) as JSON-able data; raises ``Unencodable``."""
    return _codec(kind).encode(value)


def decode(data: Any, kind: type[T]) -> T:
    """The ``kind`` value ``encode`` made ``data`` from; ``ValueError`` for anything else."""
    return cast(T, _codec(kind).decode(data))


def settle_exactly(value: Any, kind: Any) -> Any | None:
    """``value``'s encoded form when decoding it from JSON text, written as the cache writes
    it, gives back an equal value; else None (then the value is not cached). Through the
    text: JSON joins a high and a low surrogate written apart into one character."""
    codec = _codec(kind)
    try:
        data = codec.encode(value)
        again = json.loads(json.dumps(data, separators=(",", ":")))
        return data if codec.decode(again) == value else None
    except ValueError:  # Unencodable
        return None


_CODECS: dict[Any, _Codec] = {}
_BUILDING: set[Any] = set()


def _codec(kind: Any) -> _Codec:
    codec = _CODECS.get(kind)
    if codec is None:
        if kind in _BUILDING:
            raise TypeError(f"{kind!r} refers to itself: the codec takes no recursive type")
        _BUILDING.add(kind)
        try:
            codec = _CODECS[kind] = _build(kind)
        finally:
            _BUILDING.discard(kind)
    return codec


def _refuse(error: type[ValueError], value: object, what: str) -> NoReturn:
    # the type alone: the repr of hostile data may be huge, or too deep to make
    raise error(f"found {type(value).__name__} where {what} goes")


def _compile(lines: list[str], **names: Any) -> Code:
    """The function ``run`` of ``lines``, made here from the shape of a type (positions,
    inline checks), never from data, as ``dataclasses`` makes ``__init__``."""
    scope = {"refuse": _refuse, "Unencodable": Unencodable, "MAX": MAX_INT, **names}
    exec("\n".join(lines), scope)
    return cast(Code, scope["run"])


def _scalar(kind: type, refused: str, name: str = "") -> _Codec:
    """A JSON scalar type kept as it is, when ``refused`` (of ``{0}``) is false."""
    test, name = refused.format("v"), name or kind.__name__
    encode, decode = (
        _compile(["def run(v):", f" if {test}: refuse({error}, v, {name!r})", " return v"])
        for error in ("Unencodable", "ValueError")
    )
    return _Codec(encode, decode, frozenset({kind}), lambda value: type(value) is kind, refused)


_SCALARS = {
    type(None): _scalar(type(None), "{0} is not None"),
    bool: _scalar(bool, "type({0}) is not bool"),
    int: _scalar(int, "type({0}) is not int or not -MAX <= {0} <= MAX"),
    float: _scalar(float, "type({0}) is not float or {0} != {0}"),  # NaN != NaN
    str: _scalar(str, "type({0}) is not str"),
}


def _build(kind: Any) -> _Codec:
    if kind is Any:
        return _any_codec()
    if kind in _SCALARS or kind is None:
        return _SCALARS[type(None) if kind is None else kind]
    if kind is bytes:
        return _converted(bytes, bytes.hex, _from_hex)
    if kind is Path:
        return _converted(type(Path()), os.fspath, path_of)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return _literal(list(kind), lambda member: member.value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        fields = [f for f in dataclasses.fields(kind) if f.init]
        if any(f.kw_only for f in fields):
            raise TypeError(f"the codec takes no keyword-only field ({kind.__name__})")
        hints = _type_hints(kind)
        return _record(kind, [(f.name, _codec(hints[f.name])) for f in fields])
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Literal:
        return _literal(list(args), lambda value: value)
    if origin is Union or origin is types.UnionType:
        return _union(args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _container(tuple, _codec(args[0]))
    if origin is tuple:
        return _record(tuple, [(str(n), _codec(arg)) for n, arg in enumerate(args)])
    if origin is list or origin is frozenset:
        return _container(origin, _codec(args[0]))
    if (origin is dict or origin is Mapping) and args[0] is str:
        return _container(origin, _codec(args[1]))
    raise TypeError(f"the codec takes no {kind!r}")


def _type_hints(cls: type) -> dict[str, Any]:
    """The types of ``cls``'s fields, each resolved in the module of the class declaring it,
    then in ``_TYPE_NAMES``."""
    hints: dict[str, Any] = {}
    names = {field.name for field in dataclasses.fields(cls)}
    for base in reversed(cls.__mro__):
        own = base.__dict__.get("__annotations__", {})  # noqa: RUF063 (its own, unevaluated)
        if wanted := {name: own[name] for name in names if name in own}:
            known = {name: _resolve(module, name) for name, module in _TYPE_NAMES.items()}
            known.update(vars(sys.modules[base.__module__]))
            holder = type("holder", (), {"__annotations__": wanted})
            try:
                hints.update(typing.get_type_hints(holder, globalns=known))
            except NameError as err:  # a name imported under TYPE_CHECKING only
                raise TypeError(f"{cls.__name__}: {err}: add it to _TYPE_NAMES") from err
    return hints


def _resolve(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


def _from_hex(text: str) -> bytes:
    data = bytes.fromhex(text)
    if data.hex() != text:  # fromhex takes spaces and capitals: only what .hex() makes
        raise ValueError("hex that .hex() does not make")
    return data


def _converted(kind: type, out: Code, back: Code) -> _Codec:
    """A type kept as a string (``out`` makes it, ``back`` reads it)."""

    def encode(value: Any) -> Any:
        return out(value) if type(value) is kind else _refuse(Unencodable, value, kind.__name__)

    def decode(data: Any) -> Any:
        return back(data) if type(data) is str else _refuse(ValueError, data, kind.__name__)

    return _Codec(encode, decode, frozenset({str}), lambda value: type(value) is kind)


def _literal(values: list[Any], out: Code) -> _Codec:
    """One of ``values`` (enum members, literals), kept as ``out(value)`` (a JSON scalar)."""
    by_data = {(type(out(v)), out(v)): v for v in values}
    if not all(kind in _SCALAR_SHAPES for kind, _ in by_data):
        raise TypeError(f"the codec takes no literal or enum value outside JSON: {values!r}")
    known, kinds = {(type(v), v) for v in values}, {type(v) for v in values}
    what = "one of " + ", ".join(repr(out(v)) for v in values)

    def accepts(value: Any) -> bool:
        return type(value) in kinds and (type(value), value) in known

    def encode(value: Any) -> Any:
        return out(value) if accepts(value) else _refuse(Unencodable, value, what)

    def decode(data: Any) -> Any:
        if type(data) not in _SCALAR_SHAPES or (type(data), data) not in by_data:
            raise ValueError(f"not {what}")
        return by_data[type(data), data]

    return _Codec(encode, decode, frozenset(kind for kind, _ in by_data), accepts)


def _part(codec: _Codec, var: str, call: str, error: str, what: str) -> tuple[str, str, str]:
    """(the condition on which ``var`` is refused, "" when ``call`` converts it instead; the
    statement refusing it; the expression of its value)."""
    if codec.refused is None:
        return "", "", f"{call}({var})"
    return codec.refused.format(var), f"refuse({error}, {var}, {what!r})", var


def _record(kind: type, fields: list[tuple[str, _Codec]]) -> _Codec:
    """A dataclass (or a fixed-length tuple, its fields named by position) as the list of its
    fields' values: one generated function each way."""
    size, name = len(fields), kind.__name__
    scope: dict[str, Any] = {"kind": kind}
    for n, (_, codec) in enumerate(fields):
        scope[f"e{n}"], scope[f"d{n}"] = codec.encode, codec.decode
    take = [f" {', '.join(f'v{n}' for n in range(size))}, = value"] if size else []
    out = [
        "def run(value):",
        " if type(value) is not kind:",
        f"  refuse(Unencodable, value, {name!r})",
    ]
    if kind is tuple:
        out += [f" if len(value) != {size}: refuse(Unencodable, value, {name!r})"]
    elif size:
        scope["get"] = attrgetter(*(field for field, _ in fields))
        out += [" value = get(value)" if size > 1 else " value = (get(value),)"]
    back = [
        "def run(value):",
        f" if type(value) is not list or len(value) != {size}:",
        f"  refuse(ValueError, value, {f'{name} of {size}'!r})",
    ]
    checked: tuple[list[str], list[str]] = ([], [])
    parts: tuple[list[str], list[str]] = ([], [])
    for n, (field, codec) in enumerate(fields):
        for way, (error, call) in enumerate((("Unencodable", "e"), ("ValueError", "d"))):
            test, refusal, part = _part(codec, f"v{n}", f"{call}{n}", error, f"{name}.{field}")
            checked[way].extend([f" if {test}: {refusal}"] if test else [])
            parts[way].append(part)
    out += [*take, *checked[0], f" return [{', '.join(parts[0])}]"]
    values = ", ".join(parts[1])
    if kind is tuple:
        back += [*take, *checked[1], f" return ({values}{',' * bool(size)})"]
    elif _plain(kind, len(fields)):  # its fields set as __init__ would, without its cost
        scope["new"] = object.__new__
        filled = ", ".join(
            f"{field!r}: {part}" for (field, _), part in zip(fields, parts[1], strict=True)
        )
        back += [*take, *checked[1], " made = new(kind)", f" made.__dict__.update({{{filled}}})"]
        back += [" return made"]
    else:
        back += [*take, *checked[1], f" return kind({values})"]
    return _Codec(
        _compile(out, **scope),
        _compile(back, **scope),
        frozenset({list}),
        lambda value: type(value) is kind,
    )


def _plain(kind: type, encoded: int) -> bool:
    """A dataclass whose ``__init__`` only sets its fields (all encoded) in its ``__dict__``:
    no ``__post_init__``, no slots, no field left out of ``__init__`` (a frozen class's
    ``__init__`` sets each through ``object.__setattr__``: most of a decode's time)."""
    return (
        dataclasses.is_dataclass(kind)
        and not hasattr(kind, "__post_init__")
        and not hasattr(kind, "__slots__")
        and len(dataclasses.fields(kind)) == encoded
    )


def _container(kind: Any, item: _Codec) -> _Codec:
    """``tuple[X, ...]``, ``list[X]``, ``frozenset[X]`` as a list (a frozenset kept as strings
    sorted: the same set, the same JSON); ``dict[str, X]``, ``Mapping[str, X]`` (any mapping)
    as an object, decoded to a dict."""
    mapping = kind is dict or kind is Mapping
    accepts = (lambda v: isinstance(v, Mapping)) if kind is Mapping else lambda v: type(v) is kind
    made: list[list[str]] = []
    for error, call in (("Unencodable", "code"), ("ValueError", "back")):
        test, refusal, part = _part(item, "v", call, error, f"{kind.__name__} item")
        guard = f"(not ({test}) or {refusal})" if test else ""  # true for the items kept
        if mapping:
            key = f"(type(k) is str or refuse({error}, k, 'a string key'))"
            loop = f"{{k: {part} for k, v in value.items() if {key}{' and ' * bool(guard)}{guard}}}"
        else:
            loop = f"[{part} for v in value{' if ' * bool(guard)}{guard}]"
        lines = ["def run(value):"]
        if call == "code":
            sort = "sorted" if kind is frozenset and item.shapes == {str} else ""
            lines += [f" if not accepts(value): refuse({error}, value, 'a {kind.__name__}')"]
            lines += [f" return {sort}({loop})"]
        else:
            shape = "dict" if mapping else "list"
            lines += [f" if type(value) is not {shape}: refuse({error}, value, 'a {shape}')"]
            lines += [" try:", f"  return {'' if mapping else 'kind'}({loop})"]
            lines += [" except TypeError:", "  raise ValueError('an unhashable item') from None"]
        made.append(lines)
    scope = {"kind": kind, "accepts": accepts, "code": item.encode, "back": item.decode}
    shapes = frozenset({dict if mapping else list})
    return _Codec(_compile(made[0], **scope), _compile(made[1], **scope), shapes, accepts)


def _union(args: tuple[Any, ...]) -> _Codec:
    if Any in args:
        return _codec(Any)
    members = [_codec(arg) for arg in args]
    by_shape: dict[type, Code] = {}
    for member in members:
        for shape in member.shapes:
            if shape in by_shape:
                raise TypeError(f"JSON does not tell the members of {args!r} apart")
            by_shape[shape] = member.decode
    shapes = frozenset(by_shape)
    what = " | ".join("None" if a is type(None) else getattr(a, "__name__", str(a)) for a in args)

    def accepts(value: Any) -> bool:
        return any(member.accepts(value) for member in members)

    other = [member for member in members if member.shapes != {type(None)}]
    if len(members) == 2 and len(other) == 1 and other[0].refused is not None:  # X | None
        inline = _scalar(type(None), f"{{0}} is not None and ({other[0].refused})", what)
        return dataclasses.replace(inline, shapes=shapes, accepts=accepts)

    def encode(value: Any) -> Any:
        for member in members:
            if member.accepts(value):
                return member.encode(value)
        _refuse(Unencodable, value, what)

    def decode(data: Any) -> Any:
        back = by_shape.get(type(data))
        return _refuse(ValueError, data, what) if back is None else back(data)

    return _Codec(encode, decode, shapes, accepts)


def _any_codec() -> _Codec:
    """JSON scalars, dicts, lists, tuples and the classes of ``_ANY_CLASSES`` (tagged)."""
    codecs = {tag: _codec(_resolve(*where)) for tag, where in _ANY_CLASSES.items()}
    tags = {_resolve(*where): tag for tag, where in _ANY_CLASSES.items()}
    scalars = {kind: _SCALARS[kind] for kind in _SCALAR_SHAPES}

    def encode(value: Any, depth: int = 0) -> Any:
        kind = type(value)
        if kind in scalars:
            return scalars[kind].encode(value)
        if depth >= MAX_DEPTH:
            raise Unencodable(f"a value nested more than {MAX_DEPTH} deep")
        if kind is dict:
            if not all(type(key) is str for key in value):
                raise Unencodable("a key that is not a string")
            return {key: encode(item, depth + 1) for key, item in value.items()}
        if kind is list or kind is tuple:
            return ["l" if kind is list else "t", *[encode(item, depth + 1) for item in value]]
        if kind in tags:
            return [tags[kind], *codecs[tags[kind]].encode(value)]
        if kind in _TIMES:  # a YAML timestamp in a sample
            return [_TIMES[kind], value.isoformat()]
        _refuse(Unencodable, value, "a sample or a parameter")

    def decode(data: Any, depth: int = 0) -> Any:
        kind = type(data)
        if kind in scalars:
            return scalars[kind].decode(data)
        if depth >= MAX_DEPTH:
            raise ValueError(f"a value nested more than {MAX_DEPTH} deep")
        if kind is dict:
            if not all(type(key) is str for key in data):
                raise ValueError("a key that is not a string")
            return {key: decode(item, depth + 1) for key, item in data.items()}
        if kind is not list or not data or type(data[0]) is not str:
            _refuse(ValueError, data, "an encoded value")
        if data[0] == "l" or data[0] == "t":
            items = [decode(item, depth + 1) for item in data[1:]]
            return items if data[0] == "l" else tuple(items)
        if data[0] in _TIME_TAGS:
            if len(data) != 2 or type(data[1]) is not str:
                _refuse(ValueError, data, "a date or a time")
            return _TIME_TAGS[data[0]].fromisoformat(data[1])  # ValueError if it is none
        if data[0] not in codecs:
            raise ValueError("an unknown tag")
        return codecs[data[0]].decode(data[1:])

    return _Codec(encode, decode, _SCALAR_SHAPES | {list, dict}, lambda _value: True)
