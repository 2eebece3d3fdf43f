"""Cost formulas against hand computation (DESIGN §3). Every expected value is worked out in
the comment above it, so a reader can redo it."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from promptbudget.pricing.catalog import LongContextTier, ModelPrice
from promptbudget.simulation import (
    CallTokens,
    Conversation,
    cost_of_calls,
    cost_per_outcome,
    monthly_spend,
    plan_calls,
    price_call,
)

OPENAI = ModelPrice(
    name="acme-openai",
    provider="custom",
    tokenizer="o200k_base",
    input_per_mtok=D("2.00"),
    output_per_mtok=D("8.00"),
    cache_read_per_mtok=D("0.50"),
    batch_input_per_mtok=D("1.00"),
    batch_output_per_mtok=D("4.00"),
)

ANTHROPIC = ModelPrice(
    name="acme-anthropic",
    provider="custom",
    tokenizer="claude",
    billing="anthropic",
    input_per_mtok=D("3"),
    output_per_mtok=D("15"),
    cache_read_per_mtok=D("0.30"),
    cache_write_per_mtok=D("3.75"),
    cache_write_1h_per_mtok=D("6"),
    batch_input_per_mtok=D("1.5"),
    batch_output_per_mtok=D("7.5"),
)

TIERED = ModelPrice(
    name="acme-tiered",
    provider="custom",
    tokenizer="o200k_base",
    input_per_mtok=D("2.50"),
    output_per_mtok=D("15"),
    cache_read_per_mtok=D("0.25"),
    long_context=LongContextTier(
        threshold_tokens=272_000,
        input_per_mtok=D("5"),
        output_per_mtok=D("22.5"),
        cache_read_per_mtok=D("0.5"),
    ),
)


def test_openai_style_cached_tokens_are_part_of_input() -> None:
    # (10,000 - 6,000) x $2 + 6,000 x $0.50 + 500 x $8 = 8,000 + 3,000 + 4,000 = 15,000 micro$
    cost = price_call(OPENAI, CallTokens(10_000, 500, cache_read_tokens=6_000))
    assert cost.total_usd == D("0.015")
    assert (cost.input_usd, cost.cache_read_usd, cost.output_usd) == (
        D("0.008"),
        D("0.003"),
        D("0.004"),
    )


def test_write_without_premium_costs_plain_input() -> None:
    # No cache_write rate: written tokens cost the input rate, 1,000 x $2 = $0.002.
    cost = price_call(OPENAI, CallTokens(1_000, 0, cache_write_tokens=1_000))
    assert cost.total_usd == D("0.002")


def test_anthropic_style_write_then_read() -> None:
    # Write: 2,000 x $3 + 10,000 x $3.75 + 400 x $15 = 6,000 + 37,500 + 6,000 = $0.0495
    write = price_call(ANTHROPIC, CallTokens(12_000, 400, cache_write_tokens=10_000))
    assert write.total_usd == D("0.0495")
    # Read: 2,000 x $3 + 10,000 x $0.30 + 400 x $15 = 6,000 + 3,000 + 6,000 = $0.015
    read = price_call(ANTHROPIC, CallTokens(12_000, 400, cache_read_tokens=10_000))
    assert read.total_usd == D("0.015")
    # 1-hour write: 10,000 x $6 = $0.06, plus the same 6,000 + 6,000 = $0.072
    hour = price_call(ANTHROPIC, CallTokens(12_000, 400, cache_write_1h_tokens=10_000))
    assert hour.total_usd == D("0.072")


def test_five_minute_write_pays_off_after_one_read() -> None:
    # Without cache: 2 calls x 10,000 x $3 = $0.06. With: write 10,000 x $3.75 + read
    # 10,000 x $0.30 = $0.0405, cheaper after a single read.
    plain = 2 * price_call(ANTHROPIC, CallTokens(10_000, 0)).total_usd
    cached = (
        price_call(ANTHROPIC, CallTokens(10_000, 0, cache_write_tokens=10_000)).total_usd
        + price_call(ANTHROPIC, CallTokens(10_000, 0, cache_read_tokens=10_000)).total_usd
    )
    assert (plain, cached) == (D("0.06"), D("0.0405"))


def test_long_context_tier_reprices_the_whole_request() -> None:
    # At the threshold: 272,000 x $2.50 + 1,000 x $15 = $0.68 + $0.015 = $0.695
    at = price_call(TIERED, CallTokens(272_000, 1_000))
    assert at.total_usd == D("0.695")
    assert not at.rates.is_long_context
    # One token above: every token at the tier, 272,001 x $5 + 1,000 x $22.50
    # = $1.360005 + $0.0225 = $1.382505
    above = price_call(TIERED, CallTokens(272_001, 1_000))
    assert above.total_usd == D("1.382505")
    assert above.rates.is_long_context
    # Cached tokens too: 100,000 cached at the tier's $0.50 and 200,001 at $5
    # = $0.05 + $1.000005, output 0
    cached = price_call(TIERED, CallTokens(300_001, 0, cache_read_tokens=100_000))
    assert cached.total_usd == D("1.050005")


def test_tier_cache_rate_scales_when_the_tier_omits_it() -> None:
    # No tier cache rate: base $0.50 scaled by tier/base input ($4/$2) = $1.00 per M
    model = ModelPrice(
        name="x",
        provider="custom",
        tokenizer="o200k_base",
        input_per_mtok=D("2"),
        output_per_mtok=D("8"),
        cache_read_per_mtok=D("0.50"),
        long_context=LongContextTier(100, D("4"), D("16")),
    )
    cost = price_call(model, CallTokens(1_000, 0, cache_read_tokens=1_000))
    assert cost.cache_read_usd == D("0.001")


def test_batch_uses_batch_rates_and_discounts_cache_alike() -> None:
    # 10,000 x $1.00 + 1,000 x $4.00 = $0.014 (half of 10,000 x $2 + 1,000 x $8 = $0.028)
    assert price_call(OPENAI, CallTokens(10_000, 1_000), batch=True).total_usd == D("0.014")
    # Cached input in a batch: 4,000 x $1 + 6,000 x ($0.50 x 1/2) = $0.004 + $0.0015
    batched = price_call(OPENAI, CallTokens(10_000, 0, cache_read_tokens=6_000), batch=True)
    assert batched.total_usd == D("0.0055")


def test_cached_tokens_cannot_exceed_input() -> None:
    with pytest.raises(ValueError, match="cannot exceed"):
        CallTokens(100, 0, cache_read_tokens=101)
    with pytest.raises(ValueError, match="negative"):
        CallTokens(-1, 0)


def test_plan_calls_grows_history_with_replies_tool_results_and_user_turns() -> None:
    conversation = Conversation(
        prompt_tokens=1_000,
        output_tokens=100,
        turns=2,
        tool_calls=1,
        user_message_tokens=50,
        reply_message_framing=4,
        tool_result_message_tokens=404,
    )
    plans = plan_calls(conversation)
    # t1c0: 1,000
    # t1c1: 1,000 + 1 reply (104) + 1 tool result (404) = 1,508
    # t2c0: 1,000 + 1 user (50) + 2 replies (208) + 1 result (404) = 1,662
    # t2c1: 1,000 + 50 + 3 replies (312) + 2 results (808) = 2,170
    assert [p.input_tokens for p in plans] == [1_000, 1_508, 1_662, 2_170]
    assert [(p.turn, p.index) for p in plans] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert all(p.output_tokens == 100 for p in plans)


def test_single_call_is_the_prompt() -> None:
    plans = plan_calls(Conversation(prompt_tokens=321, output_tokens=10))
    assert [(p.input_tokens, p.output_tokens) for p in plans] == [(321, 10)]


def test_cost_of_calls_sums_each_call() -> None:
    plans = plan_calls(
        Conversation(
            prompt_tokens=1_000,
            output_tokens=100,
            turns=2,
            user_message_tokens=0,
            reply_message_framing=0,
        )
    )
    # (1,000 + 1,100) x $2 + 200 x $8 = $0.0042 + $0.0016
    assert cost_of_calls(OPENAI, plans) == D("0.0058")


def test_cost_per_outcome_and_monthly_spend() -> None:
    # $0.0092 per request at 92% success = $0.01 per successful outcome
    assert cost_per_outcome(D("0.0092"), D("0.92")) == D("0.01")
    # $0.01 x 20,000 per day x 30 days = $6,000
    assert monthly_spend(D("0.01"), D(20_000) * 30) == D("6000")
    with pytest.raises(ValueError):
        cost_per_outcome(D("1"), D("0"))


def test_batch_long_context_cache_read_keeps_the_models_batch_cache_discount() -> None:
    """Gemini 2.5 Pro: batch cache reads cost the same as interactive ones ($0.125 short,
    $0.25 above 200k; LiteLLM 1.110.2 ``cache_read_input_token_cost_above_200k_tokens_batches``
    = 2.5e-07), so a batched 250k-token call with 200k cached pays 200,000 x $0.25/MTok for
    its cache reads, not half of that."""
    from promptbudget.pricing.catalog import load_catalog

    pro = load_catalog().models["gemini-2.5-pro"]
    call = price_call(pro, CallTokens(250_000, 1_000, cache_read_tokens=200_000), batch=True)
    assert call.rates.is_long_context
    assert call.cache_read_usd == D("0.05")  # 200,000 x $0.25 / 1M
    assert call.input_usd == D("0.0625")  # 50,000 x $1.25 (batch of $2.50) / 1M
    assert call.output_usd == D("0.0075")  # 1,000 x $7.50 (batch of $15) / 1M
