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
cost run (so declaring a speed leaves the cost figures unchanged). The run is pure Python
under both engines, so the numbers are the same with or without numpy. With nothing random,
one request is computed and p50 = p95 = mean.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from math import exp
from statistics import NormalDist

from promptbudget.lane import Lane
from promptbudget.manifest.model import (
    Distribution,
    Duration,
    Milliseconds,
    Statistic,
    Step,
    Workflow,
)
from promptbudget.pricing.catalog import ModelPrice
from promptbudget.routing import Cascade, Pick, RouteNode

try:  # what NormalDist().inv_cdf calls after checking its argument (C-accelerated)
    from statistics import _normal_dist_inv_cdf as _normal_inv  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - another Python implementation

    def _normal_inv(p: float, mu: float, sigma: float) -> float:
        return NormalDist(mu, sigma).inv_cdf(p)


PARTS = ("ttft", "output", "tools", "retrieval", "backoff")
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
    """Milliseconds per request."""

    mean: float
    p50: float
    p95: float

    def get(self, statistic: Statistic) -> float:
        return {"mean": self.mean, "p50": self.p50, "p95": self.p95}[statistic]


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
    values: list[float] = field(default_factory=list)
    parts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PARTS, 0.0))


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
    totals = _run(workflow, plans, runs, seed) if plans else []
    for plan in plans:
        results[plan.step.name] = StepLatency(
            plan.step.name,
            _stats(plan.values),
            {part: total / max(runs, 1) for part, total in plan.parts.items()},
        )
    ordered = tuple(results[step.name] for step, _ in steps)
    interactive = [step for step in ordered if not step.is_batch]
    is_known = bool(interactive) and all(step.stats is not None for step in interactive)
    return WorkflowLatency(_stats(totals) if is_known else None, ordered, runs, seed)


def _stats(values: list[float]) -> LatencyStats:
    ordered = sorted(values)
    return LatencyStats(
        math.fsum(values) / len(values), _percentile(ordered, 50), _percentile(ordered, 95)
    )


def _percentile(ordered: list[float], percent: int) -> float:
    """Nearest rank, as the cost run."""
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[rank - 1]


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


class _Draws:
    """The run's random stream: uniforms and standard-normal scores."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"promptbudget latency {seed}")

    @property
    def rng(self) -> Callable[[], float]:
        return self._rng.random

    def uniform(self) -> float:
        return self._rng.random()

    def score(self) -> float:
        # What NormalDist().inv_cdf computes, without re-checking its argument.
        z: float = _normal_inv(min(max(self._rng.random(), 1e-12), 1 - 1e-12), 0.0, 1.0)
        return z

    def amount(self, value: Milliseconds) -> float:
        return value.at(self.score()) if isinstance(value, Duration) else value

    def chosen(self, shares: Sequence[tuple[Decimal, object]]) -> int:
        """The index picked by shares (one draw when more than one share is positive)."""
        positive = [index for index, (share, _) in enumerate(shares) if share > 0]
        if len(positive) <= 1:
            return positive[0] if positive else 0
        u, acc = self.uniform(), 0.0
        for index in positive:
            acc += float(shares[index][0])
            if u < acc:
                return index
        return positive[-1]


def _run(workflow: Workflow, plans: list[_Plan], runs: int, seed: int) -> list[float]:
    draws = _Draws(seed)
    classes = [(c.share, c.name) for c in workflow.classes]
    hit_rate = float(workflow.semantic_cache_hit_rate)
    totals = []
    for _ in range(runs):
        cls = classes[draws.chosen(classes)][1]
        hit = hit_rate > 0 and draws.uniform() < hit_rate
        total = 0.0
        for plan in plans:
            value = 0.0 if hit else _step_ms(plan, cls, draws)
            plan.values.append(value)
            total += value
        totals.append(total)
    return totals


def _walk(node: RouteNode, draws: _Draws, escalated: bool = False) -> list[tuple[str, bool]]:
    """The models one request's step calls, in order."""
    if isinstance(node, str):
        return [(node, escalated)]
    if isinstance(node, Pick):
        return _walk(node.options[draws.chosen(node.options)][1], draws, escalated)
    calls = _walk(node.first, draws, escalated)
    if node.rate >= 1 or (node.rate > 0 and draws.uniform() < node.rate):
        calls += _walk(node.then, draws, True)
    return calls


def _step_ms(plan: _Plan, cls: str, draws: _Draws) -> float:
    step, parts = plan.step, plan.parts
    total = 0.0
    if step.retrieval_latency_ms is not None:
        retrieval = draws.amount(step.retrieval_latency_ms)
        parts["retrieval"] += retrieval
        total += retrieval
    for model, escalated in _walk(plan.trees[cls], draws):
        total += _conversation_ms(plan, plan.lanes[(cls, model, escalated)], draws)
    return total


def _conversation_ms(plan: _Plan, lane: Lane, draws: _Draws) -> float:
    """One conversation of ``lane``: the same draws, in the same order, and the same float
    operations as a call-by-call reading of the module docstring (the inner loop: the
    distributions are unpacked once, and a call without a retry skips adding zeros)."""
    step, parts = plan.step, plan.parts
    speed = plan.speeds[id(lane)]
    retry = step.retry
    backoff = retry.backoff_ms if retry is not None else 0.0
    rng = draws.rng
    # Attempts: 1 + failures before a success, at most max_attempts (P(attempts > a) = q^a,
    # one uniform draw when 0 < q < 1). mode 0: never fails, -1: always fails, 1: draw.
    mode, log_q, most = 0, 0.0, 1
    if retry is not None and retry.failure_rate > 0:
        most = retry.max_attempts
        mode = -1 if retry.failure_rate >= 1 else 1
        log_q = math.log(float(retry.failure_rate)) if mode == 1 else 0.0
    reply = lane.output.tokens
    cap = lane.output.cap
    reply_p50, reply_sigma = (
        (reply.p50, reply.sigma) if isinstance(reply, Distribution) else (reply, None)
    )
    ttft_fixed = 0.0
    ttft_p50, ttft_sigma = 0.0, None
    if isinstance(speed.ttft, Duration):
        ttft_p50, ttft_sigma = speed.ttft.p50, speed.ttft.sigma
    else:
        ttft_fixed = speed.ttft
    per_second = speed.tokens_per_second
    tool = step.tool_latency_ms if step.tool_calls else None
    total = 0.0
    per_turn = step.tool_calls + 1
    for position in range(step.turns * per_turn):
        if reply_sigma is None:
            drawn = reply_p50
        else:
            z = _normal_inv(min(max(rng(), 1e-12), 1 - 1e-12), 0.0, 1.0)
            drawn = reply_p50 if reply_sigma == 0.0 else round(reply_p50 * exp(reply_sigma * z))
        output = max(0, drawn)
        if cap is not None and output > cap:
            output = cap
        if ttft_sigma is None:
            ttft = ttft_fixed
        else:
            z = _normal_inv(min(max(rng(), 1e-12), 1 - 1e-12), 0.0, 1.0)
            ttft = ttft_p50 if ttft_sigma == 0.0 else ttft_p50 * exp(ttft_sigma * z)
        generation = output * 1000.0 / per_second
        if mode == 1:
            failures = math.floor(math.log(1.0 - rng()) / log_q)
            attempts = min(most, 1 + failures)
        else:
            attempts = 1 if mode == 0 else most
        if attempts == 1:  # x 1 and + 0.0 change nothing: the same sums
            parts["ttft"] += ttft
            parts["output"] += generation
            total += ttft + generation
        else:
            parts["ttft"] += attempts * ttft
            parts["output"] += attempts * generation
            parts["backoff"] += (attempts - 1) * backoff
            total += attempts * (ttft + generation) + (attempts - 1) * backoff
        if tool is not None and position % per_turn < step.tool_calls:
            tool_ms = draws.amount(tool)
            parts["tools"] += tool_ms
            total += tool_ms
    return total
