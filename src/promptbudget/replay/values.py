"""Reading one field of a log record: token counts, ids, times, with a reason when invalid."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from promptbudget.replay.records import MalformedRecordError

_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def tokens(value: object, field: str) -> int:
    """A token count: a non-negative whole number (OTLP JSON writes int64 as a string)."""
    if type(value) is int and value >= 0:
        return value
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise MalformedRecordError(f"{field} is {value!r}; expected a whole number of tokens")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise MalformedRecordError(f"{field} is {value!r}; expected a whole number of tokens")
    if number < 0:
        raise MalformedRecordError(f"{field} is {number}; token counts cannot be negative")
    return number


def text(value: object) -> str | None:
    """An id or name: strings and numbers as text; anything else is absent."""
    if type(value) is str and 0 < len(value) <= 200 and not value[0].isspace():
        return value.rstrip() or None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        shown = str(value).strip()
        return shown[:200] or None
    return None


def unix_ns(value: object, field: str, *, unit: str | None = None) -> int | None:
    """A time as Unix nanoseconds: an ISO 8601 string, or a number in ``unit`` (guessed
    from its size when not given: seconds, milliseconds, microseconds or nanoseconds)."""
    if value is None or value == "":
        return None
    if unit == "ns" and type(value) is str and value.isdigit():
        return int(value)
    if isinstance(value, str) and not value.strip().lstrip("-").replace(".", "", 1).isdigit():
        raw = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        if " " in raw and "T" not in raw:
            raw = raw.replace(" ", "T", 1)
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise MalformedRecordError(f"{field} is {value!r}; expected an ISO 8601 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise MalformedRecordError(f"{field} is {value!r}; expected a time")
    number = float(value) if isinstance(value, str) else value
    if unit is None:
        magnitude = abs(number)
        unit = "s" if magnitude < 1e11 else "ms" if magnitude < 1e14 else "us"
        unit = "ns" if magnitude >= 1e17 else unit
    if isinstance(number, float):
        return round(number * _NS[unit])
    return number * _NS[unit]


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def outcome(value: object) -> int | None:
    """``promptbudget.outcome``: success/failure (also true/false, 1/0)."""
    shown = str(value).strip().lower() if value is not None else ""
    if shown in {"success", "succeeded", "ok", "true", "1", "resolved"}:
        return 1
    if shown in {"failure", "failed", "error", "false", "0", "unresolved"}:
        return 0
    return None
