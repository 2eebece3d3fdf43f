"""Time-of-day pricing: which hours of the week a model bills at its off-peak rates, and how
much of a workflow's traffic lands in them.

DeepSeek bills half price outside its peak hours (Mon-Fri 01:00-04:00 and 06:00-10:00 UTC;
every other hour, and the whole weekend, is off-peak) [S39]. LiteLLM's price file carries the
off-peak rates and the windows (``off_peak_pricing``); the catalog keeps them as they are.

A traffic profile says when requests are sent: 24 hourly weights (every day alike) or 168
(Monday 00:00 to Sunday 23:00) in a named time zone. The off-peak share is the weighted share
of requests that fall in off-peak UTC hours. Local hours are mapped to UTC hour by hour over
one whole reference year, so a zone with daylight-saving time gets its real mix of offsets.
Without a profile, traffic is spread evenly over the week (168 equal hours).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from functools import cache

__all__ = [
    "HOURS_PER_WEEK",
    "OffPeakPricing",
    "TrafficProfile",
    "off_peak_share",
    "parse_windows",
]

HOURS_PER_WEEK = 168
REFERENCE_YEAR = 2026  # local-to-UTC mapping is averaged over this year's 8,760 hours


@dataclass(frozen=True)
class OffPeakPricing:
    """Rates billed in ``hours`` (hour of the week in UTC, 0 = Monday 00:00-01:00)."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None
    hours: frozenset[int]


@dataclass(frozen=True)
class TrafficProfile:
    """When requests are sent: ``hourly`` weights (24 or 168) in ``timezone``."""

    timezone: str
    hourly: tuple[Decimal, ...]

    def weekly(self) -> tuple[Decimal, ...]:
        """168 local-time weights, Monday 00:00 first."""
        return self.hourly * 7 if len(self.hourly) == 24 else self.hourly


def _hour(text: str) -> int:
    hours, sep, minutes = text.strip().partition(":")
    if not sep or minutes != "00" or not hours.isdigit() or not 0 <= int(hours) <= 24:
        raise ValueError(f"not a whole hour: {text!r} (expected HH:00)")
    return int(hours)


def parse_windows(windows: object) -> frozenset[int]:
    """LiteLLM's ``windows`` (``[{"weekdays": [1..7], "hours_utc": ["HH:00-HH:00", ...]}]``;
    1 = Monday; an end of ``00:00`` means midnight, so ``00:00-00:00`` is the whole day) as the
    set of off-peak hours of the week."""
    if not isinstance(windows, Sequence) or isinstance(windows, str):
        raise ValueError("off-peak windows must be a list")
    hours: set[int] = set()
    for window in windows:
        if not isinstance(window, Mapping):
            raise ValueError("an off-peak window must be a mapping")
        days = window.get("weekdays")
        spans = window.get("hours_utc")
        if isinstance(spans, str):
            spans = [spans]
        if not isinstance(days, Sequence) or not isinstance(spans, Sequence):
            raise ValueError("an off-peak window needs weekdays and hours_utc")
        for day in days:
            if not isinstance(day, int) or isinstance(day, bool) or not 1 <= day <= 7:
                raise ValueError(f"not a weekday (1-7): {day!r}")
            for span in spans:
                start_text, sep, end_text = str(span).partition("-")
                if not sep:
                    raise ValueError(f"not an hour range: {span!r}")
                start, end = _hour(start_text), _hour(end_text)
                end = 24 if end == 0 else end
                if start >= end:
                    raise ValueError(f"empty hour range: {span!r}")
                hours.update((day - 1) * 24 + hour for hour in range(start, end))
    return frozenset(hours)


@cache
def _utc_hours_of_local(timezone: str) -> tuple[tuple[int, ...], ...]:
    """For each local hour of the week, the UTC hours of the week it fell on during the
    reference year (one entry per occurrence)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {timezone!r} (use an IANA name)") from err
    found: list[list[int]] = [[] for _ in range(HOURS_PER_WEEK)]
    moment = datetime(REFERENCE_YEAR, 1, 1, tzinfo=dt_timezone.utc)
    end = datetime(REFERENCE_YEAR + 1, 1, 1, tzinfo=dt_timezone.utc)
    step = timedelta(hours=1)
    while moment < end:
        local = moment.astimezone(zone)
        found[local.weekday() * 24 + local.hour].append(moment.weekday() * 24 + moment.hour)
        moment += step
    return tuple(tuple(hours) for hours in found)


def is_time_zone(name: str) -> bool:
    """True for ``UTC`` and IANA zone names the system knows."""
    if name.upper() == "UTC":
        return True
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def off_peak_weights(
    hours: frozenset[int], profile: TrafficProfile | None = None
) -> tuple[Decimal, Decimal]:
    """(weight of traffic in off-peak ``hours``, total weight); without a profile, hours of
    the week (traffic spread evenly)."""
    if profile is None:
        return Decimal(len(hours)), Decimal(HOURS_PER_WEEK)
    weights = profile.weekly()
    total = sum(weights, Decimal(0))
    if not total:
        raise ValueError("a traffic profile needs at least one hour with traffic")
    if profile.timezone.upper() == "UTC":
        return sum((weights[h] for h in hours), Decimal(0)), total
    mapping = _utc_hours_of_local(profile.timezone)
    # Each local hour's weight is split over the UTC hours it fell on in the reference year.
    off = Decimal(0)
    counted = Decimal(0)
    for local_hour, utc_hours in enumerate(mapping):
        if not utc_hours or not weights[local_hour]:
            continue
        inside = sum(1 for hour in utc_hours if hour in hours)
        off += weights[local_hour] * inside / len(utc_hours)
        counted += weights[local_hour]
    return off, counted


def off_peak_share(hours: frozenset[int], profile: TrafficProfile | None = None) -> Decimal:
    """The share of requests (0-1) sent in off-peak ``hours``; even spread without a profile."""
    off, total = off_peak_weights(hours, profile)
    return off / total
