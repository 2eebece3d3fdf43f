"""A cooperative time limit for renders: no thread, no signal, no asynchronous exception.

A render runs inside ``with RenderDeadline(seconds):``. The engines call ``check_deadline()``
at their safe points (the Jinja2 sandbox on every call, attribute and item lookup, operator,
filter, ``range()``, loop iteration, include and output chunk; the Handlebars, Go-template and
``str.format`` interpreters on every node they visit) and ``RenderTimeoutError`` is raised
there, inside the render, where the renderer turns it into a PB001 finding.

An exception injected from another thread (``PyThreadState_SetAsyncExc``, what this replaced)
lands on whatever Python code runs next in the thread: a garbage-collector callback, a
``finally`` block, the code after the render. A deadline only ever raises where an engine
asks, so it cannot.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from types import TracebackType


class RenderTimeoutError(Exception):
    """Raised at a safe point of a render that ran past its deadline; ``line``: the file
    line the engine was at, when it says (Jinja2's is read from the traceback instead)."""

    def __init__(self, seconds: float, line: int | None = None) -> None:
        super().__init__(f"rendering took longer than {seconds:g} s and was stopped")
        self.seconds = seconds
        self.line = line
        _STOPPED[0] += 1


# Renders stopped by their deadline in this process: an outcome that depends on the machine's
# speed and load is never kept (filecache.py compares the count before and after a file)
_STOPPED = [0]


def renders_stopped() -> int:
    return _STOPPED[0]


class RenderDeadline:
    """The time limit of the renders inside the ``with`` block. Nested deadlines keep the
    earlier expiry (an inner render cannot outlive the outer one)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = 0.0
        self.limit = seconds  # the seconds of whichever deadline expires first
        self._outer: RenderDeadline | None = None

    def __enter__(self) -> RenderDeadline:
        self.expires = time.monotonic() + self.seconds
        self.limit = self.seconds
        self._outer = _CURRENT.get()
        if self._outer is not None and self._outer.expires < self.expires:
            self.expires, self.limit = self._outer.expires, self._outer.limit
        self._token = _CURRENT.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _CURRENT.reset(self._token)

    def check(self) -> None:
        if time.monotonic() > self.expires:
            raise RenderTimeoutError(self.limit)


_CURRENT: ContextVar[RenderDeadline | None] = ContextVar("render_deadline", default=None)


def check_deadline(line: int | None = None) -> None:
    """Raise ``RenderTimeoutError`` if the current render is past its deadline (no-op outside
    a render); ``line``: the file line the engine is at."""
    deadline = _CURRENT.get()
    if deadline is not None and time.monotonic() > deadline.expires:
        raise RenderTimeoutError(deadline.limit, line)
