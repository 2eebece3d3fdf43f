"""The headroom model: share used, status and the small bar, from hand-computed figures."""

from __future__ import annotations

from decimal import Decimal

import pytest

from promptbudget.headroom import LimitCheck, bar, format_limit, format_measured, format_used


def check(
    measured: int | Decimal | None, limit: int | Decimal, key: str = "max_input_tokens"
) -> LimitCheck:
    return LimitCheck(level="workflow", key=key, limit=limit, measured=measured, workflow="w")


@pytest.mark.parametrize(
    ("measured", "limit", "used", "status", "shown"),
    [
        (8951, 8000, Decimal("111.8875"), "over", "112%"),  # 8,951 / 8,000
        (4000, 8000, Decimal(50), "ok", "50%"),
        (8000, 8000, Decimal(100), "ok", "100%"),  # at the limit still holds
        (3, 1000, Decimal("0.3"), "ok", "<1%"),
        (0, 1000, Decimal(0), "ok", "0%"),
    ],
)
def test_used_share_and_status(
    measured: int, limit: int, used: Decimal, status: str, shown: str
) -> None:
    entry = check(measured, limit)
    assert entry.used_pct == used
    assert entry.status == status
    assert format_used(entry) == shown


def test_unmeasured_has_no_share_and_no_bar() -> None:
    entry = check(None, Decimal(1000), key="max_monthly_spend")
    assert entry.status == "unmeasured"
    assert entry.used_pct is None
    assert format_measured(entry) == "-"
    assert format_used(entry) == "-"
    assert bar(entry) == ""


@pytest.mark.parametrize(
    ("measured", "expected"),
    [
        (0, "··········"),
        (1, "█·········"),  # something used shows at least one cell
        (449, "████······"),  # 44.9%: 4 of 10 cells
        (999, "█████████·"),  # rounded down: a full bar means at or over the limit
        (1000, "██████████"),
        (5000, "██████████"),  # over: full, never longer
    ],
)
def test_bar(measured: int, expected: str) -> None:
    assert bar(check(measured, 1000)) == expected


def test_dollars_keep_enough_digits_to_differ_from_the_limit() -> None:
    entry = check(Decimal("0.0059999"), Decimal("0.006"), key="max_cost_per_request")
    assert format_limit(entry) == "$0.006"
    assert format_measured(entry) != format_limit(entry)
    assert entry.unit == "usd"


def test_labels_name_statistic_and_counting_model() -> None:
    p95 = LimitCheck(
        level="workflow",
        key="max_cost_per_request",
        limit=Decimal(1),
        measured=None,
        statistic="p95",
    )
    assert p95.label == "$/request p95"
    template = LimitCheck(
        level="template",
        key="max_tokens",
        limit=500,
        measured=420,
        template="prompts/system.txt",
        counted_with="gpt-4.1",
    )
    assert template.label == "tokens (gpt-4.1)"
    assert template.subject == "prompts/system.txt"
    step = LimitCheck(level="step", key="max_turns", limit=3, measured=2, workflow="w", step="s")
    assert step.subject == "w/s"
