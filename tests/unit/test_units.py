from __future__ import annotations

import re
from decimal import Decimal as D

import pytest

from promptbudget.manifest.loader import load_schema
from promptbudget.units import (
    PERCENT_PATTERN,
    TOKENS_PATTERN,
    USD_PATTERN,
    format_share,
    format_tokens,
    format_usd,
    parse_share,
    parse_tokens,
    parse_usd,
)


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        (6000, 6000),
        ("6k", 6000),
        ("6K", 6000),
        ("1.5M", 1_500_000),
        ("6,000", 6000),
        ("12_000", 12_000),
        (" 2k ", 2000),
        (0, 0),
        (3.0, 3),
    ],
)
def test_parse_tokens(value: object, tokens: int) -> None:
    assert parse_tokens(value) == tokens


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("abc", "not a token count"),
        (-1, "negative"),
        ("1.2345k", "whole number"),
        (True, "not a token count"),
        (None, "not a token count"),
        ("6 kb", "not a token count"),
    ],
)
def test_parse_tokens_rejects(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_tokens(value)


@pytest.mark.parametrize(
    ("value", "usd"),
    [
        (0.01, D("0.01")),
        ("$0.01", D("0.01")),
        ("$4,000", D("4000")),
        ("$1.5k", D("1500")),
        ("12", D("12")),
        (4000, D("4000")),
    ],
)
def test_parse_usd(value: object, usd: D) -> None:
    assert parse_usd(value) == usd


@pytest.mark.parametrize("value", ["four dollars", "-$1", -1, "$", False, [1]])
def test_parse_usd_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_usd(value)


@pytest.mark.parametrize(
    ("value", "share"),
    [("35%", D("0.35")), ("92.5%", D("0.925")), (0.35, D("0.35")), (1, D("1")), ("0%", D("0"))],
)
def test_parse_share(value: object, share: D) -> None:
    assert parse_share(value) == share


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (92, "write 92% or a fraction"),
        ("150%", "outside"),
        ("0.35", "percentage"),
        ("x%", "percentage"),
    ],
)
def test_parse_share_rejects(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_share(value)


def test_schema_patterns_match_the_parsers() -> None:
    """The schema carries the same grammar as units.py (so editors and the loader agree)."""
    defs = load_schema()["$defs"]
    assert defs["tokens"]["oneOf"][1]["pattern"] == TOKENS_PATTERN
    assert defs["usd"]["oneOf"][1]["pattern"] == USD_PATTERN
    assert defs["share"]["oneOf"][1]["pattern"] == PERCENT_PATTERN
    for text in ("6k", "1.5M", "6,000"):
        assert re.match(TOKENS_PATTERN, text)
        parse_tokens(text)


def test_formatting() -> None:
    assert format_tokens(12345) == "12,345"
    assert format_usd(D("4000")) == "$4,000.00"
    assert format_usd(D("0.00209")) == "$0.00209"
    assert format_usd(D("0.0000353")) == "$0.0000353"
    assert format_usd(D("0")) == "$0"
    assert format_usd(D("12.5")) == "$12.50"
    assert format_share(D("0.35")) == "35%"
