"""Reading one field of a log record: token counts, ids, times, with a reason when invalid."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from promptbudget.replay.records import MalformedRecordError

_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
MAX_TOKENS = 10**12  # more than any context window by far: a corrupt value, not a count
_LATEST_NS = 4_102_444_800 * 10**9  # 2100-01-01: later is a corrupt time


def tokens(value: object, field: str) -> int:
    """A token count: a non-negative whole number (OTLP JSON writes int64 as a string)."""
    if type(value) is int and 0 <= value < MAX_TOKENS:
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
    if number >= MAX_TOKENS:
        raise MalformedRecordError(f"{field} is {number:,}; no call has that many tokens")
    return number


def text(value: object) -> str | None:
    """An id or name: strings and numbers as text; anything else is absent."""
    if type(value) is str and 0 < len(value) <= 200 and value.isprintable():
        return value.strip() or None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        shown = "".join(c if c.isprintable() else " " for c in str(value)[:200]).strip()
        return shown or None
    return None


def unix_ns(value: object, field: str, *, unit: str | None = None) -> int | None:
    """A time as Unix nanoseconds (see :func:`_unix_ns`), between 1970 and 2100."""
    found = _unix_ns(value, field, unit=unit)
    if found is not None and not 0 <= found < _LATEST_NS:
        raise MalformedRecordError(f"{field} is {value!r}; expected a time between 1970 and 2100")
    return found


def _unix_ns(value: object, field: str, *, unit: str | None = None) -> int | None:
    """A time as Unix nanoseconds: an ISO 8601 string, or a number in ``unit`` (guessed
    from its size when not given: seconds, milliseconds, microseconds or nanoseconds)."""
    if value is None or value == "":
        return None
    if unit == "ns" and type(value) is str and value.isdigit():
        return int(value)
    if isinstance(value, datetime):  # a Parquet TIMESTAMP column
        moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    if isinstance(value, str) and not value.strip().lstrip("-").replace(".", "", 1).isdigit():
        raw = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        if " " in raw and "T" not in raw:
            raw = raw.replace(" ", "T", 1)
        try:
            moment = datetime.fromisoformat(raw)
        except (ValueError, OverflowError):
            raise MalformedRecordError(f"{field} is {value!r}; expected an ISO 8601 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise MalformedRecordError(f"{field} is {value!r}; expected a time")
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError:
        raise MalformedRecordError(f"{field} is {value!r}; expected a time") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise MalformedRecordError(f"{field} is {value!r}; expected a time")
    if unit is None:
        magnitude = abs(number)
        unit = "s" if magnitude < 1e11 else "ms" if magnitude < 1e14 else "us"
        unit = "ns" if magnitude >= 1e17 else unit
    if isinstance(number, float):
        return round(number * _NS[unit])
    return number * _NS[unit]


def duration_ms(value: object, field: str, *, unit: str = "s") -> float | None:
    """A duration in ``unit`` (``s`` or ``ms``; a number, or a string of one) as
    milliseconds; absent when missing, malformed when negative, not a finite number, or a
    day or more."""
    if value is None or value == "":
        return None
    try:
        number = float(value) if isinstance(value, (int, float, str)) else math.nan
    except ValueError:
        number = math.nan
    ms = number * (1000 if unit == "s" else 1)
    if isinstance(value, bool) or not math.isfinite(ms) or not 0 <= ms < 86_400_000:
        raise MalformedRecordError(f"{field} is {value!r}; expected a duration in {unit}")
    return ms


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
