"""Production statistics judged by the same rules, codes and severities as ``check``.

A breach says how far over the limit production went, how often, when (the first and last
day it happened) and where (example request ids, to look up in the tracing tool)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from decimal import Decimal

from promptbudget.findings import Finding, Severity
from promptbudget.manifest.model import Manifest, Workflow
from promptbudget.replay.stats import UNMATCHED, Metric, WorkflowStats, usd
from promptbudget.rules import RULES
from promptbudget.units import format_tokens, format_usd


def day(ns: int | None) -> str:
    if ns is None:
        return "?"
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d")


def window(first: int | None, last: int | None) -> str:
    start, end = day(first), day(last)
    return start if start == end else f"{start} to {end}"


def duration(days: float) -> str:
    """``7.0 days``, ``5.2 hours``, ``4 minutes``."""
    if days >= 1:
        return f"{days:.1f} days"
    hours = days * 24
    if hours >= 1:
        return f"{hours:.1f} hours"
    minutes = round(hours * 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def share(part: int, whole: int) -> str:
    """``3.2%`` (``<0.1%`` for a share too small to show)."""
    share = 100 * part / whole if whole else 0.0
    return f"{share:.1f}%" if share >= 0.1 or part == 0 else "<0.1%"


def _when(metric: Metric, unit: str) -> str:
    """``on 3.2% of requests (412 of 12,875), 2026-11-28 to 2026-12-04, e.g. 4bf9…, 00f0…``"""
    text = (
        f"on {share(metric.over, metric.n)} of {unit} ({metric.over:,} of {metric.n:,}), "
        f"{window(metric.over_first_ns, metric.over_last_ns)}"
    )
    if metric.examples:
        text += "; e.g. " + ", ".join(metric.examples)
    return text


def _finding(
    code: str,
    severities: Mapping[str, Severity | None],
    message: str,
    manifest: Manifest,
    workflow: Workflow,
    key: str,
    *,
    step: str | None = None,
    measured: int | Decimal,
    limit: int | Decimal,
    unit: str,
) -> Finding | None:
    return replay_finding(
        code,
        severities,
        message,
        manifest,
        workflow,
        line=workflow.limit_lines.get(key, workflow.line),
        step=step,
        measured=measured,
        limit=limit,
        unit=unit,
    )


def replay_finding(
    code: str,
    severities: Mapping[str, Severity | None],
    message: str,
    manifest: Manifest,
    workflow: Workflow,
    *,
    line: int | None,
    step: str | None = None,
    measured: int | Decimal | None = None,
    limit: int | Decimal | None = None,
    unit: str | None = None,
) -> Finding | None:
    """A finding of rule ``code`` on ``workflow``, at the line of budgets.yaml it judges;
    None when the project turned the rule off."""
    rule = RULES[code]
    severity = severities.get(code, rule.default_severity)
    if severity is None:
        return None
    return Finding(
        rule=rule.code,
        slug=rule.slug,
        severity=severity,
        message=message,
        path=manifest.display_path,
        line=line,
        workflow=workflow.name,
        step=step,
        measured=measured,
        limit=limit,
        unit=unit,
    )


def judge(
    manifest: Manifest,
    observed: tuple[WorkflowStats, ...],
    severities: Mapping[str, Severity | None],
) -> Iterator[Finding]:
    by_name = {w.name: w for w in manifest.workflows}
    for stats in observed:
        workflow = by_name.get(stats.name)
        if workflow is None:
            continue
        for found in _workflow_findings(manifest, workflow, stats, severities):
            if found is not None:
                yield found
    unknown: dict[str, int] = {}
    for stats in observed:
        for step in stats.steps:
            for model in step.models:
                if model.unpriced:
                    unknown[model.model or "(no model)"] = (
                        unknown.get(model.model or "(no model)", 0) + model.unpriced
                    )
    rule = RULES["PB110"]
    severity = severities.get("PB110", rule.default_severity)
    for name, calls in sorted(unknown.items()):
        if severity is None:
            break
        yield Finding(
            rule=rule.code,
            slug=rule.slug,
            severity=severity,
            message=(
                f"{calls:,} logged calls on model {name!r} are not priced: it is neither in "
                "the catalog nor in budgets.yaml models:; their cost is missing from every "
                "total"
            ),
            path=manifest.display_path,
            measured=calls,
            unit="calls",
        )


def _workflow_findings(
    manifest: Manifest,
    workflow: Workflow,
    stats: WorkflowStats,
    severities: Mapping[str, Severity | None],
) -> Iterator[Finding | None]:
    limits = workflow.limits
    name = workflow.name
    for step in stats.steps:
        label = f"step '{step.step}' of workflow '{name}'" if step.step else f"workflow '{name}'"
        for code, key, metric, limit in (
            ("PB101", "max_input_tokens", step.input_tokens, limits.max_input_tokens),
            ("PB102", "max_output_tokens", step.output_tokens, limits.max_output_tokens),
        ):
            if limit is None or not metric.over:
                continue
            what = "input" if code == "PB101" else "output"
            yield _finding(
                code,
                severities,
                f"{label} sent calls of up to {format_tokens(int(metric.max))} {what} tokens "
                f"(p95 {format_tokens(round(metric.p95))}), over {key} {format_tokens(limit)} "
                f"{_when(metric, 'calls')}",
                manifest,
                workflow,
                key,
                step=step.step or None,
                measured=int(metric.max),
                limit=limit,
                unit="tokens",
            )
    for code, key, metric, limit, unit in (
        ("PB104", "max_turns", stats.turns, limits.max_turns, "turns"),
        ("PB105", "max_tool_calls", stats.tool_calls, limits.max_tool_calls, "tool calls"),
    ):
        if limit is None or not metric.over:
            continue
        yield _finding(
            code,
            severities,
            f"workflow '{name}' took up to {int(metric.max):,} {unit} per request "
            f"(p95 {metric.p95:,.1f}), over {key} {limit} {_when(metric, 'requests')}",
            manifest,
            workflow,
            key,
            measured=int(metric.max),
            limit=limit,
            unit=unit,
        )
    cost = stats.cost_per_request
    request_limit = limits.max_cost_per_request
    if request_limit is not None and cost.n:
        statistic = request_limit.statistic
        value = {"mean": cost.mean, "p50": cost.p50, "p95": cost.p95}[statistic]
        if usd(value) > request_limit.amount:
            yield _finding(
                "PB106",
                severities,
                f"workflow '{name}' cost {format_usd(usd(value))} per request at the "
                f"{statistic} in production, over max_cost_per_request "
                f"{format_usd(request_limit.amount, exact=True)} (max {format_usd(usd(cost.max))}; "
                f"{_when(cost, 'requests')})",
                manifest,
                workflow,
                "max_cost_per_request",
                measured=usd(value),
                limit=request_limit.amount,
                unit="usd",
            )
    monthly = limits.max_monthly_spend
    if monthly is not None and stats.requests:
        rate = usd(stats.monthly_run_rate_usd)
        if rate > monthly:
            yield _finding(
                "PB107",
                severities,
                f"workflow '{name}' runs at {format_usd(rate)} a month in production "
                f"({format_usd(usd(stats.cost_usd))} over {duration(stats.days)}, "
                f"{window(stats.first_ns, stats.last_ns)}), over max_monthly_spend "
                f"{format_usd(monthly, exact=True)}",
                manifest,
                workflow,
                "max_monthly_spend",
                measured=rate,
                limit=monthly,
                unit="usd",
            )
    outcome_limit = limits.max_cost_per_outcome
    success = stats.success_rate
    if outcome_limit is not None and cost.n:
        rate_used = Decimal(repr(success)) if success is not None else workflow.success_rate
        if rate_used > 0:
            per_request = {"mean": cost.mean, "p50": cost.p50, "p95": cost.p95}[
                outcome_limit.statistic
            ]
            per_outcome = usd(per_request) / rate_used
            source = (
                f"observed success rate {float(rate_used):.1%}"
                if success is not None
                else f"success_rate {float(rate_used):.0%} from budgets.yaml"
            )
            if per_outcome > outcome_limit.amount:
                yield _finding(
                    "PB108",
                    severities,
                    f"workflow '{name}' cost {format_usd(per_outcome)} per successful outcome "
                    f"in production ({source}), over max_cost_per_outcome "
                    f"{format_usd(outcome_limit.amount, exact=True)}",
                    manifest,
                    workflow,
                    "max_cost_per_outcome",
                    measured=per_outcome,
                    limit=outcome_limit.amount,
                    unit="usd",
                )


def unmatched(observed: tuple[WorkflowStats, ...], manifest: Manifest) -> list[WorkflowStats]:
    """Records no workflow of budgets.yaml claims (untagged, or tagged with an unknown name)."""
    names = {w.name for w in manifest.workflows}
    return [w for w in observed if w.name == UNMATCHED or w.name not in names]
