"""How a base-to-head change reads, shared by the text and markdown diff reports."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from promptbudget.diffing import Breach, Change, TemplateDiff
from promptbudget.report import Report
from promptbudget.units import format_ms, format_usd, quantize

Kind = Literal["usd", "tokens", "ms"]


def value_text(value: Decimal | None, kind: Kind) -> str:
    if value is None:
        return "-"
    if kind == "usd":
        return format_usd(value)
    if kind == "ms":
        return format_ms(float(value))
    return f"{quantize(value, Decimal(1), ROUND_HALF_UP):,}"


def percent_text(percent: Decimal | None) -> str:
    if percent is None:
        return ""
    rounded = quantize(percent, Decimal("0.1"), ROUND_HALF_UP)
    if rounded == 0:
        return "0%" if percent == 0 else ("+0.0%" if percent > 0 else "-0.0%")
    return f"{'+' if rounded > 0 else ''}{rounded}%"


def delta_text(change: Change, kind: Kind) -> str:
    """``+$0.0012 (+11.0%)``, ``-120 (-4.2%)``, ``new``, ``removed`` or ``0``."""
    match change.status:
        case "added":
            return "new"
        case "removed":
            return "removed"
        case "unchanged":
            return "0"
        case "changed":
            delta = change.delta
            if delta is None:  # measured on one side only (e.g. traffic declared since)
                return "-"
            sign = "+" if delta > 0 else "-"
            amount = value_text(abs(delta), kind)
            percent = percent_text(change.percent)
            return f"{sign}{amount} ({percent})" if percent else f"{sign}{amount}"


def span_text(change: Change, kind: Kind) -> str:
    """``$0.0109 → $0.0121``; one value when it did not change or exists on one side."""
    if change.status in ("unchanged", "added"):
        return value_text(change.head, kind)
    if change.status == "removed":
        return value_text(change.base, kind)
    return f"{value_text(change.base, kind)} → {value_text(change.head, kind)}"


def breach_text(breach: Breach, threshold: Decimal) -> str:
    kind: Kind = "tokens" if "tokens" in breach.quantity else "usd"
    return (
        f"{breach.subject}: {breach.quantity} rose {percent_text(breach.change.percent)} "
        f"({span_text(breach.change, kind)}), above --fail-on-increase {threshold.normalize():f}%"
    )


def summary_line(report: Report, output: str) -> str:
    """One line for the log of a ``diff --output FILE`` run: the base, what moved, the
    verdict and where the report went."""
    diff = report.diff
    assert diff is not None
    total = diff.monthly_total
    parts = []
    if total.delta is not None and total.delta != 0:
        parts.append(f"monthly spend {delta_text(total, 'usd')}")
    changed = [
        f"{len(items)} {what}{'' if len(items) == 1 else 's'}"
        for items, what in (
            (diff.changed_workflows, "workflow"),
            (diff.changed_templates, "template"),
        )
        if items
    ]
    parts.append(f"{' and '.join(changed)} changed" if changed else "no change")
    if diff.new_findings:
        count = len(diff.new_findings)
        parts.append(f"{count} new finding{'' if count == 1 else 's'}")
    if diff.breaches:
        count = len(diff.breaches)
        parts.append(f"{count} rise{'' if count == 1 else 's'} above --fail-on-increase")
    verdict = "fails" if report.exit_code else "passes"
    return (
        f"promptbudget diff vs {diff.base_ref} ({diff.base_commit[:7]}): {'; '.join(parts)}; "
        f"{verdict} (exit {report.exit_code}); report written to {output}"
    )


def via_text(template: TemplateDiff) -> str | None:
    """``prompts/a.j2 → prompts/partials/b.j2:3``: where a template grew through an include."""
    if not template.via:
        return None
    return " → ".join(template.via) + (f":{template.line}" if template.line else "")
