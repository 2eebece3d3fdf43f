"""Render a parsed template into chat messages, with every variable accounted for.

A variable gets its value from a sample (rendered as real text and counted exactly) or from a
cap (rendered as a *slot*: a placeholder that the counter replaces by the cap's tokens). A
variable with neither renders as nothing and is reported as unbounded. Role marker lines
(``system:``, ``# user:``) split the output into messages.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from jinja2 import ChainableUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError, TemplateNotFound

from promptbudget.cache import active_store, cache_key
from promptbudget.confine import ConfinementError, read_confined
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

if TYPE_CHECKING:
    from promptbudget.templates.handlebars import VariableReads
    from promptbudget.tools import Tool
from promptbudget.templates.source import MAX_TEMPLATE_BYTES, TemplateFormat, decode_prompt_bytes

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

    # A missing value compared or combined (``memory.count() > 1``, ``n + 1``) is not an
    # error the application would see (it passes real values): false, and still missing.
    def _false(self, other: object) -> bool:
        self._guard()
        return False

    __lt__ = __le__ = __gt__ = __ge__ = _false  # type: ignore[assignment]

    def _same(self, other: object) -> Any:
        self._guard()
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _same


class _SlotPart:
    """A part of a capped structured value (a list item, a field of it)."""

    __slots__ = ("_index",)

    def __init__(self, index: int) -> None:
        self._index = index

    def __str__(self) -> str:
        return slot_marker(self._index, whole=False)

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
        value = super().__new__(cls, slot_marker(index))
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
        if parsed.format is TemplateFormat.DOTPROMPT and parsed.is_readable:
            return self._dotprompt_includes(parsed) if parsed.problem is None else ()
        if parsed.problem is not None or parsed.meta.engine != "jinja2" or not parsed.is_readable:
            return ()
        search_dirs = tuple(dict.fromkeys((parsed.path.parent, *self.search_dirs)))
        names = self._referenced_names(parsed.body, search_dirs)
        found = []
        for name in names:
            for directory in search_dirs:
                candidate = (directory / name).resolve()
                if candidate.is_file() and candidate.is_relative_to(self.root.resolve()):
                    found.append(candidate)
                    break
        return tuple(found)

    def _referenced_names(self, body: str, search_dirs: tuple[Path, ...]) -> list[str]:
        """The literal names a Jinja2 body includes, imports or extends (none if it does not
        parse); kept in the cache under the body, so an unchanged file is not parsed again to
        answer "what does this path affect". Resolving them stays with the caller."""
        store = active_store()
        key = cache_key("jinja2 includes", body)
        if store is not None:
            cached = store.get(key)
            if isinstance(cached, list) and all(isinstance(name, str) for name in cached):
                return cached
        env = self.environment(self.root, search_dirs)
        try:
            names = [name for name in meta.find_referenced_templates(env.parse(body)) if name]
        except TemplateSyntaxError:
            names = []
        if store is not None:
            store.put(key, names)
        return names

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
        if parsed.line_map:
            rendered = _remap_lines(rendered, parsed)
        hosted = [tool for tool in parsed.meta.tools if tool.hosted is not None]
        if hosted:
            rendered = replace(rendered, warnings=(*rendered.warnings, *_hosted(parsed, hosted)))
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
        if parsed.meta.engine == "text":  # a generic file with no template syntax
            split = _is_chat_template(parsed)
            return RenderedPrompt(
                messages=_messages_of(parsed, parsed.body, [], split_roles=split),
                variables=(),
            )
        if parsed.meta.engine in ("format", "go-template"):
            return self._render_engine(parsed, values, as_slots)
        if parsed.format is TemplateFormat.DOTPROMPT or parsed.meta.engine in _HANDLEBARS_ENGINES:
            return self._render_handlebars(parsed, values, include_root, as_slots)
        if parsed.meta.engine in ("semantic-kernel", "fstring"):
            return _render_simple(parsed, values, as_slots)
        if parsed.meta.engine == "liquid":  # close enough to Jinja2 once its tags are mapped
            parsed = replace(
                parsed,
                body=liquid_to_jinja(parsed.body),
                meta=replace(parsed.meta, engine="jinja2"),
            )
        if parsed.meta.engine != "jinja2":
            return _raw(
                parsed,
                f"{parsed.meta.engine} templates are not rendered yet; counted as raw text",
                parsed.body_line,
            )

        root = include_root or self.root
        search_dirs = tuple(dict.fromkeys((parsed.path.parent, *self.search_dirs)))
        env = self.environment(root, search_dirs)
        try:
            ast = env.parse(parsed.body)
            _register_application_filters(env, ast)
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
        messages = _messages_of(parsed, output, slots, split_roles=split_roles)
        unbounded = tuple(name for name in used if name not in values)
        return RenderedPrompt(
            messages=messages,
            variables=used,
            values={name: values[name] for name in used if name in values},
            unbounded=unbounded,
            variable_lines=_first_uses(ast, set(used), parsed.body_line),
        )

    # -- Python str.format and Go text/template ------------------------------------------------

    def _render_engine(
        self, parsed: ParsedTemplate, values: Mapping[str, VariableValue], as_slots: bool
    ) -> RenderedPrompt:
        from promptbudget.templates.render_engines import EngineError, render_format, render_go

        render = render_format if parsed.meta.engine == "format" else render_go
        watchdog = Watchdog(self.timeout_seconds)
        try:
            with watchdog:
                out = render(
                    parsed.body, parsed.body_line, values, as_slots=as_slots, marker=slot_marker
                )
        except RenderTimeoutError:
            return _raw(
                parsed,
                f"rendering took longer than {watchdog.seconds:g} s and was stopped",
                parsed.body_line,
            )
        except EngineError as err:
            return _raw(parsed, err.message, err.line)
        slots = [
            values.get(name) or VariableValue(name, "structure", max_tokens=0)
            for name in out.slot_names
        ]
        if as_slots:
            slots = [VariableValue(name, "structure", max_tokens=0) for name in out.slot_names]
        messages = _messages_of(parsed, out.text, slots, split_roles=_is_chat_template(parsed))
        used = tuple(sorted(out.lines))
        return RenderedPrompt(
            messages=messages,
            variables=used,
            values={name: values[name] for name in used if name in values},
            unbounded=tuple(name for name in used if name not in values),
            variable_lines=out.lines,
            functions=out.functions,
            warnings=tuple(out.warnings),
        )

    # -- Dotprompt (Handlebars), and Prompty's Mustache/Handlebars templates ------------------

    def _render_handlebars(
        self,
        parsed: ParsedTemplate,
        values: Mapping[str, VariableValue],
        include_root: Path | None,
        as_slots: bool,
    ) -> RenderedPrompt:
        """Dotprompt, and Prompty's ``template: mustache|handlebars``. Parsing, reading the
        variables and rendering all run under the watchdog."""
        from promptbudget.templates.handlebars import (  # only projects that use it pay for it
            BUILTIN_HELPERS,
            DOTPROMPT_HELPERS,
            SEMANTIC_KERNEL_HELPERS,
            Dialect,
            HandlebarsError,
            parse_handlebars,
            read_variables,
            render_handlebars,
            split_dotprompt_messages,
        )

        is_dotprompt = parsed.format is TemplateFormat.DOTPROMPT
        is_semantic_kernel = parsed.format is TemplateFormat.SEMANTIC_KERNEL
        dialect = Dialect.MUSTACHE if parsed.meta.engine == "mustache" else Dialect.HANDLEBARS
        engine = "Mustache" if dialect is Dialect.MUSTACHE else "Handlebars"
        partials = self._dotprompt_partials(parsed, include_root) if is_dotprompt else None
        watchdog = Watchdog(self.timeout_seconds)
        try:
            with watchdog:
                template = parse_handlebars(
                    parsed.body,
                    dialect=dialect,
                    helpers=(
                        DOTPROMPT_HELPERS
                        if is_dotprompt
                        else SEMANTIC_KERNEL_HELPERS
                        if is_semantic_kernel
                        else BUILTIN_HELPERS
                    ),
                    escape_html=not is_dotprompt,
                    first_line=parsed.body_line,
                    # Genkit's defineHelper; Semantic Kernel's plugin functions
                    app_helpers=is_dotprompt or is_semantic_kernel,
                    plugin_functions=is_semantic_kernel,
                )
                reads = read_variables(template, partials=partials)
                lines = _handlebars_variables(parsed, reads)
                slots: list[VariableValue] = []
                context, functions = _handlebars_context(
                    parsed, lines, reads.functions, values, slots, as_slots=as_slots
                )
                chunks = render_handlebars(
                    template, context, partials=partials, functions=functions
                )
        except RenderTimeoutError:
            return _raw(
                parsed,
                f"rendering took longer than {watchdog.seconds:g} s and was stopped",
                parsed.body_line,
            )
        except HandlebarsError as err:
            return _raw(parsed, f"{engine} template error: {err.message}", err.line)

        if is_dotprompt:
            messages = tuple(
                Message(
                    _DOTPROMPT_ROLES.get(message.role, message.role),
                    tuple(part for text in message.texts for part in _parts(text, slots)),
                )
                for message in split_dotprompt_messages(chunks)
            )
        else:  # Prompty: role lines split the text, as for its Jinja2 templates
            output = "".join(chunk for chunk in chunks if isinstance(chunk, str))
            split = parsed.format is not TemplateFormat.JINJA2 or _is_chat_template(parsed)
            messages = _messages_of(parsed, output, slots, split_roles=split)
        all_lines = {**reads.functions, **lines}
        for name, line in reads.functions.items():
            all_lines[name] = min(line, all_lines[name])
        used = tuple(sorted(all_lines))
        given = {name: values[name] for name in used if name in values}
        for name in sorted(reads.block_functions - set(lines) - set(given)):
            # a block helper's output is its block, counted in the text: no value needed
            given[name] = VariableValue(name, "its block, rendered once")
        return RenderedPrompt(
            messages=messages,
            variables=used,
            values=given,
            unbounded=tuple(name for name in used if name not in given),
            variable_lines=all_lines,
            functions=frozenset(reads.functions),
            warnings=reads.warnings,
        )

    def _dotprompt_includes(self, parsed: ParsedTemplate) -> tuple[Path, ...]:
        from promptbudget.templates.handlebars import (
            HandlebarsError,
            parse_handlebars,
            partial_names,
        )

        try:
            with Watchdog(self.timeout_seconds):
                names = partial_names(parse_handlebars(parsed.body))
        except (HandlebarsError, RenderTimeoutError):
            return ()
        root = self.root.resolve()
        search_dirs = tuple(dict.fromkeys((parsed.path.parent, *self.search_dirs)))
        found = []
        for name in names:
            relative = dotprompt_partial_file(name)
            for directory in search_dirs if relative is not None else ():
                candidate = (directory / str(relative)).resolve()
                if candidate.is_file() and candidate.is_relative_to(root):
                    found.append(candidate)
                    break
        return tuple(found)

    def _dotprompt_partials(
        self, parsed: ParsedTemplate, include_root: Path | None
    ) -> Callable[[str], str | None]:
        """Dotprompt partials: ``{{> name}}`` is the file ``_name.prompt`` (``{{> dir/name}}``:
        ``dir/_name.prompt``) next to the template or in the prompts directory, read only if
        it resolves inside the project root. With no such file, the partial is the
        application's (Genkit's ``definePartial``): None."""
        root = (include_root or self.root).resolve()
        search_dirs = tuple(dict.fromkeys((parsed.path.parent, *self.search_dirs)))

        def load(name: str) -> str | None:
            return _read_dotprompt_partial(name, search_dirs, root)

        return load


def _handlebars_variables(parsed: ParsedTemplate, reads: VariableReads) -> dict[str, int]:
    """Each variable the template reads, with its first line. ``{{json this}}`` prints the
    whole input: every declared input and every sample in the template is read there."""
    lines = dict(reads.names)
    if reads.whole_input_line is not None:
        for name in set(parsed.meta.declared_inputs or ()) | set(parsed.meta.samples):
            lines.setdefault(name, reads.whole_input_line)
    return lines


def _handlebars_context(
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
        value = values.get(name)
        if as_slots:
            value = VariableValue(name, "structure", max_tokens=0)
        if value is None:
            continue
        if value.is_cap:
            rendered[name] = _SlotValue(len(slots))
            slots.append(value)
        else:
            rendered[name] = value.sample
    context = {name: value for name, value in rendered.items() if name in lines}
    outputs = {name: value for name, value in rendered.items() if name in functions}
    return context, outputs


_HANDLEBARS_ENGINES = frozenset({"handlebars", "mustache"})
# Dotprompt's roles are Gemini's; "model" is the assistant.
_DOTPROMPT_ROLES = {"model": "assistant"}


def dotprompt_partial_file(name: str) -> PurePosixPath | None:
    """The relative file ``{{> name}}`` names (``_name.prompt``), or None if it cannot be one."""
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name) or not name:
        return None
    relative = PurePosixPath(name)
    return relative.parent / f"_{relative.name}.prompt"


def _read_dotprompt_partial(name: str, search_dirs: tuple[Path, ...], root: Path) -> str | None:
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


def _hosted(parsed: ParsedTemplate, tools: list[Tool]) -> list[tuple[str, int]]:
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


def _remap_lines(rendered: RenderedPrompt, parsed: ParsedTemplate) -> RenderedPrompt:
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


def _messages_of(
    parsed: ParsedTemplate, output: str, slots: list[VariableValue], *, split_roles: bool
) -> tuple[Message, ...]:
    """Chat messages of a rendered template: Semantic Kernel's ``<message role>`` tags, or
    role marker lines."""
    if parsed.format is TemplateFormat.SEMANTIC_KERNEL:
        from promptbudget.templates.semantic_kernel import split_messages

        tagged = split_messages(output)
        if tagged is not None:
            return tuple(
                Message(role, _parts(content, slots), name) for role, content, name in tagged
            )
        return (Message("user", _parts(output, slots)),) if output else ()
    if parsed.path.suffix.lower() == ".json":
        chat = _chat_json(output, slots)
        if chat is not None:
            return chat
        return (Message("user", _parts(output, slots)),) if output else ()
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
                _parts(item["content"], slots),
                name if isinstance(name, str) and name else None,
            )
        )
    return tuple(messages)


def _identity(value: Any, *args: Any, **kwargs: Any) -> Any:
    return value


def _register_application_filters(env: BoundedEnvironment, ast: nodes.Template) -> None:
    """A filter Jinja2 does not have is one the application registers (promptfoo's
    ``nunjucksFilters``, a custom Jinja filter): applied as the identity, so the value is
    counted as it goes in."""
    for node in ast.find_all(nodes.Filter):
        if node.name not in env.filters:
            env.filters[node.name] = _identity


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
    as the identity (see ``_register_application_filters``)."""
    for pattern, replacement in _LIQUID_TAGS:
        body = pattern.sub(replacement, body)
    return body


def _render_simple(
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
        return _raw(parsed, f"{engine} template error: {err.message}", err.line)
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
    out: list[str] = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
            continue
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
            out.append(str(_SlotValue(indexes[name])))
        else:
            out.append(value_text(value.sample))
    output = "".join(out)
    used = tuple(sorted(lines))
    split_roles = parsed.format is TemplateFormat.SEMANTIC_KERNEL
    return RenderedPrompt(
        messages=_messages_of(parsed, output, slots, split_roles=split_roles),
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
        return (Message("user", _parts(output, slots)),) if output else ()
    messages = []
    for chunk_role, chunk_name, chunk_lines in chunks:
        content = "\n".join(chunk_lines).strip()
        if not chunk_role:
            if not content:
                continue
            chunk_role = "system"  # text before the first marker (Prompty's rule)
        messages.append(Message(chunk_role, _parts(content, slots), chunk_name))
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


def _parts(text: str, slots: list[VariableValue]) -> tuple[Part, ...]:
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
