"""Limits below the workflow: on a step (``steps[i].limits``, checked by the PB1xx rule of the
same key) and on a template (``templates:``, PB111)."""

from __future__ import annotations

from collections.abc import Iterator

from promptbudget.findings import Finding, Severity
from promptbudget.headroom import LimitCheck, step_checks, template_checks
from promptbudget.rules.base import Rule, RuleContext, plural, rule
from promptbudget.units import format_tokens, format_usd, format_usd_apart

# What a step limit measures, as a sentence: "sends 612 input tokens at its largest call".
_WHAT = {
    "max_input_tokens": "sends {measured} input tokens at its largest call",
    "max_output_tokens": "may output up to {measured} tokens per call",
    "max_turns": "runs {measured}",
    "max_tool_calls": "makes {measured} per request",
    "max_cost_per_request": "costs {measured} per request",
}


def _shown(check: LimitCheck, value: object) -> str:
    if check.key == "max_turns":
        return plural(value, "turn")
    if check.key == "max_tool_calls":
        return plural(value, "tool call")
    if check.unit == "usd":
        return format_usd_apart(value, check.limit)  # type: ignore[arg-type]
    return format_tokens(value)  # type: ignore[arg-type]


def step_limit_findings(
    self: Rule, ctx: RuleContext, severity: Severity, key: str
) -> Iterator[Finding]:
    """Findings for step limits of ``key`` that are exceeded: at the limit's line, except
    input, which the template causes (at the template, as PB101 on a workflow limit)."""
    for workflow in ctx.workflows:
        for check in step_checks(workflow, ctx.manifest.display_path if ctx.manifest else None):
            if check.key != key or check.status != "over":
                continue
            assert check.measured is not None
            step = next(s for s in workflow.steps if s.name == check.step)
            limit = (
                format_usd(check.limit, exact=True)  # type: ignore[arg-type]
                if check.unit == "usd"
                else f"{check.limit:,}"
            )
            approx = "" if check.exact else " (an estimated count)"
            what = _WHAT[key].format(measured=_shown(check, check.measured))
            on_template = key == "max_input_tokens"
            yield self.finding(
                severity,
                f"step '{check.step}' of workflow '{workflow.name}' {what}{approx}, over its "
                f"step limit {key} {limit}"
                + (f" ({check.path}:{check.line})" if on_template and check.line else ""),
                path=step.template_path if on_template else check.path,
                line=1 if on_template else check.line,
                workflow=workflow.name,
                step=check.step,
                measured=check.measured,
                limit=check.limit,
                unit=check.unit,
                message_paths=(check.path or "",) if on_template else (),
            )


@rule(
    "PB111",
    "template-over-budget",
    Severity.ERROR,
    "a template has more tokens than its max_tokens under templates:",
)
def template_over_budget(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A template renders to more tokens than a ``templates:`` limit allows.

    Why: a prompt grows one helpful sentence at a time, and every token of it is paid on
    every call. A per-template limit (a size-limit for prompts) needs no workflow and no
    price: the template is rendered with its samples and the manifest's variables (caps at
    their caps) and its message tokens are counted, the ``tokens`` column of ``count``, with
    the template's own model or with each model or encoding named.

    Fails:
        templates:
          prompts/system.txt: {max_tokens: 500}     # system.txt is 612 tokens

    Passes:
        templates:
          prompts/system.txt: {max_tokens: 700}
          "prompts/rag/*.j2": {max_tokens: {gpt-4.1: 2k, cl100k_base: 2.1k}}
    """
    manifest = ctx.manifest
    for check in template_checks(ctx.templates, manifest):
        if check.status != "over":
            continue
        assert check.measured is not None and manifest is not None
        approx = "" if check.exact else " (an estimated count)"
        yield self.finding(
            severity,
            f"template has {format_tokens(int(check.measured))} tokens counted with "
            f"{check.counted_with}{approx}, over max_tokens {format_tokens(int(check.limit))} "
            f"for {check.template} by {format_tokens(int(check.measured - check.limit))} "
            f"({check.path}:{check.line})",
            path=check.template,
            line=1,
            measured=check.measured,
            limit=check.limit,
            unit="tokens",
            message_paths=(check.template or "", check.path or ""),
        )
