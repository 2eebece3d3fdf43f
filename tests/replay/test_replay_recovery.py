"""Replay recovers the distributions the logs were generated from, and the cost computed by
hand from the published prices.

Prices (USD per million tokens; OpenAI pricing page, as in the bundled catalog dated
2026-11-23, /work/shared/reference domain facts §4b): gpt-4.1-mini 0.40 input, 0.10 cached
input, 1.60 output; gpt-4.1-nano 0.10 / 0.025 / 0.40; gpt-5.4 2.50 / 0.25 / 15.00.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from replay_logs import Call, StepTruth, WorkflowTruth, generate, write
from replay_project import project_fixture  # noqa: F401  (the "project" fixture)

pytest.importorskip("duckdb", reason="replay needs duckdb (pip install -e '.[dev]')")

RATES = {  # input, cached input, output: USD per million tokens
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "gpt-4.1-nano": (0.10, 0.025, 0.40),
    "gpt-5.4": (2.50, 0.25, 15.00),
}


def hand_cost(call: Call) -> float:
    rate_in, rate_cached, rate_out = RATES[call.model]
    uncached = call.input_tokens - call.cache_read_tokens
    return (
        uncached * rate_in + call.cache_read_tokens * rate_cached + call.output_tokens * rate_out
    ) / 1e6


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, SQL's PERCENTILE_CONT)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def lognormal_quantile(p50: float, p95: float, z: float) -> float:
    return p50 * math.exp(math.log(p95 / p50) / 1.6448536269514722 * z)


def _replay(run_cli: Callable[..., object], project: Path, log: Path) -> dict[str, object]:
    result = run_cli("replay", str(log), "--format", "json", "--samples", "50", cwd=project)
    assert result.exit_code in (0, 1), result.stderr  # type: ignore[attr-defined]
    return result.json()["replay"]  # type: ignore[attr-defined,no-any-return]


def test_p50_and_p95_within_1_percent_of_the_true_distribution(
    project: Path, run_cli: Callable[..., object]
) -> None:
    """20,000 calls from log-normals with chosen medians and 95th percentiles: the standard
    error of a sample p95 here is about 0.45%, so 1% is over two standard errors."""
    truth = WorkflowTruth(
        "support",
        (StepTruth("classify", "gpt-4.1-nano", 3000, 4900, 400, 650),),
        requests=20_000,
    )
    log = write("otel", list(generate([truth], seed=21)), project / "spans.jsonl")
    step = _replay(run_cli, project, log)["workflows"][0]["steps"][0]  # type: ignore[index]
    assert step["calls"] == 20_000
    for key, (p50, p95) in {"input_tokens": (3000, 4900), "output_tokens": (400, 650)}.items():
        assert step[key]["p50"] == pytest.approx(p50, rel=0.01)
        assert step[key]["p95"] == pytest.approx(
            lognormal_quantile(p50, p95, 1.6448536269514722), rel=0.01
        )


def test_statistics_and_cost_match_a_hand_computation(
    project: Path, run_cli: Callable[..., object]
) -> None:
    truth = WorkflowTruth(
        "support",
        (
            StepTruth("classify", "gpt-4.1-nano", 300, 500, 3, 5),
            StepTruth(
                "answer", "gpt-4.1-mini", 2500, 9000, 200, 700, cache_hit=0.6, turns=2,
                tool_calls=1, escalate=0.1, escalate_model="gpt-5.4",
            ),
        ),
        requests=400,
        success=0.85,
    )  # fmt: skip
    calls = list(generate([truth], seed=4))
    model_calls = [c for c in calls if c.kind == "model"]
    replayed = _replay(run_cli, project, write("otlp", calls, project / "export.jsonl"))
    workflow = replayed["workflows"][0]  # type: ignore[index]
    steps = {s["name"]: s for s in workflow["steps"]}

    answer = [c for c in model_calls if c.step == "answer"]
    for key in ("input_tokens", "output_tokens", "cache_read_tokens"):
        values = [float(getattr(c, key)) for c in answer]
        assert steps["answer"][key]["p50"] == pytest.approx(quantile(values, 0.5))
        assert steps["answer"][key]["p95"] == pytest.approx(quantile(values, 0.95))
        assert steps["answer"][key]["max"] == max(values)

    total = sum(hand_cost(c) for c in model_calls)
    assert workflow["cost_usd"] == pytest.approx(total, rel=1e-9)
    per_request: dict[str, float] = defaultdict(float)
    for call in model_calls:
        per_request[call.trace_id] += hand_cost(call)
    cost = workflow["cost_per_request_usd"]
    assert cost["n"] == 400
    assert cost["mean"] == pytest.approx(total / 400, rel=1e-9)
    assert cost["p95"] == pytest.approx(quantile(list(per_request.values()), 0.95), rel=1e-9)

    outcomes = [c.outcome for c in model_calls if c.outcome is not None]
    assert workflow["success_rate"] == pytest.approx(sum(outcomes) / len(outcomes))
    starts: dict[str, int] = {}
    for call in calls:  # a request starts with its first call
        starts[call.trace_id] = min(starts.get(call.trace_id, call.start_ns), call.start_ns)
    days = (max(starts.values()) - min(starts.values())) / 86_400e9
    assert workflow["monthly_run_rate_usd"] == pytest.approx(total / days * 30, rel=1e-6)

    escalated = sum(1 for c in answer if c.model == "gpt-5.4")
    assert steps["answer"]["escalation_rate"] == pytest.approx(
        escalated / (len(answer) - escalated)
    )
    shares = {m["model"]: m["calls"] for m in steps["answer"]["models"]}
    assert shares == {"gpt-4.1-mini": len(answer) - escalated, "gpt-5.4": escalated}


def test_anthropic_usage_is_priced_with_cache_writes(
    project: Path, run_cli: Callable[..., object]
) -> None:
    """Anthropic's input_tokens excludes cache reads and writes; claude-sonnet-4-6 is $3 in,
    $3.75 5-minute cache write, $0.30 cache read, $15 out per million (Anthropic pricing)."""
    line = (
        '{"timestamp": "2026-12-01T10:00:00Z", "trace_id": "t1", '
        '"metadata": {"promptbudget.workflow": "support", "promptbudget.step": "answer"}, '
        '"response": {"id": "msg_01", "type": "message", "role": "assistant", '
        '"model": "claude-sonnet-4-6", "content": [{"type": "text", "text": "hi"}], '
        '"stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 1000, '
        '"cache_creation_input_tokens": 2000, "cache_read_input_tokens": 5000, '
        '"output_tokens": 300}}}\n'
    )
    (project / "claude.jsonl").write_text(line)
    step = _replay(run_cli, project, project / "claude.jsonl")["workflows"][0]["steps"][0]  # type: ignore[index]
    assert step["input_tokens"]["max"] == 8000  # 1,000 + 2,000 written + 5,000 read
    expected = (1000 * 3.00 + 2000 * 3.75 + 5000 * 0.30 + 300 * 15.00) / 1e6
    assert step["cost_per_call_usd"]["mean"] == pytest.approx(expected, rel=1e-12)


def test_very_large_logs_use_approximate_quantiles_and_say_so(
    project: Path, run_cli: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptbudget.commands import replay

    truth = WorkflowTruth(
        "support", (StepTruth("classify", "gpt-4.1-nano", 3000, 4900, 400, 650),), requests=3000
    )
    log = write("otel", list(generate([truth], seed=2)), project / "spans.jsonl")
    exact = _replay(run_cli, project, log)["workflows"][0]["steps"][0]  # type: ignore[index]
    monkeypatch.setattr(replay, "EXACT_QUANTILES_UP_TO", 100)
    result = run_cli("replay", str(log), "--samples", "50", cwd=project)
    assert "quantiles approximate (t-digest)" in result.stdout  # type: ignore[attr-defined]
    approximate = _replay(run_cli, project, log)["workflows"][0]["steps"][0]  # type: ignore[index]
    for key in ("input_tokens", "output_tokens"):
        assert approximate[key]["p95"] == pytest.approx(exact[key]["p95"], rel=0.02)
        assert approximate[key]["max"] == exact[key]["max"]


def test_running_out_of_memory_is_one_line_and_exit_2(
    project: Path, run_cli: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptbudget.replay import engine

    truth = WorkflowTruth(
        "support", (StepTruth("classify", "gpt-4.1-nano", 3000, 4900, 400, 650),), requests=20000
    )
    log = write("csv", list(generate([truth], seed=2)), project / "calls.csv")
    monkeypatch.setattr(engine, "MEMORY_LIMIT", "1MB")
    result = run_cli("replay", str(log), cwd=project)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "PROMPTBUDGET_REPLAY_MEMORY" in result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
