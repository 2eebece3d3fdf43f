"""A Jinja2 environment safe for templates that arrive in pull requests.

Jinja2's ``ImmutableSandboxedEnvironment`` stops attribute escapes and mutation. On top of it:

* every loop-producing ``range()`` draws from one iteration budget per render;
* ``*``, ``**`` and ``%`` refuse results that would be absurdly large;
* ``+``, ``~``, ``replace``, ``join``, ``indent``, ``wordwrap`` and the padding ``str`` methods
  are metered before they run (``meter.py``): one C-level call cannot allocate gigabytes;
* filters and calls refuse integer arguments above ``MAX_INT_ARGUMENT`` (``center(10**9)``);
* output is streamed and cut at ``MAX_RENDERED_CHARS``;
* a render past ``RENDER_TIMEOUT_SECONDS`` stops at its next call, lookup, operator, filter,
  loop iteration, include or output chunk (``deadline.py``: cooperative, nothing is injected);
* includes resolve only inside the include root, after following symlinks.

Limits are generous for prompts (a prompt is kilobytes) and tiny for attacks.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, ChainableUndefined, TemplateNotFound, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

from promptbudget.confine import ConfinementError, is_regular_file, read_confined, resolve_path
from promptbudget.templates.deadline import check_deadline
from promptbudget.templates.depth import nesting_problem
from promptbudget.templates.meter import check_concat, check_str_method, metered_filter
from promptbudget.templates.source import MAX_TEMPLATE_BYTES, decode_prompt_bytes

MAX_ITERATIONS = 1_000_000
MAX_INT_ARGUMENT = 100_000
MAX_RENDERED_CHARS = 8_000_000
MAX_EXPONENT = 4_096
RENDER_TIMEOUT_SECONDS = 5.0

_PERCENT_WIDTH = re.compile(r"%[-#0 +]*(\d+)")
_BRACE_WIDTH = re.compile(r"\{[^{}]*:[^{}]*?(\d+)")


class RenderBudget:
    """Iterations left for the current render (``range()`` draws from it)."""

    def __init__(self) -> None:
        self.remaining = MAX_ITERATIONS

    def reset(self) -> None:
        self.remaining = MAX_ITERATIONS

    def consume(self, count: int) -> None:
        self.remaining -= count
        if self.remaining < 0:
            raise SecurityError(
                f"loops in this template would run more than {MAX_ITERATIONS:,} iterations"
            )


# What the loader said of a name: ["file", its path, a digest of its text], or the error's
# class and message (not found, outside the root, nesting past the limits)
LoadOutcome = list[str | None]


@dataclass
class Loads:
    """The names Jinja2's loader was asked for while one template compiled and rendered,
    with its answers (``rendercache.py`` keeps them beside the render)."""

    answers: dict[str, LoadOutcome] = field(default_factory=dict)
    is_consistent: bool = True  # False: a name got two answers (a file changed meanwhile)

    def add(self, name: str, outcome: LoadOutcome) -> None:
        known = self.answers.setdefault(name, outcome)
        if known != outcome:
            self.is_consistent = False


_LOADS: ContextVar[Loads | None] = ContextVar("loads_recorded", default=None)


@contextmanager
def loads_recorded() -> Iterator[Loads]:
    """Record what the loader is asked inside the block."""
    loads = Loads()
    token = _LOADS.set(loads)
    try:
        yield loads
    finally:
        _LOADS.reset(token)


def note_loads(loads: Loads) -> None:
    """Answers recorded earlier (a compiled template reused) count for the current recording."""
    current = _LOADS.get()
    if current is not None and current is not loads:
        for name, outcome in loads.answers.items():
            current.add(name, outcome)
        current.is_consistent = current.is_consistent and loads.is_consistent


def _success(source: str, filename: str | None) -> LoadOutcome:
    digest = hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=16)
    return ["file", filename, digest.hexdigest()]


def _failure(err: TemplateError) -> LoadOutcome:
    return [type(err).__name__, str(err.message or "")]


class ProjectLoader(BaseLoader):
    """Loads ``{% include %}``/``{% extends %}`` targets from the search directories, only if
    the resolved file lies inside ``root``."""

    def __init__(self, search_dirs: tuple[Path, ...], root: Path) -> None:
        self.search_dirs = search_dirs
        self.root = root.resolve()

    def get_source(
        self, environment: Any, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        loads = _LOADS.get()
        if loads is None:
            return self._source(template)
        try:
            found = self._source(template)
        except TemplateError as err:
            loads.add(template, _failure(err))
            raise
        loads.add(template, _success(found[0], found[1]))
        return found

    def answer(self, template: str) -> LoadOutcome:
        """What ``get_source`` says of ``template`` now, as a recording keeps it."""
        try:
            source, filename, _ = self._source(template)
        except TemplateError as err:
            return _failure(err)
        return _success(source, filename)

    def _source(self, template: str) -> tuple[str, str | None, Callable[[], bool] | None]:
        check_deadline()
        name = template.replace("\\", "/")
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
            raise TemplateNotFound(f"{template} (absolute paths cannot be included)")
        for directory in self.search_dirs:
            base = directory.resolve()
            if not base.is_relative_to(self.root):
                continue  # the project's prompts directory, when the template is elsewhere
            try:  # a name no file system accepts (a NUL, 256 bytes) is not found, not a crash
                candidate = resolve_path(base / name)
            except ConfinementError as err:
                raise TemplateNotFound(f"{template} ({err.reason})") from err
            if not candidate.is_relative_to(self.root):
                raise TemplateNotFound(f"{template} (resolves outside the project root)")
            if is_regular_file(candidate):
                try:
                    data = read_confined(candidate, root=self.root, limit=MAX_TEMPLATE_BYTES)
                except ConfinementError as err:
                    raise TemplateNotFound(f"{template} ({err.reason})") from err
                text = decode_prompt_bytes(data).text
                # Measured like every template before Jinja2 parses it (depth.py): nesting
                # past the limits or a number literal Python will not convert.
                problem = nesting_problem(text, "jinja2")
                if problem is not None:
                    raise TemplateSyntaxError(problem[0], problem[1], template, str(candidate))
                return text, str(candidate), lambda: False
        raise TemplateNotFound(template)


def _check_int(value: object) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT_ARGUMENT:
        raise SecurityError(f"argument {value} is larger than {MAX_INT_ARGUMENT:,}")


def _guard_callable(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check_deadline()
        for value in (*args, *kwargs.values()):
            _check_int(value)
        return func(*args, **kwargs)

    return guarded


def _guard_format_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def guarded(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            _check_format_string(value, _PERCENT_WIDTH)
        return func(value, *args, **kwargs)

    return guarded


def _check_format_string(text: str, pattern: re.Pattern[str]) -> None:
    for match in pattern.finditer(text):
        if int(match.group(1)) > MAX_INT_ARGUMENT:
            raise SecurityError(
                f"format width {match.group(1)} is larger than {MAX_INT_ARGUMENT:,}"
            )


# An environment attribute (the parser never makes one from template text): the deadline
# check put first in every loop body.
_DEADLINE_CHECK = "pb_deadline_check"


def _is_deadline_check(node: nodes.Node) -> bool:
    return (
        isinstance(node, nodes.ExprStmt)
        and isinstance(node.node, nodes.EnvironmentAttribute)
        and node.node.name == _DEADLINE_CHECK
    )


class MeteredCodeGenerator(CodeGenerator):
    """Compiles ``~`` to a call the environment meters (``concat_bounded``) instead of
    Jinja2's unchecked ``str_join`` (autoescaping is off in promptbudget, so the markup
    variant is never needed), and starts every loop iteration with a deadline check: a loop
    whose body calls nothing (``{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}``)
    still stops at the render's deadline."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        if not (node.body and _is_deadline_check(node.body[0])):
            check = nodes.ExprStmt(nodes.EnvironmentAttribute(_DEADLINE_CHECK), lineno=node.lineno)
            node.body = [check, *node.body]
        super().visit_For(node, frame)

    def visit_ExprStmt(self, node: nodes.ExprStmt, frame: Frame) -> None:
        if _is_deadline_check(node):
            self.writeline("environment.check_deadline()", node)
        else:
            super().visit_ExprStmt(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.autoescape or frame.eval_ctx.volatile:
            super().visit_Concat(node, frame)
            return
        self.write("environment.concat_bounded((")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


def _identity(value: Any, *args: Any, **kwargs: Any) -> Any:
    return value


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox promptbudget renders every template in."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = MeteredCodeGenerator

    def __init__(self, budget: RenderBudget, **options: Any) -> None:
        super().__init__(**options)
        self.budget = budget
        self.filters = {
            name: _guard_callable(metered_filter(name, f)) for name, f in self.filters.items()
        }
        self.filters["format"] = _guard_format_filter(self.filters["format"])
        self.globals.pop("lipsum", None)
        self.globals["range"] = self._range

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every template parsed, the one rendered and each it includes, imports or extends:
        a filter Jinja2 does not have is one the application registers (promptfoo's
        ``nunjucksFilters``, a custom Jinja filter), applied as the identity so the value is
        counted as it goes in. Registered as each file is parsed, so whether a partial's
        filter is known does not depend on which template was compiled first."""
        ast = super()._parse(source, name, filename)
        for node in ast.find_all(nodes.Filter):
            if node.name not in self.filters:
                self.filters[node.name] = _identity
        return ast

    @staticmethod
    def check_deadline() -> None:
        """Called at the start of every loop iteration (``MeteredCodeGenerator``)."""
        check_deadline()

    def _range(self, *args: int) -> range:
        check_deadline()
        result = safe_range(*args)
        self.budget.consume(len(result))
        return result

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_deadline()
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > MAX_RENDERED_CHARS
                ):
                    raise SecurityError("a repeated string or list would be too large")
        elif operator == "%" and isinstance(left, str):
            _check_format_string(left, _PERCENT_WIDTH)
        elif operator == "+" and isinstance(left, str | list | tuple):
            check_concat((left, right))
        return super().call_binop(context, operator, left, right)

    def concat_bounded(self, parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ ...``: the joined size is checked before joining."""
        check_deadline()
        texts = [str(part) for part in parts]
        check_concat(texts)
        return "".join(texts)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja2 >= 3.1.5 sandboxes ``str.format`` when the method is looked up."""
        wrapped: Callable[..., str] | None = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_string(value.__self__, _BRACE_WIDTH)
        return wrapped

    def getattr(self, obj: Any, attribute: str) -> Any:
        check_deadline()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        check_deadline()
        return super().getitem(obj, argument)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_deadline()
        for value in (*args, *kwargs.values()):
            _check_int(value)
        args = check_str_method(__obj, args, kwargs)
        if isinstance(getattr(__obj, "__self__", None), str) and args:
            name = getattr(__obj, "__name__", "")
            if name in {"format", "format_map"}:
                _check_format_string(__obj.__self__, _BRACE_WIDTH)
        return super().call(__context, __obj, *args, **kwargs)


def render_bounded(chunks: Iterator[str]) -> str:
    """Join rendered chunks, refusing output beyond ``MAX_RENDERED_CHARS`` (and stopping at
    the render's deadline between chunks)."""
    out: list[str] = []
    size = 0
    for chunk in chunks:
        check_deadline()
        size += len(chunk)
        if size > MAX_RENDERED_CHARS:
            raise SecurityError(f"rendered output is larger than {MAX_RENDERED_CHARS:,} characters")
        out.append(chunk)
    return "".join(out)


class Unbounded(ChainableUndefined):
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
