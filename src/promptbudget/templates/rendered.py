"""What a render produces: chat messages made of text and slots (where a capped variable's
value stands), with the variables' values and lines; and the splitting of rendered text into
messages by role markers, Semantic Kernel tags or a JSON chat."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from promptbudget.templates.meta import ParsedTemplate

if TYPE_CHECKING:
    pass
from promptbudget.templates.source import TemplateFormat

# A capped value renders as a *slot marker*: U+E000, a tag random to this process (digits, so
# filters like ``upper`` keep it), the slot's index, then U+E001 (the whole value) or U+E002
# (a part of a structured value: an item, a field). A prompt cannot contain the tag, so its
# own private-use characters are ordinary text, counted as written.
_SLOT_TAG = "\ue000" + str(10**15 + secrets.randbelow(9 * 10**15)) + ":"


_SLOT_WHOLE = "\ue001"


_SLOT_PART = "\ue002"


_SLOT_PATTERN = re.compile(re.escape(_SLOT_TAG) + "(\\d+)([\ue001\ue002])")


def slot_marker(index: int, *, whole: bool = True) -> str:
    """The text a capped value renders as, in every engine."""
    return f"{_SLOT_TAG}{index}{_SLOT_WHOLE if whole else _SLOT_PART}"


ROLES = ("system", "user", "assistant", "developer", "function", "tool", "tools")


# No two adjacent \s* may compete for the same spaces: a long run of blanks (a line of
# variables that render empty) would make the match quadratic.
_ROLE_LINE = re.compile(r"(?i)^\s*(?:#\s*)?(" + "|".join(ROLES) + r")\s*(?:(\[[^\]]*\])\s*)?:\s*$")


@dataclass(frozen=True)
class VariableValue:
    """Where a variable's value comes from: a sample to render, or a size in tokens.

    A sized value renders as a slot of ``max_tokens`` (the size limits are checked at);
    ``size`` is what a typical request holds (fixed or a distribution, for costs) and
    ``hard_cap`` the cap declared in the manifest, if any.
    """

    name: str
    origin: str  # e.g. "front matter sample", "manifest step variables"
    sample: Any = None
    max_tokens: int | None = None
    size: Any = None  # int | Distribution; None: max_tokens
    hard_cap: int | None = None

    @property
    def is_cap(self) -> bool:
        return self.max_tokens is not None


@dataclass(frozen=True)
class Slot:
    """A capped variable rendered in a message: ``whole`` once per ``{{ var }}``, or a part of
    an iterated/structured value (all parts of one variable share one cap)."""

    variable: str
    max_tokens: int
    whole: bool


Part = str | Slot


@dataclass(frozen=True)
class Message:
    role: str
    parts: tuple[Part, ...]
    # The participant's name (Prompty ``user[name="bob"]:``, ``"name"`` in a JSON chat, SK's
    # ``<message role="user" name="bob">``): OpenAI counts it (1 + its tokens)
    name: str | None = None

    @property
    def text(self) -> str:
        """The static text (samples included, slots left out)."""
        return "".join(p for p in self.parts if isinstance(p, str))


@dataclass(frozen=True)
class RenderedPrompt:
    messages: tuple[Message, ...]
    variables: tuple[str, ...]  # every variable the template reads, sorted
    values: Mapping[str, VariableValue] = field(default_factory=dict)
    unbounded: tuple[str, ...] = ()  # read, but no sample and no cap
    variable_lines: Mapping[str, int] = field(default_factory=dict)  # first use, file line
    # Of ``variables``: the ones that are functions the application provides (a Dotprompt
    # helper, a Semantic Kernel plugin function), not inputs. Capped like variables.
    functions: frozenset[str] = frozenset()
    # (message, file line): it renders, but probably not as meant (PB003)
    warnings: tuple[tuple[str, int], ...] = ()
    problem: str | None = None  # PB001: could not be rendered; messages hold the raw text
    problem_line: int | None = None
    has_exact_text: bool = True  # False when the file's bytes were not valid UTF-8

    @property
    def is_raw(self) -> bool:
        return self.problem is not None

    @property
    def is_exact(self) -> bool:
        """True when the messages are exactly what the application would send."""
        return self.problem is None and self.has_exact_text


class SlotPart:
    """A part of a capped structured value (a list item, a field of it)."""

    __slots__ = ("_index",)

    def __init__(self, index: int) -> None:
        self._index = index

    def __str__(self) -> str:
        return slot_marker(self._index, whole=False)

    __html__ = __str__

    def __iter__(self) -> Iterator[SlotPart]:
        yield SlotPart(self._index)

    def __getattr__(self, name: str) -> SlotPart:
        if name.startswith("_"):
            raise AttributeError(name)
        return SlotPart(self._index)

    def __getitem__(self, key: object) -> SlotPart:
        return SlotPart(self._index)

    def __call__(self, *args: object, **kwargs: object) -> SlotPart:
        return SlotPart(self._index)

    def __len__(self) -> int:
        return 1


class SlotValue(str):
    """A capped variable: renders as its slot marker; iterates/indexes into parts."""

    _index: int

    def __new__(cls, index: int) -> SlotValue:
        value = super().__new__(cls, slot_marker(index))
        value._index = index
        return value

    def __iter__(self) -> Iterator[SlotPart]:  # type: ignore[override]
        yield SlotPart(self._index)

    def __getitem__(self, key: object) -> SlotPart:  # type: ignore[override]
        return SlotPart(self._index)

    def __getattr__(self, name: str) -> SlotPart:
        if name.startswith("_"):
            raise AttributeError(name)
        return SlotPart(self._index)


def remap_lines(rendered: RenderedPrompt, parsed: ParsedTemplate) -> RenderedPrompt:
    """Body lines to file lines, for a template whose lines are not consecutive in its file."""

    def line(number: int | None) -> int | None:
        if number is None:
            return None
        index = number - parsed.body_line
        if 0 <= index < len(parsed.line_map):
            return parsed.line_map[index]
        return number

    return replace(
        rendered,
        variable_lines={name: line(n) or n for name, n in rendered.variable_lines.items()},
        problem_line=line(rendered.problem_line),
        warnings=tuple((message, line(n) or n) for message, n in rendered.warnings),
    )


def messages_of(
    parsed: ParsedTemplate, output: str, slots: list[VariableValue], *, split_roles: bool
) -> tuple[Message, ...]:
    """Chat messages of a rendered template: Semantic Kernel's ``<message role>`` tags, or
    role marker lines."""
    if parsed.format is TemplateFormat.SEMANTIC_KERNEL:
        from promptbudget.templates.semantic_kernel import split_messages

        tagged = split_messages(output)
        if tagged is not None:
            return tuple(
                Message(role, split_parts(content, slots), name) for role, content, name in tagged
            )
        return (Message("user", split_parts(output, slots)),) if output else ()
    if parsed.path.suffix.lower() == ".json":
        chat = _chat_json(output, slots)
        if chat is not None:
            return chat
        return (Message("user", split_parts(output, slots)),) if output else ()
    return _to_messages(output, slots, split_roles=split_roles)


def _chat_json(output: str, slots: list[VariableValue]) -> tuple[Message, ...] | None:
    """A rendered JSON list of ``{"role", "content"}`` (OpenAI's chat format, as promptfoo
    reads a ``.json`` prompt) as messages; None when it is something else."""
    import json

    try:
        data = json.loads(output)
    except ValueError:
        return None
    if not isinstance(data, list) or not data:
        return None
    messages = []
    for item in data:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("role"), str)
            and isinstance(item.get("content"), str)
        ):
            return None
        name = item.get("name")
        messages.append(
            Message(
                item["role"],
                split_parts(item["content"], slots),
                name if isinstance(name, str) and name else None,
            )
        )
    return tuple(messages)


def raw_prompt(parsed: ParsedTemplate, problem: str, line: int | None) -> RenderedPrompt:
    messages = (Message("user", (parsed.text,)),) if parsed.text else ()
    return RenderedPrompt(messages=messages, variables=(), problem=problem, problem_line=line)


def _to_messages(
    output: str, slots: list[VariableValue], *, split_roles: bool
) -> tuple[Message, ...]:
    if not split_roles:
        return (Message("user", split_parts(output, slots)),) if output else ()
    chunks: list[tuple[str, str | None, list[str]]] = []
    role: str | None = None
    name: str | None = None
    lines: list[str] = []
    for line in output.split("\n"):
        match = _ROLE_LINE.match(line)
        if match:
            chunks.append((role or "", name, lines))
            role = match.group(1).lower()
            name = _marker_name(match.group(2))
            lines = []
        else:
            lines.append(line)
    chunks.append((role or "", name, lines))
    if all(not r for r, _, _ in chunks):  # no role markers at all: one message, text untouched
        return (Message("user", split_parts(output, slots)),) if output else ()
    messages = []
    for chunk_role, chunk_name, chunk_lines in chunks:
        content = "\n".join(chunk_lines).strip()
        if not chunk_role:
            if not content:
                continue
            chunk_role = "system"  # text before the first marker (Prompty's rule)
        messages.append(Message(chunk_role, split_parts(content, slots), chunk_name))
    return tuple(messages)


_MARKER_NAME = re.compile(r"""\bname\s*=\s*(?:"([^"]*)"|'([^']*)'|([^,\]\s"']+))""")


def _marker_name(arguments: str | None) -> str | None:
    """``name`` in a role marker's arguments (Prompty: ``user[name="bob", x=1]:``)."""
    if not arguments:
        return None
    match = _MARKER_NAME.search(arguments)
    if match is None:
        return None
    return next(group for group in match.groups() if group is not None) or None


def split_parts(text: str, slots: list[VariableValue]) -> tuple[Part, ...]:
    parts: list[Part] = []
    position = 0
    for match in _SLOT_PATTERN.finditer(text):
        if match.start() > position:
            parts.append(text[position : match.start()])
        index = int(match.group(1))
        kind: Literal["whole", "part"] = "whole" if match.group(2) == _SLOT_WHOLE else "part"
        if index < len(slots):
            value = slots[index]
            parts.append(Slot(value.name, value.max_tokens or 0, whole=kind == "whole"))
        position = match.end()
    if position < len(text):
        parts.append(text[position:])
    return tuple(parts)


MISSING = object()  # ``bind_value``: the variable has no value at all


def bind_value(
    name: str, values: Mapping[str, VariableValue], slots: list[VariableValue], *, as_slots: bool
) -> object:
    """What ``name`` renders as: its sample, or (a capped value, or any value with
    ``as_slots``) a slot marker whose value is appended to ``slots``; ``MISSING`` if none."""
    value = VariableValue(name, "structure", max_tokens=0) if as_slots else values.get(name)
    if value is None:
        return MISSING
    if value.is_cap:
        slots.append(value)
        return SlotValue(len(slots) - 1)
    return value.sample
