"""Latency against hand computation: the README's worked example (classify, a cascade, a tool
call), retries with backoff, and a log-normal tool time whose percentiles come from the
closed-form distribution of the request's latency, solved here by bisection."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist
from typing import Any

from conftest import Run, readme_snippet

PROMPTS = {
    "prompts/classify.j2": "Classify the message.\n",
    "prompts/answer.j2": "Answer the customer.\n",
    "prompts/act.j2": "Act on the answer.\n",
}


def _latency(run_cli: Callable[..., Run], root: Path, *args: str) -> dict[str, Any]:
    result = run_cli("estimate", "--format", "json", *args, cwd=root)
    assert result.exit_code == 0, result.stderr
    workflow = json.loads(result.stdout)["workflows"][0]
    return {"workflow": workflow["latency"], "steps": [s["latency"] for s in workflow["steps"]]}


def test_readme_worked_example_by_hand(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project({"budgets.yaml": readme_snippet("latency-example"), **PROMPTS})
    # One call = ttft + output tokens / output tokens per second.
    classify = 400 + 10 / 100 * 1000  # 500 ms
    mini = 600 + 240 / 80 * 1000  # 3,600 ms
    escalated = 1500 + 240 / 50 * 1000  # 6,300 ms more, for 20% of requests
    act = 2 * (600 + 40 / 80 * 1000) + 450  # 2,650 ms
    p50 = classify + mini + act  # 80% of requests do not escalate
    p95 = p50 + escalated  # 20% > 5% do: the p95 is an escalated request
    assert (p50, p95) == (6750, 13050)
    found = _latency(run_cli, root)
    assert found["workflow"]["p50_ms"] == p50
    assert found["workflow"]["p95_ms"] == p95
    # The mean is drawn: within three standard errors of p50 + 20% x 6,300.
    samples = found["workflow"]["samples"]
    assert samples == 1000
    error = 3 * math.sqrt(0.2 * 0.8 / samples) * escalated
    assert abs(found["workflow"]["mean_ms"] - (p50 + 0.2 * escalated)) < error
    classify_step, answer_step, act_step = found["steps"]
    assert classify_step["p50_ms"] == classify_step["p95_ms"] == classify
    assert (answer_step["p50_ms"], answer_step["p95_ms"]) == (mini, mini + escalated)
    assert act_step["mean_ms"] == act
    assert act_step["parts_ms"] == {
        "ttft": 1200,
        "output": 1000,
        "tools": 450,
        "retrieval": 0,
        "backoff": 0,
    }
    check = run_cli("check", cwd=root)  # {p50: 8000, p95: 15000}: both hold
    assert check.exit_code == 0, check.stdout
    tight = run_cli("check", "--set", "support.limits.max_latency_ms=13000", cwd=root)
    assert tight.exit_code == 1
    assert "takes 13,050 ms at p95" in tight.stdout


RETRY = """\
version: 1
models:
  acme: {input_per_mtok: 1, output_per_mtok: 1, ttft_ms: 1000, output_tokens_per_second: 100}
workflows:
  flaky:
    steps:
      - prompt: answer.j2
        model: acme
        output_tokens: 100
        retry: {failure_rate: 40%, max_attempts: 3, backoff_ms: 200}
"""


def test_retries_add_the_call_and_the_backoff(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project({"budgets.yaml": RETRY, **PROMPTS})
    call = 1000 + 100 / 100 * 1000  # 2,000 ms an attempt
    # P(attempts > a) = 0.4^a, at most 3: P(1) = 0.6, P(2) = 0.24, P(3) = 0.16.
    shares = {1: 0.6, 2: 0.24, 3: 0.16}
    value = {a: a * call + (a - 1) * 200 for a in shares}  # 2,000, 4,200, 6,400 ms
    found = _latency(run_cli, root, "--samples", "4000")["workflow"]
    assert found["p50_ms"] == value[1]  # 60% succeed at once
    assert found["p95_ms"] == value[3]  # 16% > 5% take all three attempts
    mean = sum(shares[a] * value[a] for a in shares)  # 3,192 ms
    spread = math.sqrt(sum(shares[a] * (value[a] - mean) ** 2 for a in shares))
    assert abs(found["mean_ms"] - mean) < 3 * spread / math.sqrt(4000)


LOGNORMAL = """\
version: 1
models:
  small: {input_per_mtok: 1, output_per_mtok: 1, ttft_ms: 500, output_tokens_per_second: 100}
  big: {input_per_mtok: 1, output_per_mtok: 1, ttft_ms: 1200, output_tokens_per_second: 50}
routes:
  cascade: {model: small, escalation: {to: big, rate: 10%}}
workflows:
  agent:
    steps:
      - prompt: answer.j2
        route: cascade
        output_tokens: 200
        tool_calls: 1
        tool_latency_ms: {p50: 300, p95: 1200}
"""


def _quantile(cdf: Callable[[float], float], q: float, low: float, high: float) -> float:
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < q else (low, middle)
    return (low + high) / 2


def test_lognormal_tool_time_and_cascade_match_the_closed_form(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    """small: 2 calls x (500 + 2,000) = 5,000 ms + one tool call T; escalated (10%): big runs
    the conversation again, 2 x (1,200 + 4,000) = 10,400 ms + a second tool call T'.
    T is log-normal with median 300 and sigma = ln(1200/300)/1.645, so
    P(latency <= t) = 0.9 P(T <= t - 5,000) + 0.1 P(T + T' <= t - 15,400). The sum of two
    log-normals has no closed form: that term is integrated numerically over T (midpoint
    rule on T's quantiles), an independent computation of the same distribution."""
    root = make_project({"budgets.yaml": LOGNORMAL, **PROMPTS})
    sigma = math.log(1200 / 300) / NormalDist().inv_cdf(0.95)
    tool = NormalDist(math.log(300), sigma)

    def below(x: float) -> float:  # P(T <= x)
        return tool.cdf(math.log(x)) if x > 0 else 0.0

    def both_below(x: float) -> float:  # P(T + T' <= x) = E[P(T' <= x - T)], midpoint rule
        steps = 400
        total = 0.0
        for i in range(steps):
            t = tool.inv_cdf((i + 0.5) / steps)
            total += below(x - math.exp(t))
        return total / steps

    def cdf(t: float) -> float:
        return 0.9 * below(t - 5000) + 0.1 * both_below(t - 15400)

    p50 = _quantile(cdf, 0.5, 5000, 60000)
    p95 = _quantile(cdf, 0.95, 5000, 60000)
    found = _latency(run_cli, root, "--samples", "20000")["workflow"]
    assert abs(found["p50_ms"] - p50) / p50 < 0.005, (found, p50)
    assert abs(found["p95_ms"] - p95) / p95 < 0.01, (found, p95)
