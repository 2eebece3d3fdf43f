"""PB119: rules only ``replay`` can apply (what production did over time, not what a
manifest says); their ``check`` functions find nothing."""

from __future__ import annotations

from collections.abc import Iterator

from promptbudget.findings import Finding, Severity
from promptbudget.rules.base import Rule, RuleContext, rule


@rule(
    "PB119",
    "sudden-change",
    Severity.WARNING,
    "production changed between two time windows (replay --compare-to)",
)
def sudden_change(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A step's output length, input size (retrieved context), retry rate, escalation rate or
    fallback rate moved sharply between two windows of production logs
    (``replay --since A --until B --compare-to C..D``).

    Why: the usual surprise on an LLM bill is not a budget that was wrong from the start but a
    change nobody shipped on purpose: a model update that writes longer answers, a retriever
    that returns twice the context, a provider incident that makes calls fail and retry, a
    fallback that quietly sends traffic to a dearer model. Comparing this week with the last
    shows it the day it happens, with what it costs and how much slower it made the step.
    Thresholds (defaults; budgets.yaml ``replay.changes``): both windows have at least 30
    calls of the step; means move by more than 25%; rates by at least 5 points, with a
    two-proportion z-score of at least 3.

    Fails:
        # calls of 'answer' averaging 200 output tokens last week, 420 this week

    Passes:
        # 200 then 215 output tokens (+8%), or fewer than 30 calls in a window
    """
    return iter(())
