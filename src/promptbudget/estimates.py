"""What a workflow costs per request, per successful outcome and per month, and why.

``lanes.py`` hands over *lanes* (``lane.py``): for each traffic class, step and routed
model, the counted prompt and how its calls are made. Here they are priced:

* every call of a lane: ``turns x (1 + tool_calls)`` calls, history growing (simulation.py);
* a lane's weight: the class's share of traffic x the route's share of the step's calls
  (escalations included) x the expected attempts of its retries;
* provider prompt caching on the cacheable prefix, batch share, long-context tiers;
* the request: the sum over lanes, times ``1 - semantic_cache_hit_rate``.

The mean is exact: every component's mean (step, model, component) comes in closed form
from the declared distributions (``expectation.py``), and the mean is their sum, so a
breakdown adds up to it exactly. Declared distributions (``{p50, p95}``) are sampled in a
seeded Monte Carlo run for the percentiles (p50, p95) only; with no distribution every
sample is the same and p50 = p95 = mean exactly. One exception: a lane with a call whose
long-context tier is uncertain (its input may fall on either side of the threshold) keeps
its sample mean, and the estimate says so (``sampled_mean_steps``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from promptbudget.counting import PromptCount
from promptbudget.lane import Lane
from promptbudget.latency import StepLatency, WorkflowLatency, simulate_latency
from promptbudget.manifest.model import (
    Distribution,
    Statistic,
    Step,
    Workflow,
    typical,
)
from promptbudget.montecarlo import (
    CALLS,
    HISTORY,
    OUTPUT,
    STATIC,
    TOOL_RESULTS,
    VARIABLES,
    LaneTerms,
    SampledVariable,
    sample_costs,
)
from promptbudget.pricing.catalog import MILLION, TimeOfDay
from promptbudget.routing import RoutedModel
from promptbudget.simulation import (
    ZERO,
    cost_per_outcome,
)
from promptbudget.units import quantize

DEFAULT_SAMPLES = 1000
DEFAULT_SEED = 1


# -- output --------------------------------------------------------------------------------


# -- lanes ---------------------------------------------------------------------------------


# -- estimates -----------------------------------------------------------------------------


Band = tuple[Decimal, Decimal]


@dataclass(frozen=True)
class CostStats:
    """Dollars: the exact mean, and the sampled p50 and p95 with their 95% bands
    (``quantiles.py``; None when nothing is sampled and every percentile is the mean)."""

    mean: Decimal
    p50: Decimal
    p95: Decimal
    p50_band: Band | None = None
    p95_band: Band | None = None

    def get(self, statistic: Statistic) -> Decimal:
        return {"mean": self.mean, "p50": self.p50, "p95": self.p95}[statistic]

    def band(self, statistic: Statistic) -> Band | None:
        """The 95% band of a sampled percentile; None for the mean and when exact."""
        return {"mean": None, "p50": self.p50_band, "p95": self.p95_band}[statistic]


@dataclass(frozen=True)
class Component:
    """One leaf of ``estimate --why``: a step's component on a model, per request."""

    step: str
    model: str
    name: str  # "static", "var:<name>", "history", "tool_results", "output"
    cost_usd: Decimal
    tokens: Decimal  # tokens per request (weighted by traffic, routing and retries)


@dataclass(frozen=True)
class StepEstimate:
    workflow: str
    step: Step
    template_path: str
    lanes: tuple[Lane, ...]
    cost_usd: Decimal  # mean cost of this step per request (before semantic caching)
    break_even_escalation: Decimal | None = None
    latency: StepLatency | None = None  # milliseconds per request (latency.py)

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def prompt(self) -> PromptCount | None:
        """The prompt of the first lane (what variable rules look at)."""
        return self.lanes[0].prompt if self.lanes else None

    @property
    def primary(self) -> Lane | None:
        return self.lanes[0] if self.lanes else None

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(lane.model for lane in self.lanes))

    @property
    def model(self) -> str | None:
        """The step's model when it has one; ``a, b`` for a routed step."""
        return ", ".join(self.models) or None

    @property
    def exact(self) -> bool:
        return all(lane.exact for lane in self.lanes)

    @property
    def is_priced(self) -> bool:
        return all(lane.price is not None for lane in self.lanes)

    @property
    def max_input_tokens(self) -> int:
        return max((lane.max_input_tokens for lane in self.lanes), default=0)

    @property
    def worst_lane(self) -> Lane | None:
        return max(self.lanes, key=lambda lane: lane.max_input_tokens, default=None)

    @property
    def tool_calls_per_request(self) -> int:
        return self.step.turns * self.step.tool_calls


@dataclass(frozen=True)
class WorkflowEstimate:
    workflow: Workflow
    steps: tuple[StepEstimate, ...]
    cost: CostStats  # per request, semantic cache applied
    components: tuple[Component, ...] = ()
    samples: int = 1
    seed: int = DEFAULT_SEED
    latency: WorkflowLatency | None = None  # milliseconds per request (latency.py)
    # Steps whose mean is the sample mean (a call's long-context tier is uncertain); every
    # other step's mean is exact (closed form, expectation.py).
    sampled_mean_steps: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.workflow.name

    @property
    def mean_is_sampled(self) -> bool:
        return bool(self.sampled_mean_steps)

    @property
    def is_complete(self) -> bool:
        """False when a lane's model is unknown (its calls are not priced)."""
        return all(step.is_priced for step in self.steps)

    @property
    def cost_per_request_usd(self) -> Decimal:
        return self.cost.mean

    @property
    def outcome(self) -> CostStats:
        rate = self.workflow.success_rate

        def per_outcome(band: Band | None) -> Band | None:
            if band is None:
                return None
            return cost_per_outcome(band[0], rate), cost_per_outcome(band[1], rate)

        return CostStats(
            cost_per_outcome(self.cost.mean, rate),
            cost_per_outcome(self.cost.p50, rate),
            cost_per_outcome(self.cost.p95, rate),
            per_outcome(self.cost.p50_band),
            per_outcome(self.cost.p95_band),
        )

    @property
    def cost_per_outcome_usd(self) -> Decimal:
        return self.outcome.mean

    @property
    def monthly_spend_usd(self) -> Decimal | None:
        per_month = self.workflow.requests_per_month
        return None if per_month is None else self.cost.mean * per_month

    @property
    def calls_per_request(self) -> Decimal:
        """Model calls per request: routed shares, escalations and retries included."""
        return sum(
            (lane.weight * lane.calls_per_request for step in self.steps for lane in step.lanes),
            ZERO,
        )

    @property
    def max_turns(self) -> int:
        return max((step.step.turns for step in self.steps), default=0)

    @property
    def tool_calls_per_request(self) -> int:
        return sum(step.tool_calls_per_request for step in self.steps)

    def model_mix(self) -> list[tuple[str, Decimal, Decimal]]:
        """(model, share of calls, share of cost) for every model the workflow calls."""
        calls: dict[str, Decimal] = {}
        for step in self.steps:
            for lane in step.lanes:
                calls[lane.model] = (
                    calls.get(lane.model, ZERO) + lane.weight * lane.calls_per_request
                )
        costs: dict[str, Decimal] = {}
        for component in self.components:
            costs[component.model] = costs.get(component.model, ZERO) + component.cost_usd
        total_calls = sum(calls.values(), ZERO)
        total_cost = sum(costs.values(), ZERO)
        return [
            (
                model,
                calls[model] / total_calls if total_calls else ZERO,
                costs.get(model, ZERO) / total_cost if total_cost else ZERO,
            )
            for model in calls
        ]


def has_distributions(lanes: list[Lane]) -> bool:
    return any(
        isinstance(lane.output.tokens, Distribution)
        or any(isinstance(v.size, Distribution) for v in lane.sized)
        for lane in lanes
    )


def _typical_sample(lane: Lane) -> tuple[dict[str, int], list[int]]:
    """Variable sizes and replies at their typical values (fixed, or the median)."""
    sizes = {v.name: typical(v.size) for v in lane.sized}
    reply = lane.output.clip(typical(lane.output.tokens))
    return sizes, [reply] * lane.calls_per_request


def lane_terms(lane: Lane) -> LaneTerms:
    """The plain numbers the Monte Carlo run needs from ``lane``."""
    is_priced = lane.price is not None and lane.prompt is not None
    tier = lane.price.long_context if lane.price is not None else None
    bound_vars, static, _ = lane._skeleton
    return LaneTerms(
        traffic_class=lane.traffic_class.name,
        step=lane.step.name,
        is_priced=is_priced,
        sized=tuple(SampledVariable(v.name, v.uses, v.size, v.cap) for v in lane.sized),
        bound_vars=bound_vars,
        static=static,
        cached=lane.cached_tokens if is_priced else 0,
        threshold=tier.threshold_tokens if tier is not None else None,
        base_rates=lane.float_rates(False) if is_priced else (0.0, 0.0, 0.0),
        long_rates=lane.float_rates(True) if is_priced else (0.0, 0.0, 0.0),
        weight=lane.float_weight,
        turns=lane.step.turns,
        tool_calls=lane.step.tool_calls,
        user_message_tokens=lane.user_message_tokens,
        reply_framing=lane.reply_framing,
        tool_result_message_tokens=lane.tool_result_message_tokens,
        output=lane.output.tokens,
        output_cap=lane.output.cap,
    )


def estimate_workflow(
    workflow: Workflow,
    steps: list[tuple[Step, str, list[Lane]]],
    *,
    samples: int = DEFAULT_SAMPLES,
    seed: int = DEFAULT_SEED,
) -> WorkflowEstimate:
    """Price every lane of ``workflow``; Monte Carlo only over declared distributions."""
    lanes = [(step, lane) for step, _, step_lanes in steps for lane in step_lanes]
    runs = samples if has_distributions([lane for _, lane in lanes]) else 1
    keep = 1 - workflow.semantic_cache_hit_rate
    sampled = sample_costs([lane_terms(lane) for _, lane in lanes], runs, seed, float(keep))
    rows: dict[tuple[int, bool], tuple[list[Decimal] | list[int], int]] = {
        key: (row, 1) for key, row in sampled.expected.items()
    }
    rows.update({key: (row, runs) for key, row in sampled.rows.items()})
    components = _price_tally(rows, lanes, keep)
    mean = sum((c.cost_usd for c in components), ZERO)
    if runs == 1:
        stats = CostStats(mean, mean, mean)
    else:
        stats = CostStats(
            mean,
            _decimal(sampled.p50),
            _decimal(sampled.p95),
            (_decimal(sampled.p50_band[0]), _decimal(sampled.p50_band[1])),
            (_decimal(sampled.p95_band[0]), _decimal(sampled.p95_band[1])),
        )
    latency = simulate_latency(
        workflow, [(step, step_lanes) for step, _, step_lanes in steps], samples=samples, seed=seed
    )
    step_estimates = tuple(
        StepEstimate(
            workflow=workflow.name,
            step=step,
            template_path=template_path,
            lanes=tuple(step_lanes),
            cost_usd=sum((c.cost_usd for c in components if c.step == step.name), ZERO),
            break_even_escalation=_break_even(step_lanes),
            latency=latency.step(step.name),
        )
        for step, template_path, step_lanes in steps
    )
    return WorkflowEstimate(
        workflow=workflow,
        steps=step_estimates,
        cost=stats,
        components=components,
        samples=runs,
        seed=seed,
        latency=latency,
        sampled_mean_steps=tuple(
            dict.fromkeys(lanes[index][0].name for index in sorted(sampled.sampled))
        ),
    )


def _decimal(value: float) -> Decimal:
    return quantize(Decimal(repr(value)), Decimal("1e-12"))


def _price_tally(
    rows: dict[tuple[int, bool], tuple[list[Decimal] | list[int], int]],
    lanes: list[tuple[Step, Lane]],
    keep: Decimal,
) -> tuple[Component, ...]:
    """Mean cost and tokens per request of every (step, model, component), from each
    (lane, tier)'s token row and the number of requests it sums (1 for an expected row)."""
    costs: dict[tuple[str, str, str], Decimal] = {}
    tokens: dict[tuple[str, str, str], Decimal] = {}

    def add(
        step: Step, lane: Lane, name: str, count: Decimal | int, runs: int, rate: Decimal
    ) -> None:
        key = (step.name, lane.model, name)
        scale = lane.weight * keep / runs
        costs[key] = costs.get(key, ZERO) + count * rate * scale / MILLION
        tokens[key] = tokens.get(key, ZERO) + count * scale

    for (index, long), (row, runs) in sorted(rows.items()):
        step, lane = lanes[index]
        rates = lane.rates_for_tier(long)
        cached = lane.cached_tokens * row[CALLS]
        static_cost = row[STATIC] * rates.input_per_mtok + cached * rates.cached_per_mtok
        static_tokens = row[STATIC] + cached
        # Tool definitions are part of the static prefix: their share of it, shown apart.
        _, static, _ = lane._skeleton
        tool_tokens = lane.prompt.tool_tokens if lane.prompt is not None else 0
        tools_share = Decimal(tool_tokens) / static if static and tool_tokens else ZERO
        scale = lane.weight * keep / runs
        for name, share in (("tools", tools_share), ("static", 1 - tools_share)):
            if name == "tools" and not share:
                continue
            key = (step.name, lane.model, name)
            costs[key] = costs.get(key, ZERO) + static_cost * share * scale / MILLION
            tokens[key] = tokens.get(key, ZERO) + static_tokens * share * scale
        names = [name for name, _ in lane.variable_tokens]
        for position, name in enumerate(names, VARIABLES):
            add(step, lane, f"var:{name}", row[position], runs, rates.input_per_mtok)
        add(step, lane, "history", row[HISTORY], runs, rates.input_per_mtok)
        add(step, lane, "tool_results", row[TOOL_RESULTS], runs, rates.input_per_mtok)
        add(step, lane, "output", row[OUTPUT], runs, rates.output_per_mtok)
    return tuple(
        Component(step, model, name, cost, tokens[(step, model, name)])
        for (step, model, name), cost in costs.items()
    )


def _break_even(lanes: list[Lane]) -> Decimal | None:
    """For a two-stage cascade: the escalation rate at which the cascade costs as much as
    sending every call to the escalation model directly (``1 - C_cheap / C_frontier``
    without caching; caching on the direct model is taken into account)."""
    primary = [lane for lane in lanes if not lane.routed.escalated]
    escalated = [lane for lane in lanes if lane.routed.escalated]
    if not primary or not escalated or any(lane.price is None for lane in lanes):
        return None
    if len({lane.model for lane in escalated}) != 1:
        return None
    first = escalated[0]
    primary_cost = _unit_cost(primary)
    escalated_cost = _unit_cost([first])
    direct = replace(first, routed=RoutedModel(first.model, first.routed.weight))
    direct_cost = _unit_cost([direct])
    if escalated_cost == 0:
        return None
    return (direct_cost - primary_cost) / escalated_cost


def _unit_cost(lanes: list[Lane]) -> Decimal:
    """Cost per unit of routed weight, at typical sizes, for one traffic class mix."""
    cost = ZERO
    weight = ZERO
    for lane in lanes:
        sizes, outputs = _typical_sample(lane)
        cost += sum(lane.components(sizes, outputs).values(), ZERO)
        weight += lane.weight
    return cost / weight if weight else ZERO


def template_token_rates(
    workflows: tuple[WorkflowEstimate, ...],
) -> dict[str, tuple[Decimal, tuple[str, ...]]]:
    """For each template: dollars a month that one static token of it costs, across the
    workflows that send it, and those workflows' names (only workflows with traffic)."""
    rates: dict[str, tuple[Decimal, tuple[str, ...]]] = {}
    for workflow in workflows:
        per_month = workflow.workflow.requests_per_month
        if per_month is None:
            continue
        keep = 1 - workflow.workflow.semantic_cache_hit_rate
        for step in workflow.steps:
            for lane in step.lanes:
                rate = (
                    lane.weight
                    * lane.calls_per_request
                    * per_month
                    * keep
                    * lane.static_rate_per_mtok
                    / MILLION
                )
                total, names = rates.get(lane.template_path, (ZERO, ()))
                if workflow.name not in names:
                    names = (*names, workflow.name)
                rates[lane.template_path] = (total + rate, names)
    return rates


@dataclass(frozen=True)
class TimeOfDaySplit:
    """One step's model with time-of-day prices: the share of traffic off-peak and what the
    step's cost on that model (per request) comes to in peak and off-peak hours."""

    step: str
    model: str
    time_of_day: TimeOfDay
    cost_usd: Decimal  # blended, per request
    peak_usd: Decimal | None  # the part billed at peak rates (None: rates not proportional)
    off_peak_usd: Decimal | None


def _uniform_off_peak_ratio(split: TimeOfDay) -> Decimal | None:
    """The off-peak/peak ratio when every rate scales alike (DeepSeek: exactly 1/2)."""
    pairs = [
        (split.peak.input_per_mtok, split.off_peak.input_per_mtok),
        (split.peak.output_per_mtok, split.off_peak.output_per_mtok),
        (split.peak.cache_read_per_mtok, split.off_peak.cache_read_per_mtok),
    ]
    ratios = {low / peak for peak, low in pairs if peak and low is not None}
    return ratios.pop() if len(ratios) == 1 else None


def time_of_day_splits(workflow: WorkflowEstimate) -> list[TimeOfDaySplit]:
    """Peak and off-peak dollars of every step-model with time-of-day prices."""
    out = []
    for step in workflow.steps:
        for model in dict.fromkeys(lane.model for lane in step.lanes):
            lanes = [lane for lane in step.lanes if lane.model == model and lane.time_of_day]
            if not lanes or lanes[0].time_of_day is None:
                continue
            split = lanes[0].time_of_day
            cost = sum(
                (
                    c.cost_usd
                    for c in workflow.components
                    if c.step == step.name and c.model == model
                ),
                ZERO,
            )
            ratio = _uniform_off_peak_ratio(split)
            peak_usd = off_usd = None
            if ratio is not None:
                share = split.off_peak_share
                at_peak = cost / (1 - share + share * ratio)
                peak_usd = at_peak * (1 - share)
                off_usd = cost - peak_usd
            out.append(TimeOfDaySplit(step.name, model, split, cost, peak_usd, off_usd))
    return out


def unmodelled_pricing(workflow: WorkflowEstimate) -> dict[str, tuple[str, ...]]:
    """Models of the workflow whose pricing has dimensions the cost model leaves out."""
    out: dict[str, tuple[str, ...]] = {}
    for step in workflow.steps:
        for lane in step.lanes:
            if lane.price is not None and lane.price.unmodelled:
                out.setdefault(lane.price.name, lane.price.unmodelled)
    return out
