"""Replay measures latency from span start and end times: per call, per step of a request and
per request (the envelope of the request's spans: its tagged root span when there is one), and
time to first token where the span carries ``gen_ai.response.time_to_first_chunk`` (OTel GenAI
semantic conventions v1.41, seconds).

The spans are generated here, seeded, from log-normal distributions with chosen medians and
95th percentiles; the expected quantiles are the distributions' own (computed by hand from
the log-normal's formula), or the exact sample quantiles (linear interpolation, as SQL's
PERCENTILE_CONT) where the test says so.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from replay_project import project_fixture  # noqa: F401  (the "project" fixture)

pytest.importorskip("duckdb", reason="replay needs duckdb (pip install -e '.[dev]')")

Z95 = 1.6448536269514722
BASE_NS = 1_764_547_200 * 10**9  # 2025-12-01T00:00:00Z


def lognormal(rng: random.Random, p50: float, p95: float) -> float:
    return p50 * math.exp(math.log(p95 / p50) / Z95 * rng.gauss(0.0, 1.0))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _attr(key: str, value: object) -> dict[str, Any]:
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def span(trace: str, start: int, end: int, attributes: list[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "traceId": trace,
            "spanId": f"{abs(hash((trace, start, end))) % 2**64:016x}",
            "name": "span",
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(end),
            "attributes": attributes,
        }
    )


def chat(
    trace: str, start: int, end: int, step: str, model: str, output: int, ttft_s: float | None
) -> str:
    attributes = [
        _attr("gen_ai.operation.name", "chat"),
        _attr("gen_ai.provider.name", "openai"),
        _attr("gen_ai.response.model", model),
        _attr("gen_ai.usage.input_tokens", 500),
        _attr("gen_ai.usage.output_tokens", output),
        _attr("promptbudget.step", step),
    ]
    if ttft_s is not None:
        attributes.append(_attr("gen_ai.response.time_to_first_chunk", ttft_s))
    return span(trace, start, end, attributes)


def _replay(run_cli: Callable[..., Any], project: Path, *logs: Path) -> dict[str, Any]:
    result = run_cli("replay", *map(str, logs), "--format", "json", "--samples", "50", cwd=project)
    assert result.exit_code in (0, 1), result.stderr
    return result.json()["replay"]  # type: ignore[no-any-return]


def test_latency_p50_and_p95_within_1_percent_of_the_true_distribution(
    project: Path, run_cli: Callable[..., Any]
) -> None:
    """20,000 requests. Each has a root span tagged with the workflow whose duration D is
    log-normal (p50 1,800 ms, p95 2,700 ms); classify takes its first 20%, answer the next
    75% with time to first chunk 10% of D and 80 output tokens a second after it. Every
    measured quantity is then a scaled log-normal: the p50 of 0.2 D is 0.2 x 1,800 ms. The
    standard error of a sample p95 of 20,000 from this log-normal is about 0.37%
    (sqrt(0.95 x 0.05 / n) x sigma / phi(1.645)); 1% is 2.7 of them."""
    rng = random.Random(19)
    lines = []
    durations = []
    for index in range(20_000):
        trace = f"{rng.getrandbits(128):032x}"
        start = BASE_NS + index * 30 * 10**9
        duration_ms = lognormal(rng, 1800, 2700)
        durations.append(duration_ms)
        d_ns = round(duration_ms * 1e6)
        lines.append(span(trace, start, start + d_ns, [_attr("promptbudget.workflow", "support")]))
        classify_end = start + round(d_ns * 0.2)
        lines.append(chat(trace, start, classify_end, "classify", "gpt-4.1-nano", 3, None))
        answer_end = classify_end + round(d_ns * 0.75)
        ttft_s = duration_ms * 0.1 / 1000
        output = round(80 * (duration_ms * 0.65) / 1000)
        lines.append(
            chat(trace, classify_end, answer_end, "answer", "gpt-4.1-mini", max(output, 1), ttft_s)
        )
    log = project / "spans.jsonl"
    log.write_text("\n".join(lines) + "\n")

    workflow = _replay(run_cli, project, log)["workflows"][0]
    steps = {s["name"]: s for s in workflow["steps"]}

    def true(p50: float, p95: float, scale: float) -> tuple[float, float]:
        return p50 * scale, p95 * scale

    checks = {
        "request": (workflow["latency_ms"], true(1800, 2700, 1.0)),
        "classify call": (steps["classify"]["latency_per_call_ms"], true(1800, 2700, 0.2)),
        "classify in a request": (steps["classify"]["latency_ms"], true(1800, 2700, 0.2)),
        "answer call": (steps["answer"]["latency_per_call_ms"], true(1800, 2700, 0.75)),
        "answer ttft": (steps["answer"]["ttft_ms"], true(1800, 2700, 0.1)),
    }
    for name, (measured, (p50, p95)) in checks.items():
        assert measured["n"] == 20_000, name
        assert measured["p50"] == pytest.approx(p50, rel=0.01), name
        assert measured["p95"] == pytest.approx(p95, rel=0.01), name
    # the request's latency is its root span's: exactly the sample quantiles of D
    assert workflow["latency_ms"]["p95"] == pytest.approx(quantile(durations, 0.95), rel=1e-6)
    assert workflow["latency_ms"]["max"] == pytest.approx(max(durations), rel=1e-6)
    # output speed after the first chunk: 80 tokens a second, up to rounding of the tokens
    (answer_model,) = steps["answer"]["models"]
    assert answer_model["output_tokens_per_second"]["p50"] == pytest.approx(80, rel=0.01)
    assert answer_model["ttft_ms"]["p50"] == pytest.approx(180, rel=0.01)


def test_request_latency_is_the_envelope_of_its_calls_without_a_root_span(
    project: Path, run_cli: Callable[..., Any]
) -> None:
    """No root span: the request runs from its first call's start to its last call's end,
    gaps between calls included (hand computed: 0 → 400 ms, 500 → 1,700 ms: 1,700 ms)."""
    trace = "ab" * 16
    rows = []
    for start_ms, end_ms, step in ((0, 400, "classify"), (500, 1700, "answer")):
        line = json.loads(
            chat(
                trace,
                BASE_NS + start_ms * 10**6,
                BASE_NS + end_ms * 10**6,
                step,
                "gpt-4.1-mini",
                10,
                None,
            )
        )
        line["attributes"].append(_attr("promptbudget.workflow", "support"))
        rows.append(json.dumps(line))
    log = project / "two.jsonl"
    log.write_text("\n".join(rows) + "\n")
    workflow = _replay(run_cli, project, log)["workflows"][0]
    assert workflow["latency_ms"]["max"] == pytest.approx(1700)
    steps = {s["name"]: s for s in workflow["steps"]}
    assert steps["answer"]["latency_ms"]["max"] == pytest.approx(1200)
    assert steps["classify"]["latency_ms"]["max"] == pytest.approx(400)
    assert steps["answer"]["ttft_ms"]["n"] == 0  # not carried: not measured, never zero


def test_calls_without_an_end_time_have_no_latency(
    project: Path, run_cli: Callable[..., Any]
) -> None:
    """An OpenAI response log carries ``created`` only: no latency, rather than a wrong one."""
    line = (
        '{"trace_id": "t1", "metadata": {"promptbudget.workflow": "support", '
        '"promptbudget.step": "answer"}, "response": {"id": "chatcmpl-1", "object": '
        '"chat.completion", "created": 1764547200, "model": "gpt-4.1-mini", "choices": [], '
        '"usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}}\n'
    )
    (project / "openai.jsonl").write_text(line)
    replayed = _replay(run_cli, project, project / "openai.jsonl")
    workflow = replayed["workflows"][0]
    assert workflow["requests"] == 1
    assert workflow["latency_ms"]["n"] == 0
    assert workflow["steps"][0]["latency_per_call_ms"]["n"] == 0


def test_litellm_completion_start_time_is_the_time_to_first_token(
    project: Path, run_cli: Callable[..., Any]
) -> None:
    """LiteLLM_SpendLogs ``completionStartTime`` (schema.prisma, nullable) minus ``startTime``;
    a non-streamed call's equals ``endTime`` and is no time to first token."""
    rows = []
    for request, first in (("r1", "2026-12-01T10:00:00.350Z"), ("r2", "2026-12-01T10:00:02Z")):
        rows.append(
            {
                "request_id": request,
                "call_type": "acompletion",
                "spend": 0.0,
                "prompt_tokens": 100,
                "completion_tokens": 20,
                "startTime": "2026-12-01T10:00:00Z",
                "endTime": "2026-12-01T10:00:02Z",
                "completionStartTime": first,
                "model": "gpt-4.1-mini",
                "session_id": request,
                "metadata": {
                    "spend_logs_metadata": {
                        "promptbudget.workflow": "support",
                        "promptbudget.step": "answer",
                    }
                },
            }
        )
    log = project / "spend.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    step = _replay(run_cli, project, log)["workflows"][0]["steps"][0]
    assert step["latency_per_call_ms"]["p50"] == pytest.approx(2000)
    assert step["ttft_ms"]["n"] == 1
    assert step["ttft_ms"]["max"] == pytest.approx(350)
