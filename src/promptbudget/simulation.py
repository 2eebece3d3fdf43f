"""What a model call, a step and a workflow request cost. Pure functions, ``Decimal`` money.

Cost of one call (rates are per million tokens; ``input_tokens`` counts every prompt token,
cached or not, like OpenAI's ``prompt_tokens``):

* ``openai`` billing: ``(input - cache_read - cache_write) * in + cache_read * cache_read_rate
  + cache_write * cache_write_rate + output * out``. A model with no write premium has no
  ``cache_write`` rate, and written tokens cost the plain input rate.
* ``anthropic`` billing: the same sum; Anthropic reports ``input_tokens`` *without* the cached
  tokens, which is exactly the ``input - cache_read - cache_write`` term.
* Above the model's long-context threshold, the *whole request* (every term) is priced at the
  tier's rates.
* Batch calls use the batch rates. Cache reads get the model's own batch cache-read discount
  (in the long-context tier too), else the input discount; cache writes get the input
  discount.

A step sends its prompt ``turns`` times; in each turn the model is called ``1 + tool_calls``
times. Every call's reply, every tool result and every later user message are appended to the
history that the next call re-sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from promptbudget.pricing.catalog import MILLION, ModelPrice

ZERO = Decimal(0)


@dataclass(frozen=True)
class CallTokens:
    """Tokens of one model call. Cache reads and writes are part of ``input_tokens``."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0

    def __post_init__(self) -> None:
        cached = self.cache_read_tokens + self.cache_write_tokens + self.cache_write_1h_tokens
        if (
            min(
                self.input_tokens,
                self.output_tokens,
                self.cache_read_tokens,
                self.cache_write_tokens,
                self.cache_write_1h_tokens,
            )
            < 0
        ):
            raise ValueError("token counts cannot be negative")
        if cached > self.input_tokens:
            raise ValueError("cached tokens are part of the input and cannot exceed it")


@dataclass(frozen=True)
class CallRates:
    """Per-million-token rates that apply to one call (after tier and batch selection)."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal
    cache_write_per_mtok: Decimal
    cache_write_1h_per_mtok: Decimal
    is_long_context: bool = False
    is_batch: bool = False


@dataclass(frozen=True)
class CallCost:
    input_usd: Decimal
    cache_read_usd: Decimal
    cache_write_usd: Decimal
    output_usd: Decimal
    rates: CallRates

    @property
    def total_usd(self) -> Decimal:
        return self.input_usd + self.cache_read_usd + self.cache_write_usd + self.output_usd


def _ratio(numerator: Decimal | None, denominator: Decimal) -> Decimal:
    """``numerator / denominator``, or 1 when there is no numerator (no discount known)."""
    if numerator is None or not denominator:
        return Decimal(1)
    return numerator / denominator


def _given(rate: Decimal | None, fallback: Decimal) -> Decimal:
    return rate if rate is not None else fallback


def select_rates(price: ModelPrice, input_tokens: int, *, batch: bool = False) -> CallRates:
    """The rates for a call of ``input_tokens`` prompt tokens: long-context tier when the
    prompt is above the threshold (the whole request), batch rates when batched.

    A missing cache rate means no discount or premium: the plain input rate. Tier and batch
    cache rates missing from the catalog scale with the input rate.
    """
    in_rate = price.input_per_mtok
    out_rate = price.output_per_mtok
    read_rate = _given(price.cache_read_per_mtok, in_rate)
    write_rate = _given(price.cache_write_per_mtok, in_rate)
    write_1h_rate = _given(price.cache_write_1h_per_mtok, write_rate)
    tier = price.long_context
    is_long = tier is not None and input_tokens > tier.threshold_tokens
    if tier is not None and is_long:
        scale = _ratio(tier.input_per_mtok, in_rate)
        read_rate = _given(tier.cache_read_per_mtok, read_rate * scale)
        write_1h_rate = write_1h_rate * scale
        write_rate = _given(tier.cache_write_per_mtok, write_rate * scale)
        in_rate, out_rate = tier.input_per_mtok, tier.output_per_mtok
    if batch:
        in_factor = _ratio(price.batch_input_per_mtok, price.input_per_mtok)
        out_factor = _ratio(price.batch_output_per_mtok, price.output_per_mtok)
        batch_read = price.batch_cache_read_per_mtok
        if batch_read is not None and not is_long:
            read_rate = batch_read
        elif batch_read is not None and price.cache_read_per_mtok:
            # The short-context batch discount on cache reads applies to the tier too: Gemini
            # gives none (batch cache read = cache read), Anthropic 50%.
            read_rate = read_rate * batch_read / price.cache_read_per_mtok
        else:
            read_rate *= in_factor
        in_rate *= in_factor
        out_rate *= out_factor
        write_rate *= in_factor
        write_1h_rate *= in_factor
    return CallRates(
        input_per_mtok=in_rate,
        output_per_mtok=out_rate,
        cache_read_per_mtok=read_rate,
        cache_write_per_mtok=write_rate,
        cache_write_1h_per_mtok=write_1h_rate,
        is_long_context=is_long,
        is_batch=batch,
    )


def price_call(price: ModelPrice, tokens: CallTokens, *, batch: bool = False) -> CallCost:
    """The exact cost of one call."""
    rates = select_rates(price, tokens.input_tokens, batch=batch)
    uncached = (
        tokens.input_tokens
        - tokens.cache_read_tokens
        - tokens.cache_write_tokens
        - tokens.cache_write_1h_tokens
    )
    return CallCost(
        input_usd=uncached * rates.input_per_mtok / MILLION,
        cache_read_usd=tokens.cache_read_tokens * rates.cache_read_per_mtok / MILLION,
        cache_write_usd=(
            tokens.cache_write_tokens * rates.cache_write_per_mtok
            + tokens.cache_write_1h_tokens * rates.cache_write_1h_per_mtok
        )
        / MILLION,
        output_usd=tokens.output_tokens * rates.output_per_mtok / MILLION,
        rates=rates,
    )


# -- a step's calls ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    """The shape of one step's conversation, in tokens (framing included where noted)."""

    prompt_tokens: int  # the rendered template as a request: messages, framing, reply priming
    output_tokens: int  # reply tokens of every call
    turns: int = 1
    tool_calls: int = 0  # per turn
    user_message_tokens: int = 0  # a later turn's user message, framing included
    reply_message_framing: int = 0  # framing added when a reply joins the history
    tool_result_message_tokens: int = 0  # a tool result with its framing


@dataclass(frozen=True)
class CallPlan:
    turn: int  # 1-based
    index: int  # 0 = the turn's first call; i = after the i-th tool result
    input_tokens: int
    output_tokens: int


def plan_calls(conversation: Conversation) -> tuple[CallPlan, ...]:
    """Every model call of the step, with the input it re-sends.

    ``input(t, c) = P + (t-1)*U + ((t-1)*(k+1) + c)*O' + ((t-1)*k + c)*R'`` where ``O'`` is a
    reply with its framing and ``R'`` a tool result with its framing.
    """
    c = conversation
    k = c.tool_calls
    reply = c.output_tokens + c.reply_message_framing
    plans = []
    for turn in range(1, c.turns + 1):
        for index in range(k + 1):
            replies = (turn - 1) * (k + 1) + index
            results = (turn - 1) * k + index
            input_tokens = (
                c.prompt_tokens
                + (turn - 1) * c.user_message_tokens
                + replies * reply
                + results * c.tool_result_message_tokens
            )
            plans.append(CallPlan(turn, index, input_tokens, c.output_tokens))
    return tuple(plans)


def cost_of_calls(price: ModelPrice, plans: tuple[CallPlan, ...]) -> Decimal:
    """The total cost of ``plans`` on ``price`` (no caching, no batch)."""
    return sum(
        (price_call(price, CallTokens(p.input_tokens, p.output_tokens)).total_usd for p in plans),
        ZERO,
    )


def cost_per_outcome(cost_per_request: Decimal, success_rate: Decimal) -> Decimal:
    """Cost per successful outcome: a failed request is paid for too."""
    if success_rate <= 0:
        raise ValueError("success rate must be above 0")
    return cost_per_request / success_rate


def monthly_spend(cost_per_request: Decimal, requests_per_month: Decimal) -> Decimal:
    """Cost per request x requests per month (requests per day x 30)."""
    return cost_per_request * requests_per_month


# -- expected cost of a call, by component ----------------------------------------------------


@dataclass(frozen=True)
class CallInput:
    """The tokens of one call, split the way ``estimate --why`` explains them.

    ``static`` is the template's own text with its chat framing; ``prefix`` is the part of it
    a provider can cache (the static tokens before the first dynamic content).
    """

    static: int
    variables: tuple[tuple[str, int], ...]
    history: int
    tool_results: int
    output: int
    prefix: int = 0

    @cached_property
    def input_tokens(self) -> int:
        return self.static + sum(t for _, t in self.variables) + self.history + self.tool_results


@dataclass(frozen=True)
class CacheTerms:
    """Provider prompt caching for a call: the share of calls whose prefix is a cache hit."""

    hit_rate: Decimal


def cached_prefix_tokens(price: ModelPrice, prefix: int) -> int:
    """How much of a static prefix the provider caches: nothing below the model's minimum
    cacheable length, and whole increments above it (OpenAI before GPT-5.6: 128 tokens)."""
    if price.cache_read_per_mtok is None or prefix <= 0:
        return 0
    minimum = price.cache_min_tokens or 0
    if prefix < minimum:
        return 0
    step = price.cache_increment_tokens
    if step:
        return minimum + (prefix - minimum) // step * step
    return prefix


@dataclass(frozen=True)
class EffectiveRates:
    """Per-million-token rates of a call with batch share and cache hit rate mixed in:
    ``cached`` is what a token of the cacheable prefix costs on average (hit or write)."""

    input_per_mtok: Decimal
    cached_per_mtok: Decimal
    output_per_mtok: Decimal
    is_long_context: bool


def effective_rates(
    price: ModelPrice,
    input_tokens: int,
    *,
    cache: CacheTerms | None = None,
    batch_share: Decimal = ZERO,
) -> EffectiveRates:
    """The expected rates of a call of ``input_tokens``: online and batch rates weighted by
    ``batch_share``; cached prefix tokens at ``hit_rate`` x read + (1 - hit_rate) x write."""
    total_in = total_cached = total_out = ZERO
    is_long = False
    for mode_share, batch in ((1 - batch_share, False), (batch_share, True)):
        if mode_share == 0:
            continue
        rates = select_rates(price, input_tokens, batch=batch)
        is_long = rates.is_long_context
        cached = rates.input_per_mtok
        if cache is not None:
            cached = (
                cache.hit_rate * rates.cache_read_per_mtok
                + (1 - cache.hit_rate) * rates.cache_write_per_mtok
            )
        total_in += mode_share * rates.input_per_mtok
        total_cached += mode_share * cached
        total_out += mode_share * rates.output_per_mtok
    return EffectiveRates(total_in, total_cached, total_out, is_long)


def call_components(
    price: ModelPrice,
    call: CallInput,
    *,
    cache: CacheTerms | None = None,
    batch_share: Decimal = ZERO,
) -> dict[str, Decimal]:
    """The expected cost of ``call`` by component (``static``, ``var:<name>``, ``history``,
    ``tool_results``, ``output``); they sum to the call's expected cost exactly.

    With caching, a share ``hit_rate`` of calls reads the cacheable prefix at the cache-read
    rate and the rest write it at the cache-write rate (the input rate where a provider has
    no write premium). ``batch_share`` of calls go through the batch API at batch rates.
    """
    rates = effective_rates(price, call.input_tokens, cache=cache, batch_share=batch_share)
    cached = cached_prefix_tokens(price, call.prefix) if cache is not None else 0
    components = {
        "static": (call.static - cached) * rates.input_per_mtok + cached * rates.cached_per_mtok
    }
    for name, tokens in call.variables:
        components[f"var:{name}"] = tokens * rates.input_per_mtok
    components["history"] = call.history * rates.input_per_mtok
    components["tool_results"] = call.tool_results * rates.input_per_mtok
    components["output"] = call.output * rates.output_per_mtok
    return {key: amount / MILLION for key, amount in components.items()}
