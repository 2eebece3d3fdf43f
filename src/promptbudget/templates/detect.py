"""Which template engine a generic prompt file (``.txt``, ``.md``, a file named on the command
line) is written for, decided by its content.

Each engine has *signals*, syntax only it uses; the engines whose signals appear are tried in
a fixed order and the first whose parser accepts the whole file is the file's engine:

1. ``semantic-kernel``: ``{{$var}}``, ``{{plugin.fn $arg}}``
2. ``go-template``: ``{{.Field}}``, ``{{range .X}}``, ``{{if .X}}``, ``{{end}}``, ``{{/* */}}``
3. ``jinja2`` (Jinja2, Nunjucks): ``{% tag %}``, ``{# comment #}``
4. ``mustache``, then ``handlebars``: ``{{#section}}``, ``{{/section}}``, ``{{^x}}``,
   ``{{{x}}}``, ``{{> partial}}``, ``{{! comment}}``
5. ``format`` (Python ``str.format``): ``{name}``, ``{obj.attr}``, ``{x[0]}``, ``{x!r:>10}``
6. ``jinja2``, then ``mustache``: only ``{{ name }}`` expressions (both read them alike);
   then ``format`` when ``{{``/``}}`` are str.format's escaped braces and nothing else
7. ``text``: nothing above.

When signals appear but no engine accepts the file, it is plain text with a note (PB302);
when the signals name one engine only and that engine rejects the file, the file is broken
(PB001, with that engine's error). Per-glob ``engines:`` settings override all of this.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from jinja2 import Environment, TemplateSyntaxError

from promptbudget.templates.depth import nesting_problem

ENGINES = ("text", "jinja2", "semantic-kernel", "mustache", "handlebars", "format", "go-template")
_ALIASES = {
    "plain": "text",
    "none": "text",
    "nunjucks": "jinja2",
    "jinja": "jinja2",
    "liquid": "jinja2",
    "sk": "semantic-kernel",
    "str.format": "format",
    "python-format": "format",
    "go": "go-template",
    "gotemplate": "go-template",
    "text/template": "go-template",
}

# A template read by content has at most this many ``{`` (real prompts hold tens to hundreds;
# four per tag of ``parse.MAX_TEMPLATE_TAGS``)
MAX_BRACES = 20_000

_SK = re.compile(r"\{\{\s*\$[A-Za-z_]|\{\{\s*[A-Za-z_][\w-]*\.[A-Za-z_][\w-]*\s+[\$\"']")
_GO = re.compile(
    r"\{\{-?\s*(?:\.[A-Za-z_]|\.\s*-?\}\}|(?:range|with|if|template|block|define)\s+[.$\"(]"
    r"|end\s*-?\}\}|/\*|\$[A-Za-z_]\w*\s*:=)"
)
_JINJA_TAG = re.compile(r"\{%-?\s*[A-Za-z_]")
_HANDLEBARS = re.compile(r"\{\{~?\s*[#/^>!]|\{\{\{")
_EXPRESSION = re.compile(r"\{\{-?\s*([^{}]*?)\s*-?\}\}")
_NAME = re.compile(r"^[A-Za-z_][\w.-]*$")


def engine_name(value: str) -> str | None:
    """The engine a setting names (``nunjucks`` is ``jinja2``...), or None if unknown."""
    name = value.strip().lower()
    name = _ALIASES.get(name, name)
    return name if name in ENGINES else None


@dataclass(frozen=True)
class Detection:
    engine: str
    # PB302: it looks like a template but no engine accepts it (text), and why
    note: str | None = None
    # PB001: the one engine its syntax names rejects it: (message, file line)
    problem: tuple[str, int] | None = None


def detect_engine(body: str, first_line: int = 1) -> Detection:
    """The engine of ``body`` (see the module docstring for the order)."""
    if "{" not in body:
        return Detection("text")
    braces = body.count("{")
    if braces > MAX_BRACES:  # parsers take seconds on this many fields: not a prompt template
        return Detection(
            "text",
            note=f"has {braces:,} braces, more than the {MAX_BRACES:,} a template read by "
            "content may have; counted as plain text (name its engine with engines: in "
            "budgets.yaml if it is a template)",
        )
    strong: list[str] = []
    if _SK.search(body):
        strong.append("semantic-kernel")
    if _GO.search(body):
        strong.append("go-template")
    if _JINJA_TAG.search(body) or _has_jinja_comment(body):
        strong.append("jinja2")
    if _HANDLEBARS.search(body):
        strong.extend(("mustache", "handlebars"))
    if _looks_like_format(body):
        strong.append("format")
    weak: list[str] = []
    expressions = [match.group(1) for match in _EXPRESSION.finditer(body)]
    if expressions:
        weak.append("jinja2")
        if all(_NAME.match(expression) for expression in expressions):
            weak.append("mustache")
    if _escapes_only(body):  # {{ and }} as str.format writes literal braces
        weak.append("format")
    errors: dict[str, tuple[str, int]] = {}
    for engine in dict.fromkeys(strong):
        error = _check(engine, body, first_line)
        if error is None:
            return Detection(engine)
        errors.setdefault(engine, error)
    if len({_family(engine) for engine in strong}) == 1:
        message, line = errors[strong[0]]  # its syntax names one engine, which rejects it
        return Detection(strong[0], problem=(message, line))
    for engine in dict.fromkeys(weak):
        error = _check(engine, body, first_line)
        if error is None:
            return Detection(engine)
        errors.setdefault(engine, error)
    if not errors:
        return Detection("text")
    tried = "; ".join(
        f"{_label(engine)}: {message} (line {line})" for engine, (message, line) in errors.items()
    )
    return Detection(
        "text",
        note=f"looks like a template, but no engine accepts it, so it is counted as plain "
        f"text ({tried}); name its engine with engines: in budgets.yaml if it has one",
    )


def _check(engine: str, body: str, first_line: int) -> tuple[str, int] | None:
    """What ``engine``'s parser says about ``body`` (None: it accepts it). Jinja2 and
    Handlebars bodies are measured first (depth.py), as before rendering: a body nested past
    the limits, or with a number literal Python will not convert, is not handed to the parser."""
    if engine in _PRESCANNED:
        found = nesting_problem(body, _PRESCANNED[engine])
        if found is not None:
            return f"{_label(engine)}: {found[0]}", first_line + found[1] - 1
    try:
        return ACCEPTS[engine](body, first_line)
    except RecursionError:  # a parser recursing on nesting no real prompt has
        return f"{_label(engine)}: nested too deeply to parse", first_line


def _has_jinja_comment(body: str) -> bool:
    """``{# ... #}`` (found in linear time: a lazy regex would be quadratic on ``{#{#{#``)."""
    start = body.find("{#")
    return start >= 0 and body.find("#}", start + 2) >= 0


def _family(engine: str) -> str:
    return "handlebars" if engine == "mustache" else engine


_LABELS = {
    "jinja2": "Jinja2",
    "semantic-kernel": "Semantic Kernel",
    "mustache": "Mustache",
    "handlebars": "Handlebars",
    "format": "str.format",
    "go-template": "Go text/template",
    "text": "plain text",
}


def _label(engine: str) -> str:
    return _LABELS[engine]


def _escapes_only(body: str) -> bool:
    from promptbudget.templates.pyformat import accepts_escapes_only

    return accepts_escapes_only(body)


def _looks_like_format(body: str) -> bool:
    from promptbudget.templates.pyformat import looks_like_format

    return looks_like_format(body)


# -- what each engine's parser says (None: accepted) -----------------------------------------


def _jinja_error(body: str, first_line: int) -> tuple[str, int] | None:
    try:
        Environment().parse(body)
    except TemplateSyntaxError as err:
        return f"Jinja2 syntax error: {err.message}", first_line + (err.lineno or 1) - 1
    return None


def _sk_error(body: str, first_line: int) -> tuple[str, int] | None:
    from promptbudget.templates.semantic_kernel import SkTemplateError, parse_sk

    try:
        parse_sk(body, first_line)
    except SkTemplateError as err:
        return f"Semantic Kernel template error: {err.message}", err.line
    return None


def _handlebars_error(dialect_name: str) -> Callable[[str, int], tuple[str, int] | None]:
    def check(body: str, first_line: int) -> tuple[str, int] | None:
        from promptbudget.templates.handlebars import (
            BUILTIN_HELPERS,
            Dialect,
            HandlebarsError,
            parse_handlebars,
        )

        dialect = Dialect.MUSTACHE if dialect_name == "mustache" else Dialect.HANDLEBARS
        try:
            parse_handlebars(body, dialect=dialect, helpers=BUILTIN_HELPERS, first_line=first_line)
        except HandlebarsError as err:
            return f"{_label(dialect_name)} template error: {err.message}", err.line
        return None

    return check


def _format_error(body: str, first_line: int) -> tuple[str, int] | None:
    from promptbudget.templates.pyformat import FormatTemplateError, parse_format

    try:
        parse_format(body, first_line)
    except FormatTemplateError as err:
        return err.message, err.line
    return None


def _go_error(body: str, first_line: int) -> tuple[str, int] | None:
    from promptbudget.templates.gotemplate import GoTemplateError, parse_go

    try:
        parse_go(body, first_line)
    except GoTemplateError as err:
        return f"Go template error: {err.message}", err.line
    return None


def _text_error(body: str, first_line: int) -> tuple[str, int] | None:
    return None


_PRESCANNED = {"jinja2": "jinja2", "mustache": "handlebars", "handlebars": "handlebars"}

ACCEPTS: dict[str, Callable[[str, int], tuple[str, int] | None]] = {
    "text": _text_error,
    "jinja2": _jinja_error,
    "semantic-kernel": _sk_error,
    "mustache": _handlebars_error("mustache"),
    "handlebars": _handlebars_error("handlebars"),
    "format": _format_error,
    "go-template": _go_error,
}
