"""LangChain prompts saved with ``PromptTemplate.save()`` (YAML or JSON): ``_type: prompt``,
``input_variables``, ``template`` and ``template_format`` (``f-string`` by default, ``jinja2``
or ``mustache``).

An f-string template is ``str.format`` with names only: ``{question}``, ``{{`` and ``}}`` for
literal braces. Attribute and index lookups (``{a.b}``, ``{a[0]}``) are refused, as LangChain
refuses them, so a template cannot reach into an object.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from promptbudget.templates.pyformat import unmatched_brace_line

_ENGINES = {"f-string": "fstring", "jinja2": "jinja2", "mustache": "mustache"}


def is_langchain_prompt(data: Mapping[str, Any]) -> bool:
    """``_type: prompt`` (what ``save()`` writes), or a bare ``template`` + ``input_variables``
    without Semantic Kernel's keys."""
    if data.get("_type") == "prompt":
        return isinstance(data.get("template"), str)
    return (
        isinstance(data.get("template"), str)
        and isinstance(data.get("input_variables"), list)
        and all(isinstance(v, str) for v in data["input_variables"])
        and "execution_settings" not in data
        and "template_format" in data
        and str(data["template_format"]).lower() in _ENGINES
    )


def langchain_engine(template_format: object) -> str | None:
    return _ENGINES.get(str(template_format or "f-string").strip().lower())


class FStringError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class Field:
    name: str
    line: int


def parse_fstring(body: str, first_line: int = 1) -> list[str | Field]:
    """Literal text and ``{name}`` fields; ``{{``/``}}`` are literal braces."""
    pieces: list[str | Field] = []
    line = first_line
    try:
        parsed = list(string.Formatter().parse(body))
    except ValueError as err:
        raise FStringError(
            f"f-string template error: {err}", unmatched_brace_line(body, first_line)
        ) from err
    for literal, name, spec, conversion in parsed:
        if literal:
            pieces.append(literal)
        line_here = line + literal.count("\n")
        if name is not None:
            if not name.isidentifier():
                raise FStringError(
                    f"'{{{name}}}' is not a variable name: LangChain f-strings take plain names "
                    "(no attributes, indexes or positional fields)",
                    line_here,
                )
            if spec or conversion:
                raise FStringError(
                    f"'{{{name}...}}': format specs and conversions (! and :) are not supported "
                    "in LangChain prompts",
                    line_here,
                )
            pieces.append(Field(name, line_here))
        line = line_here
    return pieces
