"""Latency rules: a workflow's or a step's simulated p50/p95 against ``max_latency_ms``
(``latency.py`` simulates it; ``replay`` judges observed latency against the same limits)."""

from __future__ import annotations

from collections.abc import Iterator

from promptbudget.estimates import WorkflowEstimate
from promptbudget.findings import Finding, Severity
from promptbudget.headroom import (
    LimitCheck,
    limit_statistic,
    sampling_note,
    step_checks,
    workflow_checks,
)
from promptbudget.rules.base import Rule, RuleContext, rule
from promptbudget.units import format_ms

KEY = "max_latency_ms"


def latency_checks(ctx: RuleContext, workflow: WorkflowEstimate) -> list[LimitCheck]:
    where = ctx.manifest.display_path if ctx.manifest else None
    return [
        check
        for check in (*workflow_checks(workflow, where), *step_checks(workflow, where))
        if check.key == KEY
    ]


def _subject(check: LimitCheck) -> str:
    if check.level == "step":
        return f"step '{check.step}' of workflow '{check.workflow}'"
    return f"workflow '{check.workflow}'"


def _slowest(workflow: WorkflowEstimate, statistic: str) -> str:
    """``; slowest step: answer (7,100 ms at p95)`` for a workflow with several steps."""
    latency = workflow.latency
    if latency is None or len(latency.steps) < 2:
        return ""
    known = [step for step in latency.steps if step.stats is not None]
    if not known:
        return ""
    stat = limit_statistic(statistic)
    slowest = max(known, key=lambda step: step.stats.get(stat) if step.stats else 0.0)
    assert slowest.stats is not None
    return f"; slowest step: {slowest.step} ({format_ms(slowest.stats.get(stat))} at {stat})"


@rule(
    "PB117",
    "latency-over-budget",
    Severity.ERROR,
    "simulated p50/p95 latency exceeds max_latency_ms",
)
def latency_over_budget(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A request (or a step) takes longer than ``max_latency_ms`` at its p50 or p95.

    Why: a service goal is stated in seconds as well as dollars, and routing decisions trade
    one for the other: a cascade saves money and adds a second call when it escalates, a
    retry adds its backoff and the call again, a slower model adds seconds to every reply.
    Latency is simulated in the same run as cost from each model's speed (time to first token
    + output tokens / output tokens per second), the steps' tool and retrieval times, and
    every escalation, retry and semantic-cache hit drawn per request; a bare number limits
    the p95. The message gives the simulated percentile's 95% band (and says when the limit
    lies inside it: within sampling error). ``replay`` judges observed latency against the
    same limit.

    Fails:
        limits: {max_latency_ms: 6000}   # p95 is 9,500 ms: 15% of requests escalate to
                                         # a model that takes 4.8 s more

    Passes:
        limits: {max_latency_ms: {p50: 5000, p95: 10000}}
    """
    for workflow in ctx.workflows:
        for check in latency_checks(ctx, workflow):
            if check.status != "over":
                continue
            assert check.measured is not None
            statistic = check.statistic or "p95"
            over = (check.measured - check.limit) / check.limit * 100 if check.limit else 0
            note = sampling_note(check)  # a sampled percentile: how precise it is
            share = f"{over:.0f}% over" if over >= 1 else f"{over:.2g}% over"
            share = f" ({share}; {note})" if note else f" ({share})"
            slowest = _slowest(workflow, statistic) if check.level == "workflow" else ""
            measured = format_ms(float(check.measured), other=float(check.limit))
            yield self.finding(
                severity,
                f"{_subject(check)} takes {measured} at {statistic} per request (simulated), "
                f"over {'its step limit ' if check.level == 'step' else ''}{KEY} {statistic} "
                f"{format_ms(float(check.limit), exact=True)}"
                f"{share}{slowest}",
                path=check.path,
                line=check.line,
                workflow=check.workflow,
                step=check.step,
                measured=check.measured,
                limit=check.limit,
                unit="ms",
            )


@rule(
    "PB118",
    "latency-unknown",
    Severity.WARNING,
    "a latency limit cannot be judged: a model on the path has no speed",
)
def latency_unknown(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A workflow or step has ``max_latency_ms`` but a model it calls has no known speed.

    Why: latency is simulated from each model's time to first token and output tokens per
    second. The catalog has them only where a public, dated figure exists; a model without
    one would make the limit meaningless if its calls counted as zero seconds, so the limit
    is reported unknown instead. Declare the speed you measured under ``models:``.

    Fails:
        models:
          acme-small: {input_per_mtok: 0.1, output_per_mtok: 0.4}
        limits: {max_latency_ms: 3000}   # acme-small has no speed

    Passes:
        models:
          acme-small: {input_per_mtok: 0.1, output_per_mtok: 0.4,
                       ttft_ms: {p50: 300, p95: 900}, output_tokens_per_second: 120}
    """
    for workflow in ctx.workflows:
        seen: set[tuple[str, str | None]] = set()
        for check in latency_checks(ctx, workflow):
            if check.status != "unmeasured" or (check.level, check.step) in seen:
                continue
            seen.add((check.level, check.step))
            latency = workflow.latency
            if latency is None:
                continue
            if check.level == "step":
                step = latency.step(check.step or "")
                missing = step.missing if step is not None else ()
            else:
                missing = latency.missing
            if not missing:
                continue  # every step is asynchronous (batch): nothing interactive to judge
            names = ", ".join(missing)
            yield self.finding(
                severity,
                f"{_subject(check)} has {KEY} but its latency is unknown: no speed for "
                f"{names}; declare it under models: ({names}: {{ttft_ms: N, "
                "output_tokens_per_second: N})",
                path=check.path,
                line=check.line,
                workflow=check.workflow,
                step=check.step,
                unit="ms",
            )
