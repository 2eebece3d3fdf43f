"""The 95% band of a sampled percentile (``quantiles.py``): its ranks against a hand
computation, its coverage against the exact binomial probability, and its coverage of known
quantiles over many seeded runs, of plain draws and of the Monte Carlo engine's own."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable
from fractions import Fraction

import pytest
from test_montecarlo import lane

from conftest import EXAMPLES, Run
from promptbudget.manifest.model import Distribution
from promptbudget.montecarlo import SampledVariable, sample_costs
from promptbudget.quantiles import band, band_ranks, percentile, rank


def exact_coverage(count: int, percent: int, low: int, high: int) -> float:
    """P(X_(low) <= q_p <= X_(high)) for ``count`` draws of a continuous distribution: the
    number of draws below q_p is Binomial(count, p), and the quantile lies between the two
    order statistics when that number is in [low, high - 1] (exact arithmetic)."""
    p = Fraction(percent, 100)
    return float(sum(math.comb(count, i) * p**i * (1 - p) ** (count - i) for i in range(low, high)))


def log_coverage(count: int, percent: int, low: int, high: int) -> float:
    """The same sum through log-gamma (for large ``count``)."""
    p = percent / 100
    return math.fsum(
        math.exp(
            math.lgamma(count + 1)
            - math.lgamma(i + 1)
            - math.lgamma(count - i + 1)
            + i * math.log(p)
            + (count - i) * math.log(1 - p)
        )
        for i in range(low, high)
    )


@pytest.mark.parametrize(
    ("count", "percent", "ranks"),
    [
        # 1000 x 0.95 = 950; sqrt(950 x 0.05) = 6.892; x 1.96 = 13.51: 936.49 -> 936, 963.51 -> 964
        (1000, 95, (936, 964)),
        # 500; sqrt(250) = 15.81; x 1.96 = 30.99: 469.01 -> 469, 530.99 -> 531
        (1000, 50, (469, 531)),
        # 95,000; sqrt(4,750) = 68.92; x 1.96 = 135.08: 94,864.92 -> 94,864, 95,135.08 -> 95,136
        (100_000, 95, (94_864, 95_136)),
        # 19; sqrt(0.95) = 0.975; x 1.96 = 1.91: 17.09 -> 17, 20.91 -> 21, clamped to 20
        (20, 95, (17, 20)),
        # 0.95; sqrt(0.0475) = 0.218; x 1.96 = 0.427: 0.52 -> 0 -> 1, 1.38 -> 2 -> 1
        (1, 95, (1, 1)),
    ],
)
def test_band_ranks_by_hand(count: int, percent: int, ranks: tuple[int, int]) -> None:
    assert band_ranks(count, percent) == ranks


def test_nearest_rank() -> None:
    assert (rank(1000, 95), rank(1000, 50), rank(1, 95), rank(20, 95)) == (950, 500, 1, 19)
    values = [float(v) for v in range(1, 1001)]  # 1.0 .. 1000.0
    assert percentile(values, 95) == 950.0
    assert band(values, 95) == (936.0, 964.0)
    assert band(values, 50) == (469.0, 531.0)


def test_exact_coverage_at_the_default_sample_count() -> None:
    """At 1,000 samples the band covers the true p95 with probability 95.81% and the true
    p50 with 95.002% (exact binomial sums, not the normal approximation)."""
    assert exact_coverage(1000, 95, *band_ranks(1000, 95)) == pytest.approx(0.95810, abs=5e-5)
    assert exact_coverage(1000, 50, *band_ranks(1000, 50)) == pytest.approx(0.95002, abs=5e-5)
    assert log_coverage(1000, 95, *band_ranks(1000, 95)) == pytest.approx(
        exact_coverage(1000, 95, *band_ranks(1000, 95)), abs=1e-9
    )


def test_coverage_is_95_percent_from_80_samples_up() -> None:
    """From 80 samples on (p95: the band then fits inside the sample) the exact coverage is
    at least 94.9% (the normal approximation's worst: 94.96% for the p50 of 104 samples),
    and close to 95% for large runs; below that a clamped band claims less."""
    for percent in (50, 95):
        worst = min(
            log_coverage(count, percent, *band_ranks(count, percent)) for count in range(80, 3001)
        )
        assert worst >= 0.949, (percent, worst)
        large = log_coverage(100_000, percent, *band_ranks(100_000, percent))
        assert 0.95 <= large < 0.96
    assert exact_coverage(20, 95, *band_ranks(20, 95)) < 0.7  # clamped: the sample's top


def test_band_contains_a_known_quantile_at_the_documented_rate() -> None:
    """400 seeded runs of 1,000 exponential draws: the band holds the true p95 (ln 20) and
    p50 (ln 2) about 95.8% and 95.0% of the time. The seeds are fixed, so the counts are
    fixed; the tolerance (four binomial standard deviations around the exact coverage) is
    what any other fair random stream would meet too."""
    runs = 400
    for percent, truth in ((95, math.log(20)), (50, math.log(2))):
        hits = 0
        for seed in range(runs):
            rng = random.Random(seed)
            ordered = sorted(rng.expovariate(1.0) for _ in range(1000))
            low, high = band(ordered, percent)
            assert low <= percentile(ordered, percent) <= high
            hits += low <= truth <= high
        expected = exact_coverage(1000, percent, *band_ranks(1000, percent))
        spread = 4 * math.sqrt(runs * expected * (1 - expected))
        assert abs(hits - runs * expected) <= spread, (percent, hits, runs * expected)


def test_monte_carlo_bands_contain_the_true_cost_percentile() -> None:
    """One call whose prompt holds a declared document size, {p50: 800, p95: 6000}: its cost
    per request, by hand, is ((1200 static + doc - 1024 cached) x $2.5 + 1024 x $1.25 +
    100 output x $10) per million x 0.7 (the lane's weight), increasing with the size, so
    its true p95 is that cost at 6,000 tokens (and its p50 at 800). Over 60 seeds of 1,000
    samples the run's band holds each in at least 52 (expected ~57, standard deviation ~1.6;
    the seeds are fixed, so the count is too)."""
    terms = lane(
        sized=(SampledVariable("doc", 1, Distribution(800, 6000), None),),
        bound_vars=(("doc", 6000),),
        threshold=None,
        turns=1,
        tool_calls=0,
        output=100,
        output_cap=None,
    )

    def cost(doc: int) -> float:
        return ((1200 + doc - 1024) * 2.5 + 1024 * 1.25 + 100 * 10.0) / 1_000_000 * 0.7

    truth = {50: cost(800), 95: cost(6000)}
    hits = {50: 0, 95: 0}
    for seed in range(60):
        sampled = sample_costs([terms], 1000, seed, 1.0)
        assert sampled.p50_band[0] <= sampled.p50 <= sampled.p50_band[1]
        assert sampled.p95_band[0] <= sampled.p95 <= sampled.p95_band[1]
        for percent, (low, high) in ((50, sampled.p50_band), (95, sampled.p95_band)):
            hits[percent] += low <= truth[percent] * (1 + 1e-12) and truth[percent] <= high * (
                1 + 1e-12
            )
    assert hits[50] >= 52 and hits[95] >= 52, hits


def test_python_and_numpy_engines_give_the_same_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numpy", reason="the numpy engine needs the fast extra")
    from test_montecarlo import LANES

    from promptbudget import montecarlo

    monkeypatch.setattr(montecarlo, "NUMPY_MIN_DRAWS", 10**12)
    python = sample_costs(LANES, 3000, 7, 0.9)
    monkeypatch.setattr(montecarlo, "NUMPY_MIN_DRAWS", 0)
    vectorised = sample_costs(LANES, 3000, 7, 0.9)
    assert (vectorised.p50_band, vectorised.p95_band) == (python.p50_band, python.p95_band)
    assert python.p95_band[0] < python.p95 < python.p95_band[1]  # a band, not a point


def test_a_limit_inside_the_band_is_within_sampling_error(run_cli: Callable[..., Run]) -> None:
    """examples/: support-reply's p95 is $0.0129 with a band of about $0.0127-$0.0132 and
    its latency p95 29,773 ms (26,661-33,763 ms). A limit of $0.0128 (inside) fails as
    before and says it is within sampling error; $0.0125 (below the band) fails without it;
    every format says the same, and the exit code is the one without bands (1)."""
    inside = "support-reply.limits.max_cost_per_request.p95=0.0128"
    below = "support-reply.limits.max_cost_per_request.p95=0.0125"
    result = run_cli("check", "--no-cache", "--set", inside, "--format", "json", cwd=EXAMPLES)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    (pb106,) = [f for f in report["findings"] if f["rule"] == "PB106"]
    assert pb106["message"].endswith(
        "(0.92% over; 95% band $0.0127-$0.0132 from 1,000 samples; within sampling error: "
        "--samples 100000 narrows it)"
    )
    (workflow,) = [w for w in report["workflows"] if w["name"] == "support-reply"]
    (limit,) = [c for c in workflow["limits"] if c["key"] == "max_cost_per_request"]
    low, high = limit["measured_band"]
    assert low < limit["limit"] < high and limit["within_sampling_error"] is True
    assert limit["measured_band"] == workflow["cost_per_request_p95_usd_band"]
    result = run_cli("check", "--no-cache", "--set", below, "--format", "sarif", cwd=EXAMPLES)
    assert result.exit_code == 1
    messages = [r["message"]["text"] for r in json.loads(result.stdout)["runs"][0]["results"]]
    (message,) = [m for m in messages if "max_cost_per_request" in m]
    assert message.endswith("over; 95% band $0.0127-$0.0132 from 1,000 samples)")
    result = run_cli("check", "--no-cache", "--set", inside, "--format", "github", cwd=EXAMPLES)
    assert "within sampling error: --samples 100000 narrows it" in result.stdout


def test_an_exact_percentile_has_no_band(run_cli: Callable[..., Run]) -> None:
    """escalation-draft declares no distribution: one request is computed, its p95 is its
    mean, exactly, and nothing claims a band."""
    result = run_cli("estimate", "--format", "json", "-w", "escalation-draft", cwd=EXAMPLES)
    (workflow,) = json.loads(result.stdout)["workflows"]
    assert workflow["monte_carlo"]["samples"] == 1
    assert workflow["cost_per_request_p95_usd"] == workflow["cost_per_request_usd"]
    assert workflow["cost_per_request_p95_usd_band"] is None
    assert all(c["measured_band"] is None for c in workflow["limits"])
    text = run_cli("estimate", "-w", "escalation-draft", cwd=EXAMPLES).stdout
    assert "±: 95% band" not in text and "cost per request (p95)" in text


def test_what_if_and_why_show_the_bands(run_cli: Callable[..., Run]) -> None:
    """estimate --set: each percentile budget's band as written and under the what-if;
    estimate --why: the step percentiles of where the seconds go, with their spread."""
    what_if = "routes.everyday.model=gpt-5.4-mini"
    result = run_cli("estimate", "--set", what_if, "--format", "json", cwd=EXAMPLES)
    payload = json.loads(result.stdout)
    (budget,) = [
        b
        for b in payload["what_if_budgets"]
        if b["key"] == "max_cost_per_request" and b["workflow"] == "support-reply"
    ]
    (after,) = [w for w in payload["workflows"] if w["name"] == "support-reply"]
    (before,) = [w for w in payload["baseline"] if w["name"] == "support-reply"]
    assert budget["what_if_band"] == after["cost_per_request_p95_usd_band"]
    assert budget["baseline_band"] == before["cost_per_request_p95_usd_band"]
    assert budget["baseline_band"][1] < budget["what_if_band"][0]  # apart: a real change
    text = run_cli("estimate", "--why", "-w", "support-reply", cwd=EXAMPLES).stdout
    (answer,) = [line for line in text.splitlines() if line.startswith("answer ")]
    assert re.search(r" ms ±\d+% +[\d,]+ ms ±\d+% ", answer), answer
