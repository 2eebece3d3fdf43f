"""DeepSeek's off-peak prices: the windows, the blend by traffic profile, the manifest keys.

Hand-computed figures: DeepSeek's peak is Mon-Fri 01:00-04:00 and 06:00-10:00 UTC (7 h x 5 =
35 of the week's 168 hours); the other 133 hours bill half (api-docs.deepseek.com
quick_start/pricing, as LiteLLM 1.110.2's ``off_peak_pricing`` windows say).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from promptbudget.pricing.catalog import blend_time_of_day, load_catalog
from promptbudget.pricing.timeofday import TrafficProfile, off_peak_share, parse_windows
from promptbudget.simulation import CallTokens, price_call

D = Decimal
FIXTURE = Path(__file__).resolve().parents[1] / "data" / "litellm" / "prices-1.110.2.json"
PEAK_UTC = {(day, hour) for day in range(5) for hour in (1, 2, 3, 6, 7, 8, 9)}


def _peak_only_profile() -> TrafficProfile:
    weights = [D(1) if (h // 24, h % 24) in PEAK_UTC else D(0) for h in range(168)]
    return TrafficProfile(timezone="UTC", hourly=tuple(weights))


def test_litellm_windows_leave_35_peak_hours() -> None:
    entry = json.loads(FIXTURE.read_text(encoding="utf-8"))["deepseek/deepseek-flash"]
    off = parse_windows(entry["off_peak_pricing"]["windows"])
    assert len(off) == 133
    peak = {(h // 24, h % 24) for h in range(168)} - {(h // 24, h % 24) for h in off}
    assert peak == PEAK_UTC


@pytest.mark.parametrize(
    "windows",
    [
        "00:00-01:00",
        [{"weekdays": [8], "hours_utc": ["00:00-01:00"]}],
        [{"weekdays": [1], "hours_utc": ["05:00-03:00"]}],
        [{"weekdays": [1], "hours_utc": ["00:30-01:00"]}],
        [{"weekdays": [1]}],
    ],
)
def test_bad_windows_are_rejected(windows: object) -> None:
    with pytest.raises(ValueError):
        parse_windows(windows)


def test_even_spread_blends_peak_and_off_peak_by_hours() -> None:
    flash = load_catalog().models["deepseek-flash"]
    blended, split = blend_time_of_day(flash, None)
    assert split is not None and split.is_even_spread
    assert split.off_peak_share == D(133) / D(168)
    # 10,000 input tokens of which 2,000 cache hits, 1,000 output:
    # peak  = 8,000 x 0.30 + 2,000 x 0.006 + 1,000 x 1.20 = $0.003612 (per-MTok rates)
    # off   = half of it                                    = $0.001806
    # blend = 0.003612 x 35/168 + 0.001806 x 133/168        = $0.00218225
    call = CallTokens(10_000, 1_000, cache_read_tokens=2_000)
    assert price_call(flash, call).total_usd == D("0.003612")
    assert price_call(blended, call).total_usd == D("0.00218225")
    assert D("0.003612") * 35 / 168 + D("0.001806") * 133 / 168 == D("0.00218225")
    # The peak price is 1/0.604 = 66% too high for traffic spread over the week.
    assert (D("0.003612") / D("0.00218225")).quantize(D("0.01")) == D("1.66")


def test_a_peak_hours_only_profile_pays_the_peak_price() -> None:
    flash = load_catalog().models["deepseek-flash"]
    blended, split = blend_time_of_day(flash, _peak_only_profile())
    assert split is not None and split.off_peak_share == 0
    assert blended.input_per_mtok == D("0.3")
    assert blended.output_per_mtok == D("1.2")
    assert blended.cache_read_per_mtok == D("0.006")


def test_a_local_profile_maps_to_utc() -> None:
    """Beijing (UTC+8, no daylight saving): DeepSeek's peak is 09-12 and 14-18 local time on
    weekdays, so weekday traffic in exactly those hours is all peak, and a 24-hour profile of
    the same hours puts the weekend's 2 of 7 days off-peak."""
    local_peak = {9, 10, 11, 14, 15, 16, 17}
    weekdays_only = tuple(
        D(1) if h // 24 < 5 and h % 24 in local_peak else D(0) for h in range(168)
    )
    hours = load_catalog().models["deepseek-flash"].off_peak
    assert hours is not None
    profile = TrafficProfile(timezone="Asia/Shanghai", hourly=weekdays_only)
    assert off_peak_share(hours.hours, profile) == 0
    every_day = tuple(D(1) if h in local_peak else D(0) for h in range(24))
    daily = TrafficProfile(timezone="Asia/Shanghai", hourly=every_day)
    assert off_peak_share(hours.hours, daily) == D(2) / D(7)


def test_models_without_time_of_day_prices_are_unchanged() -> None:
    gpt = load_catalog().models["gpt-4o"]
    assert blend_time_of_day(gpt, None) == (gpt, None)


def _project(make_project: Callable[..., Path], traffic: str) -> Path:
    return make_project(
        {
            "budgets.yaml": f"""\
                version: 1
                workflows:
                  answer:
                    traffic: {traffic}
                    steps:
                      - prompt: answer.j2
                        model: deepseek-flash
                        output_tokens: 200
                """,
            "prompts/answer.j2": "system:\nYou are a helpful support assistant.\n",
        }
    )


def test_estimate_blends_by_the_workflow_profile(
    run_cli: Callable[..., object], make_project: Callable[..., Path]
) -> None:
    peak_weights = [1 if (h // 24, h % 24) in PEAK_UTC else 0 for h in range(168)]
    costs = {}
    for label, traffic in (
        ("even", "{requests_per_day: 100}"),
        ("peak", f"{{requests_per_day: 100, timezone: UTC, hourly: {peak_weights}}}"),
    ):
        root = _project(make_project, traffic)
        result = run_cli("estimate", "--why", "--format", "json", cwd=root)
        assert result.exit_code == 0, result.stderr  # type: ignore[attr-defined]
        workflow = result.json()["workflows"][0]  # type: ignore[attr-defined]
        costs[label] = D(str(workflow["cost_per_request_usd"]))
        (split,) = workflow["time_of_day"]
        assert split["model"] == "deepseek-flash"
        assert split["even_spread"] is (label == "even")
    # Even spread = (35 + 133/2) / 168 of the peak price.
    assert abs(costs["even"] / costs["peak"] - D("101.5") / 168) < D("1e-6")


@pytest.mark.parametrize(
    ("traffic", "message"),
    [
        ("{hourly: [1, 2, 3]}", "give 24"),
        ("{timezone: Mars/Olympus, hourly: " + str([1] * 24) + "}", "unknown time zone"),
        ("{timezone: UTC}", "timezone needs hourly"),
        ("{hourly: " + str([0] * 24) + "}", "at least one hour"),
    ],
)
def test_bad_profiles_are_one_line_errors(
    run_cli: Callable[..., object], make_project: Callable[..., Path], traffic: str, message: str
) -> None:
    root = _project(make_project, traffic)
    result = run_cli("estimate", cwd=root)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert message in result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
