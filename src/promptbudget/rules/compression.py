"""Rules about waste in prompt text: duplicated passages, and what safe passes would save."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from promptbudget.compression import first_changed_line
from promptbudget.findings import Finding, Severity
from promptbudget.rules.base import Rule, RuleContext, rule
from promptbudget.units import format_share, format_tokens, format_usd


def _monthly(ctx: RuleContext, paths: tuple[str, ...], tokens: int) -> tuple[Decimal, list[str]]:
    total = Decimal(0)
    workflows: list[str] = []
    for path in paths:
        rate, names = ctx.token_rates.get(path, (Decimal(0), ()))
        total += rate * tokens
        workflows.extend(name for name in names if name not in workflows)
    return total, workflows


@rule(
    "PB204",
    "duplicated-text",
    Severity.WARNING,
    "the same long passage is pasted into several templates",
)
def duplicated_text(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A passage of at least 50 tokens (``compression.duplicate_min_tokens``) appears in
    several templates.

    Why: a policy pasted into three prompts is paid three times, drifts apart as one copy
    gets edited, and keeps each prompt from sharing a cached prefix. Put it in one partial
    and ``{% include %}`` it (Dotprompt: ``{{> partial}}``). The finding says what the copies
    cost a month across the workflows that send them.

    Fails:
        # prompts/answer.j2 and prompts/escalate.j2 both start with the same
        # 300-token "Support policy" paragraph

    Passes:
        # prompts/partials/policy.j2 holds the policy once
        {% include "partials/policy.j2" %}
    """
    for passage in ctx.passages:
        (first_path, first_line), *others = passage.locations
        cost, workflows = _monthly(ctx, passage.paths, passage.tokens)
        money = (
            f"; the copies cost {format_usd(cost)} a month across {', '.join(workflows)}"
            if workflows
            else ""
        )
        elsewhere = ", ".join(f"{path}:{line}" for path, line in others)
        preview = passage.text[:60] + ("..." if len(passage.text) > 60 else "")
        yield self.finding(
            severity,
            f'the same {format_tokens(passage.tokens)}-token passage ("{preview}") is also '
            f"in {elsewhere}{money}. Keep it once in a partial and include it",
            path=first_path,
            line=first_line,
            measured=passage.tokens,
            unit="tokens",
            message_paths=tuple(path for path, _ in others),
        )


@rule(
    "PB205",
    "compressible",
    Severity.WARNING,
    "safe compression passes would save a material share of a template",
)
def compressible(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """Safe compression passes would save at least 5% of a template's tokens
    (``compression.min_savings``).

    Why: trailing spaces, runs of blank lines, decorative rules and pretty-printed JSON are
    paid for on every call and carry no instruction. ``promptbudget compress --diff PATH``
    shows the change; ``--write`` applies it.

    Fails:
        Answer   the   question.



        ------------------------------------------------------------

    Passes:
        Answer the question.
    """
    for path, result in sorted(ctx.compressions.items()):
        if not result.tokens_before or result.tokens_saved <= 0:
            continue
        share = Decimal(result.tokens_saved) / result.tokens_before
        if share < ctx.min_savings:
            continue
        cost, workflows = _monthly(ctx, (path,), result.tokens_saved)
        money = f", about {format_usd(cost)} a month" if workflows else ""
        by_pass = ", ".join(
            f"{p.name} {format_tokens(p.tokens_saved)}" for p in result.passes if p.tokens_saved
        )
        percent = format_share(share.quantize(Decimal("0.001")))
        yield self.finding(
            severity,
            f"safe compression passes would save {format_tokens(result.tokens_saved)} of "
            f"{format_tokens(result.tokens_before)} tokens ({percent}; {by_pass}){money}. "
            f"Run 'promptbudget compress --diff {path}' to see it",
            path=path,
            line=first_changed_line(result.original, result.text),
            measured=result.tokens_saved,
            unit="tokens",
            message_paths=(path,),
        )
