"""How long a workflow's request takes, simulated before deploy: mean, p50 and p95 per step
and per request, and where the milliseconds go.

One model call takes ``ttft + output_tokens / output_tokens_per_second`` (time to first
token, then the reply at the model's output speed). Input length is assumed to add nothing
beyond the TTFT figure (no sourced figure says how much a longer prompt delays the first
token). A request's critical path:

* steps run one after another: the request takes the sum of its steps;
* a step runs ``turns x (1 + tool_calls)`` calls in sequence, each tool call's own time
  (``tool_latency_ms``) between them, and its retrieval (``retrieval_latency_ms``) once;
* a route picks one model by its split shares; a cascade that escalates runs the step's
  conversation again on the next model (tool calls included), after the first;
* a retried call fails ``attempts - 1`` times, each failed attempt taking as long as the
  call (the cost model charges it in full too), with ``backoff_ms`` before each retry;
* a semantic-cache hit answers the request without any call: 0 ms;
* batch steps (``batch_share: 100%``) are asynchronous and left out of interactive latency;
  with a partial batch share, the latency is that of the interactive calls.

Every random choice (traffic class, cache hit, split, escalation, retries) and every
``{p50, p95}`` (a log-normal fitted to the two quantiles) is drawn per request in a seeded
run of ``samples`` requests, with its own random stream derived from the same seed as the
cost run (so declaring a speed leaves the cost figures unchanged). Each decision has its own
column of uniforms, read by every request whether it needs it or not (``_layout``), so a run
is evaluated in pure Python or over numpy arrays with the same numbers (``latencyrun.py``).
With nothing random, one request is computed and p50 = p95 = mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from promptbudget.lane import Lane
from promptbudget.latencyrun import (
    FIXED,
    Call,
    Conversation,
    Escalation,
    Layout,
    Node,
    Split,
    StepLayout,
    Timing,
    run,
)
from promptbudget.latencyrun import PARTS as PARTS  # the reporters' vocabulary
from promptbudget.manifest.model import (
    Distribution,
    Duration,
    Milliseconds,
    Statistic,
    Step,
    TokenAmount,
    Workflow,
)
from promptbudget.pricing.catalog import ModelPrice
from promptbudget.routing import Cascade, Pick, RouteNode

Band = tuple[float, float]

PART_LABELS = {
    "ttft": "time to first token",
    "output": "output",
    "tools": "tool calls",
    "retrieval": "retrieval",
    "backoff": "retry backoff",
}


@dataclass(frozen=True)
class Speed:
    ttft: Milliseconds
    tokens_per_second: float


def model_speed(price: ModelPrice | None) -> Speed | None:
    """A model's speed, or None when the catalog or the manifest gives none."""
    if price is None or price.ttft_ms is None or not price.output_tokens_per_second:
        return None
    p95 = price.ttft_p95_ms
    ttft: Milliseconds = (
        Duration(price.ttft_ms, p95) if p95 is not None and p95 > price.ttft_ms else price.ttft_ms
    )
    return Speed(ttft, price.output_tokens_per_second)


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds per request; a sampled p50 and p95 carry their 95% band (``quantiles.py``),
    None when nothing is random (one request computed: exact)."""

    mean: float
    p50: float
    p95: float
    p50_band: tuple[float, float] | None = None
    p95_band: tuple[float, float] | None = None

    def get(self, statistic: Statistic) -> float:
        return {"mean": self.mean, "p50": self.p50, "p95": self.p95}[statistic]

    def band(self, statistic: Statistic) -> tuple[float, float] | None:
        """The 95% band of a sampled percentile; None for the mean (exact) or when exact."""
        return {"mean": None, "p50": self.p50_band, "p95": self.p95_band}[statistic]


def _latency_stats(stats: tuple[float, float, float, Band, Band], runs: int) -> LatencyStats:
    mean, p50, p95, p50_band, p95_band = stats
    if runs <= 1:
        return LatencyStats(mean, p50, p95)
    return LatencyStats(mean, p50, p95, p50_band, p95_band)


@dataclass(frozen=True)
class StepLatency:
    step: str
    stats: LatencyStats | None  # None: unknown (a model without a speed) or asynchronous
    parts: Mapping[str, float] = field(default_factory=dict)  # mean ms per request, by part
    missing: tuple[str, ...] = ()  # models on the step's path without a speed
    is_batch: bool = False  # asynchronous: left out of interactive latency


@dataclass(frozen=True)
class WorkflowLatency:
    stats: LatencyStats | None  # None: a step's latency is unknown, or no step is interactive
    steps: tuple[StepLatency, ...]
    samples: int
    seed: int

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(model for step in self.steps for model in step.missing))

    @property
    def is_known(self) -> bool:
        return self.stats is not None

    @property
    def batch_steps(self) -> tuple[str, ...]:
        return tuple(step.step for step in self.steps if step.is_batch)

    def step(self, name: str) -> StepLatency | None:
        return next((step for step in self.steps if step.step == name), None)


@dataclass
class _Plan:
    """One interactive step with every speed known, ready to sample."""

    step: Step
    trees: dict[str, RouteNode]  # by traffic class
    lanes: dict[tuple[str, str, bool], Lane]  # (class, model, escalated)
    speeds: dict[int, Speed]  # by id(lane)


def _is_batch(lanes: Sequence[Lane]) -> bool:
    return bool(lanes) and all(lane.batch_share >= 1 for lane in lanes)


def simulate_latency(
    workflow: Workflow,
    steps: Sequence[tuple[Step, Sequence[Lane]]],
    *,
    samples: int,
    seed: int,
) -> WorkflowLatency:
    """The latency of ``samples`` requests of ``workflow`` (one when nothing is random)."""
    plans: list[_Plan] = []
    results: dict[str, StepLatency] = {}
    for step, lanes in steps:
        if _is_batch(lanes):
            results[step.name] = StepLatency(step.name, None, is_batch=True)
            continue
        reachable = [lane for lane in lanes if lane.routed.weight > 0]
        speeds = {id(lane): model_speed(lane.price) for lane in reachable}
        missing = tuple(
            dict.fromkeys(
                lane.model or "no model" for lane in reachable if speeds[id(lane)] is None
            )
        )
        if missing or not reachable:
            results[step.name] = StepLatency(step.name, None, missing=missing)
            continue
        trees: dict[str, RouteNode] = {}
        by_key: dict[tuple[str, str, bool], Lane] = {}
        for lane in reachable:
            name = lane.traffic_class.name
            trees.setdefault(name, lane.route if lane.route is not None else lane.model)
            by_key.setdefault((name, lane.model, lane.routed.escalated), lane)
            by_key.setdefault((name, lane.model, not lane.routed.escalated), lane)
        plans.append(_Plan(step, trees, by_key, {k: s for k, s in speeds.items() if s is not None}))
    runs = (samples if _is_random(workflow, plans) else 1) if plans else 0
    total: LatencyStats | None = None
    if plans:
        result = run(_layout(workflow, plans), runs, seed)
        total = _latency_stats(result.total, runs)
        for plan, stats, parts in zip(plans, result.steps, result.parts, strict=True):
            results[plan.step.name] = StepLatency(
                plan.step.name,
                _latency_stats(stats, runs),
                {part: parts[part] / runs for part in PARTS},
            )
    ordered = tuple(results[step.name] for step, _ in steps)
    interactive = [step for step in ordered if not step.is_batch]
    is_known = bool(interactive) and all(step.stats is not None for step in interactive)
    return WorkflowLatency(total if is_known else None, ordered, runs, seed)


def _is_random(workflow: Workflow, plans: list[_Plan]) -> bool:
    if len(workflow.classes) > 1 or 0 < workflow.semantic_cache_hit_rate < 1:
        return True
    for plan in plans:
        step = plan.step
        if any(_tree_is_random(tree) for tree in plan.trees.values()):
            return True
        if step.retry is not None and 0 < step.retry.failure_rate < 1:
            return True
        if isinstance(step.tool_latency_ms, Duration) and step.tool_calls:
            return True
        if isinstance(step.retrieval_latency_ms, Duration):
            return True
        for lane in plan.lanes.values():
            if isinstance(lane.output.tokens, Distribution):
                return True
            if isinstance(plan.speeds[id(lane)].ttft, Duration):
                return True
    return False


def _tree_is_random(node: RouteNode) -> bool:
    if isinstance(node, Pick):
        return sum(1 for share, _ in node.options if share > 0) > 1 or any(
            _tree_is_random(option) for _, option in node.options
        )
    if isinstance(node, Cascade):
        return 0 < node.rate < 1 or _tree_is_random(node.first) or _tree_is_random(node.then)
    return False


# -- the draw layout -------------------------------------------------------------------------


class _Columns:
    """The uniforms one request reads, allocated once per decision (``latencyrun.py``)."""

    def __init__(self) -> None:
        self.count = 0

    def new(self) -> int:
        self.count += 1
        return self.count - 1


def _bounds(shares: Sequence[Decimal]) -> tuple[float, ...]:
    """The cumulative shares a uniform is compared with, all but the last."""
    bounds, acc = [], 0.0
    for share in shares[:-1]:
        acc += float(share)
        bounds.append(acc)
    return tuple(bounds)


def _layout(workflow: Workflow, plans: list[_Plan]) -> Layout:
    """Every random decision of a request, each with its own column: the traffic class, the
    cache hit, then step by step (``_StepCompiler``)."""
    columns = _Columns()
    shares = [cls.share for cls in workflow.classes]
    positive = tuple(index for index, share in enumerate(shares) if share > 0) or (0,)
    class_column = columns.new() if len(positive) > 1 else FIXED
    hit_rate = float(workflow.semantic_cache_hit_rate)
    hit_column = columns.new() if 0 < hit_rate < 1 else FIXED
    names = [cls.name for cls in workflow.classes]
    steps = tuple(_StepCompiler(plan, columns).layout(names) for plan in plans)
    return Layout(
        columns.count,
        class_column,
        _bounds([shares[index] for index in positive]),
        positive,
        hit_column,
        hit_rate,
        hit_rate >= 1,
        steps,
    )


def _spread(value: Milliseconds | TokenAmount) -> tuple[float, float]:
    """(p50, sigma) of a time or a token amount (sigma 0: fixed)."""
    if isinstance(value, (Duration, Distribution)):
        return value.p50, value.sigma
    return value, 0.0


class _StepCompiler:
    """One step's columns. The n-th decision (a split with two shares or more, an uncertain
    escalation) of a route, in the order the route is written, and each call of its n-th
    conversation share their columns across traffic classes (a request has one class), so a
    request reads the same columns whichever class, route and path it takes."""

    def __init__(self, plan: _Plan, columns: _Columns) -> None:
        self.plan, self.columns = plan, columns
        self.slots: dict[tuple[object, ...], int] = {}
        self.decisions = self.leaves = 0

    def column(self, *key: object) -> int:
        if key not in self.slots:
            self.slots[key] = self.columns.new()
        return self.slots[key]

    def layout(self, classes: list[str]) -> StepLayout:
        step = self.plan.step
        retrieval = None
        if step.retrieval_latency_ms is not None:
            p50, sigma = _spread(step.retrieval_latency_ms)
            column = self.column("retrieval") if sigma else FIXED
            retrieval = Timing(float(p50), sigma, column)
        trees: list[Node | None] = []
        for name in classes:
            tree = self.plan.trees.get(name)
            self.decisions = self.leaves = 0
            trees.append(None if tree is None else self.node(tree, name, False))
        return StepLayout(retrieval, tuple(trees))

    def node(self, node: RouteNode, cls: str, escalated: bool) -> Node:
        if isinstance(node, str):
            self.leaves += 1
            return self.conversation(self.plan.lanes[(cls, node, escalated)], self.leaves)
        if isinstance(node, Pick):
            options = [(share, option) for share, option in node.options if share > 0]
            if len(options) <= 1:
                return self.node((options or node.options)[0][1], cls, escalated)
            self.decisions += 1
            column = self.column("decision", self.decisions)
            return Split(
                column,
                _bounds([share for share, _ in options]),
                tuple(self.node(option, cls, escalated) for _, option in options),
            )
        if node.rate <= 0:
            return self.node(node.first, cls, escalated)
        column = FIXED
        if node.rate < 1:
            self.decisions += 1
            column = self.column("decision", self.decisions)
        first = self.node(node.first, cls, escalated)
        return Escalation(first, column, float(node.rate), self.node(node.then, cls, True))

    def conversation(self, lane: Lane, leaf: int) -> Conversation:
        step = self.plan.step
        speed = self.plan.speeds[id(lane)]
        reply_p50, reply_sigma = _spread(lane.output.tokens)
        ttft_p50, ttft_sigma = _spread(speed.ttft)
        tool = _spread(step.tool_latency_ms) if step.tool_latency_ms is not None else None
        retry = step.retry
        rate = float(retry.failure_rate) if retry is not None else 0.0
        most = retry.max_attempts if retry is not None and rate > 0 else 1
        thresholds = tuple(rate**a for a in range(1, most)) if rate < 1 else ()
        per_turn = step.tool_calls + 1
        calls = []
        for position in range(step.turns * per_turn):
            has_tool = tool is not None and position % per_turn < step.tool_calls
            calls.append(
                Call(
                    self.column(leaf, position, "output") if reply_sigma else FIXED,
                    self.column(leaf, position, "ttft") if ttft_sigma else FIXED,
                    self.column(leaf, position, "retry") if thresholds else FIXED,
                    has_tool,
                    self.column(leaf, position, "tool") if has_tool and tool and tool[1] else FIXED,
                )
            )
        return Conversation(
            int(reply_p50),
            reply_sigma,
            lane.output.cap,
            float(ttft_p50),
            ttft_sigma,
            float(speed.tokens_per_second),
            (float(tool[0]), tool[1]) if tool is not None else None,
            float(retry.backoff_ms) if retry is not None else 0.0,
            most,
            rate >= 1,
            thresholds,
            tuple(calls),
        )
