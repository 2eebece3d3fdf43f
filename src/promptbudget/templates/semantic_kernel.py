"""Semantic Kernel prompts: ``skprompt.txt`` with its ``config.json``, and prompt YAML.

``skprompt.txt`` uses SK's own template language: ``{{$variable}}``, ``{{function}}``,
``{{plugin.function $arg}}``, ``{{plugin.function name=$arg other="text"}}`` and quoted
literals (``{{ "{{" }}`` prints ``{{``). A function is the application's code: its output is a
dynamic value, capped or sampled like a variable of the same name and otherwise unbounded.
Its ``config.json`` (``execution_settings`` or the legacy ``completion`` schema) gives the
model, the output limit and the inputs with their defaults.

Prompt YAML (``name``, ``template``, ``template_format``, ``input_variables``,
``execution_settings``) holds the template inline, in the ``semantic-kernel``, ``handlebars``
or ``liquid`` format. Either way, ``<message role="...">`` tags split the prompt into chat
messages, as SK's chat prompt parser does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from promptbudget.scanning import NextFinder

# ``$name``; Microsoft Teams AI's engine (which reads SK syntax in its skprompt.txt) also
# takes a state scope: ``$conversation.lists``, ``$temp.input``
_VARIABLE = re.compile(r"\$([A-Za-z0-9_]+(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\Z")
_FUNCTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[.-][A-Za-z_][A-Za-z0-9_]*)?\Z")
_NAMED_ARG = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.+)\Z", re.DOTALL)
# One opening tag, matched only within its own bounds (up to its first '>'); the content up
# to ``</message>`` is found with a linear scan (a lazy ``.*?`` is quadratic on unclosed tags).
_MESSAGE_TAG = re.compile(
    r"<message(?P<before>\s[^>]*?)?\s+role\s*=\s*[\"'](?P<role>[A-Za-z_]+)[\"']"
    r"(?P<after>[^>]*)>"
)
_MAX_TAG_CHARS = 2_000
_NAME_ATTRIBUTE = re.compile(r"""\bname\s*=\s*(?:"([^"]*)"|'([^']*)')""")

SK_CONFIG = "config.json"
SK_PROMPT = "skprompt.txt"


class SkTemplateError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class Variable:
    name: str
    line: int


@dataclass(frozen=True)
class Call:
    """A function block: its name, the variables its arguments read, where it is."""

    name: str
    reads: tuple[str, ...]
    line: int


Piece = str | Variable | Call


def parse_sk(body: str, first_line: int = 1) -> list[Piece]:
    """Text and blocks of an SK template. An unclosed ``{{`` is text, as in SK."""
    pieces: list[Piece] = []
    position = 0
    while True:
        start = body.find("{{", position)
        if start < 0:
            break
        end = _block_end(body, start + 2)
        if end < 0:
            break
        if start > position:
            pieces.append(body[position:start])
        line = first_line + body.count("\n", 0, start)
        pieces.append(_block(body[start + 2 : end], line))
        position = end + 2
    if position < len(body):
        pieces.append(body[position:])
    return _merge_text(pieces)


def _block_end(body: str, position: int) -> int:
    """Where the block that starts at ``position`` ends (its ``}}``), skipping quoted text."""
    quote = ""
    index = position
    while index < len(body):
        char = body[index]
        if quote:
            if char == "\\":
                index += 2
                continue
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif body.startswith("}}", index):
            return index
        index += 1
    return -1


def _words(content: str, line: int) -> list[str]:
    words: list[str] = []
    current = ""
    quote = ""
    index = 0
    while index < len(content):
        char = content[index]
        if quote:
            current += char
            if char == "\\" and index + 1 < len(content):
                current += content[index + 1]
                index += 2
                continue
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            current += char
        elif char.isspace():
            if current:
                words.append(current)
                current = ""
        else:
            current += char
        index += 1
    if quote:
        raise SkTemplateError(f"a quoted value in '{{{{{content}}}}}' is never closed", line)
    if current:
        words.append(current)
    return words


def _literal(word: str) -> str | None:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        inner = word[1:-1]
        return re.sub(r"\\(.)", r"\1", inner)
    return None


def _block(content: str, line: int) -> Piece:
    words = _words(content, line)
    if not words:
        return ""  # {{ }} renders nothing
    first = words[0]
    literal = _literal(first)
    if literal is not None:
        if len(words) > 1:
            raise SkTemplateError(
                f"'{{{{{content.strip()}}}}}': a quoted value stands alone in its block", line
            )
        return literal
    if first.startswith("$"):
        match = _VARIABLE.match(first)
        if match is None:
            raise SkTemplateError(
                f"'{first}' is not a valid variable name (letters, digits and _ after $, "
                "or scope.name)",
                line,
            )
        if len(words) > 1:
            raise SkTemplateError(
                f"'{{{{{content.strip()}}}}}': a variable stands alone in its block; to pass "
                "it to a function, write {{function $variable}}",
                line,
            )
        return Variable(match.group(1), line)
    if _FUNCTION.match(first) is None:
        raise SkTemplateError(
            f"'{first}' is not a variable ($name), a quoted value or a function name", line
        )
    reads: list[str] = []
    for word in words[1:]:
        named = _NAMED_ARG.match(word)
        value = named.group(2) if named else word
        if value.startswith("$"):
            match = _VARIABLE.match(value)
            if match is None:
                raise SkTemplateError(f"'{value}' is not a valid variable name", line)
            reads.append(match.group(1))
        elif _literal(value) is None:
            raise SkTemplateError(
                f"'{value}' in '{{{{{content.strip()}}}}}' is not a $variable or a quoted value",
                line,
            )
    return Call(first, tuple(dict.fromkeys(reads)), line)


def _merge_text(pieces: list[Piece]) -> list[Piece]:
    merged: list[Piece] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        elif piece != "":
            merged.append(piece)
    return merged


def reads(pieces: list[Piece]) -> Iterator[tuple[str, int, bool]]:
    """(name, line, is a function) of everything the template reads, in order."""
    for piece in pieces:
        if isinstance(piece, Variable):
            yield piece.name, piece.line, False
        elif isinstance(piece, Call):
            yield piece.name, piece.line, True
            for name in piece.reads:
                yield name, piece.line, False


def value_text(value: object) -> str:
    """A sample as SK prints it: text as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def split_messages(text: str) -> list[tuple[str, str, str | None]] | None:
    """``<message role="x">...</message>`` tags as (role, content, name); None when there
    are none (the whole prompt is then one user message). Linear in the text."""
    found: list[tuple[str, str, str | None]] = []
    tag_ends = NextFinder(text, ">")
    closers = NextFinder(text, "</message>")
    position = 0
    while (start := text.find("<message", position)) != -1:
        tag_end = tag_ends.find(start)
        if tag_end == -1:
            break
        match = None
        if tag_end - start <= _MAX_TAG_CHARS:
            match = _MESSAGE_TAG.fullmatch(text, start, tag_end + 1)
        if match is None:
            position = start + 1
            continue
        end = closers.find(tag_end + 1)
        if end == -1:
            break
        name = _NAME_ATTRIBUTE.search((match.group("before") or "") + match.group("after"))
        found.append(
            (
                match.group("role").lower(),
                text[tag_end + 1 : end],
                (name.group(1) or name.group(2) or None) if name else None,
            )
        )
        position = end + len("</message>")
    return found or None


# -- metadata ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkMeta:
    model: str | None
    max_output_tokens: int | None
    samples: dict[str, Any]
    declared: frozenset[str] | None


def _settings(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Execution settings, the default service first; the legacy ``completion`` block."""
    found: list[Mapping[str, Any]] = []
    settings = data.get("execution_settings")
    if isinstance(settings, dict):
        default = settings.get("default")
        if isinstance(default, dict):
            found.append(default)
        found.extend(v for k, v in settings.items() if k != "default" and isinstance(v, dict))
    elif isinstance(settings, list):
        found.extend(v for v in settings if isinstance(v, dict))
    completion = data.get("completion")
    if isinstance(completion, dict):
        found.append(completion)
    return found


def _whole(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def sk_meta(data: Mapping[str, Any]) -> SkMeta:
    """Model, output limit and inputs from a ``config.json`` or a prompt YAML."""
    model = None
    max_output = None
    for settings in _settings(data):
        if model is None and isinstance(settings.get("model_id"), str):
            model = settings["model_id"]
        if max_output is None:
            max_output = _whole(settings.get("max_tokens"))
    samples: dict[str, Any] = {}
    names: set[str] = set()
    entries: list[Any] = []
    if isinstance(data.get("input_variables"), list):
        entries = data["input_variables"]
    elif isinstance(data.get("input"), dict) and isinstance(data["input"].get("parameters"), list):
        entries = data["input"]["parameters"]
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        names.add(entry["name"])
        for key in ("default", "defaultValue"):
            value = entry.get(key)
            # "" is SK's way of saying "no default": the caller always passes it.
            if value is not None and value != "":
                samples[entry["name"]] = value
                break
    declared = frozenset(names) if entries else None
    return SkMeta(model, max_output, samples, declared)


def is_sk_prompt_yaml(data: object) -> bool:
    """A prompt YAML: a ``template`` string and SK's keys around it."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("template"), str)
        and "_type" not in data
        and any(
            key in data
            for key in ("template_format", "input_variables", "execution_settings", "name")
        )
    )


def engine_of(template_format: object) -> str | None:
    """Our engine for SK's ``template_format`` (None: not one SK knows)."""
    kind = str(template_format or "semantic-kernel").strip().lower()
    return {
        "semantic-kernel": "semantic-kernel",
        "handlebars": "handlebars",
        "liquid": "liquid",
    }.get(kind)
