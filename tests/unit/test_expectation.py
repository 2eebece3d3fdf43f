"""The closed-form mean and the affine per-sample cost (expectation.py), against references
written here: numerical integration for the capped log-normal mean, the sample mean of a
long run, and the Monte Carlo engine as it was before (every call of every sample unrolled)
for the percentiles."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from decimal import Decimal
from statistics import NormalDist

import pytest
from test_montecarlo import LANES, lane

from promptbudget.expectation import call_tiers, clipped_mean, expected_rows
from promptbudget.manifest.model import Distribution
from promptbudget.montecarlo import (
    CACHE_FORMAT,
    CALLS,
    HISTORY,
    OUTPUT,
    STATIC,
    TOOL_RESULTS,
    VARIABLES,
    LaneTerms,
    _decode_sampled,
    _run_numpy,
    _run_python,
    run_samples,
)
from promptbudget.quantiles import percentile as _percentile


def integrated_mean(p50: int, p95: int, cap: int | None) -> float:
    """E[min(X, cap)] by the midpoint rule over z in [-12, 12] (200,000 steps)."""
    sigma = math.log(p95 / p50) / 1.6448536269514722
    steps, low, high = 200_000, -12.0, 12.0
    width = (high - low) / steps
    total = 0.0
    for i in range(steps):
        z = low + (i + 0.5) * width
        x = p50 * math.exp(sigma * z)
        if cap is not None:
            x = min(x, cap)
        total += x * math.exp(-z * z / 2)
    return total * width / math.sqrt(2 * math.pi)


@pytest.mark.parametrize(
    ("p50", "p95", "cap"),
    [(200, 900, None), (200, 900, 700), (800, 6000, 5000), (50, 4000, 60), (10, 12, 11)],
)
def test_the_capped_mean_matches_numerical_integration(p50: int, p95: int, cap: int | None) -> None:
    assert math.isclose(
        clipped_mean(Distribution(p50, p95), cap), integrated_mean(p50, p95, cap), rel_tol=1e-9
    )


def test_a_fixed_amount_is_its_own_mean() -> None:
    assert clipped_mean(300, None) == 300
    assert clipped_mean(300, 250) == 250
    assert clipped_mean(Distribution(5, 5), None) == 5


CERTAIN = [
    lane(threshold=None),
    lane(step="route", weight=0.3, output=150, threshold=None, turns=1, tool_calls=0),
    lane(traffic_class="bulk", threshold=200_000),  # capped: always below
    lane(is_priced=False),
]


def exact_mean(lanes: Sequence[LaneTerms], keep: float) -> float:
    """The mean cost of a sample, from each lane's expected rows priced by hand."""
    total = 0.0
    for terms in lanes:
        if not terms.is_priced:
            continue
        tiers = call_tiers(terms)
        assert tiers is not None
        for long, row in expected_rows(terms, tiers).items():
            in_rate, cached_rate, out_rate = terms.long_rates if long else terms.base_rates
            prompt = row[STATIC] + row[HISTORY] + row[TOOL_RESULTS] + sum(row[VARIABLES:])
            cost = (
                float(prompt) * in_rate
                + float(row[CALLS] * terms.cached) * cached_rate
                + float(row[OUTPUT]) * out_rate
            )
            total += cost * terms.weight * keep / 1e6
    return total


def test_the_sample_mean_of_a_long_run_converges_to_the_exact_mean() -> None:
    runs = 100_000
    totals = run_samples(CERTAIN, runs, 11, 0.85).totals
    mean = math.fsum(totals) / runs
    spread = math.sqrt(math.fsum((t - mean) ** 2 for t in totals) / (runs - 1))
    standard_error = spread / math.sqrt(runs)
    assert abs(mean - exact_mean(CERTAIN, 0.85)) < 4 * standard_error


def test_expected_rows_by_hand() -> None:
    """2 turns x 1 tool call, the doc capped at 5,000, replies capped at 700."""
    terms = CERTAIN[0]
    (row,) = expected_rows(terms, (False,) * 4).values()
    doc = Decimal(repr(clipped_mean(Distribution(800, 6000), 5000)))
    reply = Decimal(repr(clipped_mean(Distribution(200, 900), 700)))
    assert row[CALLS] == 4
    assert row[STATIC] == 4 * (1200 - 1024)
    assert row[VARIABLES] == 4 * doc and row[VARIABLES + 1] == 4 * 80
    assert row[OUTPUT] == 4 * reply
    # Histories 0, O+4, 2(O+4)+30, 3(O+4)+30; tool results 0, 300, 300, 600.
    assert row[HISTORY] == 6 * (reply + 4) + 2 * 30
    assert row[TOOL_RESULTS] == 1200


def test_a_tier_is_certain_only_beyond_eight_and_a_half_sigma() -> None:
    assert call_tiers(lane(threshold=None)) == (False,) * 4
    assert call_tiers(lane(threshold=100)) == (True,) * 4  # the static part alone is above
    assert call_tiers(lane(threshold=8000)) is None  # the doc and replies can cross it
    # First call below for sure (1,280 + doc <= 6,280), the next above (>= 1,280 + 6,304).
    assert call_tiers(lane(threshold=6300, output=6000, output_cap=None)) == (
        False,
        True,
        True,
        True,
    )


# -- the engine before the closed form, kept as a reference --------------------------------


def reference_totals(lanes: Sequence[LaneTerms], runs: int, seed: int, keep: float) -> list[float]:
    """Every call of every sample unrolled, as montecarlo.py did before the affine form."""
    rng = random.Random(seed)
    normal = NormalDist()
    keys: dict[tuple[str, ...], None] = {}
    for terms in lanes:
        for variable in terms.sized:
            if isinstance(variable.size, Distribution):
                keys.setdefault((terms.traffic_class, "var", variable.name))
        if isinstance(terms.output, Distribution):
            for index in range(terms.calls_per_request):
                keys.setdefault((terms.traffic_class, "out", terms.step, str(index)))
    totals = []
    for _ in range(runs):
        z = {key: normal.inv_cdf(min(max(rng.random(), 1e-12), 1 - 1e-12)) for key in keys}
        total = 0.0
        for terms in lanes:
            total += reference_lane_cost(terms, z, keep)
        totals.append(total)
    return totals


def reference_lane_cost(terms: LaneTerms, z: dict[tuple[str, ...], float], keep: float) -> float:
    if not terms.is_priced:
        return 0.0
    cls = terms.traffic_class
    sizes = {}
    for variable in terms.sized:
        if isinstance(variable.size, Distribution):
            drawn = max(0, variable.size.at(z[(cls, "var", variable.name)]))
            sizes[variable.name] = min(drawn, variable.cap) if variable.cap is not None else drawn
        else:
            sizes[variable.name] = variable.size
    uses = {v.name: v.uses for v in terms.sized}
    values = [sizes[name] * uses[name] if name in uses else t for name, t in terms.bound_vars]
    dynamic = terms.static + sum(values)
    history = results = position = 0
    cost = 0.0
    for turn in range(terms.turns):
        if turn:
            history += terms.user_message_tokens
        for call in range(terms.tool_calls + 1):
            amount = terms.output
            drawn = (
                amount.at(z[(cls, "out", terms.step, str(position))])
                if isinstance(amount, Distribution)
                else amount
            )
            output = terms.clip_output(max(0, drawn))
            position += 1
            input_tokens = dynamic + history + results
            long = terms.threshold is not None and input_tokens > terms.threshold
            in_rate, cached_rate, out_rate = terms.long_rates if long else terms.base_rates
            cost += (
                (input_tokens - terms.cached) * in_rate
                + terms.cached * cached_rate
                + output * out_rate
            )
            history += output + terms.reply_framing
            if call < terms.tool_calls:
                results += terms.tool_result_message_tokens
    return cost * terms.weight * keep / 1_000_000


@pytest.mark.parametrize(
    "lanes", [CERTAIN, LANES, CERTAIN + LANES], ids=["certain", "mixed", "all"]
)
def test_every_sample_costs_what_the_unrolled_engine_said(lanes: list[LaneTerms]) -> None:
    reference = reference_totals(lanes, 2000, 3, 0.9)
    totals = _run_python(lanes, 2000, 3, 0.9).totals
    for new, old in zip(totals, reference, strict=True):
        assert math.isclose(new, old, rel_tol=1e-12)
    for percent in (50, 95):
        assert math.isclose(
            _percentile(sorted(totals), percent),
            _percentile(sorted(reference), percent),
            rel_tol=1e-12,
        )


def test_both_engines_agree_on_certain_and_unrolled_lanes() -> None:
    np = pytest.importorskip("numpy", reason="the fast extra (numpy) is not installed")
    lanes = CERTAIN + LANES
    python = _run_python(lanes, 3000, 7, 0.9)
    vectorised = _run_numpy(np, lanes, 3000, 7, 0.9)
    assert vectorised.totals == python.totals
    assert vectorised.rows == python.rows
    assert {index for index, _ in python.rows} == {4, 6}  # the two straddling lanes


def test_a_cache_entry_in_another_format_reads_as_a_miss() -> None:
    entry = {"rows": [], "p50": 0.001, "p95": 0.002}  # what the first format stored
    assert _decode_sampled(entry, frozenset()) is None
    # format 2 stored no bands: read as format 3 without them, it is a miss, not a band
    assert _decode_sampled({**entry, "format": 2}, frozenset()) is None
    assert _decode_sampled({**entry, "format": CACHE_FORMAT}, frozenset()) is None
    bands = {"p50_band": [0.0009, 0.0011], "p95_band": [0.0018, 0.0023]}
    current = {**entry, **bands, "format": CACHE_FORMAT}
    summary = (0.001, 0.002, (0.0009, 0.0011), (0.0018, 0.0023))
    assert _decode_sampled(current, frozenset()) == ({}, summary)
    inverted = {**current, "p95_band": [0.0023, 0.0018]}
    assert _decode_sampled(inverted, frozenset()) is None
    unrolled = {**current, "rows": [[0, False, [1] * VARIABLES]]}
    assert _decode_sampled(unrolled, frozenset()) is None  # lane 0 is not an unrolled lane
