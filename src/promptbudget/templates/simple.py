"""What the renderers other than Jinja2 need: Semantic Kernel ``{{$var}}`` and LangChain
f-string rendering, Handlebars contexts and Dotprompt partials, hosted tools, Liquid written
as Jinja2."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from promptbudget.confine import ConfinementError, read_confined
from promptbudget.templates.meta import ParsedTemplate
from promptbudget.templates.sandbox import (
    MAX_RENDERED_CHARS,
)

if TYPE_CHECKING:
    from promptbudget.templates.handlebars import VariableReads
    from promptbudget.tools import Tool
from promptbudget.templates.rendered import (
    MISSING,
    RenderedPrompt,
    SlotValue,
    VariableValue,
    bind_value,
    messages_of,
    raw_prompt,
)
from promptbudget.templates.source import MAX_TEMPLATE_BYTES, TemplateFormat, decode_prompt_bytes


def handlebars_variables(parsed: ParsedTemplate, reads: VariableReads) -> dict[str, int]:
    """Each variable the template reads, with its first line. ``{{json this}}`` prints the
    whole input: every declared input and every sample in the template is read there."""
    lines = dict(reads.names)
    if reads.whole_input_line is not None:
        for name in set(parsed.meta.declared_inputs or ()) | set(parsed.meta.samples):
            lines.setdefault(name, reads.whole_input_line)
    return lines


def handlebars_context(
    parsed: ParsedTemplate,
    lines: Mapping[str, int],
    functions: Mapping[str, int],
    values: Mapping[str, VariableValue],
    slots: list[VariableValue],
    *,
    as_slots: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The data to render with, and the output of the application's helpers and partials:
    samples as they are, caps as slots (appended to ``slots``), inputs in the order the
    schema declares them (``{{json this}}`` prints them in order). Functions are not inputs:
    ``{{json this}}`` does not print them."""
    declared_at = parsed.meta.declared_lines
    first = {**functions, **lines}
    rendered: dict[str, Any] = {}
    for name in sorted(first, key=lambda n: (declared_at.get(n, 1 << 30), first[n], n)):
        bound = bind_value(name, values, slots, as_slots=as_slots)
        if bound is not MISSING:
            rendered[name] = bound
    context = {name: value for name, value in rendered.items() if name in lines}
    outputs = {name: value for name, value in rendered.items() if name in functions}
    return context, outputs


HANDLEBARS_ENGINES = frozenset({"handlebars", "mustache"})


# Dotprompt's roles are Gemini's; "model" is the assistant.
DOTPROMPT_ROLES = {"model": "assistant"}


def dotprompt_partial_file(name: str) -> PurePosixPath | None:
    """The relative file ``{{> name}}`` names (``_name.prompt``), or None if it cannot be one."""
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name) or not name:
        return None
    relative = PurePosixPath(name)
    return relative.parent / f"_{relative.name}.prompt"


def read_dotprompt_partial(name: str, search_dirs: tuple[Path, ...], root: Path) -> str | None:
    """The source of ``{{> name}}``, or None when the project has no such file (the
    application may define the partial in code). Raises ``LookupError`` for a name that
    cannot be a file of the project."""
    relative = dotprompt_partial_file(name)
    if relative is None:
        raise LookupError("a partial name is a relative path like 'header' or 'common/header'")
    for directory in search_dirs:
        base = directory.resolve()
        if not base.is_relative_to(root):
            continue  # the project's prompts directory, when the template is elsewhere
        candidate = (base / relative).resolve()
        if not candidate.is_relative_to(root):
            raise LookupError(f"{relative} resolves outside the project root")
        if candidate.is_file():
            try:
                data = read_confined(candidate, root=root, limit=MAX_TEMPLATE_BYTES)
            except ConfinementError as err:
                raise LookupError(f"{relative} {err.reason}") from err
            return decode_prompt_bytes(data).text
    return None


def hosted_tool_notes(parsed: ParsedTemplate, tools: list[Tool]) -> list[tuple[str, int]]:
    """PB003 for tools the provider runs: their cost is real and not counted."""
    lines = parsed.text.split("\n", parsed.body_line)[: parsed.body_line]
    line = next((n for n, text in enumerate(lines, 1) if text.startswith("tools:")), 1)
    return [
        (
            f"tool '{tool.name}' is a {tool.hosted} tool the provider runs; what it adds to a "
            "request (its instructions, and the results it brings back) is not published, "
            "so it is not counted",
            line,
        )
        for tool in tools
    ]


_LIQUID_TAGS = (
    (re.compile(r"\{%(-?)\s*assign\s+"), r"{%\1 set "),
    (re.compile(r"\{%(-?)\s*elsif\b"), r"{%\1 elif"),
    (re.compile(r"\{%(-?)\s*unless\s+"), r"{%\1 if not "),
    (re.compile(r"\{%(-?)\s*endunless\s*(-?)%\}"), r"{%\1 endif \2%}"),
    (re.compile(r"\{%-?\s*comment\s*-?%\}"), "{#"),
    (re.compile(r"\{%-?\s*endcomment\s*-?%\}"), "#}"),
)


def liquid_to_jinja(body: str) -> str:
    """Liquid's tags that differ from Jinja2 (``assign``, ``elsif``, ``unless``, ``comment``)
    written the Jinja2 way; lines stay where they are. Liquid filters Jinja2 lacks are applied
    as the identity (see ``BoundedEnvironment._parse``)."""
    for pattern, replacement in _LIQUID_TAGS:
        body = pattern.sub(replacement, body)
    return body


def render_simple(
    parsed: ParsedTemplate, values: Mapping[str, VariableValue], as_slots: bool
) -> RenderedPrompt:
    """Semantic Kernel's template language and LangChain f-strings: no logic, only values
    (and SK functions, which are values the application computes)."""
    from promptbudget.templates.langchain import Field, FStringError, parse_fstring
    from promptbudget.templates.semantic_kernel import (
        Call,
        SkTemplateError,
        Variable,
        parse_sk,
        value_text,
    )

    pieces: list[Any]
    try:
        if parsed.meta.engine == "fstring":
            pieces = parse_fstring(parsed.body, parsed.body_line)
        else:
            pieces = parse_sk(parsed.body, parsed.body_line)
    except (SkTemplateError, FStringError) as err:
        engine = "Semantic Kernel" if parsed.meta.engine != "fstring" else "LangChain"
        return raw_prompt(parsed, f"{engine} template error: {err.message}", err.line)
    if parsed.meta.engine != "fstring":
        pieces = _sk_names(pieces, parsed, values)
    lines: dict[str, int] = {}
    functions: set[str] = set()
    for piece in pieces:
        if isinstance(piece, Variable | Field):
            lines.setdefault(piece.name, piece.line)
        elif isinstance(piece, Call):
            lines.setdefault(piece.name, piece.line)
            functions.add(piece.name)
            for name in piece.reads:
                lines.setdefault(name, piece.line)
    slots: list[VariableValue] = []
    indexes: dict[str, int] = {}
    texts: dict[str, str] = {}
    out: list[str] = []
    size = 0  # the same output cap as a Jinja2 render, checked before each piece is added
    for piece in pieces:
        if isinstance(piece, str):
            text = piece
        else:
            name = piece.name
            value = values.get(name)
            if as_slots:
                value = VariableValue(name, "structure", max_tokens=0)
            if value is None:
                continue
            if value.is_cap:
                if name not in indexes:
                    indexes[name] = len(slots)
                    slots.append(value)
                text = str(SlotValue(indexes[name]))
            else:
                if name not in texts:
                    texts[name] = value_text(value.sample)
                text = texts[name]
        size += len(text)
        if size > MAX_RENDERED_CHARS:
            line = piece.line if not isinstance(piece, str) else parsed.body_line
            return raw_prompt(
                parsed,
                f"unsafe template: rendered output is larger than {MAX_RENDERED_CHARS:,} "
                "characters",
                line,
            )
        out.append(text)
    output = "".join(out)
    used = tuple(sorted(lines))
    split_roles = parsed.format is TemplateFormat.SEMANTIC_KERNEL
    return RenderedPrompt(
        messages=messages_of(parsed, output, slots, split_roles=split_roles),
        variables=used,
        values={name: values[name] for name in used if name in values},
        unbounded=tuple(name for name in used if name not in values),
        variable_lines=lines,
        functions=frozenset(functions),
    )


def _sk_names(
    pieces: list[Any], parsed: ParsedTemplate, values: Mapping[str, VariableValue]
) -> list[Any]:
    """Semantic Kernel's arguments ignore case (``{{$Input}}`` reads ``input``): each name in
    the template takes the spelling its declaration, sample or cap gives it."""
    from promptbudget.templates.semantic_kernel import Call, Variable

    spelled: dict[str, str] = {}
    for name in (*values, *sorted(parsed.meta.declared_inputs or ())):
        spelled[name.lower()] = name  # the declaration wins over a value's key

    def canon(name: str) -> str:
        return spelled.get(name.lower(), name)

    renamed: list[Any] = []
    for piece in pieces:
        if isinstance(piece, Variable):
            piece = Variable(canon(piece.name), piece.line)
        elif isinstance(piece, Call):
            piece = Call(piece.name, tuple(canon(name) for name in piece.reads), piece.line)
        renamed.append(piece)
    return renamed
