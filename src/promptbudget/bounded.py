"""Bounded loaders: every YAML, JSON and TOML document the tool reads goes through here.

A pull request controls these documents, so each load has a budget: how deep the nesting
goes, how many values an alias may expand to, how many digits an integer has, and which
numbers are refused (NaN and infinity never mean anything in a prompt project). Exceeding a
budget is an ``InputBoundsError`` with one sentence and, where known, the line, never a
``RecursionError``, an hour of CPU or gigabytes of memory.

The YAML loader checks the event stream first (PyYAML's parser is iterative, its composer
and constructor are recursive), then builds plain data with the alias expansion counted.
It parses with libyaml when PyYAML has it (``with_fallback``), about ten times as fast as
the pure-Python parser; a document libyaml refuses is parsed again in pure Python, whose
messages and lines are the ones reported, so errors read as they always did.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import yaml

MAX_DEPTH = 64  # a manifest, a front matter or a sample nested deeper is an attack, not data
MAX_NODES = 100_000  # values after alias expansion
MAX_INT_DIGITS = 100  # Python refuses over 4,300; no count or price has more than 20
MAX_JSON_BYTES = 16 * 1024 * 1024  # price files (LiteLLM's is about 1 MB) and lock files

_PLAIN_INT = re.compile(r"[-+]?[0-9][0-9_]*")
_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


class InputBoundsError(ValueError):
    """A document exceeds a bound or holds a value that cannot be used."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(message if line is None else f"line {line}: {message}")


class YamlBoundsError(InputBoundsError, yaml.YAMLError):
    """The YAML flavour, so callers that catch ``yaml.YAMLError`` report it as invalid YAML."""


Result = TypeVar("Result")
# PyYAML's binary wheels carry libyaml; a build without it has only the pure-Python loader.
_LIBYAML_LOADER: type[yaml.SafeLoader] | None = getattr(yaml, "CSafeLoader", None)


# Where libyaml and PyYAML read a document PyYAML accepts differently (found by
# tests/unit/test_libyaml.py's generated text): libyaml allows tabs as separating white
# space, reads a byte order mark inside the stream and the Unicode line breaks otherwise,
# and gives a lone non-specific tag ``!`` an empty string where PyYAML gives None. A
# document holding one of these is read by PyYAML alone.
_LIBYAML_DIFFERS = re.compile("[\t\ufeff\x85\u2028\u2029]|!(?![^\\s,\\]}])")


def with_fallback(text: str, load: Callable[[type[yaml.SafeLoader]], Result]) -> Result:
    """``load(loader)`` for the document ``text``: with libyaml's loader when PyYAML has it
    and ``text`` holds nothing libyaml reads otherwise; when that raises anything (libyaml
    refuses the document, or a bound or a constructor stops it), again with PyYAML's own
    loader, whose answer is the one given, so every error reads as it always did. libyaml
    accepts a few malformed documents PyYAML refuses (a block scalar header followed by
    ``#`` with no space, ``?`` inside a flow sequence), and reads them as written."""
    if _LIBYAML_LOADER is not None and _LIBYAML_DIFFERS.search(text) is None:
        try:
            return load(_LIBYAML_LOADER)
        except Exception:  # PyYAML's answer, error included, is the one given
            pass
    return load(yaml.SafeLoader)


def load_yaml(
    text: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> Any:
    """``yaml.safe_load`` with budgets; raises ``YamlBoundsError`` or ``yaml.YAMLError``."""

    def load(loader_class: type[yaml.SafeLoader]) -> Any:
        check_yaml_events(text, max_depth=max_depth, max_nodes=max_nodes, loader=loader_class)
        loader = loader_class(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            return build_yaml(loader, node, max_nodes=max_nodes, max_depth=max_depth)
        finally:
            loader.dispose()

    return with_fallback(text, load)


def check_yaml_events(
    text: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
    loader: type[yaml.SafeLoader] = yaml.SafeLoader,
) -> None:
    """Walk the parser's events (no recursion, no construction): nesting depth, number of
    nodes before alias expansion, integer sizes, and characters a string may not hold."""
    depth = 0
    count = 0
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    raise YamlBoundsError(
                        f"is nested more than {max_depth} levels deep", _line(event)
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.ScalarEvent):
                _check_scalar(event)
            if isinstance(event, yaml.NodeEvent):
                count += 1
                if count > max_nodes:
                    raise YamlBoundsError(f"has more than {max_nodes:,} values", _line(event))
    except yaml.reader.ReaderError as err:  # (libyaml's, counted in bytes, is read again)
        raise YamlBoundsError(_reader_problem(err), _reader_line(text, err)) from err


def build_yaml(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    *,
    max_nodes: int = MAX_NODES,
    max_depth: int = MAX_DEPTH,
    on_node: Callable[[yaml.Node, str], None] | None = None,
) -> Any:
    """Plain data from a composed node, counting every value an alias expands to, so a
    billion-laughs document stops after ``max_nodes``. ``on_node`` sees each node with its
    JSON path (for line maps)."""
    budget = [max_nodes]

    def convert(current: yaml.Node, path: str, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise YamlBoundsError(
                f"expands to more than {max_nodes:,} values (an alias bomb?); simplify it",
                _line(current),
            )
        if depth > max_depth:
            raise YamlBoundsError(f"is nested more than {max_depth} levels deep", _line(current))
        if on_node is not None:
            on_node(current, path)
        if isinstance(current, yaml.MappingNode):
            loader.flatten_mapping(current)
            result: dict[Any, Any] = {}
            for key_node, value_node in current.value:
                key = convert(key_node, path + ".<key>", depth + 1)
                if isinstance(key, dict | list):
                    raise YamlBoundsError("has a key that is not a plain value", _line(key_node))
                result[key] = convert(value_node, f"{path}.{key}", depth + 1)
            return result
        if isinstance(current, yaml.SequenceNode):
            return [
                convert(item, f"{path}[{index}]", depth + 1)
                for index, item in enumerate(current.value)
            ]
        assert isinstance(current, yaml.ScalarNode)
        value = construct_scalar(loader, current)
        if isinstance(value, float) and not math.isfinite(value):
            raise YamlBoundsError(
                f"has {current.value!r}, which is not a finite number", _line(current)
            )
        return value

    return convert(node, "$", 0)


def construct_scalar(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    """The value of a scalar node. PyYAML's constructors raise ``IndexError``,
    ``ValueError``, ``KeyError`` or ``AttributeError`` for an explicit tag whose value does
    not fit it (``!!int`` alone, ``!!bool x``, ``!!timestamp x``): a ``YamlBoundsError``."""
    try:
        return loader.construct_object(node, deep=True)
    except (IndexError, ValueError, KeyError, AttributeError, TypeError, OverflowError):
        tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
        raise YamlBoundsError(
            f"has {tag} {node.value!r}, which is not a valid {tag} value; "
            "fix the value or remove the tag",
            _line(node),
        ) from None


def load_json(
    text: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_bytes: int = MAX_JSON_BYTES,
) -> Any:
    """``json.loads`` with budgets: size, nesting depth (checked before parsing), integer
    digits; NaN and infinity refused. Raises ``InputBoundsError`` or ``json.JSONDecodeError``
    (both ``ValueError``)."""
    if len(text) > max_bytes:
        raise InputBoundsError(f"is larger than {max_bytes:,} characters")
    check_json_depth(text, max_depth=max_depth)
    value = json.loads(text, parse_constant=_refuse_constant, parse_int=_int, parse_float=_float)
    check_strings(value)
    return value


def check_json_depth(text: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise when brackets outside strings nest deeper than ``max_depth`` (linear)."""
    brackets = _NOT_A_BRACKET.sub("", _STRING_LITERAL.sub('""', text))
    depth = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > max_depth:
                offset = _offset_of_depth(text, max_depth + 1)
                raise InputBoundsError(
                    f"is nested more than {max_depth} levels deep",
                    text.count("\n", 0, offset) + 1,
                )
        else:
            depth -= 1


def check_data_bounds(value: Any, *, max_depth: int = MAX_DEPTH, what: str = "the data") -> None:
    """Raise when already-parsed data (TOML, an override) nests deeper than ``max_depth`` or
    holds an integer over ``MAX_INT_DIGITS`` digits or a float that is not finite."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if depth > max_depth:
            raise InputBoundsError(f"{what} is nested more than {max_depth} levels deep")
        if isinstance(current, dict):
            stack.extend((item, depth + 1) for item in current.values())
        elif isinstance(current, list):
            stack.extend((item, depth + 1) for item in current)
        elif isinstance(current, bool):
            continue
        elif isinstance(current, int) and _too_many_digits(current):
            raise InputBoundsError(f"{what} has an integer of more than {MAX_INT_DIGITS} digits")
        elif isinstance(current, float) and not math.isfinite(current):
            raise InputBoundsError(f"{what} has {current!r}, which is not a finite number")
        elif isinstance(current, str):
            _check_text(current, None)


def check_strings(value: Any) -> None:
    """Raise when a string or key holds a lone surrogate (it cannot be encoded, so no
    tokenizer can count it and no file can name it)."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            _check_text(current, None)
        elif isinstance(current, dict):
            stack.extend(current.keys())
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


def load_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads`` with budgets; raises ``InputBoundsError`` or ``TOMLDecodeError``."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    digits = re.search(r"[0-9_]{" + str(MAX_INT_DIGITS * 2) + r",}", text)
    if digits is not None:
        raise InputBoundsError(
            f"has a number of more than {MAX_INT_DIGITS} digits",
            text.count("\n", 0, digits.start()) + 1,
        )
    try:
        data = tomllib.loads(text)
    except RecursionError as err:
        raise InputBoundsError(f"is nested more than {MAX_DEPTH} levels deep") from err
    except tomllib.TOMLDecodeError:
        raise
    except ValueError as err:  # an integer Python refuses to convert
        raise InputBoundsError(f"has a value that cannot be read ({err})") from err
    check_data_bounds(data, what="the TOML")
    result: dict[str, Any] = data
    return result


def _check_scalar(event: yaml.ScalarEvent) -> None:
    value = event.value
    _check_text(value, _line(event))
    plain = not event.style and event.implicit[0]  # libyaml says "", PyYAML None
    if plain and len(value) > MAX_INT_DIGITS and _PLAIN_INT.fullmatch(value):
        raise YamlBoundsError(
            f"has an integer of {len(value):,} digits; at most {MAX_INT_DIGITS}", _line(event)
        )


def _check_text(value: str, line: int | None) -> None:
    if "\x00" in value:
        error = YamlBoundsError if line is not None else InputBoundsError
        raise error("has a NUL character in a string; remove it", line)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        error = YamlBoundsError if line is not None else InputBoundsError
        raise error(
            f"has a lone surrogate (\\u{ord(value[err.start]):04x}) in a string; "
            "a string must be valid Unicode",
            line,
        ) from None


def _refuse_constant(name: str) -> Any:
    raise InputBoundsError(f"has {name}, which is not a finite number")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise InputBoundsError(f"has an integer of {len(text):,} digits; at most {MAX_INT_DIGITS}")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InputBoundsError(f"has {text[:40]}, which is not a finite number")
    return value


def _too_many_digits(value: int) -> bool:
    return value.bit_length() > MAX_INT_DIGITS * 3.33


def _offset_of_depth(text: str, target: int) -> int:
    depth = 0
    in_string = False
    escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth >= target:
                return index
        elif char in "]}":
            depth -= 1
    return 0


def _line(item: yaml.Event | yaml.Node) -> int | None:
    mark = item.start_mark
    return mark.line + 1 if mark is not None else None


def _reader_problem(err: yaml.reader.ReaderError) -> str:
    character = err.character
    code = ord(character) if isinstance(character, str) else character
    return f"has a character YAML does not allow (#x{code:04x}); remove it"


def _reader_line(text: str, err: yaml.reader.ReaderError) -> int:
    return text.count("\n", 0, max(0, err.position)) + 1
