"""A lane's mean in closed form, and a sample's cost as an affine function of its draws.

Every drawn amount is a log-normal ``X = p50 x exp(sigma x Z)`` (``Distribution``), clipped
at a cap when one is declared. Its mean is ``E[X] = p50 x exp(sigma^2 / 2)``; with a cap
``c`` it is the partial expectation::

    E[min(X, c)] = p50 e^(sigma^2/2) Phi((ln c - mu - sigma^2) / sigma)
                   + c (1 - Phi((ln c - mu) / sigma))

with ``mu = ln p50``. The continuous distribution the user declared is used: rounding a draw
to whole tokens is a detail of sampling (it moves a mean by far less than a token).

Once every call's long-context tier is known, a lane's calls are linear in these amounts
(history = earlier replies + framing, tool results, ``uses`` x a variable), so its expected
token rows follow from the means, and a sample's cost is ``constant + sum(a_i x x_i)`` over
its drawn values. A call's tier is *certain* when its input stays on one side of the
threshold with every distribution at ``|z| = 8.5`` (probability below 1e-16; the sampler
never draws beyond ``|z| = 7.04``). When a call's tier is not certain the lane is unrolled
sample by sample as before, and its mean is the sample mean (``Sampled.sampled``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from promptbudget.manifest.model import Distribution, TokenAmount

# |z| beyond which a standard normal lands with probability < 1e-16 (P(|Z| > 8.5) ~ 2e-17).
Z_CERTAIN = 8.5

# Positions in a tally row; variables follow, in the lane's order.
CALLS, STATIC, HISTORY, TOOL_RESULTS, OUTPUT, VARIABLES = range(6)

DrawKey = tuple[str, ...]


@dataclass(frozen=True)
class SampledVariable:
    name: str
    uses: int
    size: TokenAmount
    cap: int | None


@dataclass(frozen=True)
class LaneTerms:
    """What one lane's calls cost, as plain numbers (built by estimates.py from a Lane)."""

    traffic_class: str
    step: str
    is_priced: bool  # a known price and a readable prompt
    sized: tuple[SampledVariable, ...]
    bound_vars: tuple[tuple[str, int], ...]  # variables at their render sizes
    static: int
    cached: int
    threshold: int | None  # long-context tier
    base_rates: tuple[float, float, float]  # input, cached, output per million
    long_rates: tuple[float, float, float]
    weight: float
    turns: int
    tool_calls: int
    user_message_tokens: int
    reply_framing: int
    tool_result_message_tokens: int
    output: TokenAmount
    output_cap: int | None

    @property
    def calls_per_request(self) -> int:
        return self.turns * (1 + self.tool_calls)

    def clip_output(self, tokens: int) -> int:
        return min(tokens, self.output_cap) if self.output_cap is not None else tokens


# A drawn amount: the draw's key, its distribution and its cap (one value per sample).
Feature = tuple[DrawKey, Distribution, int | None]


def clipped_mean(amount: TokenAmount, cap: int | None) -> float:
    """``E[min(max(0, X), cap)]`` for a fixed amount or a log-normal ``X``."""
    if not isinstance(amount, Distribution) or amount.sigma == 0.0:
        value = max(0, amount.p50 if isinstance(amount, Distribution) else amount)
        return float(min(value, cap) if cap is not None else value)
    sigma = amount.sigma
    full = amount.p50 * math.exp(sigma * sigma / 2)
    if cap is None:
        return full
    if cap <= 0:
        return 0.0
    mu = math.log(amount.p50)
    log_cap = math.log(cap)
    below = _phi((log_cap - mu - sigma * sigma) / sigma)
    above = _phi(-(log_cap - mu) / sigma)  # 1 - Phi(x), accurate in the tail
    return full * below + cap * above


def _phi(x: float) -> float:
    """The standard normal CDF (through ``erfc``: accurate in both tails)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _at(amount: TokenAmount, cap: int | None, z: float) -> float:
    """A draw at score ``z`` as the sampler computes it (``inf`` if it overflows)."""
    if isinstance(amount, Distribution):
        try:
            drawn: float = max(0, amount.at(z))
        except OverflowError:
            drawn = math.inf
    else:
        drawn = max(0, amount)
    return min(drawn, cap) if cap is not None else drawn


def _variable_at(variable: SampledVariable, z: float) -> float:
    """A variable's size at ``z``: a fixed size is taken as declared (as the sampler does)."""
    if isinstance(variable.size, Distribution):
        return _at(variable.size, variable.cap, z)
    return variable.size


def _variable_mean(variable: SampledVariable) -> Decimal:
    if isinstance(variable.size, Distribution):
        return _decimal(clipped_mean(variable.size, variable.cap))
    return Decimal(variable.size)


def call_tiers(lane: LaneTerms) -> tuple[bool, ...] | None:
    """Each call's long-context tier, or None when one call's tier is not certain."""
    calls = lane.calls_per_request
    if lane.threshold is None or not lane.is_priced:
        return (False,) * calls
    low = _inputs(lane, -Z_CERTAIN)
    high = _inputs(lane, Z_CERTAIN)
    tiers = []
    for least, most in zip(low, high, strict=True):
        if most <= lane.threshold:
            tiers.append(False)
        elif least > lane.threshold:
            tiers.append(True)
        else:
            return None
    return tuple(tiers)


def _inputs(lane: LaneTerms, z: float) -> list[float]:
    """Every call's input tokens with every distribution at score ``z`` (inputs only grow
    with a drawn amount, so ``z = -8.5`` and ``+8.5`` bound them)."""
    sizes = {v.name: _variable_at(v, z) * v.uses for v in lane.sized}
    dynamic = lane.static + sum(sizes.get(name, tokens) for name, tokens in lane.bound_vars)
    output = _at(lane.output, lane.output_cap, z)
    out = []
    history = results = 0.0
    for turn in range(lane.turns):
        if turn:
            history += lane.user_message_tokens
        for call in range(lane.tool_calls + 1):
            out.append(dynamic + history + results)
            history += output + lane.reply_framing
            if call < lane.tool_calls:
                results += lane.tool_result_message_tokens
    return out


def expected_rows(lane: LaneTerms, tiers: Sequence[bool]) -> dict[bool, list[Decimal]]:
    """The lane's tally rows per request (montecarlo's row layout), in expectation."""
    reply = _decimal(clipped_mean(lane.output, lane.output_cap))
    means = {v.name: _variable_mean(v) * v.uses for v in lane.sized}
    values = [means.get(name, Decimal(tokens)) for name, tokens in lane.bound_vars]
    rows: dict[bool, list[Decimal]] = {}
    history = Decimal(0)
    results = 0
    position = 0
    for turn in range(lane.turns):
        if turn:
            history += lane.user_message_tokens
        for call in range(lane.tool_calls + 1):
            long = tiers[position]
            position += 1
            row = rows.get(long)
            if row is None:
                row = rows[long] = [Decimal(0)] * (VARIABLES + len(values))
            row[CALLS] += 1
            row[STATIC] += lane.static - lane.cached
            row[HISTORY] += history
            row[TOOL_RESULTS] += results
            row[OUTPUT] += reply
            for slot, value in enumerate(values, VARIABLES):
                row[slot] += value
            history += reply + lane.reply_framing
            if call < lane.tool_calls:
                results += lane.tool_result_message_tokens
    return rows


def _decimal(value: float) -> Decimal:
    """A mean as a Decimal (an integral mean stays an integer)."""
    return Decimal(int(value)) if value.is_integer() else Decimal(repr(value))


def affine_cost(
    lane: LaneTerms, tiers: Sequence[bool], keep: float
) -> tuple[float, list[tuple[Feature, float]]]:
    """One sample's cost of ``lane`` as ``constant + sum(coefficient x value)`` over the
    lane's drawn values (dollars: weight, semantic-cache keep and per-million applied)."""
    if not lane.is_priced:
        return 0.0, []
    cls = lane.traffic_class
    rates = [lane.long_rates if long else lane.base_rates for long in tiers]
    input_rates = [rate[0] for rate in rates]
    constant = 0.0
    features: list[tuple[Feature, float]] = []
    # Prompt tokens every call sends: the static prefix and the variables.
    all_inputs = sum(input_rates)
    sized = {v.name: v for v in lane.sized}
    for name, tokens in lane.bound_vars:
        variable = sized.get(name)
        if variable is None:
            constant += tokens * all_inputs
        elif isinstance(variable.size, Distribution):
            feature: Feature = ((cls, "var", name), variable.size, variable.cap)
            features.append((feature, variable.uses * all_inputs))
        else:
            constant += variable.size * variable.uses * all_inputs
    # Per call: the cached split, framing, user turns, tool results; and each reply, billed
    # as output, then re-sent as history by every later call.
    history = results = 0.0
    position = 0
    for turn in range(lane.turns):
        if turn:
            history += lane.user_message_tokens
        for call in range(lane.tool_calls + 1):
            in_rate, cached_rate, out_rate = rates[position]
            later = sum(input_rates[position + 1 :])
            constant += (lane.static - lane.cached + history + results) * in_rate
            constant += lane.cached * cached_rate
            if isinstance(lane.output, Distribution):
                feature = ((cls, "out", lane.step, str(position)), lane.output, lane.output_cap)
                features.append((feature, out_rate + later))
            else:
                constant += _at(lane.output, lane.output_cap, 0.0) * (out_rate + later)
            history += lane.reply_framing
            position += 1
            if call < lane.tool_calls:
                results += lane.tool_result_message_tokens
    scale = lane.weight * keep / 1_000_000
    return constant * scale, [(feature, a * scale) for feature, a in features]
