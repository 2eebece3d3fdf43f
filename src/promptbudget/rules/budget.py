"""Budget rules: each compares a workflow's estimate with a limit in ``budgets.yaml``."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import TypedDict

from promptbudget.estimates import StepEstimate, WorkflowEstimate
from promptbudget.findings import Finding, Severity
from promptbudget.headroom import LimitCheck, sampling_note
from promptbudget.lane import Lane
from promptbudget.manifest.model import DAYS_PER_MONTH, typical
from promptbudget.rules.base import Rule, RuleContext, TemplateResult, plural, rule
from promptbudget.rules.limits import step_limit_findings
from promptbudget.tokenizers import TOKENIZERS
from promptbudget.units import format_tokens, format_usd, format_usd_apart


class _Where(TypedDict):
    path: str | None
    line: int | None


def _at_limit(ctx: RuleContext, workflow: WorkflowEstimate, key: str) -> _Where:
    """Where a workflow limit is declared: the manifest, on the limit's line."""
    return {
        "path": ctx.manifest.display_path if ctx.manifest else None,
        "line": workflow.workflow.limit_lines.get(key, workflow.workflow.line),
    }


UNBOUNDED = frozenset({"model max", "unknown"})


def _call_label(lane: Lane) -> str:
    """Where the largest call of a lane is: ``at its largest call (turn 2, after tool call
    1 of 4 calls)``."""
    calls = lane.worst_calls()
    if len(calls) <= 1:
        return "per call"
    largest = max(range(len(calls)), key=lambda i: calls[i].input_tokens)
    per_turn = lane.step.tool_calls + 1
    turn, index = largest // per_turn + 1, largest % per_turn
    position = f"turn {turn}" + (f", after tool call {index}" if index else "")
    return f"at its largest call ({position} of {len(calls)} calls)"


def _lane_label(step: StepEstimate, lane: Lane) -> str:
    """``gpt-4.1, exact`` plus the traffic class when the workflow has several."""
    parts = [lane.model or "no model", "exact" if lane.exact else "estimated"]
    if len({other.traffic_class.name for other in step.lanes}) > 1:
        parts.append(f"traffic class {lane.traffic_class.name}")
    return ", ".join(parts)


@rule("PB101", "input-over-budget", Severity.ERROR, "a model call's input exceeds max_input_tokens")
def input_over_budget(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A model call sends more input tokens than ``max_input_tokens``.

    Why: input is most of the bill in chat and RAG workflows, and it grows with every turn
    and tool call because history is re-sent. The limit is checked against the largest call
    of each step (the worst case): the rendered template with variables at their caps, plus
    the history of earlier turns and tool results.

    Fails:
        limits: {max_input_tokens: 2k}   # answer.j2 renders to 2,400 tokens

    Passes:
        limits: {max_input_tokens: 3k}
    """
    for workflow in ctx.workflows:
        limit = workflow.workflow.limits.max_input_tokens
        if limit is None:
            continue
        for step in workflow.steps:
            lane = step.worst_lane
            measured = step.max_input_tokens
            if lane is None or measured <= limit:
                continue
            yield self.finding(
                severity,
                f"step '{step.name}' of workflow '{workflow.name}' sends "
                f"{format_tokens(measured)} input tokens {_call_label(lane)}, over "
                f"max_input_tokens {format_tokens(limit)} by {format_tokens(measured - limit)}"
                f" ({_lane_label(step, lane)})",
                path=step.template_path,
                line=1,
                workflow=workflow.name,
                step=step.name,
                measured=measured,
                limit=limit,
                unit="tokens",
            )
    yield from step_limit_findings(self, ctx, severity, "max_input_tokens")


@rule(
    "PB102", "output-over-budget", Severity.ERROR, "a call may output more than max_output_tokens"
)
def output_over_budget(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A call's output bound is above ``max_output_tokens``.

    Why: output tokens cost 4-8x input tokens. The bound is the call's ``max_tokens`` (from
    the template's front matter or the step's ``max_output_tokens``) when there is one,
    otherwise the step's declared ``output_tokens``.

    Fails:
        # answer.prompty: model.parameters.max_tokens: 4096
        limits: {max_output_tokens: 1000}

    Passes:
        # answer.prompty: model.parameters.max_tokens: 800
        limits: {max_output_tokens: 1000}
    """
    for workflow in ctx.workflows:
        limit = workflow.workflow.limits.max_output_tokens
        if limit is None:
            continue
        for step in workflow.steps:
            bounded = [lane for lane in step.lanes if lane.output.source not in UNBOUNDED]
            if not bounded:
                continue  # PB103 says the output is unbounded
            lane = max(bounded, key=lambda lane: lane.output.bound)
            measured = lane.output.bound
            if measured <= limit:
                continue
            what = "may reply with up to" if lane.output.cap is not None else "declares"
            yield self.finding(
                severity,
                f"step '{step.name}' of workflow '{workflow.name}' {what} "
                f"{format_tokens(measured)} output tokens per call, over max_output_tokens "
                f"{format_tokens(limit)}",
                **_at_limit(ctx, workflow, "max_output_tokens"),
                workflow=workflow.name,
                step=step.name,
                measured=measured,
                limit=limit,
                unit="tokens",
            )
    yield from step_limit_findings(self, ctx, severity, "max_output_tokens")


@rule("PB103", "output-unbounded", Severity.WARNING, "a call has no output-token limit at all")
def output_unbounded(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A step declares neither ``output_tokens`` nor a ``max_tokens`` cap.

    Why: without a bound the model may reply up to its maximum output, and that is what
    promptbudget prices the step at (the honest worst case), which is rarely what you expect.
    Declare the expected reply size (``output_tokens``) or cap it (``max_output_tokens`` on
    the step, ``max_tokens`` in the template).

    Fails:
        steps:
          - prompt: answer.j2        # no output_tokens, no max_tokens anywhere

    Passes:
        steps:
          - prompt: answer.j2
            output_tokens: 300
    """
    for workflow in ctx.workflows:
        for step in workflow.steps:
            unbounded = {lane.model: lane for lane in step.lanes if lane.output.source in UNBOUNDED}
            if not unbounded:
                continue
            priced = []
            for model, lane in unbounded.items():
                if lane.output.source == "model max":
                    priced.append(
                        f"{model} at its maximum output, "
                        f"{format_tokens(typical(lane.output.tokens))} tokens per call"
                    )
                else:
                    priced.append(
                        f"{model or 'no model'}: output is not priced (its maximum output is "
                        "unknown)"
                    )
            first = next(iter(unbounded.values()))
            yield self.finding(
                severity,
                f"step '{step.name}' of workflow '{workflow.name}' has no output limit; "
                f"priced {'; '.join(priced)}. Set output_tokens or max_output_tokens on the step",
                path=ctx.manifest.display_path if ctx.manifest else None,
                line=step.step.line,
                workflow=workflow.name,
                step=step.name,
                measured=typical(first.output.tokens),
                unit="tokens",
            )


@rule("PB104", "turns-over-budget", Severity.ERROR, "turns exceed max_turns")
def turns_over_budget(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A step runs more conversation turns than ``max_turns``.

    Why: every turn re-sends the whole history, so cost grows with the square of the turn
    count.

    Fails:
        steps: [{prompt: chat.j2, turns: 8}]
        limits: {max_turns: 6}

    Passes:
        steps: [{prompt: chat.j2, turns: 4}]
        limits: {max_turns: 6}
    """
    for workflow in ctx.workflows:
        limit = workflow.workflow.limits.max_turns
        if limit is None:
            continue
        for step in workflow.steps:
            if step.step.turns <= limit:
                continue
            yield self.finding(
                severity,
                f"step '{step.name}' of workflow '{workflow.name}' runs "
                f"{plural(step.step.turns, 'turn')}, over max_turns {limit}",
                **_at_limit(ctx, workflow, "max_turns"),
                workflow=workflow.name,
                step=step.name,
                measured=step.step.turns,
                limit=limit,
                unit="turns",
            )
    yield from step_limit_findings(self, ctx, severity, "max_turns")


@rule("PB105", "tool-calls-over-budget", Severity.ERROR, "tool calls exceed max_tool_calls")
def tool_calls_over_budget(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A request makes more tool calls than ``max_tool_calls``.

    Why: each tool call is one more model call with the tool result appended to the history.
    The count is per request: ``turns x tool_calls`` summed over the workflow's steps.

    Fails:
        steps: [{prompt: agent.j2, turns: 2, tool_calls: 2}]   # 4 tool calls
        limits: {max_tool_calls: 3}

    Passes:
        steps: [{prompt: agent.j2, turns: 1, tool_calls: 2}]
        limits: {max_tool_calls: 3}
    """
    for workflow in ctx.workflows:
        limit = workflow.workflow.limits.max_tool_calls
        measured = workflow.tool_calls_per_request
        if limit is None or measured <= limit:
            continue
        yield self.finding(
            severity,
            f"workflow '{workflow.name}' makes {plural(measured, 'tool call')} per request "
            f"(turns x tool_calls over its steps), over max_tool_calls {limit}",
            **_at_limit(ctx, workflow, "max_tool_calls"),
            workflow=workflow.name,
            measured=measured,
            limit=limit,
            unit="tool_calls",
        )
    yield from step_limit_findings(self, ctx, severity, "max_tool_calls")


def _per(unit: str, statistic: str) -> str:
    """``per request``, or ``per request at the p95`` for a limit on a percentile."""
    return f"per {unit}" if statistic == "mean" else f"per {unit} at the {statistic}"


def _money_finding(
    self: Rule,
    ctx: RuleContext,
    severity: Severity,
    workflow: WorkflowEstimate,
    key: str,
    what: str,
    measured: Decimal,
    limit: Decimal,
    band: tuple[Decimal, Decimal] | None = None,
) -> Finding:
    limit_text = format_usd(limit, exact=True)
    measured_text = format_usd_apart(measured, limit)
    notes = []
    if limit:
        over = (measured - limit) / limit * 100
        notes.append(f"{over:.0f}% over" if over >= 1 else f"{over.normalize():.2g}% over")
    if band is not None:  # a sampled percentile: how precise it is
        check = LimitCheck("workflow", key, limit, measured, band=band, samples=workflow.samples)
        notes.append(sampling_note(check))
    share = f" ({'; '.join(notes)})" if notes else ""
    partial = "" if workflow.is_complete else " (at least: a step's model is unknown)"
    return self.finding(
        severity,
        f"workflow '{workflow.name}' costs {measured_text} {what}{partial}, over "
        f"{key} {limit_text}{share}",
        **_at_limit(ctx, workflow, key),
        workflow=workflow.name,
        measured=measured,
        limit=limit,
        unit="usd",
    )


@rule(
    "PB106",
    "cost-per-request-over-budget",
    Severity.ERROR,
    "a request costs more than max_cost_per_request",
)
def cost_per_request_over_budget(
    self: Rule, ctx: RuleContext, severity: Severity
) -> Iterator[Finding]:
    """One request of the workflow costs more than ``max_cost_per_request``.

    Why: the cost of a request is what every user interaction costs you: the sum over its
    steps of every model call (turns x (1 + tool calls)), each priced with the model's rates,
    the long-context tier applied to the whole call when its prompt is above the threshold.
    The mean is exact; a limit on the p50 or p95 (``{p95: $0.015}``) is judged on the
    Monte Carlo run's percentile, and the message gives its 95% band and, when the limit
    lies inside it, says the verdict is within sampling error.

    Fails:
        limits: {max_cost_per_request: $0.002}   # the workflow costs $0.0031

    Passes:
        limits: {max_cost_per_request: $0.004}
    """
    for workflow in ctx.workflows:
        limit = workflow.workflow.limits.max_cost_per_request
        if limit is None:
            continue
        measured = workflow.cost.get(limit.statistic)
        if measured > limit.amount:
            yield _money_finding(
                self,
                ctx,
                severity,
                workflow,
                "max_cost_per_request",
                _per("request", limit.statistic),
                measured,
                limit.amount,
                workflow.cost.band(limit.statistic),
            )
    yield from step_limit_findings(self, ctx, severity, "max_cost_per_request")


@rule(
    "PB107",
    "monthly-spend-over-budget",
    Severity.ERROR,
    "projected monthly spend exceeds max_monthly_spend",
)
def monthly_spend_over_budget(
    self: Rule, ctx: RuleContext, severity: Severity
) -> Iterator[Finding]:
    """Projected monthly spend is above ``max_monthly_spend`` (or daily spend above
    ``max_daily_spend``).

    Why: this is the number finance sees: cost per request x requests per day x 30 (a day:
    requests per day x cost per request). It needs ``traffic: {requests_per_day: N}`` on the
    workflow; without traffic the rule cannot run and says so. The run-time guard
    (``promptbudget.runtime``) enforces the same two limits on the spend actually recorded.

    Fails:
        traffic: {requests_per_day: 20000}
        limits: {max_monthly_spend: $1,000}   # projects to $1,860

    Passes:
        limits: {max_monthly_spend: $2,000}
    """
    for workflow in ctx.workflows:
        limits = workflow.workflow.limits
        monthly = workflow.monthly_spend_usd
        for key, limit, days, what in (
            ("max_monthly_spend", limits.max_monthly_spend, DAYS_PER_MONTH, "per month"),
            ("max_daily_spend", limits.max_daily_spend, 1, "per day"),
        ):
            if limit is None:
                continue
            if monthly is None:
                yield self.finding(
                    severity,
                    f"workflow '{workflow.name}' has {key} but no traffic; add "
                    "'traffic: {requests_per_day: N}' so its spend can be projected",
                    **_at_limit(ctx, workflow, key),
                    workflow=workflow.name,
                    limit=limit,
                    unit="usd",
                )
                continue
            measured = monthly * days / DAYS_PER_MONTH
            if measured > limit:
                yield _money_finding(self, ctx, severity, workflow, key, what, measured, limit)


@rule(
    "PB108",
    "cost-per-outcome-over-budget",
    Severity.ERROR,
    "cost per successful outcome exceeds max_cost_per_outcome",
)
def cost_per_outcome_over_budget(
    self: Rule, ctx: RuleContext, severity: Severity
) -> Iterator[Finding]:
    """Cost per successful outcome is above ``max_cost_per_outcome``.

    Why: failed requests are paid for too. Cost per outcome = cost per request /
    ``success_rate``: at 92% success, every success carries 8.7% more than its own request.

    Fails:
        success_rate: 80%
        limits: {max_cost_per_outcome: $0.010}   # $0.009 / 0.8 = $0.01125

    Passes:
        success_rate: 95%
        limits: {max_cost_per_outcome: $0.010}   # $0.009 / 0.95 = $0.00947
    """
    for workflow in ctx.workflows:
        limit = workflow.workflow.limits.max_cost_per_outcome
        if limit is None:
            continue
        measured = workflow.outcome.get(limit.statistic)
        if measured > limit.amount:
            yield _money_finding(
                self,
                ctx,
                severity,
                workflow,
                "max_cost_per_outcome",
                _per("successful outcome", limit.statistic),
                measured,
                limit.amount,
                workflow.outcome.band(limit.statistic),
            )


@rule(
    "PB109",
    "context-window-exceeded",
    Severity.ERROR,
    "input + output exceed the model's context window",
)
def context_window_exceeded(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A call's input plus its output bound does not fit the model's context window.

    Why: the provider rejects (or silently truncates) such a request. Checked on the largest
    call of each step, with the catalog's context window for the model.

    Fails:
        model: gpt-4o            # 128,000-token window
        variables: {document: {max_tokens: 130k}}

    Passes:
        model: gpt-4.1           # 1,047,576-token window
    """
    for workflow in ctx.workflows:
        for step in workflow.steps:
            worst: dict[str, tuple[int, int, Lane]] = {}
            for lane in step.lanes:
                window = lane.price.context_window if lane.price else None
                if window is None or lane.prompt is None:
                    continue
                measured = lane.max_input_tokens + lane.output.bound
                if measured > window and measured > worst.get(lane.model, (0, 0, lane))[0]:
                    worst[lane.model] = (measured, window, lane)
            for model, (measured, window, lane) in worst.items():
                yield self.finding(
                    severity,
                    f"step '{step.name}' of workflow '{workflow.name}' needs "
                    f"{format_tokens(measured)} tokens (input "
                    f"{format_tokens(lane.max_input_tokens)} + output "
                    f"{format_tokens(lane.output.bound)}), more than {model}'s context window "
                    f"of {format_tokens(window)}",
                    path=step.template_path,
                    line=1,
                    workflow=workflow.name,
                    step=step.name,
                    measured=measured,
                    limit=window,
                    unit="tokens",
                )


@rule(
    "PB110", "unknown-model", Severity.ERROR, "a model is neither in the catalog nor the manifest"
)
def unknown_model(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A model name is not in the price catalog and not declared in the manifest.

    Why: an unknown model cannot be priced, and a silent $0 is the worst possible answer.
    Check the spelling against ``promptbudget models``, or declare the model with its prices
    under ``models:`` in budgets.yaml.

    Fails:
        model: gpt-4o-mni

    Passes:
        model: gpt-4o-mini
        # or, for a private deployment:
        models:
          acme-small: {tokenizer: o200k_base, input_per_mtok: 0.10, output_per_mtok: 0.40}
    """
    manifest = ctx.manifest
    catalog = manifest.catalog if manifest else None
    defaults_line = manifest.lines.get("$.defaults.model") if manifest else None
    from_defaults: list[TemplateResult] = []  # reported once, at defaults.model's line
    for result in ctx.templates:
        if result.model_known or result.count.model is None or result.in_workflow:
            continue
        near = ", ".join(result.closest_models)
        hint = f"; did you mean {near}?" if near else "."
        if (
            manifest is not None
            and defaults_line is not None
            and result.parsed.meta.model is None
            and result.count.model == manifest.default_model
        ):
            from_defaults.append(result)
            continue
        yield self.finding(
            severity,
            f"model '{result.count.model}' is not in the price catalog{hint} Its tokens were "
            f"{_counted_with(result)}; declare it under models: in budgets.yaml to price it",
            path=result.parsed.display_path,
            line=1,
        )
    if from_defaults and manifest is not None:
        first = from_defaults[0]
        near = ", ".join(first.closest_models)
        hint = f"; did you mean {near}?" if near else "."
        more = f" and {len(from_defaults) - 1} more" if len(from_defaults) > 1 else ""
        yield self.finding(
            severity,
            f"defaults.model '{first.count.model}' is not in the price catalog{hint} "
            f"{first.parsed.display_path}{more} use it; their tokens were "
            f"{_counted_with(first)}; fix the name, or declare it under models: to price it",
            path=manifest.display_path,
            line=defaults_line,
            message_paths=(first.parsed.display_path,),
        )
    for workflow in ctx.workflows:
        for step in workflow.steps:
            for model in dict.fromkeys(lane.model for lane in step.lanes if lane.price is None):
                if not model:
                    message = (
                        f"step '{step.name}' of workflow '{workflow.name}' has no model: set "
                        "'model:' on the step, in the template's front matter, or 'defaults: "
                        "{model: ...}' in budgets.yaml"
                    )
                else:
                    near_names = catalog.closest(model) if catalog else []
                    hint = f"; did you mean {', '.join(near_names)}?" if near_names else "."
                    message = (
                        f"step '{step.name}' of workflow '{workflow.name}' uses model "
                        f"'{model}', which is not in the price catalog{hint} Its calls are "
                        "not priced; declare it under models: in budgets.yaml"
                    )
                yield self.finding(
                    severity,
                    message,
                    path=manifest.display_path if manifest else None,
                    line=(
                        manifest.model_line(workflow.name, step.step, model)
                        if manifest and model
                        else step.step.line
                    ),
                    workflow=workflow.name,
                    step=step.name,
                )


def _counted_with(result: TemplateResult) -> str:
    spec = TOKENIZERS[result.count.tokenizer]
    if spec.exact:
        return f"counted with {spec.encoding}"
    return f"counted as an estimate ({spec.encoding}, {spec.error_band})"
