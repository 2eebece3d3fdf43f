"""Rules about suppressions themselves."""

from __future__ import annotations

from collections.abc import Iterator

from promptbudget.findings import Finding, Severity
from promptbudget.rules.base import Rule, RuleContext, rule
from promptbudget.suppressions import Suppression


def _written(suppression: Suppression) -> str:
    if suppression.scope == "path":
        return f"per_file_ignores {suppression.pattern!r}"
    kind = {"file": "disable", "line": "disable-line", "next-line": "disable-next-line"}
    return f"'promptbudget: {kind[suppression.scope]}'"


def _where(suppression: Suppression) -> str:
    match suppression.scope:
        case "path":
            return "on any file it matches"
        case "file":
            return "in this file"
        case "line" | "next-line":
            return f"on line {suppression.target_line}"


@rule(
    "PB002",
    "unused-suppression",
    Severity.WARNING,
    "a suppression silences nothing, or names no rule",
)
def unused_suppression(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A suppression comment or a ``per_file_ignores`` entry does not silence any finding,
    or names something that is not a rule.

    Why: suppressions outlive the problem they were written for. A stale one hides the next
    real finding on that line or file without anyone deciding to; a misspelt one never
    worked. Remove it, or correct the code (``promptbudget rules`` lists them). Only
    ``check`` reports this rule, since only ``check`` runs every rule.

    Fails:
        {# promptbudget: disable=PB203 #}      {# nothing in this file is PB203 #}
        You answer questions about Acme's products.

    Passes:
        {{ customer_name }} asked: {# promptbudget: disable-line=PB203 #}
        ...1,000 static tokens the provider cannot cache...
    """
    outcome = ctx.suppressions
    if outcome is None:
        return
    for suppression, name in outcome.unused:
        code = suppression.codes[suppression.names.index(name)]
        named = name if name == code else f"{name} ({code})"
        yield self.finding(
            severity,
            f"{_written(suppression)} names {named}, but no {code} finding is "
            f"{_where(suppression)}; remove it",
            path=suppression.path,
            line=suppression.line,
        )
    for suppression, name in outcome.unknown:
        yield self.finding(
            severity,
            f"{_written(suppression)} names {name!r}, which is not a rule (see 'promptbudget "
            "rules' for codes and slugs)",
            path=suppression.path,
            line=suppression.line,
        )
    for suppression in outcome.empty:
        yield self.finding(
            severity,
            f"{_written(suppression)} names no rule; write it with codes or slugs, e.g. "
            "'promptbudget: disable=PB203'",
            path=suppression.path,
            line=suppression.line,
        )
