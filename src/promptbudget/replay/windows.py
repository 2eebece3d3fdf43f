"""Two time windows of production compared: ``replay --since/--until --compare-to A..B``.

A request belongs to the window its first record starts in (records without a start time
belong to no window). Per step, five measures are compared between the earlier window (the
baseline, ``--compare-to``) and the later one (``--since``/``--until``):

* output length: mean output tokens per call;
* retrieved-context size: mean input tokens per call (what retrieval and history put in);
* retry rate: calls that ended in an error (span status ERROR or ``error.type``) per call;
* escalation rate: escalated calls per call on the route's own models (``StepStats``);
* fallback rate: calls on a model the step does not name (its ``model``, its route's targets
  and escalation) per call: a provider fallback or a misrouted call.

A change is flagged (PB119 ``sudden-change``) when both windows have at least ``min_calls``
calls of the step (default 30) and the measure moved by more than its threshold:
``mean_change`` (relative, default 25%) for the means; for the rates at least
``rate_change`` (default 5 points) and a two-proportion z-score of at least :data:`RATE_Z`
(so that noise on small counts is not a change). The thresholds are budgets.yaml's
``replay.changes`` (``manifest.model.ChangeThresholds``). Each comes with what moved with
it: the step's cost per request and its p95 latency in both windows, and the cost difference
a month at the later window's traffic.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from promptbudget.errors import UsageError
from promptbudget.findings import Finding, Severity
from promptbudget.manifest.model import ChangeThresholds, Manifest, Step
from promptbudget.replay.stats import StepStats, WorkflowStats, usd
from promptbudget.rules import RULES
from promptbudget.units import format_ms, format_usd

RATE_Z = 3.0  # a rate's move must also have a two-proportion z-score of at least 3

MEASURES = {
    "output_tokens": "output tokens per call",
    "input_tokens": "input tokens per call (retrieved context)",
    "retry_rate": "retry rate",
    "escalation_rate": "escalation rate",
    "fallback_rate": "fallback rate",
}


@dataclass(frozen=True)
class Window:
    """``[since_ns, until_ns)``; an open end is ``None``."""

    since_ns: int | None = None
    until_ns: int | None = None

    @property
    def label(self) -> str:
        def shown(ns: int | None, end: bool) -> str:
            if ns is None:
                return "…"
            moment = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
            if moment.time() == datetime.min.time():
                return (moment.date() - timedelta(days=1) if end else moment.date()).isoformat()
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

        return f"{shown(self.since_ns, False)}..{shown(self.until_ns, True)}"

    @property
    def bounds(self) -> tuple[int | None, int | None]:
        return self.since_ns, self.until_ns


def parse_time(text: str, option: str, *, end: bool = False) -> int:
    """An ISO 8601 date or time (UTC unless it says otherwise) as Unix nanoseconds; a bare
    date given as an end means the end of that day."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            if end:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: expected an ISO 8601 date or time, e.g. 2026-12-01 or "
            "2026-12-01T09:30:00Z"
        ) from None
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def parse_window(since: str | None, until: str | None, option: str) -> Window:
    window = Window(
        parse_time(since, option) if since else None,
        parse_time(until, option, end=True) if until else None,
    )
    start, end = window.bounds
    if start is not None and end is not None and end <= start:
        raise UsageError(f"{option}: the window ends before it starts ({since}..{until})")
    return window


def parse_range(text: str) -> Window:
    """``--compare-to SINCE..UNTIL`` (either end may be left open: ``..2026-11-30``)."""
    since, separator, until = text.partition("..")
    if not separator:
        raise UsageError(
            f"--compare-to {text!r}: expected SINCE..UNTIL, e.g. 2026-11-01..2026-11-30"
        )
    return parse_window(since or None, until or None, "--compare-to")


@dataclass(frozen=True)
class Change:
    """One measure of one step in both windows."""

    workflow: str
    step: str
    measure: str  # a key of MEASURES
    before: float
    after: float
    calls_before: int
    calls_after: int
    is_flagged: bool
    cost_before: float  # the step's mean cost per request (USD)
    cost_after: float
    latency_p95_before: float | None  # the step's p95 time per request (ms)
    latency_p95_after: float | None
    monthly_cost_change_usd: Decimal | None  # at the later window's traffic
    min_calls: int = ChangeThresholds.min_calls

    @property
    def too_few(self) -> bool:
        return min(self.calls_before, self.calls_after) < self.min_calls

    @property
    def is_rate(self) -> bool:
        return self.measure.endswith("_rate")

    def shown(self, value: float) -> str:
        return f"{value * 100:.1f}%" if self.is_rate else f"{value:,.0f}"

    @property
    def change(self) -> str:
        if self.is_rate:
            return f"{(self.after - self.before) * 100:+.1f} points"
        if self.before == 0:
            return "from 0" if self.after else "±0%"
        return f"{(self.after - self.before) / self.before * 100:+.0f}%"

    @property
    def cost_impact(self) -> str:
        text = f"{format_usd(usd(self.cost_before))} → {format_usd(usd(self.cost_after))} a request"
        if self.monthly_cost_change_usd is not None:
            sign = "+" if self.monthly_cost_change_usd >= 0 else "-"
            text += f" ({sign}{format_usd(abs(self.monthly_cost_change_usd))} a month)"
        return text

    @property
    def latency_impact(self) -> str:
        if self.latency_p95_before is None or self.latency_p95_after is None:
            return "-"
        return f"p95 {format_ms(self.latency_p95_before)} → {format_ms(self.latency_p95_after)}"


@dataclass(frozen=True)
class Comparison:
    before: Window
    after: Window
    changes: tuple[Change, ...]


def _named_models(manifest: Manifest, step: Step) -> set[str]:
    names = {step.model} if step.model else set()
    pending = [step.route] if step.route else []
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name is None or name in seen:
            continue
        seen.add(name)
        route = manifest.routes.get(name)
        if route is None:
            names.add(name)
            continue
        pending.extend(route.targets)
    if not names and manifest.default_model:
        names.add(manifest.default_model)
    canonical = set()
    for name in names:
        price = manifest.catalog.lookup(name)
        canonical.add(price.name if price is not None else name)
    return canonical


def _fallback_rate(stats: StepStats, named: set[str]) -> float:
    if not stats.calls or not named:
        return 0.0
    other = sum(m.calls for m in stats.models if m.model not in named)
    return other / stats.calls


def _value(stats: StepStats, measure: str, named: set[str]) -> float:
    if measure == "output_tokens":
        return stats.output_tokens.mean
    if measure == "input_tokens":
        return stats.input_tokens.mean
    if measure == "retry_rate":
        return stats.retry_rate
    if measure == "escalation_rate":
        return stats.escalation_rate
    return _fallback_rate(stats, named)


def _is_flagged(
    measure: str, before: float, after: float, n1: int, n2: int, limits: ChangeThresholds
) -> bool:
    if min(n1, n2) < limits.min_calls:
        return False
    if not measure.endswith("_rate"):
        if before == 0:
            return after > 0
        return abs(after - before) / before > float(limits.mean_change)
    if abs(after - before) < float(limits.rate_change):
        return False
    pooled = (before * n1 + after * n2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return spread == 0 or abs(after - before) / spread >= RATE_Z


def compare_windows(
    manifest: Manifest,
    before: tuple[WorkflowStats, ...],
    after: tuple[WorkflowStats, ...],
    windows: tuple[Window, Window],
) -> Comparison:
    """Every measure of every step of budgets.yaml seen in both windows."""
    limits = manifest.replay.changes
    earlier = {(w.name, s.step): s for w in before for s in w.steps}
    changes: list[Change] = []
    for workflow in manifest.workflows:
        later_stats = next((w for w in after if w.name == workflow.name), None)
        if later_stats is None:
            continue
        for step in workflow.steps:
            later = next((s for s in later_stats.steps if s.step == step.name), None)
            earlier_step = earlier.get((workflow.name, step.name))
            if later is None or earlier_step is None:
                continue
            named = _named_models(manifest, step)
            monthly = None
            if later_stats.days and later.requests:
                per_request = later.cost_per_request.mean - earlier_step.cost_per_request.mean
                monthly = usd(per_request * later_stats.requests_per_day * 30)
            for measure in MEASURES:
                old = _value(earlier_step, measure, named)
                new = _value(later, measure, named)
                changes.append(
                    Change(
                        workflow=workflow.name,
                        step=step.name,
                        measure=measure,
                        before=old,
                        after=new,
                        calls_before=earlier_step.calls,
                        calls_after=later.calls,
                        is_flagged=_is_flagged(
                            measure, old, new, earlier_step.calls, later.calls, limits
                        ),
                        cost_before=earlier_step.cost_per_request.mean,
                        cost_after=later.cost_per_request.mean,
                        latency_p95_before=(
                            earlier_step.latency.p95 if earlier_step.latency.n else None
                        ),
                        latency_p95_after=later.latency.p95 if later.latency.n else None,
                        monthly_cost_change_usd=monthly,
                        min_calls=limits.min_calls,
                    )
                )
    return Comparison(windows[0], windows[1], tuple(changes))


def judge_changes(
    manifest: Manifest, comparison: Comparison, severities: Mapping[str, Severity | None]
) -> Iterator[Finding]:
    """PB119 for every flagged change."""
    rule = RULES["PB119"]
    severity = severities.get("PB119", rule.default_severity)
    if severity is None:
        return
    steps = {(w.name, s.name): (w, s) for w in manifest.workflows for s in w.steps}
    for change in comparison.changes:
        if not change.is_flagged:
            continue
        workflow, step = steps[(change.workflow, change.step)]
        yield Finding(
            rule=rule.code,
            slug=rule.slug,
            severity=severity,
            message=(
                f"step '{change.step}' of workflow '{change.workflow}': "
                f"{MEASURES[change.measure]} {change.shown(change.before)} → "
                f"{change.shown(change.after)} ({change.change}) between "
                f"{comparison.before.label} and {comparison.after.label} "
                f"({change.calls_before:,} and {change.calls_after:,} calls); the step's cost "
                f"{change.cost_impact}, its latency {change.latency_impact}"
            ),
            path=manifest.display_path,
            line=step.line or workflow.line,
            workflow=change.workflow,
            step=change.step,
        )


def describe(window: Window) -> str:
    """For the header: ``2026-12-01..2026-12-07``."""
    if window.since_ns is None and window.until_ns is None:
        return "all records"
    return window.label
