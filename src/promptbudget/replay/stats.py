"""What the aggregation returns, as typed statistics (from DuckDB, or from a result file the
user's warehouse produced with the emitted SQL)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from promptbudget.replay.query import COUNTS, METRICS, OPTIONAL_COUNTS, OPTIONAL_METRICS, STATS

UNMATCHED = ""  # the workflow key of records that no workflow claims


@dataclass(frozen=True)
class Metric:
    """A distribution: count, total, median, 95th percentile, maximum; and how often, when and
    where (example request ids) it went over its limit."""

    n: int = 0
    total: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    max: float = 0.0
    over: int = 0
    over_first_ns: int | None = None
    over_last_ns: int | None = None
    examples: tuple[str, ...] = ()

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def over_share(self) -> float:
        return self.over / self.n if self.n else 0.0


@dataclass(frozen=True)
class ModelShare:
    model: str
    calls: int
    requests: int
    cost_usd: float
    unpriced: int
    input_tokens: Metric
    output_tokens: Metric
    latency_ms: Metric = field(default_factory=Metric)  # per call, span start to end
    ttft_ms: Metric = field(default_factory=Metric)  # calls whose log carries it
    output_tps: Metric = field(default_factory=Metric)  # output tokens / (latency - ttft)


@dataclass(frozen=True)
class StepStats:
    workflow: str
    step: str  # "" when a record's step could not be told
    calls: int = 0
    requests: int = 0
    cache_hits: int = 0
    escalated_calls: int = 0
    failed_calls: int = 0  # calls that ended in an error (retried, or the request failed)
    unpriced: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    input_tokens: Metric = field(default_factory=Metric)
    output_tokens: Metric = field(default_factory=Metric)
    cache_read_tokens: Metric = field(default_factory=Metric)
    cache_write_tokens: Metric = field(default_factory=Metric)
    reasoning_tokens: Metric = field(default_factory=Metric)
    cost_per_call: Metric = field(default_factory=Metric)
    cost_per_request: Metric = field(default_factory=Metric)  # this step's share
    turns: Metric = field(default_factory=Metric)
    tool_calls: Metric = field(default_factory=Metric)
    latency_per_call: Metric = field(default_factory=Metric)  # ms, one model call
    latency: Metric = field(default_factory=Metric)  # ms, the step's calls in one request
    ttft_ms: Metric = field(default_factory=Metric)
    models: tuple[ModelShare, ...] = ()

    @property
    def cache_hit_rate(self) -> float:
        return self.cache_hits / self.calls if self.calls else 0.0

    @property
    def retry_rate(self) -> float:
        """Calls that ended in an error (and so were retried, or failed the request) per call."""
        return self.failed_calls / self.calls if self.calls else 0.0

    @property
    def escalation_rate(self) -> float:
        """Escalated calls per call on the route's own models."""
        base = self.calls - self.escalated_calls
        return self.escalated_calls / base if base > 0 else 0.0


@dataclass(frozen=True)
class WorkflowStats:
    name: str  # UNMATCHED for records no workflow claims
    requests: int = 0
    outcomes: int = 0
    successes: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    cost_per_request: Metric = field(default_factory=Metric)
    turns: Metric = field(default_factory=Metric)
    tool_calls: Metric = field(default_factory=Metric)
    latency: Metric = field(default_factory=Metric)  # ms, one request end to end
    steps: tuple[StepStats, ...] = ()

    @property
    def calls(self) -> int:
        return sum(step.calls for step in self.steps)

    @property
    def cost_usd(self) -> float:
        return sum(step.cost_per_call.total for step in self.steps)

    @property
    def unpriced(self) -> int:
        return sum(step.unpriced for step in self.steps)

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.outcomes if self.outcomes else None

    @property
    def days(self) -> float:
        """The span of time the records cover, in days (at least a minute's worth)."""
        if self.first_ns is None or self.last_ns is None:
            return 0.0
        return max(self.last_ns - self.first_ns, 60 * 10**9) / (86_400 * 10**9)

    @property
    def requests_per_day(self) -> float:
        return self.requests / self.days if self.days else 0.0

    @property
    def monthly_run_rate_usd(self) -> float:
        return self.cost_usd / self.days * 30 if self.days else 0.0


def _number(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _int(value: object) -> int:
    number = _number(value)
    return round(number) if number is not None else 0


def _ns(value: object) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _metric(row: Mapping[str, object], name: str) -> Metric:
    examples = tuple(
        dict.fromkeys(
            str(row[f"{name}_{key}"]) for key in ("ex1", "ex2") if row.get(f"{name}_{key}")
        )
    )
    return Metric(
        n=_int(row.get(f"{name}_n")),
        total=_number(row.get(f"{name}_sum")) or 0.0,
        p50=_number(row.get(f"{name}_p50")) or 0.0,
        p95=_number(row.get(f"{name}_p95")) or 0.0,
        max=_number(row.get(f"{name}_max")) or 0.0,
        over=_int(row.get(f"{name}_over")),
        over_first_ns=_ns(row.get(f"{name}_over_first_ns")),
        over_last_ns=_ns(row.get(f"{name}_over_last_ns")),
        examples=examples,
    )


def required_columns() -> tuple[str, ...]:
    return (
        "level",
        "workflow",
        "step",
        *(c for c in COUNTS if c not in OPTIONAL_COUNTS),
        *(f"{m}_{s}" for m in METRICS if m not in OPTIONAL_METRICS for s in STATS[:5]),
    )


def collect(rows: Iterable[Mapping[str, object]]) -> tuple[WorkflowStats, ...]:
    """The aggregation's rows as workflows with their steps, in name order (unmatched last)."""
    steps: dict[tuple[str, str], dict[str, object]] = {}
    models: dict[tuple[str, str], list[ModelShare]] = {}
    workflows: dict[str, Mapping[str, object]] = {}
    for row in rows:
        level = str(row.get("level") or "")
        workflow = str(row.get("workflow") or "")
        step = str(row.get("step") or "")
        key = (workflow, step)
        if level == "step":
            steps.setdefault(key, {}).update(
                calls=_int(row.get("calls")),
                cache_hits=_int(row.get("cache_hits")),
                unpriced=_int(row.get("unpriced")),
                failed_calls=_int(row.get("failed")),
                first_ns=_ns(row.get("first_ns")),
                last_ns=_ns(row.get("last_ns")),
                input_tokens=_metric(row, "input_tokens"),
                output_tokens=_metric(row, "output_tokens"),
                cache_read_tokens=_metric(row, "cache_read_tokens"),
                cache_write_tokens=_metric(row, "cache_write_tokens"),
                reasoning_tokens=_metric(row, "reasoning_tokens"),
                cost_per_call=_metric(row, "cost_usd"),
                latency_per_call=_metric(row, "latency_ms"),
                ttft_ms=_metric(row, "ttft_ms"),
            )
        elif level == "step_requests":
            steps.setdefault(key, {}).update(
                requests=_int(row.get("requests")),
                escalated_calls=_int(row.get("escalated")),
                turns=_metric(row, "turns"),
                tool_calls=_metric(row, "tool_calls"),
                cost_per_request=_metric(row, "cost_usd"),
                latency=_metric(row, "latency_ms"),
            )
        elif level == "model":
            cost = _metric(row, "cost_usd")
            models.setdefault(key, []).append(
                ModelShare(
                    model=str(row.get("model") or ""),
                    calls=_int(row.get("calls")),
                    requests=_int(row.get("requests")),
                    cost_usd=cost.total,
                    unpriced=_int(row.get("unpriced")),
                    input_tokens=_metric(row, "input_tokens"),
                    output_tokens=_metric(row, "output_tokens"),
                    latency_ms=_metric(row, "latency_ms"),
                    ttft_ms=_metric(row, "ttft_ms"),
                    output_tps=_metric(row, "output_tps"),
                )
            )
        elif level == "workflow":
            workflows[workflow] = row
    names = sorted({w for w, _ in steps} | set(workflows), key=lambda n: (n == UNMATCHED, n))
    result = []
    for name in names:
        row = workflows.get(name, {})
        own = sorted((s for s in steps if s[0] == name), key=lambda s: (s[1] == "", s[1]))
        result.append(
            WorkflowStats(
                name=name,
                requests=_int(row.get("requests")),
                outcomes=_int(row.get("outcomes")),
                successes=_int(row.get("successes")),
                first_ns=_ns(row.get("first_ns")),
                last_ns=_ns(row.get("last_ns")),
                cost_per_request=_metric(row, "cost_usd"),
                turns=_metric(row, "turns"),
                tool_calls=_metric(row, "tool_calls"),
                latency=_metric(row, "latency_ms"),
                steps=tuple(
                    StepStats(
                        workflow=name,
                        step=key[1],
                        models=tuple(sorted(models.get(key, ()), key=lambda m: -m.calls)),
                        **steps[key],  # type: ignore[arg-type]
                    )
                    for key in own
                ),
            )
        )
    return tuple(result)


def usd(value: float) -> Decimal:
    """A float sum of dollars as a Decimal, rounded to a millionth of a cent."""
    return Decimal(repr(value)).quantize(Decimal("1e-8"))
