"""Render a parsed template into chat messages, with every variable accounted for.

A variable gets its value from a sample (rendered as real text and counted exactly) or from a
cap (rendered as a *slot*: a placeholder that the counter replaces by the cap's tokens). A
variable with neither renders as nothing and is reported as unbounded. Role marker lines
(``system:``, ``# user:``) split the output into messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from jinja2 import ChainableUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError, TemplateNotFound

from promptbudget.templates.parse import ParsedTemplate
from promptbudget.templates.sandbox import (
    RENDER_TIMEOUT_SECONDS,
    BoundedEnvironment,
    ProjectLoader,
    RenderBudget,
    RenderTimeoutError,
    Watchdog,
    render_bounded,
)
from promptbudget.templates.source import TemplateFormat

# Private-use characters mark slots in rendered text: \uE000 <index> \uE001 is a whole value,
# \uE000 <index> \uE002 is a part of a structured value (an item, a field).
_SLOT_OPEN = "\ue000"
_SLOT_WHOLE = "\ue001"
_SLOT_PART = "\ue002"
_SLOT_PATTERN = re.compile("\ue000(\\d+)([\ue001\ue002])")
_ANY_SLOT_CHAR = re.compile("[\ue000\ue001\ue002]")

ROLES = ("system", "user", "assistant", "developer", "function", "tool", "tools")
_ROLE_LINE = re.compile(r"(?i)^\s*#?\s*(" + "|".join(ROLES) + r")\s*(\[[^\]]*\])?\s*:\s*$")


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


class _Unbounded(ChainableUndefined):
    """A variable with no value: renders as nothing, iterates as empty, chains attributes.

    Sandbox violations arrive as undefined objects too; those raise on any use.
    """

    __slots__ = ()

    def _guard(self) -> None:
        exc = self._undefined_exception
        if isinstance(exc, type) and issubclass(exc, SecurityError):
            self._fail_with_undefined_error()

    def __str__(self) -> str:
        self._guard()
        return ""

    def __iter__(self) -> Iterator[Any]:
        self._guard()
        return iter(())

    def __bool__(self) -> bool:
        self._guard()
        return False

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        self._guard()
        return self

    def __getitem__(self, name: object) -> Any:
        self._guard()
        return self

    def __call__(self, *args: object, **kwargs: object) -> Any:
        # An unknown function (a custom global the application registers) is a dynamic
        # slot too: it renders as nothing and is reported as unbounded.
        self._guard()
        return self


class _SlotPart:
    """A part of a capped structured value (a list item, a field of it)."""

    __slots__ = ("_index",)

    def __init__(self, index: int) -> None:
        self._index = index

    def __str__(self) -> str:
        return f"{_SLOT_OPEN}{self._index}{_SLOT_PART}"

    __html__ = __str__

    def __iter__(self) -> Iterator[_SlotPart]:
        yield _SlotPart(self._index)

    def __getattr__(self, name: str) -> _SlotPart:
        if name.startswith("_"):
            raise AttributeError(name)
        return _SlotPart(self._index)

    def __getitem__(self, key: object) -> _SlotPart:
        return _SlotPart(self._index)

    def __call__(self, *args: object, **kwargs: object) -> _SlotPart:
        return _SlotPart(self._index)

    def __len__(self) -> int:
        return 1


class _SlotValue(str):
    """A capped variable: renders as its slot marker; iterates/indexes into parts."""

    _index: int

    def __new__(cls, index: int) -> _SlotValue:
        value = super().__new__(cls, f"{_SLOT_OPEN}{index}{_SLOT_WHOLE}")
        value._index = index
        return value

    def __iter__(self) -> Iterator[_SlotPart]:  # type: ignore[override]
        yield _SlotPart(self._index)

    def __getitem__(self, key: object) -> _SlotPart:  # type: ignore[override]
        return _SlotPart(self._index)

    def __getattr__(self, name: str) -> _SlotPart:
        if name.startswith("_"):
            raise AttributeError(name)
        return _SlotPart(self._index)


class TemplateRenderer:
    """Renders templates for one run. Environments are built once per include root."""

    def __init__(
        self,
        root: Path,
        search_dirs: tuple[Path, ...] = (),
        *,
        timeout_seconds: float = RENDER_TIMEOUT_SECONDS,
    ) -> None:
        self.root = root
        self.search_dirs = search_dirs or (root,)
        self.timeout_seconds = timeout_seconds
        self.budget = RenderBudget()
        self._environments: dict[tuple[Path, tuple[Path, ...]], BoundedEnvironment] = {}

    def environment(self, root: Path, search_dirs: tuple[Path, ...]) -> BoundedEnvironment:
        key = (root, search_dirs)
        env = self._environments.get(key)
        if env is None:
            env = BoundedEnvironment(
                self.budget,
                loader=ProjectLoader(search_dirs, root),
                undefined=_Unbounded,
                keep_trailing_newline=True,
                autoescape=False,
            )
            env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": str}
            self._environments[key] = env
        return env

    def includes_of(self, parsed: ParsedTemplate) -> tuple[Path, ...]:
        """The files ``parsed`` includes, imports or extends (literal names only), resolved
        the way the loader would; names that do not resolve inside the root are left out."""
        if parsed.problem is not None or parsed.meta.engine != "jinja2" or not parsed.is_readable:
            return ()
        search_dirs = tuple(dict.fromkeys((parsed.path.parent, *self.search_dirs)))
        env = self.environment(self.root, search_dirs)
        try:
            names = [
                name for name in meta.find_referenced_templates(env.parse(parsed.body)) if name
            ]
        except TemplateSyntaxError:
            return ()
        found = []
        for name in names:
            for directory in search_dirs:
                candidate = (directory / name).resolve()
                if candidate.is_file() and candidate.is_relative_to(self.root.resolve()):
                    found.append(candidate)
                    break
        return tuple(found)

    def render(
        self,
        parsed: ParsedTemplate,
        values: Mapping[str, VariableValue],
        *,
        include_root: Path | None = None,
        as_slots: bool = False,
    ) -> RenderedPrompt:
        """Render ``parsed`` with ``values``. Never raises for problems in the template.

        ``as_slots`` renders every variable, sampled or not, as an empty slot: the prompt's
        static skeleton, used to find the cacheable prefix.
        """
        rendered = self._render(parsed, values, include_root, as_slots)
        if parsed.text_problem is not None:
            return replace(rendered, has_exact_text=False)
        return rendered

    def _render(
        self,
        parsed: ParsedTemplate,
        values: Mapping[str, VariableValue],
        include_root: Path | None,
        as_slots: bool,
    ) -> RenderedPrompt:
        if not parsed.is_readable:
            return RenderedPrompt(messages=(), variables=(), problem=parsed.text_problem)
        if parsed.problem is not None:
            return _raw(parsed, parsed.problem, parsed.problem_line)
        if parsed.format is TemplateFormat.TEXT or parsed.meta.engine == "none":
            return RenderedPrompt(
                messages=(Message("user", (parsed.text,)),) if parsed.text else (),
                variables=(),
            )
        if parsed.format is TemplateFormat.DOTPROMPT or parsed.meta.engine != "jinja2":
            engine = (
                "Handlebars" if parsed.format is TemplateFormat.DOTPROMPT else parsed.meta.engine
            )
            return _raw(
                parsed,
                f"{engine} templates are not rendered yet; counted as raw text",
                parsed.body_line,
            )
        if _ANY_SLOT_CHAR.search(parsed.body):
            return _raw(parsed, "contains private-use characters U+E000..U+E002", parsed.body_line)

        root = include_root or self.root
        search_dirs = tuple(dict.fromkeys((parsed.path.parent, *self.search_dirs)))
        env = self.environment(root, search_dirs)
        try:
            ast = env.parse(parsed.body)
            used = tuple(sorted(_read_variables(ast)))
            template = env.from_string(ast)
        except TemplateSyntaxError as err:
            line = parsed.body_line + (err.lineno or 1) - 1
            return _raw(parsed, f"Jinja2 syntax error: {err.message}", line)
        except TemplateError as err:  # e.g. an unknown filter, found while compiling
            return _raw(parsed, f"Jinja2 error: {err.message or err}", parsed.body_line)

        slots: list[VariableValue] = []
        context: dict[str, Any] = {}
        for name in used:
            value = values.get(name)
            if as_slots:
                value = VariableValue(name, "structure", max_tokens=0)
            if value is None:
                continue
            if value.is_cap:
                context[name] = _SlotValue(len(slots))
                slots.append(value)
            else:
                context[name] = value.sample

        self.budget.reset()
        watchdog = Watchdog(self.timeout_seconds)
        try:
            with watchdog:
                output = render_bounded(template.generate(context))
        except RenderTimeoutError:
            return _raw(
                parsed,
                f"rendering took longer than {watchdog.seconds:g} s and was stopped",
                parsed.body_line,
            )
        except TemplateNotFound as err:
            return _raw(parsed, f"include not found: {err.message}", _error_line(err, parsed))
        except SecurityError as err:
            return _raw(parsed, f"unsafe template: {err}", _error_line(err, parsed))
        except RecursionError as err:
            return _raw(parsed, "rendering recursed too deeply", _error_line(err, parsed))
        except Exception as err:  # template code can raise anything: it is data, not a crash
            return _raw(
                parsed,
                f"rendering failed: {type(err).__name__}: {err}",
                _error_line(err, parsed),
            )

        split_roles = parsed.format is TemplateFormat.PROMPTY or _is_chat_template(parsed)
        messages = _to_messages(output, slots, split_roles=split_roles)
        unbounded = tuple(name for name in used if name not in values)
        return RenderedPrompt(
            messages=messages,
            variables=used,
            values={name: values[name] for name in used if name in values},
            unbounded=unbounded,
            variable_lines=_first_uses(ast, set(used), parsed.body_line),
        )


def _is_chat_template(parsed: ParsedTemplate) -> bool:
    """Role markers are read in Jinja2 files, and in .md/.txt files that have front matter."""
    suffix = parsed.path.suffix.lower()
    return suffix in {".j2", ".jinja", ".jinja2"} or parsed.body_line > 1


def _read_variables(ast: nodes.Template) -> set[str]:
    return set(meta.find_undeclared_variables(ast)) - {
        "range",
        "loop",
        "dict",
        "cycler",
        "joiner",
        "namespace",
    }


def _first_uses(ast: nodes.Template, names: set[str], body_line: int) -> dict[str, int]:
    """The file line where each variable is first read."""
    lines: dict[str, int] = {}
    for node in ast.find_all(nodes.Name):
        if node.ctx == "load" and node.name in names:
            line = body_line + node.lineno - 1
            lines[node.name] = min(lines.get(node.name, line), line)
    return lines


def _raw(parsed: ParsedTemplate, problem: str, line: int | None) -> RenderedPrompt:
    messages = (Message("user", (parsed.text,)),) if parsed.text else ()
    return RenderedPrompt(messages=messages, variables=(), problem=problem, problem_line=line)


def _error_line(err: BaseException, parsed: ParsedTemplate) -> int:
    """The template line where a render error happened, from Jinja2's rewritten traceback."""
    line = None
    tb: TracebackType | None = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    lineno = getattr(err, "lineno", None)
    if line is None and isinstance(lineno, int):
        line = lineno
    return parsed.body_line + (line or 1) - 1


def _to_messages(
    output: str, slots: list[VariableValue], *, split_roles: bool
) -> tuple[Message, ...]:
    if not split_roles:
        return (Message("user", _parts(output, slots)),) if output else ()
    chunks: list[tuple[str, list[str]]] = []
    role: str | None = None
    lines: list[str] = []
    for line in output.split("\n"):
        match = _ROLE_LINE.match(line)
        if match:
            chunks.append((role or "", lines))
            role = match.group(1).lower()
            lines = []
        else:
            lines.append(line)
    chunks.append((role or "", lines))
    if all(not r for r, _ in chunks):  # no role markers at all: one message, text untouched
        return (Message("user", _parts(output, slots)),) if output else ()
    messages = []
    for chunk_role, chunk_lines in chunks:
        content = "\n".join(chunk_lines).strip()
        if not chunk_role:
            if not content:
                continue
            chunk_role = "system"  # text before the first marker (Prompty's rule)
        messages.append(Message(chunk_role, _parts(content, slots)))
    return tuple(messages)


def _parts(text: str, slots: list[VariableValue]) -> tuple[Part, ...]:
    parts: list[Part] = []
    position = 0
    for match in _SLOT_PATTERN.finditer(text):
        if match.start() > position:
            parts.append(_ANY_SLOT_CHAR.sub("", text[position : match.start()]))
        index = int(match.group(1))
        kind: Literal["whole", "part"] = "whole" if match.group(2) == _SLOT_WHOLE else "part"
        if index < len(slots):
            value = slots[index]
            parts.append(Slot(value.name, value.max_tokens or 0, whole=kind == "whole"))
        position = match.end()
    if position < len(text):
        parts.append(_ANY_SLOT_CHAR.sub("", text[position:]))
    return tuple(parts)
