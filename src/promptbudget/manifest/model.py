"""The manifest as frozen dataclasses: field names are the ``budgets.yaml`` keys."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from promptbudget.manifest.paths import join_path
from promptbudget.pricing.catalog import PriceCatalog
from promptbudget.pricing.timeofday import TrafficProfile
from promptbudget.tools import Tool

DAYS_PER_MONTH = 30

# z of the 95th percentile of a standard normal distribution.
Z95 = 1.6448536269514722

Statistic = Literal["mean", "p50", "p95"]


@dataclass(frozen=True)
class Distribution:
    """A token count given by its median and 95th percentile (``{p50: 250, p95: 600}``).

    Sampled as a log-normal distribution with that median and 95th percentile: token counts
    are positive and right-skewed (a few long answers, long documents).
    """

    p50: int
    p95: int

    @cached_property
    def sigma(self) -> float:
        return math.log(self.p95 / self.p50) / Z95 if self.p50 > 0 and self.p95 > self.p50 else 0.0

    def at(self, z: float) -> int:
        """The value at standard-normal score ``z`` (0 -> p50, 1.645 -> p95)."""
        if self.sigma == 0.0:
            return self.p50
        return round(self.p50 * math.exp(self.sigma * z))


TokenAmount = int | Distribution


@dataclass(frozen=True)
class Duration:
    """A time in milliseconds given by its median and 95th percentile (``{p50: 300, p95:
    900}``): sampled as a log-normal distribution fitted to the two quantiles,
    ``p50 x exp(sigma x z)`` with ``sigma = ln(p95 / p50) / 1.645``."""

    p50: float
    p95: float

    @cached_property
    def sigma(self) -> float:
        return math.log(self.p95 / self.p50) / Z95 if self.p50 > 0 and self.p95 > self.p50 else 0.0

    def at(self, z: float) -> float:
        """The value at standard-normal score ``z`` (0 -> p50, 1.645 -> p95)."""
        return self.p50 if self.sigma == 0.0 else self.p50 * math.exp(self.sigma * z)


Milliseconds = float | Duration


def median_ms(amount: Milliseconds) -> float:
    return amount.p50 if isinstance(amount, Duration) else amount


@dataclass(frozen=True)
class LatencyLimit:
    """``max_latency_ms``: milliseconds a request (or a step) may take at its median and/or
    95th percentile (a bare number limits the p95)."""

    p50: float | None = None
    p95: float | None = None

    def items(self) -> tuple[tuple[Literal["p50", "p95"], float], ...]:
        out: list[tuple[Literal["p50", "p95"], float]] = []
        if self.p50 is not None:
            out.append(("p50", self.p50))
        if self.p95 is not None:
            out.append(("p95", self.p95))
        return tuple(out)


def typical(amount: TokenAmount) -> int:
    """A fixed amount, or a distribution's median."""
    return amount.p50 if isinstance(amount, Distribution) else amount


def worst(amount: TokenAmount) -> int:
    """A fixed amount, or a distribution's 95th percentile (what limits are checked at)."""
    return amount.p95 if isinstance(amount, Distribution) else amount


@dataclass(frozen=True)
class VariableSpec:
    """How a variable is filled.

    ``max_tokens`` is the cap (the worst case the application guarantees: limits are checked
    at it); ``tokens`` is the typical size, fixed or ``{p50, p95}`` (costs are estimated with
    it; without it, at the cap); ``sample`` is a value rendered into the template.
    """

    name: str
    max_tokens: int | None = None
    tokens: TokenAmount | None = None
    sample: Any = None
    has_sample: bool = False
    line: int | None = None

    @property
    def is_sized(self) -> bool:
        return self.max_tokens is not None or self.tokens is not None

    @property
    def bound_tokens(self) -> int | None:
        """The size limits are checked at: the cap, else the p95 or fixed size."""
        if self.max_tokens is not None:
            return self.max_tokens
        return worst(self.tokens) if self.tokens is not None else None


@dataclass(frozen=True)
class CostLimit:
    """A dollar limit on a statistic of the cost distribution (default: the mean)."""

    amount: Decimal
    statistic: Statistic = "mean"


@dataclass(frozen=True)
class Limits:
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_turns: int | None = None
    max_tool_calls: int | None = None
    max_cost_per_request: CostLimit | None = None
    max_cost_per_outcome: CostLimit | None = None
    max_monthly_spend: Decimal | None = None
    max_daily_spend: Decimal | None = None  # per UTC day
    max_latency_ms: LatencyLimit | None = None


@dataclass(frozen=True)
class Retry:
    """A call fails with probability ``failure_rate`` and is tried up to ``max_attempts``,
    waiting ``backoff_ms`` before each retry."""

    failure_rate: Decimal
    max_attempts: int
    backoff_ms: float = 0.0

    @property
    def expected_attempts(self) -> Decimal:
        """``(1 - q^r) / (1 - q)``: 1 + q + q^2 + ... + q^(r-1)."""
        q, r = self.failure_rate, self.max_attempts
        if q == 1:
            return Decimal(r)
        return (1 - q**r) / (1 - q)


@dataclass(frozen=True)
class Step:
    name: str
    prompt: str  # as written in the manifest
    prompt_path: Path  # resolved, inside the project root
    model: str | None = None
    route: str | None = None
    output_tokens: TokenAmount | None = None
    max_output_tokens: int | None = None
    turns: int = 1
    tool_calls: int = 0
    tool_result_tokens: int = 0
    tool_latency_ms: Milliseconds | None = None  # per tool call (the tool's own time)
    retrieval_latency_ms: Milliseconds | None = None  # once per request for this step
    user_turn_tokens: int | None = None
    variables: Mapping[str, VariableSpec] = field(default_factory=dict)
    prompt_cache_hit_rate: Decimal | None = None
    retry: Retry | None = None
    batch_share: Decimal | None = None
    line: int | None = None
    tools: tuple[Tool, ...] = ()  # tool definitions sent with every call
    limits: Limits = field(default_factory=Limits)  # limits on this step alone
    limit_lines: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TrafficClass:
    """A slice of a workflow's traffic with its own signals and variable sizes."""

    name: str
    share: Decimal
    signals: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, VariableSpec] = field(default_factory=dict)
    line: int | None = None


ALL_TRAFFIC = TrafficClass(name="all", share=Decimal(1))


@dataclass(frozen=True)
class Workflow:
    name: str
    steps: tuple[Step, ...]
    limits: Limits = field(default_factory=Limits)
    description: str | None = None
    requests_per_month: Decimal | None = None  # per_day x 30 when given per day
    success_rate: Decimal = Decimal(1)
    semantic_cache_hit_rate: Decimal = Decimal(0)
    batch_share: Decimal = Decimal(0)
    classes: tuple[TrafficClass, ...] = (ALL_TRAFFIC,)
    traffic_profile: TrafficProfile | None = None  # when requests are sent (time-of-day prices)
    line: int | None = None
    limit_lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def requests_per_day(self) -> Decimal | None:
        if self.requests_per_month is None:
            return None
        return self.requests_per_month / DAYS_PER_MONTH


@dataclass(frozen=True)
class Escalation:
    """``rate`` of the calls a route serves are re-run on ``to`` (a model or a route)."""

    to: str
    rate: Decimal


@dataclass(frozen=True)
class RouteRule:
    when: Mapping[str, Any]
    target: str
    line: int | None = None


@dataclass(frozen=True)
class Route:
    """Where a step's calls go: one model, a split by shares, or rules on traffic signals;
    optionally followed by an escalation (a cascade)."""

    name: str
    model: str | None = None
    split: tuple[tuple[str, Decimal], ...] = ()
    rules: tuple[RouteRule, ...] = ()
    default: str | None = None
    escalation: Escalation | None = None
    line: int | None = None

    @property
    def targets(self) -> tuple[str, ...]:
        """Every model or route this route can send a call to."""
        found = [self.model] if self.model else []
        found += [target for target, _ in self.split]
        found += [rule.target for rule in self.rules]
        found += [self.default] if self.default else []
        found += [self.escalation.to] if self.escalation else []
        return tuple(found)


@dataclass(frozen=True)
class CompressionSettings:
    passes: tuple[str, ...] | None = None  # None: the safe passes
    min_savings: Decimal = Decimal("0.05")
    duplicate_min_tokens: int = 50
    keep_examples: int = 2


@dataclass(frozen=True)
class PathIgnore:
    """``per_file_ignores``: rules (codes or slugs, as written) ignored on paths matching
    ``pattern``."""

    pattern: str
    rules: tuple[str, ...]
    line: int | None = None


@dataclass(frozen=True)
class EngineSetting:
    """``engines``: generic prompt files matching ``pattern`` are read with ``engine``."""

    pattern: str
    engine: str  # a name of ``templates.detect.ENGINES``
    line: int | None = None


@dataclass(frozen=True)
class ReplayMatch:
    """``replay.match``: records whose model, prompt and attributes match (globs) belong to
    ``workflow`` (and ``step``)."""

    workflow: str
    step: str | None = None
    model: str | None = None
    prompt: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    line: int | None = None


@dataclass(frozen=True)
class ReplaySettings:
    match: tuple[ReplayMatch, ...] = ()
    columns: Mapping[str, str] = field(default_factory=dict)  # field -> the log's column


@dataclass(frozen=True)
class TemplateLimit:
    """``templates:``: a path or glob and its token limits. ``max_tokens`` maps a model or an
    encoding to a limit; the key ``None`` means "counted with the template's own model"."""

    pattern: str
    max_tokens: Mapping[str | None, int]
    line: int | None = None
    lines: Mapping[str | None, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    path: Path
    root: Path
    display_path: str  # the manifest's path as shown in findings
    prompts_dir: Path
    catalog: PriceCatalog
    default_model: str | None = None
    variables: Mapping[str, VariableSpec] = field(default_factory=dict)
    routes: Mapping[str, Route] = field(default_factory=dict)
    rules: Mapping[str, str] = field(default_factory=dict)
    workflows: tuple[Workflow, ...] = ()
    rule_lines: Mapping[str, int] = field(default_factory=dict)
    prices_path: Path | None = None
    compression: CompressionSettings = field(default_factory=CompressionSettings)
    per_file_ignores: tuple[PathIgnore, ...] = ()
    engines: tuple[EngineSetting, ...] = ()
    tools: Mapping[str, Tool] = field(default_factory=dict)  # the top-level ``tools:``
    tool_lines: Mapping[str, int] = field(default_factory=dict)
    replay: ReplaySettings = field(default_factory=ReplaySettings)
    templates: tuple[TemplateLimit, ...] = ()  # token limits per template path or glob
    select: tuple[str, ...] | None = None  # only these rules report (codes, prefixes, slugs)
    ignore: tuple[str, ...] = ()  # these rules never report
    fail_on: str | None = None  # info | warning | error; the command line wins
    fail_on_increase: Decimal | None = None  # diff: a percentage; the command line wins
    lines: Mapping[str, int] = field(default_factory=dict)  # JSON path -> line, every value

    def step_line(self, workflow: str, step: Step, key: str | None = None) -> int | None:
        """The line of ``step`` (or of its ``key``, when written) in the manifest."""
        for candidate in self.workflows:
            if candidate.name != workflow:
                continue
            for index, item in enumerate(candidate.steps):
                if item is step or item == step:
                    path = f"{join_path('$.workflows', workflow)}.steps[{index}]"
                    line = self.lines.get(f"{path}.{key}") if key else None
                    return line or self.lines.get(path) or step.line
        return step.line

    def model_line(self, workflow: str, step: Step, model: str) -> int | None:
        """The line that sends ``step``'s calls to ``model``: the step's ``model:``, the route
        entry naming it, or ``defaults.model`` (else the step's line)."""
        if step.route is not None:
            for name, route in self.routes.items():
                path = join_path("$.routes", name)
                named = [
                    (route.model, f"{path}.model"),
                    (route.default, f"{path}.default"),
                    (route.escalation.to if route.escalation else None, f"{path}.escalation.to"),
                    *((target, f"{path}.split[{i}]") for i, (target, _) in enumerate(route.split)),
                    *((rule.target, f"{path}.rules[{i}]") for i, rule in enumerate(route.rules)),
                ]
                for target, where in named:
                    if target == model and where in self.lines:
                        return self.lines[where]
        elif step.model is not None:
            return self.step_line(workflow, step, "model")
        elif model == self.default_model and "$.defaults.model" in self.lines:
            return self.lines["$.defaults.model"]
        return self.step_line(workflow, step)
