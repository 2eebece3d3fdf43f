"""One lane of a step, as the simulation receives it: a traffic class and a routed model, with
the template rendered and counted for that model, the output bound, the cache terms; and the
calls it makes and what each costs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from promptbudget.counting import PromptCount, PromptStructure
from promptbudget.manifest.model import (
    Step,
    TokenAmount,
    TrafficClass,
    typical,
    worst,
)
from promptbudget.pricing.catalog import ModelPrice, TimeOfDay
from promptbudget.routing import RoutedModel, RouteNode
from promptbudget.simulation import (
    ZERO,
    CacheTerms,
    CallInput,
    EffectiveRates,
    cached_prefix_tokens,
    call_components,
    effective_rates,
    select_rates,
)
from promptbudget.tokenizers import Tokenizer


@dataclass(frozen=True)
class OutputBound:
    """The output tokens a call is priced at, and the bound limits are checked against."""

    tokens: TokenAmount  # expected reply tokens per call (fixed or a distribution)
    cap: int | None  # the API's max output tokens, if declared (template or step)
    source: str  # "output_tokens", "cap", "model max" or "unknown"

    @property
    def bound(self) -> int:
        """The most a call replies: the cap when there is one, else the p95 or fixed size."""
        return self.cap if self.cap is not None else worst(self.tokens)

    def clip(self, tokens: int) -> int:
        return min(tokens, self.cap) if self.cap is not None else tokens


def output_bound(step: Step, template_cap: int | None, price: ModelPrice | None) -> OutputBound:
    cap = step.max_output_tokens if step.max_output_tokens is not None else template_cap
    if step.output_tokens is not None:
        return OutputBound(step.output_tokens, cap, "output_tokens")
    if cap is not None:
        return OutputBound(cap, cap, "cap")
    if price is not None and price.max_output_tokens is not None:
        return OutputBound(price.max_output_tokens, None, "model max")
    return OutputBound(0, None, "unknown")


@dataclass(frozen=True)
class SizedVariable:
    """A variable filled by a cap or a typical size: ``uses`` x its size in every prompt."""

    name: str
    uses: int  # how many times its value is charged in the prompt
    bound: int  # per use: the size the prompt was counted at (the cap, else p95 or fixed)
    size: TokenAmount  # per use: what a request holds (the typical size, else the cap)
    cap: int | None = None  # per use: the hard cap, if declared (draws are clipped to it)


@dataclass(frozen=True)
class Lane:
    """One traffic class's calls of one step on one model."""

    traffic_class: TrafficClass
    step: Step
    routed: RoutedModel
    price: ModelPrice | None
    tokenizer: Tokenizer
    prompt: PromptCount | None  # counted at the caps; None when the file is unreadable
    structure: PromptStructure | None
    sized: tuple[SizedVariable, ...]
    output: OutputBound
    user_message_tokens: int
    reply_framing: int
    tool_result_message_tokens: int
    cache: CacheTerms | None
    batch_share: Decimal
    template_path: str
    time_of_day: TimeOfDay | None = None  # off-peak blend behind ``price`` (DeepSeek)
    route: RouteNode | None = None  # the class's choices for this step (latency)

    @property
    def model(self) -> str:
        return self.routed.model

    @cached_property
    def weight(self) -> Decimal:
        """Share of requests x share of the step's calls x expected attempts."""
        attempts = self.step.retry.expected_attempts if self.step.retry else Decimal(1)
        return self.traffic_class.share * self.routed.weight * attempts

    @property
    def cache_terms(self) -> CacheTerms | None:
        """Caches are per model: an escalated call pays its prompt in full."""
        return None if self.routed.escalated else self.cache

    @cached_property
    def cached_tokens(self) -> int:
        """Prefix tokens the provider caches on every call of this lane."""
        if self.price is None or self.cache_terms is None:
            return 0
        return cached_prefix_tokens(self.price, self._skeleton[2])

    def rates(self, input_tokens: int) -> EffectiveRates:
        """Effective rates of a call of ``input_tokens`` (two tiers: below or above the
        long-context threshold)."""
        return self.rates_for_tier(self.is_long(input_tokens))

    def rates_for_tier(self, long: bool) -> EffectiveRates:
        return self._long_rates if long else self._base_rates

    def is_long(self, input_tokens: int) -> bool:
        tier = self.price.long_context if self.price else None
        return tier is not None and input_tokens > tier.threshold_tokens

    def float_rates(self, long: bool) -> tuple[float, float, float]:
        return self._float_long if long else self._float_base

    @cached_property
    def _float_base(self) -> tuple[float, float, float]:
        return _float_rates(self._base_rates)

    @cached_property
    def _float_long(self) -> tuple[float, float, float]:
        return _float_rates(self._long_rates)

    @cached_property
    def static_rate_per_mtok(self) -> Decimal:
        """What a static token of this lane's prompt costs on average (caching included)."""
        _, static, _ = self._skeleton
        if self.price is None or not static:
            return ZERO
        rates = self._base_rates
        cached = min(self.cached_tokens, static)
        return ((static - cached) * rates.input_per_mtok + cached * rates.cached_per_mtok) / static

    @cached_property
    def float_weight(self) -> float:
        return float(self.weight)

    @cached_property
    def uses(self) -> dict[str, int]:
        return {v.name: v.uses for v in self.sized}

    @property
    def variable_tokens(self) -> tuple[tuple[str, int], ...]:
        """Variables in the order calls list them, at their render sizes."""
        return self._skeleton[0]

    @cached_property
    def _base_rates(self) -> EffectiveRates:
        assert self.price is not None
        return effective_rates(self.price, 0, cache=self.cache_terms, batch_share=self.batch_share)

    @cached_property
    def _long_rates(self) -> EffectiveRates:
        assert self.price is not None
        tier = self.price.long_context
        above = tier.threshold_tokens + 1 if tier is not None else 0
        return effective_rates(
            self.price, above, cache=self.cache_terms, batch_share=self.batch_share
        )

    @property
    def exact(self) -> bool:
        return self.tokenizer.exact and self.prompt is not None and self.prompt.exact

    @property
    def calls_per_request(self) -> int:
        return self.step.turns * (1 + self.step.tool_calls)

    @cached_property
    def _skeleton(self) -> tuple[tuple[tuple[str, int], ...], int, int]:
        """(variables at their render sizes, static tokens, cacheable prefix)."""
        if self.prompt is None:
            return (), 0, 0
        bound_vars = self.variable_tokens_at_bound()
        static = self.prompt.request_tokens - sum(tokens for _, tokens in bound_vars)
        prefix = min(self.structure.prefix_tokens, static) if self.structure else 0
        return bound_vars, static, prefix

    def variable_tokens_at_bound(self) -> tuple[tuple[str, int], ...]:
        assert self.prompt is not None
        sized = {v.name: v for v in self.sized}
        out = tuple(
            (variable.name, variable.tokens)
            for variable in self.prompt.variables
            if variable.name in sized or variable.source == "sample"
        )
        return _fit_samples(out, self.prompt, self.structure, sized)

    def calls(self, sizes: Mapping[str, int], outputs: list[int]) -> list[CallInput]:
        """The calls of one request, given variable sizes and each call's reply tokens."""
        if self.prompt is None:
            return []
        bound_vars, static, prefix = self._skeleton
        uses = self.uses
        variables = tuple(
            (name, sizes[name] * uses[name] if name in uses else tokens)
            for name, tokens in bound_vars
        )
        k = self.step.tool_calls
        history = tool_results = 0
        calls = []
        position = 0
        for turn in range(self.step.turns):
            if turn:
                history += self.user_message_tokens
            for index in range(k + 1):
                output = outputs[position]
                position += 1
                calls.append(CallInput(static, variables, history, tool_results, output, prefix))
                history += output + self.reply_framing
                if index < k:
                    tool_results += self.tool_result_message_tokens
        return calls

    def components(self, sizes: Mapping[str, int], outputs: list[int]) -> dict[str, Decimal]:
        """Expected cost of this lane in one request, by component, weight included."""
        if self.price is None:
            return {}
        total: dict[str, Decimal] = {}
        for call in self.calls(sizes, outputs):
            for key, amount in call_components(
                self.price, call, cache=self.cache_terms, batch_share=self.batch_share
            ).items():
                total[key] = total.get(key, ZERO) + amount * self.weight
        return total

    def worst_calls(self) -> list[CallInput]:
        """Calls with every variable at its cap and every reply at its bound (limits)."""
        sizes = {v.name: v.bound for v in self.sized}
        return self.calls(sizes, [self.output.bound] * self.calls_per_request)

    def typical_calls(self) -> list[CallInput]:
        """Calls at typical sizes (fixed, or the median of a distribution)."""
        sizes = {v.name: typical(v.size) for v in self.sized}
        reply = self.output.clip(typical(self.output.tokens))
        return self.calls(sizes, [reply] * self.calls_per_request)

    @cached_property
    def max_input_tokens(self) -> int:
        return max((call.input_tokens for call in self.worst_calls()), default=0)


def _fit_samples(
    variables: tuple[tuple[str, int], ...],
    prompt: PromptCount,
    structure: PromptStructure | None,
    sized: Mapping[str, SizedVariable],
) -> tuple[tuple[str, int], ...]:
    """Sampled variables get what the real render has beyond the static skeleton and the
    capped variables, split by the size of their text, so the parts add up exactly."""
    samples = [(name, tokens) for name, tokens in variables if name not in sized]
    if not samples or structure is None:
        return variables
    capped = sum(tokens for name, tokens in variables if name in sized)
    available = max(0, prompt.request_tokens - structure.static_tokens - capped)
    weights = sum(tokens for _, tokens in samples) or 1
    shares: dict[str, int] = {}
    given = 0
    for index, (name, tokens) in enumerate(samples):
        if index == len(samples) - 1:
            share = available - given
        else:  # rounded to the nearest token, never more than is left
            share = min(available - given, (2 * available * tokens + weights) // (2 * weights))
        shares[name] = share
        given += share
    return tuple((name, shares.get(name, tokens)) for name, tokens in variables)


def iter_calls(lane: Lane) -> Iterator[tuple[int, int, CallInput]]:
    """(turn, index, call) at typical sizes, for reports."""
    k = lane.step.tool_calls
    for position, call in enumerate(lane.typical_calls()):
        yield position // (k + 1) + 1, position % (k + 1), call


def call_cost(lane: Lane, call: CallInput) -> Decimal:
    """The expected cost of one call of ``lane`` (unweighted)."""
    if lane.price is None:
        return ZERO
    cache = None if lane.routed.escalated else lane.cache
    return sum(
        call_components(lane.price, call, cache=cache, batch_share=lane.batch_share).values(),
        ZERO,
    )


def is_long_context(lane: Lane, call: CallInput) -> bool:
    return lane.price is not None and select_rates(lane.price, call.input_tokens).is_long_context


def _float_rates(rates: EffectiveRates) -> tuple[float, float, float]:
    return (
        float(rates.input_per_mtok),
        float(rates.cached_per_mtok),
        float(rates.output_per_mtok),
    )
