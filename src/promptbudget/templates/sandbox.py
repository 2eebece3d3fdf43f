"""A Jinja2 environment safe for templates that arrive in pull requests.

Jinja2's ``ImmutableSandboxedEnvironment`` stops attribute escapes and mutation. On top of it:

* every loop-producing ``range()`` draws from one iteration budget per render;
* ``*``, ``**`` and ``%`` refuse results that would be absurdly large;
* ``+``, ``~``, ``replace``, ``join``, ``indent``, ``wordwrap`` and the padding ``str`` methods
  are metered before they run (``meter.py``): one C-level call cannot allocate gigabytes;
* filters and calls refuse integer arguments above ``MAX_INT_ARGUMENT`` (``center(10**9)``);
* output is streamed and cut at ``MAX_RENDERED_CHARS``;
* a watchdog interrupts a render that runs longer than ``RENDER_TIMEOUT_SECONDS``;
* includes resolve only inside the include root, after following symlinks.

Limits are generous for prompts (a prompt is kilobytes) and tiny for attacks.
"""

from __future__ import annotations

import ctypes
import functools
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, TemplateNotFound, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

from promptbudget.confine import ConfinementError, read_confined
from promptbudget.templates.meter import check_concat, check_str_method, metered_filter
from promptbudget.templates.source import MAX_TEMPLATE_BYTES, decode_prompt_bytes

MAX_ITERATIONS = 1_000_000
MAX_INT_ARGUMENT = 100_000
MAX_RENDERED_CHARS = 8_000_000
MAX_EXPONENT = 4_096
RENDER_TIMEOUT_SECONDS = 5.0

_PERCENT_WIDTH = re.compile(r"%[-#0 +]*(\d+)")
_BRACE_WIDTH = re.compile(r"\{[^{}]*:[^{}]*?(\d+)")


class RenderTimeoutError(Exception):
    """Raised inside a render that took longer than the watchdog allows."""


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


class ProjectLoader(BaseLoader):
    """Loads ``{% include %}``/``{% extends %}`` targets from the search directories, only if
    the resolved file lies inside ``root``."""

    def __init__(self, search_dirs: tuple[Path, ...], root: Path) -> None:
        self.search_dirs = search_dirs
        self.root = root.resolve()

    def get_source(
        self, environment: Any, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        name = template.replace("\\", "/")
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
            raise TemplateNotFound(f"{template} (absolute paths cannot be included)")
        for directory in self.search_dirs:
            base = directory.resolve()
            if not base.is_relative_to(self.root):
                continue  # the project's prompts directory, when the template is elsewhere
            candidate = (base / name).resolve()
            if not candidate.is_relative_to(self.root):
                raise TemplateNotFound(f"{template} (resolves outside the project root)")
            if candidate.is_file():
                try:
                    data = read_confined(candidate, root=self.root, limit=MAX_TEMPLATE_BYTES)
                except ConfinementError as err:
                    raise TemplateNotFound(f"{template} ({err.reason})") from err
                text = decode_prompt_bytes(data).text
                return text, str(candidate), lambda: False
        raise TemplateNotFound(template)


def _check_int(value: object) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT_ARGUMENT:
        raise SecurityError(f"argument {value} is larger than {MAX_INT_ARGUMENT:,}")


def _guard_callable(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
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


class MeteredCodeGenerator(CodeGenerator):
    """Compiles ``~`` to a call the environment meters (``concat_bounded``) instead of
    Jinja2's unchecked ``str_join``. Autoescaping is off in promptbudget, so the markup
    variant is never needed."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.autoescape or frame.eval_ctx.volatile:
            super().visit_Concat(node, frame)
            return
        self.write("environment.concat_bounded((")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


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

    def _range(self, *args: int) -> range:
        result = safe_range(*args)
        self.budget.consume(len(result))
        return result

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
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
        texts = [str(part) for part in parts]
        check_concat(texts)
        return "".join(texts)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja2 >= 3.1.5 sandboxes ``str.format`` when the method is looked up."""
        wrapped: Callable[..., str] | None = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_string(value.__self__, _BRACE_WIDTH)
        return wrapped

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            _check_int(value)
        args = check_str_method(__obj, args, kwargs)
        if isinstance(getattr(__obj, "__self__", None), str) and args:
            name = getattr(__obj, "__name__", "")
            if name in {"format", "format_map"}:
                _check_format_string(__obj.__self__, _BRACE_WIDTH)
        return super().call(__context, __obj, *args, **kwargs)


def render_bounded(chunks: Iterator[str]) -> str:
    """Join rendered chunks, refusing output beyond ``MAX_RENDERED_CHARS``."""
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_RENDERED_CHARS:
            raise SecurityError(f"rendered output is larger than {MAX_RENDERED_CHARS:,} characters")
        out.append(chunk)
    return "".join(out)


class Watchdog:
    """Interrupts the calling thread if it is still inside the block after ``seconds``.

    Uses CPython's ``PyThreadState_SetAsyncExc``, so it works in any thread and on every
    platform; pure-Python loops (all a Jinja2 template compiles to) are interrupted promptly.
    Every watchdog shares one monitor thread (started once per process): entering and leaving
    a block only registers and removes a deadline, so thousands of renders cost no threads.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._thread_id = 0
        self.fired = False

    def __enter__(self) -> Watchdog:
        self._thread_id = threading.get_ident()
        self.fired = False
        _MONITOR.watch(self, time.monotonic() + self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        with _MONITOR.lock:
            _MONITOR.unwatch(self)
            if self.fired:
                # The exception may still be pending if the block ended just as it fired.
                _set_async_exc(self._thread_id, None)

    def interrupt(self) -> None:
        """Called by the monitor, holding its lock, once the deadline has passed."""
        self.fired = True
        _set_async_exc(self._thread_id, RenderTimeoutError)


class _Monitor:
    """The one thread that fires overdue watchdogs: it sleeps until the earliest deadline it
    knows of and is woken only when a sooner one arrives."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._wake = threading.Condition(self.lock)
        self._deadlines: dict[Watchdog, float] = {}
        self._sleeping_until = math.inf
        self._thread: threading.Thread | None = None

    def watch(self, watchdog: Watchdog, deadline: float) -> None:
        with self.lock:
            self._deadlines[watchdog] = deadline
            if self._thread is None or not self._thread.is_alive():  # first use, or a fork
                self._thread = threading.Thread(
                    target=self._run, name="promptbudget-watchdog", daemon=True
                )
                self._sleeping_until = math.inf
                self._thread.start()
            elif deadline < self._sleeping_until:
                self._wake.notify()

    def unwatch(self, watchdog: Watchdog) -> None:
        """Forget ``watchdog`` (the caller holds ``lock``)."""
        self._deadlines.pop(watchdog, None)

    def _run(self) -> None:
        with self.lock:
            while True:
                now = time.monotonic()
                for watchdog, deadline in list(self._deadlines.items()):
                    if deadline <= now:
                        del self._deadlines[watchdog]
                        watchdog.interrupt()
                self._sleeping_until = min(self._deadlines.values(), default=math.inf)
                timeout = None if self._sleeping_until == math.inf else self._sleeping_until - now
                self._wake.wait(timeout)


_MONITOR = _Monitor()


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None
    )
