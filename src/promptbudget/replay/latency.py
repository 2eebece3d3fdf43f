"""Production latency judged against ``max_latency_ms`` (PB117, PB118), and the model speeds
production showed against the ones declared (catalog or ``models:``).

A request's latency is the envelope of its spans (the tagged root span when there is one); a
step's is the envelope of its calls in one request (see ``query.py``). A limit is judged at
the statistic it names (``p50``, ``p95``); how often, when and where (example request ids)
are counted against the p95 value (the p50 when only that is given).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from promptbudget.findings import Finding, Severity
from promptbudget.manifest.model import LatencyLimit, Manifest, Workflow
from promptbudget.replay.judgement import replay_finding, share, window
from promptbudget.replay.query import resolve_model
from promptbudget.replay.stats import Metric, WorkflowStats
from promptbudget.units import format_ms

MATERIAL = 0.10  # a relative gap in a model's speed above this is drift
MIN_OBSERVED = 30  # fewer calls than this: shown, never called drift


def _judge_one(
    label: str,
    metric: Metric,
    limit: LatencyLimit,
    requests: int,
    severities: Mapping[str, Severity | None],
    manifest: Manifest,
    workflow: Workflow,
    line: int | None,
    step: str | None,
) -> Iterator[Finding | None]:
    if not metric.n:
        if requests:
            yield replay_finding(
                "PB118",
                severities,
                f"{label} has max_latency_ms but none of its {requests:,} requests in the logs "
                "has a latency: its spans lack start or end times (OpenAI and Anthropic response "
                "logs carry only 'created'); log OTel spans or LiteLLM SpendLogs to judge it",
                manifest,
                workflow,
                line=line,
                step=step,
            )
        return
    counted = limit.p95 if limit.p95 is not None else limit.p50
    for statistic, value in limit.items():
        observed = metric.p50 if statistic == "p50" else metric.p95
        if observed <= value:
            continue
        text = (
            f"{label} took {format_ms(observed, other=value)} per request at the {statistic} "
            "in production, "
            f"over max_latency_ms {statistic} {format_ms(value)} (max {format_ms(metric.max)}; "
            f"over {format_ms(counted or value)} on {share(metric.over, metric.n)} of requests "
            f"({metric.over:,} of {metric.n:,}), "
            f"{window(metric.over_first_ns, metric.over_last_ns)}"
        )
        if metric.examples:
            text += "; e.g. " + ", ".join(metric.examples)
        yield replay_finding(
            "PB117",
            severities,
            text + ")",
            manifest,
            workflow,
            line=line,
            step=step,
            measured=round(observed),
            limit=round(value),
            unit="ms",
        )


def judge_latency(
    manifest: Manifest,
    observed: tuple[WorkflowStats, ...],
    severities: Mapping[str, Severity | None],
) -> Iterator[Finding]:
    """PB117 for a workflow's or step's latency over its ``max_latency_ms``; PB118 when the
    logs hold requests of a limited workflow but no latency for them."""
    by_name = {w.name: w for w in manifest.workflows}
    for stats in observed:
        workflow = by_name.get(stats.name)
        if workflow is None:
            continue
        found: list[Finding | None] = []
        limit = workflow.limits.max_latency_ms
        if limit is not None:
            line = workflow.limit_lines.get("max_latency_ms", workflow.line)
            label = f"workflow '{workflow.name}'"
            found += _judge_one(label, stats.latency, limit, stats.requests,
                                severities, manifest, workflow, line, None)  # fmt: skip
        steps = {s.step: s for s in stats.steps}
        for step in workflow.steps:
            step_limit = step.limits.max_latency_ms
            step_stats = steps.get(step.name)
            if step_limit is None or step_stats is None:
                continue
            line = step.limit_lines.get("max_latency_ms", step.line)
            label = f"step '{step.name}' of workflow '{workflow.name}'"
            found += _judge_one(label, step_stats.latency, step_limit, step_stats.requests,
                                severities, manifest, workflow, line, step.name)  # fmt: skip
        yield from (f for f in found if f is not None)


@dataclass(frozen=True)
class SpeedDrift:
    """A model's declared speed next to what its calls in one step showed."""

    workflow: str
    step: str
    model: str
    key: str  # ttft_ms | output_tokens_per_second
    declared: float | None  # None: no figure in the catalog or models:
    observed: float  # the median of the calls that carry it
    calls: int
    source: str | None  # where the declared figure comes from

    @property
    def gap(self) -> float | None:
        """Observed minus declared, relative to declared."""
        if self.declared is None or self.declared == 0:
            return None
        return (self.observed - self.declared) / self.declared

    @property
    def too_few(self) -> bool:
        return self.calls < MIN_OBSERVED

    @property
    def is_material(self) -> bool:
        gap = self.gap
        return gap is not None and not self.too_few and abs(gap) > MATERIAL


def compare_speeds(manifest: Manifest, observed: tuple[WorkflowStats, ...]) -> list[SpeedDrift]:
    """Per step and model with calls carrying a time to first token: observed median TTFT and
    output tokens per second against the declared ``ttft_ms`` and ``output_tokens_per_second``."""
    found: list[SpeedDrift] = []
    for stats in observed:
        for step in stats.steps:
            for model in step.models:
                if not model.ttft_ms.n:
                    continue
                price = resolve_model(manifest.catalog, model.model) if model.model else None
                source = price.speed_source if price is not None else None
                if source and price is not None and price.speed_date:
                    source += f", {price.speed_date}"
                for key, metric, declared in (
                    ("ttft_ms", model.ttft_ms, price.ttft_ms if price else None),
                    (
                        "output_tokens_per_second",
                        model.output_tps,
                        price.output_tokens_per_second if price else None,
                    ),
                ):
                    if not metric.n:
                        continue
                    found.append(
                        SpeedDrift(
                            stats.name,
                            step.step,
                            model.model,
                            key,
                            declared,
                            metric.p50,
                            metric.n,
                            source,
                        )
                    )
    return found
