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

from conftest import readme_snippet

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


LIMITED = """\
version: 1
defaults: {model: gpt-4.1-mini}
models:
  gpt-4.1-mini: {ttft_ms: 400, output_tokens_per_second: 80}
workflows:
  support:
    steps:
      - name: classify
        prompt: classify.j2
        model: gpt-4.1-nano
        output_tokens: 3
      - name: answer
        prompt: answer.j2
        output_tokens: 200
        limits:
          max_latency_ms: {p50: 500}
    limits:
      max_latency_ms: {p50: 1000, p95: 2000}
"""


def _limited(make_project: Callable[..., Path]) -> Path:
    return make_project(
        {
            "budgets.yaml": LIMITED,
            "prompts/classify.j2": "Classify: {{ m }}\n",
            "prompts/answer.j2": "Answer: {{ m }}\n",
        }
    ).resolve()


def _requests(durations_ms: list[int], ttft_s: float | None = None) -> str:
    """One root span per request plus classify (first 200 ms) and answer (the rest)."""
    lines = []
    for index, total in enumerate(durations_ms):
        trace = f"{index + 1:032x}"
        start = BASE_NS + index * 60 * 10**9
        end = start + total * 10**6
        lines.append(span(trace, start, end, [_attr("promptbudget.workflow", "support")]))
        middle = start + 200 * 10**6
        lines.append(chat(trace, start, middle, "classify", "gpt-4.1-nano", 3, None))
        output = round(60 * (total - 200 - (ttft_s or 0) * 1000) / 1000)
        lines.append(chat(trace, middle, end, "answer", "gpt-4.1-mini", max(output, 1), ttft_s))
    return "\n".join(lines) + "\n"


def test_latency_over_max_latency_ms_is_pb117_with_when_how_often_and_examples(
    make_project: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    """40 requests: 36 of 900 ms and 4 of 3,000 ms. The p50 is 900 ms (under 1,000); the
    p95 interpolates between ranks 37 and 38 of 40 (0-based 37.05: both 3,000 ms): 3,000 ms,
    over 2,000 on 4 of 40 requests (10.0%). The answer step (700 and 2,800 ms) is over its
    own p50 limit of 500 ms."""
    root = _limited(make_project)
    log = root / "spans.jsonl"
    log.write_text(_requests([900] * 36 + [3000] * 4, ttft_s=0.4))
    result = run_cli("replay", str(log), "--format", "json", cwd=root)
    assert result.exit_code == 1, result.stderr
    findings = [f for f in result.json()["findings"] if f["rule"] == "PB117"]
    by_step = {f["step"]: f for f in findings}
    assert set(by_step) == {None, "answer"}
    workflow = by_step[None]
    assert (workflow["measured"], workflow["limit"], workflow["unit"]) == (3000, 2000, "ms")
    assert "at the p95" in workflow["message"]
    assert "on 10.0% of requests (4 of 40), 2025-12-01" in workflow["message"]
    assert f"{37:032x}" in workflow["message"]  # an example request id
    assert workflow["line"] == 18
    answer = by_step["answer"]
    assert (answer["measured"], answer["limit"]) == (700, 500)
    assert answer["line"] == 16
    text = run_cli("replay", str(log), cwd=root).stdout
    assert "PB117 latency-over-budget" in text
    assert "workflow 'support' took 3,000 ms per request at the p95" in text


def test_a_limit_without_any_measured_latency_is_pb118(
    make_project: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    root = _limited(make_project)
    line = (
        '{"trace_id": "t1", "metadata": {"promptbudget.workflow": "support", '
        '"promptbudget.step": "answer"}, "response": {"id": "chatcmpl-1", "object": '
        '"chat.completion", "created": 1764547200, "model": "gpt-4.1-mini", "choices": [], '
        '"usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}}\n'
    )
    (root / "openai.jsonl").write_text(line)
    result = run_cli("replay", "openai.jsonl", "--format", "json", cwd=root)
    codes = [f["rule"] for f in result.json()["findings"]]
    assert "PB117" not in codes
    assert codes.count("PB118") == 2  # the workflow's limit and the answer step's


def test_model_speeds_are_compared_with_the_declared_ones(
    make_project: Callable[..., Path], run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """gpt-4.1-mini is declared at 400 ms to first token and 80 tokens/s; its calls here take
    600 ms to the first chunk and then 60 tokens/s (output tokens = 60 x the time after it,
    rounded): +50% and -25%, both drift on 40 calls."""
    root = _limited(make_project)
    log = root / "spans.jsonl"
    log.write_text(_requests([2200] * 40, ttft_s=0.6))
    replayed = _replay(run_cli, root, log)
    speeds = {s["key"]: s for s in replayed["speeds"]}
    assert speeds["ttft_ms"]["declared"] == 400
    assert speeds["ttft_ms"]["observed_p50"] == pytest.approx(600)
    assert speeds["ttft_ms"]["gap"] == pytest.approx(0.5)
    assert speeds["ttft_ms"]["is_material"]
    tps = speeds["output_tokens_per_second"]
    assert tps["declared"] == 80
    assert tps["observed_p50"] == pytest.approx(60)
    assert tps["gap"] == pytest.approx(-0.25)
    monkeypatch.setenv("COLUMNS", "200")
    text = run_cli("replay", str(log), cwd=root).stdout
    shown = [" ".join(line.split()) for line in text.splitlines()]
    for line in readme_snippet("replay-speeds").strip().splitlines():  # the README's example
        assert " ".join(line.split()) in shown


def test_csv_rows_carry_time_to_first_token_and_failed_calls(
    project: Path, run_cli: Callable[..., Any]
) -> None:
    """``ttft_ms`` in milliseconds; ``failed`` rows need no tokens and are neither a turn nor
    a zero-token call in the token distributions."""
    log = project / "calls.csv"
    log.write_text(
        "trace_id,start_time,end_time,kind,model,workflow,step,input_tokens,output_tokens,"
        "ttft_ms,failed\n"
        "t1,2025-12-01T10:00:00Z,2025-12-01T10:00:01Z,model,gpt-4.1-mini,support,answer,,,,"
        "true\n"
        "t1,2025-12-01T10:00:02Z,2025-12-01T10:00:04Z,model,gpt-4.1-mini,support,answer,900,"
        "100,250,false\n"
    )
    step = _replay(run_cli, project, log)["workflows"][0]["steps"][0]
    assert (step["calls"], step["failed_calls"], step["retry_rate"]) == (2, 1, 0.5)
    assert step["input_tokens"]["n"] == 1 and step["input_tokens"]["p50"] == 900
    assert step["turns"]["max"] == 1
    assert step["ttft_ms"]["max"] == 250
    assert step["latency_ms"]["max"] == pytest.approx(4000)  # the failed attempt included
