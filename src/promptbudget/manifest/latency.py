"""The manifest's latency values: durations in milliseconds (fixed or ``{p50, p95}``), the
``max_latency_ms`` limit, and a model's speed under ``models:``. Each parser raises
``ValueError`` with what would be valid; convert.py adds the file and line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promptbudget.manifest.model import Duration, LatencyLimit, Milliseconds


def _ms(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not {what}; write milliseconds as a number such as 300")
    return float(value)


def parse_duration(value: object) -> Milliseconds:
    """``300`` -> 300.0; ``{p50: 300, p95: 900}`` -> ``Duration(300, 900)`` (p95 >= p50)."""
    if isinstance(value, Mapping):
        p50, p95 = _ms(value["p50"], "a time"), _ms(value["p95"], "a time")
        if p95 < p50:
            raise ValueError(f"p95 ({p95:,g} ms) is below p50 ({p50:,g} ms)")
        if p50 == 0 and p95 > 0:
            raise ValueError("p50 must be above 0 ms when p95 is")
        return Duration(p50, p95) if p95 > p50 else p50
    return _ms(value, "a time")


def parse_latency_limit(value: object) -> LatencyLimit:
    """``3000`` (the p95) or ``{p50: 1500, p95: 4000}`` (either or both)."""
    if isinstance(value, Mapping):
        p50 = _ms(value["p50"], "a latency limit") if "p50" in value else None
        p95 = _ms(value["p95"], "a latency limit") if "p95" in value else None
        if p50 is not None and p95 is not None and p95 < p50:
            raise ValueError(f"p95 ({p95:,g} ms) is below p50 ({p50:,g} ms)")
        return LatencyLimit(p50=p50, p95=p95)
    return LatencyLimit(p95=_ms(value, "a latency limit"))


def model_speed(entry: object) -> dict[str, Any]:
    """A ``models:`` entry's speed keys as catalog fields: ``ttft_ms: {p50, p95}`` becomes
    ``ttft_ms`` and ``ttft_p95_ms``; a bare ``ttft_ms`` clears a catalog p95."""
    assert isinstance(entry, Mapping)
    out: dict[str, Any] = {}
    if "ttft_ms" in entry:
        ttft = parse_duration(entry["ttft_ms"])
        if isinstance(ttft, Duration):
            out["ttft_ms"], out["ttft_p95_ms"] = ttft.p50, ttft.p95
        else:
            out["ttft_ms"], out["ttft_p95_ms"] = ttft, None
    if "output_tokens_per_second" in entry:
        out["output_tokens_per_second"] = _ms(entry["output_tokens_per_second"], "a speed")
    return out
