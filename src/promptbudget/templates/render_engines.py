"""Rendering Python ``str.format`` and Go ``text/template`` prompts over sample values.

A variable with a sample renders as the sample (looked into, never called); a capped one as
the slot marker ``marker(index, whole)`` gives (``render.py`` turns markers into slots); a
variable with neither renders as nothing and is reported unbounded by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from promptbudget.templates.deadline import check_deadline
from promptbudget.templates.gotemplate import (
    MISSING as GO_MISSING,
)
from promptbudget.templates.gotemplate import (
    Execution,
    GoTemplateError,
    SlotValue,
    parse_go,
    read_names,
)
from promptbudget.templates.pyformat import (
    MISSING,
    FormatField,
    FormatTemplateError,
    format_value,
    lookup,
    parse_format,
    spec_fields,
)
from promptbudget.templates.sandbox import MAX_RENDERED_CHARS


class Value(Protocol):
    """What ``render.VariableValue`` offers: a sample, or a cap."""

    @property
    def sample(self) -> Any: ...

    @property
    def is_cap(self) -> bool: ...


Marker = Callable[..., str]  # marker(index, whole=True) -> the slot's text


class EngineError(ValueError):
    """The template does not parse, or could not be rendered: PB001."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class EngineOutput:
    text: str
    slot_names: list[str]  # the variable of each slot, by slot index
    lines: dict[str, int]  # every variable and function read, with its first line
    functions: frozenset[str] = frozenset()
    warnings: list[tuple[str, int]] = field(default_factory=list)


class _Slots:
    def __init__(self, marker: Marker) -> None:
        self.marker = marker
        self.names: list[str] = []
        self.index: dict[str, int] = {}

    def of(self, name: str, *, whole: bool = True) -> str:
        if name not in self.index:
            self.index[name] = len(self.names)
            self.names.append(name)
        return self.marker(self.index[name], whole=whole)


def render_format(
    body: str,
    first_line: int,
    values: Mapping[str, Value],
    *,
    as_slots: bool,
    marker: Marker,
) -> EngineOutput:
    """A ``str.format`` template over ``values``."""
    try:
        pieces = parse_format(body, first_line)
    except FormatTemplateError as err:
        raise EngineError(err.message, err.line) from err
    lines: dict[str, int] = {}
    for piece in pieces:
        if isinstance(piece, FormatField):
            lines.setdefault(piece.root, piece.line)
            for name in _spec_names(piece):
                lines.setdefault(name, piece.line)
    slots = _Slots(marker)
    warnings: list[tuple[str, int]] = []
    out: list[str] = []
    size = [0]  # the output cap every engine has, checked before each piece is added

    def emit(text: str, line: int) -> None:
        check_deadline(line)
        size[0] += len(text)
        if size[0] > MAX_RENDERED_CHARS:
            raise EngineError(
                f"rendered output is larger than {MAX_RENDERED_CHARS:,} characters", line
            )
        out.append(text)

    for piece in pieces:
        if isinstance(piece, str):
            emit(piece, first_line)
            continue
        value = values.get(piece.root)
        if as_slots or (value is not None and value.is_cap):
            emit(slots.of(piece.root, whole=not piece.lookups), piece.line)
            continue
        if value is None:
            continue
        found = lookup(value.sample, piece.lookups)
        if found is MISSING:
            warnings.append(
                (f"'{piece.source}': the sample of '{piece.root}' has no such field", piece.line)
            )
            continue
        spec = _resolved_spec(piece, values)

        def warn(message: str, line: int = piece.line) -> None:
            warnings.append((message, line))

        emit(format_value(found, piece, spec, warn), piece.line)
    return EngineOutput("".join(out), slots.names, lines, warnings=warnings)


def _spec_names(piece: FormatField) -> list[str]:
    if "{" not in piece.spec:
        return []
    try:
        return [name.split(".")[0].split("[")[0] for name in spec_fields(piece.spec)]
    except ValueError:
        return []


def _resolved_spec(piece: FormatField, values: Mapping[str, Value]) -> str:
    """A nested spec (``{x:{width}}``) with its fields filled from samples."""
    if "{" not in piece.spec:
        return piece.spec
    try:
        inner = parse_format(piece.spec)
    except FormatTemplateError:
        return ""
    out = []
    for part in inner:
        if isinstance(part, str):
            out.append(part)
            continue
        value = values.get(part.root)
        if value is None or value.is_cap:
            return ""
        found = lookup(value.sample, part.lookups)
        out.append("" if found is MISSING else str(found))
    return "".join(out)


def render_go(
    body: str,
    first_line: int,
    values: Mapping[str, Value],
    *,
    as_slots: bool,
    marker: Marker,
) -> EngineOutput:
    """A Go ``text/template`` over ``values``: the data is a map of the variables."""
    try:
        template = parse_go(body, first_line)
    except GoTemplateError as err:
        raise EngineError(f"Go template error: {err.message}", err.line) from err
    names, functions = read_names(template)
    slots = _Slots(marker)

    def value_of(name: str) -> Any:
        value = values.get(name)
        if as_slots or (value is not None and value.is_cap):
            return SlotValue(slots.of(name), slots.of(name, whole=False))
        return GO_MISSING if value is None else value.sample

    data = {name: value_of(name) for name in names}
    outputs = {name: value_of(name) for name in functions}
    warnings: list[tuple[str, int]] = []
    execution = Execution(
        template,
        {name: output for name, output in outputs.items() if output is not GO_MISSING},
        lambda message, line: warnings.append((message, line)),
    )
    try:
        text = execution.run({name: item for name, item in data.items() if item is not GO_MISSING})
    except GoTemplateError as err:
        raise EngineError(f"Go template error: {err.message}", err.line) from err
    except RecursionError as err:
        raise EngineError("Go template error: rendering recursed too deeply", first_line) from err
    return EngineOutput(
        text,
        slots.names,
        {**functions, **names},
        functions=frozenset(functions),
        warnings=warnings,
    )
