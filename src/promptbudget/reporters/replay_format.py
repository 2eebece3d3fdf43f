"""``promptbudget replay``: the tables and lines the text, markdown and JSON reporters share."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from promptbudget.replay.judgement import duration, window
from promptbudget.replay.latency import SpeedDrift
from promptbudget.replay.result import ReplayResult
from promptbudget.replay.stats import UNMATCHED, Metric, StepStats, WorkflowStats, usd
from promptbudget.units import format_ms, format_tokens, format_usd

STEP_HEADER = (
    "workflow",
    "step",
    "calls",
    "requests",
    "input p50/p95/max",
    "output p50/p95/max",
    "cached p50/p95",
    "cache hits",
    "turns p50/p95",
    "tools p50/p95",
    "latency p50/p95/max",
    "$/call",
    "models",
)
CHANGE_HEADER = ("step", "measure", "before", "after", "change", "calls", "cost", "latency")
SPEED_HEADER = ("model", "step", "speed", "declared", "observed p50", "gap", "calls")
DRIFT_HEADER = ("assumption", "budgets.yaml", "observed", "basis", "cost of the gap")


def _tokens(value: float) -> str:
    return format_tokens(round(value))


def _three(metric: Metric) -> str:
    if not metric.n:
        return "-"
    return f"{_tokens(metric.p50)} / {_tokens(metric.p95)} / {_tokens(metric.max)}"


def _two(metric: Metric, *, tokens: bool = True) -> str:
    if not metric.n:
        return "-"
    if tokens:
        return f"{_tokens(metric.p50)} / {_tokens(metric.p95)}"
    return f"{metric.p50:g} / {metric.p95:g}"


def latency_three(metric: Metric) -> str:
    if not metric.n:
        return "-"
    return f"{format_ms(metric.p50)} / {format_ms(metric.p95)} / {format_ms(metric.max)}"


def _usd(value: float) -> str:
    return format_usd(usd(value))


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def workflow_label(stats: WorkflowStats, known: tuple[str, ...]) -> str:
    if stats.name == UNMATCHED:
        return "(no workflow)"
    return stats.name if stats.name in known else f"{stats.name} (not in budgets.yaml)"


def models_text(step: StepStats) -> str:
    return ", ".join(
        f"{m.model or '?'} {_percent(m.calls / step.calls) if step.calls else ''}".strip()
        + (" unpriced" if m.unpriced else "")
        for m in step.models
    )


def step_rows(result: ReplayResult) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for stats in result.observed:
        label = workflow_label(stats, result.known_workflows)
        rows.extend(
            (
                label,
                step.step or "(no step)",
                f"{step.calls:,}",
                f"{step.requests:,}",
                _three(step.input_tokens),
                _three(step.output_tokens),
                _two(step.cache_read_tokens),
                _percent(step.cache_hit_rate) if step.calls else "-",
                _two(step.turns, tokens=False),
                _two(step.tool_calls, tokens=False),
                latency_three(step.latency),
                _usd(step.cost_per_call.mean) if step.cost_per_call.n else "unpriced",
                models_text(step),
            )
            for step in stats.steps
        )
    return rows


def workflow_line(stats: WorkflowStats, known: tuple[str, ...]) -> str:
    """``support-reply: 1,020 requests over 7.0 days (146 a day); $0.0123 per request (p95
    $0.031, max $0.09), $0.0134 per outcome at 92.0% success; run-rate $5,432 a month``"""
    cost = stats.cost_per_request
    parts = [
        f"{workflow_label(stats, known)}: {stats.requests:,} requests over {duration(stats.days)} "
        f"({window(stats.first_ns, stats.last_ns)}, {stats.requests_per_day:,.0f} a day)"
    ]
    if cost.n:
        parts.append(f"{_usd(cost.mean)} per request (p95 {_usd(cost.p95)}, max {_usd(cost.max)})")
        if stats.success_rate:
            parts.append(
                f"{_usd(cost.mean / stats.success_rate)} per successful outcome at "
                f"{_percent(stats.success_rate)} success ({stats.outcomes:,} recorded)"
            )
        parts.append(f"run-rate {_usd(stats.monthly_run_rate_usd)} a month")
    latency = stats.latency
    if latency.n:
        parts.append(
            f"latency p50 {format_ms(latency.p50)}, p95 {format_ms(latency.p95)}, "
            f"max {format_ms(latency.max)}"
        )
    if stats.unpriced:
        parts.append(f"{stats.unpriced:,} calls unpriced (unknown model): totals are at least")
    return "; ".join(parts)


def unmatched_lines(result: ReplayResult) -> list[str]:
    lines = []
    for stats in result.unmatched:
        why = (
            "no promptbudget.workflow attribute and no replay.match rule"
            if stats.name == UNMATCHED
            else "workflow not in budgets.yaml"
        )
        lines.append(
            f"{workflow_label(stats, result.known_workflows)}: {stats.calls:,} calls in "
            f"{stats.requests:,} requests, {_usd(stats.cost_usd)} ({why})"
        )
    return lines


def header_line(result: ReplayResult, catalog_as_of: str | None) -> str:
    if result.aggregates is not None:
        text = f"replay of {result.aggregates} (aggregates from --emit-sql)"
    else:
        files = len(result.files)
        text = (
            f"replay of {files} file{'s' if files != 1 else ''}: {result.records:,} records, "
            f"{result.malformed:,} malformed"
        )
    firsts = [w.first_ns for w in result.observed if w.first_ns is not None]
    lasts = [w.last_ns for w in result.observed if w.last_ns is not None]
    if firsts and lasts:
        text += f", {window(min(firsts), max(lasts))}"
    if result.window is not None:
        text += f"; requests starting {result.window.label}"
    if catalog_as_of:
        text += f"; prices as of {catalog_as_of}"
    if result.approximate:
        text += "; quantiles approximate (t-digest), the logs being this large"
    return text


def hint_line(result: ReplayResult) -> str | None:
    """Records, but none of a workflow of this manifest: probably the wrong budgets.yaml."""
    if result.observed and not result.matched:
        return (
            f"No record belongs to a workflow of {result.manifest}: tag your calls "
            "(promptbudget.workflow), add replay.match rules, or pass --config for the "
            "budgets.yaml these logs belong to."
        )
    return None


def malformed_lines(result: ReplayResult) -> list[str]:
    lines = [f"{m.source}: {m.reason}" for m in result.malformed_examples]
    hidden = result.malformed - len(result.malformed_examples)
    if hidden > 0:
        lines.append(f"... and {hidden:,} more")
    return lines


def impact_text(value: Decimal | None) -> str:
    if value is None:
        return "-"
    sign = "+" if value > 0 else "-" if value < 0 else "±"
    return f"{sign}{format_usd(abs(value))} a month"


def drift_rows(result: ReplayResult) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for drift in result.drift:
        where = drift.workflow + (f".{drift.step}" if drift.step else "")
        if drift.route is not None:
            where = f"route {drift.route}" + (
                f" ({drift.workflow}.{drift.step})" if drift.step else ""
            )
        rows.append(
            (
                f"{where} {drift.key}"
                + ("" if drift.is_material else " (too few)" if drift.too_few else " (holds)"),
                drift.assumed,
                drift.observed,
                drift.basis,
                impact_text(drift.monthly_impact_usd) if drift.is_material else "",
            )
        )
    return rows


def _speed(drift: SpeedDrift, value: float | None) -> str:
    if value is None:
        return "not declared"
    if drift.key == "ttft_ms":
        return format_ms(value)
    return f"{value:,.1f} tokens/s"


def speed_rows(result: ReplayResult) -> list[tuple[str, ...]]:
    """``gpt-4.1-mini  support.answer  time to first token  400 ms  612 ms  +53% (drift)``"""
    rows: list[tuple[str, ...]] = []
    for drift in result.speeds:
        gap = drift.gap
        shown = f"{gap * 100:+.0f}%" if gap is not None else "-"
        if drift.too_few:
            shown += " (too few)"
        elif drift.is_material:
            shown += " (drift)"
        elif gap is not None:
            shown += " (holds)"
        rows.append(
            (
                drift.model,
                f"{drift.workflow}.{drift.step}" if drift.step else drift.workflow,
                "time to first token" if drift.key == "ttft_ms" else "output tokens/s",
                _speed(drift, drift.declared)
                + (f" ({drift.source})" if drift.source and drift.declared is not None else ""),
                _speed(drift, drift.observed),
                shown,
                f"{drift.calls:,}",
            )
        )
    return rows


def comparison_line(result: ReplayResult) -> str | None:
    comparison = result.comparison
    if comparison is None:
        return None
    flagged = sum(1 for c in comparison.changes if c.is_flagged)
    return (
        f"Changes between {comparison.before.label} and {comparison.after.label}: "
        f"{flagged} flagged (PB119)"
    )


def change_rows(result: ReplayResult) -> list[tuple[str, ...]]:
    """Every measure that changed, flagged or not; unchanged ones are left out."""
    from promptbudget.replay.windows import MEASURES

    rows: list[tuple[str, ...]] = []
    if result.comparison is None:
        return rows
    for change in result.comparison.changes:
        if change.before == change.after:
            continue
        mark = " (flagged)" if change.is_flagged else " (too few)" if change.too_few else ""
        rows.append(
            (
                f"{change.workflow}.{change.step}",
                MEASURES[change.measure],
                change.shown(change.before),
                change.shown(change.after),
                change.change + mark,
                f"{change.calls_before:,} / {change.calls_after:,}",
                change.cost_impact,
                change.latency_impact,
            )
        )
    return rows


# -- JSON --------------------------------------------------------------------------------------


def _metric_json(metric: Metric) -> dict[str, Any]:
    found: dict[str, Any] = {
        "n": metric.n,
        "mean": metric.mean,
        "p50": metric.p50,
        "p95": metric.p95,
        "max": metric.max,
    }
    if metric.over:
        found.update(
            over=metric.over,
            over_first=window(metric.over_first_ns, metric.over_first_ns),
            over_last=window(metric.over_last_ns, metric.over_last_ns),
            examples=list(metric.examples),
        )
    return found


def _comparison_json(result: ReplayResult) -> dict[str, Any] | None:
    comparison = result.comparison
    if comparison is None:
        return None
    return {
        "before": comparison.before.label,
        "after": comparison.after.label,
        "changes": [
            {
                "workflow": c.workflow,
                "step": c.step,
                "measure": c.measure,
                "before": c.before,
                "after": c.after,
                "calls_before": c.calls_before,
                "calls_after": c.calls_after,
                "is_flagged": c.is_flagged,
                "too_few": c.too_few,
                "cost_per_request_before_usd": c.cost_before,
                "cost_per_request_after_usd": c.cost_after,
                "monthly_cost_change_usd": (
                    float(c.monthly_cost_change_usd)
                    if c.monthly_cost_change_usd is not None
                    else None
                ),
                "latency_p95_before_ms": c.latency_p95_before,
                "latency_p95_after_ms": c.latency_p95_after,
            }
            for c in comparison.changes
        ],
    }


def replay_json(result: ReplayResult) -> dict[str, Any]:
    def step_json(step: StepStats) -> dict[str, Any]:
        return {
            "name": step.step or None,
            "calls": step.calls,
            "requests": step.requests,
            "input_tokens": _metric_json(step.input_tokens),
            "output_tokens": _metric_json(step.output_tokens),
            "cache_read_tokens": _metric_json(step.cache_read_tokens),
            "cache_write_tokens": _metric_json(step.cache_write_tokens),
            "reasoning_tokens": _metric_json(step.reasoning_tokens),
            "cache_hit_rate": step.cache_hit_rate,
            "escalation_rate": step.escalation_rate,
            "failed_calls": step.failed_calls,
            "retry_rate": step.retry_rate,
            "turns": _metric_json(step.turns),
            "tool_calls": _metric_json(step.tool_calls),
            "cost_per_call_usd": _metric_json(step.cost_per_call),
            "latency_ms": _metric_json(step.latency),
            "latency_per_call_ms": _metric_json(step.latency_per_call),
            "ttft_ms": _metric_json(step.ttft_ms),
            "models": [
                {
                    "model": m.model,
                    "calls": m.calls,
                    "share": m.calls / step.calls if step.calls else None,
                    "cost_usd": m.cost_usd,
                    "unpriced_calls": m.unpriced,
                    "latency_ms": _metric_json(m.latency_ms),
                    "ttft_ms": _metric_json(m.ttft_ms),
                    "output_tokens_per_second": _metric_json(m.output_tps),
                }
                for m in step.models
            ],
        }

    def workflow_json(stats: WorkflowStats) -> dict[str, Any]:
        return {
            "name": stats.name or None,
            "in_manifest": stats.name in result.known_workflows,
            "requests": stats.requests,
            "calls": stats.calls,
            "first": window(stats.first_ns, stats.first_ns) if stats.first_ns else None,
            "last": window(stats.last_ns, stats.last_ns) if stats.last_ns else None,
            "days": stats.days,
            "requests_per_day": stats.requests_per_day,
            "cost_usd": stats.cost_usd,
            "cost_per_request_usd": _metric_json(stats.cost_per_request),
            "success_rate": stats.success_rate,
            "cost_per_outcome_usd": (
                stats.cost_per_request.mean / stats.success_rate if stats.success_rate else None
            ),
            "monthly_run_rate_usd": stats.monthly_run_rate_usd,
            "turns": _metric_json(stats.turns),
            "tool_calls": _metric_json(stats.tool_calls),
            "latency_ms": _metric_json(stats.latency),
            "unpriced_calls": stats.unpriced,
            "steps": [step_json(s) for s in stats.steps],
        }

    return {
        "manifest": result.manifest,
        "approximate_quantiles": result.approximate,
        "files": list(result.files),
        "aggregates": result.aggregates,
        "records": result.records,
        "malformed": {
            "count": result.malformed,
            "examples": [
                {"source": m.source, "reason": m.reason} for m in result.malformed_examples
            ],
        },
        "workflows": [workflow_json(w) for w in result.matched],
        "unmatched": [workflow_json(w) for w in result.unmatched],
        "drift": [
            {
                "workflow": d.workflow,
                "step": d.step,
                "route": d.route,
                "key": d.key,
                "assumed": d.assumed,
                "observed": d.observed,
                "value": d.value,
                "is_material": d.is_material,
                "too_few": d.too_few,
                "basis": d.basis,
                "set": d.override,
                "monthly_impact_usd": (
                    float(d.monthly_impact_usd) if d.monthly_impact_usd is not None else None
                ),
            }
            for d in result.drift
        ],
        "window": result.window.label if result.window is not None else None,
        "comparison": _comparison_json(result),
        "speeds": [
            {
                "workflow": d.workflow,
                "step": d.step or None,
                "model": d.model,
                "key": d.key,
                "declared": d.declared,
                "observed_p50": d.observed,
                "gap": d.gap,
                "calls": d.calls,
                "is_material": d.is_material,
                "too_few": d.too_few,
                "source": d.source,
            }
            for d in result.speeds
        ],
    }
