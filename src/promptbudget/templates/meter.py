"""Size meter for operations inside a render: each result's size is computed *before* the
operation runs, from the sizes of its inputs, and an operation whose result would exceed
``MAX_RESULT_CHARS`` is refused with ``SecurityError``.

The output cap and the watchdog act between Python steps; a single C-level call such as
``("x"*100000)|replace("x", "y"*100000)`` allocates 10 GB inside one step, where neither can
act. So every operation that can make a result much larger than its inputs is metered here:
``replace``, ``join``, ``indent``, ``wordwrap`` and ``center`` (filters and ``str`` methods),
``expandtabs``, ``ljust``/``rjust``/``zfill``, ``+`` and ``~`` on strings and lists, ``*``
(in the sandbox). The estimates never allocate: they use lengths and counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from jinja2.exceptions import SecurityError

# The largest string or list one operation may produce (the rendered output cap).
MAX_RESULT_CHARS = 8_000_000


def refuse_if_large(size: int, what: str) -> None:
    if size > MAX_RESULT_CHARS:
        raise SecurityError(
            f"{what} would make {size:,} characters, more than {MAX_RESULT_CHARS:,}"
        )


def _length(value: Any) -> int:
    """A cheap upper-bound-ish size of ``value`` as text (strings and sequences by length)."""
    if isinstance(value, str | list | tuple | bytes):
        return len(value)
    return len(str(value)) if isinstance(value, int | float) else 16


def check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not isinstance(text, str) or not isinstance(old, str) or not isinstance(new, str):
        return
    if len(new) <= len(old):
        return
    occurrences = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        occurrences = min(occurrences, count)
    refuse_if_large(len(text) + occurrences * (len(new) - len(old)), "replace")


def check_join(separator: Any, items: list[Any]) -> None:
    size = max(0, len(items) - 1) * _length(separator)
    size += sum(_length(item) for item in items)
    refuse_if_large(size, "join")


def check_indent(text: Any, width: Any) -> None:
    if not isinstance(text, str):
        return
    per_line = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    refuse_if_large(len(text) + (text.count("\n") + 1) * max(0, per_line), "indent")


def check_wordwrap(text: Any, width: Any, wrapstring: Any) -> None:
    if not isinstance(text, str) or not isinstance(wrapstring, str):
        return
    lines = len(text) // max(1, width if isinstance(width, int) else 1) + text.count("\n") + 1
    refuse_if_large(len(text) + lines * len(wrapstring), "wordwrap")


def check_expandtabs(text: str, tabsize: Any) -> None:
    size = tabsize if isinstance(tabsize, int) else 8
    refuse_if_large(len(text) + text.count("\t") * max(0, size), "expandtabs")


def check_concat(parts: Iterable[Any]) -> None:
    refuse_if_large(sum(_length(part) for part in parts), "concatenation")


def check_width(text: Any, width: Any) -> None:
    if isinstance(width, int):
        refuse_if_large(max(_length(text), width), "padding")


def _attribute(item: Any, attribute: Any) -> Any:
    if isinstance(item, dict):
        return item.get(attribute, "")
    return getattr(item, str(attribute), "") if isinstance(attribute, str) else ""


# -- str methods reachable from a template ------------------------------------------------

_STR_METHOD_CHECKS: dict[str, Callable[..., None]] = {
    "replace": lambda text, *args: check_replace(text, *args[:3]),
    "join": lambda text, items=(), *args: check_join(text, list(items)),
    "expandtabs": lambda text, tabsize=8, *args: check_expandtabs(text, tabsize),
    "center": lambda text, width=0, *args: check_width(text, width),
    "ljust": lambda text, width=0, *args: check_width(text, width),
    "rjust": lambda text, width=0, *args: check_width(text, width),
    "zfill": lambda text, width=0, *args: check_width(text, width),
}


def check_str_method(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Meter a call of a bound ``str`` method; returns the arguments to call it with (an
    iterable given to ``join`` is materialised once, so it is not consumed by the check)."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if not isinstance(owner, str) or name not in _STR_METHOD_CHECKS:
        return args
    if name == "join" and args:
        args = (list(args[0]), *args[1:])
    _STR_METHOD_CHECKS[name](owner, *args, *kwargs.values())
    return args


# -- filters --------------------------------------------------------------------------------


def metered_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (a built-in filter) with its result size checked first, for the filters
    that can amplify; others are returned as they are."""
    import functools

    from jinja2 import Environment
    from jinja2.nodes import EvalContext

    if name not in {"replace", "join", "indent", "wordwrap", "center"}:
        return func

    @functools.wraps(func)
    def metered(*args: Any, **kwargs: Any) -> Any:
        lead = 1 if args and isinstance(args[0], EvalContext | Environment) else 0
        value, rest = (args[lead], list(args[lead + 1 :])) if len(args) > lead else (None, [])
        if name == "join":
            items = list(value) if value is not None else []
            separator = rest[0] if rest else kwargs.get("d", "")
            attribute = rest[1] if len(rest) > 1 else kwargs.get("attribute")
            check_join(
                separator,
                items if attribute is None else [_attribute(item, attribute) for item in items],
            )
            args = (*args[:lead], items, *rest)
            result = func(*args, **kwargs)
            refuse_if_large(len(result) if isinstance(result, str) else 0, "join")
            return result
        if name == "replace":
            old = rest[0] if rest else kwargs.get("old")
            new = rest[1] if len(rest) > 1 else kwargs.get("new")
            count = rest[2] if len(rest) > 2 else kwargs.get("count")
            check_replace(str(value), old, new, count if count is not None else -1)
        elif name == "indent":
            width = rest[0] if rest else kwargs.get("width", 4)
            check_indent(str(value), width)
        elif name == "wordwrap":
            width = rest[0] if rest else kwargs.get("width", 79)
            wrapstring = rest[2] if len(rest) > 2 else kwargs.get("wrapstring", "\n")
            check_wordwrap(str(value), width, wrapstring if wrapstring is not None else "\n")
        elif name == "center":
            width = rest[0] if rest else kwargs.get("width", 80)
            check_width(value, width)
        return func(*args, **kwargs)

    return metered
