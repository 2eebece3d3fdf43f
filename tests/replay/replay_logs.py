"""Realistic usage logs in every format replay reads, from chosen "true" distributions.

Used by the tests (``tests/replay``), the benchmark (``benchmarks/bench_replay.py``) and to
make the bundled sample (``examples/logs``). Each writer follows the documented shape of its
source (see the module docstrings of ``promptbudget.replay.otel`` and ``.providers``):

* OTel GenAI spans: opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/ and the OTLP
  JSON encoding (opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): int64 values as
  strings, ``traceId``/``spanId`` as hex, attributes as ``[{key, value: {intValue}}]``.
* OpenAI Chat Completions and Responses objects (platform.openai.com/docs/api-reference).
* Anthropic Messages (docs.anthropic.com/en/api/messages): ``input_tokens`` excludes cache.
* LiteLLM ``LiteLLM_SpendLogs`` rows (BerriAI/litellm schema.prisma; ``metadata`` is
  ``SpendLogsMetadata`` with ``additional_usage_values`` and ``spend_logs_metadata``).
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

Z95 = 1.6448536269514722
BASE_NS = 1_764_547_200 * 10**9  # 2025-12-01T00:00:00Z


@dataclass(frozen=True)
class StepTruth:
    name: str
    model: str
    input_p50: int
    input_p95: int
    output_p50: int
    output_p95: int
    cache_hit: float = 0.0  # share of calls that read a cached prefix
    cached_share: float = 0.5  # of the input, on a hit
    turns: int = 1
    tool_calls: int = 0  # per turn
    escalate: float = 0.0  # share of calls re-run on escalate_model
    escalate_model: str | None = None
    provider: str = "openai"


@dataclass(frozen=True)
class WorkflowTruth:
    name: str
    steps: tuple[StepTruth, ...]
    requests: int
    success: float | None = None  # probability a request succeeds (recorded when given)
    tagged: bool = True  # the app sets promptbudget.workflow / promptbudget.step


@dataclass
class Call:
    kind: str  # model | tool
    trace_id: str
    span_id: str
    start_ns: int
    end_ns: int
    workflow: str | None
    step: str | None
    model: str = ""
    provider: str = "openai"
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    tool_calls: int = 0  # tool calls this response asked for
    outcome: int | None = None


def _lognormal(rng: random.Random, p50: int, p95: int) -> int:
    sigma = math.log(p95 / p50) / Z95 if p95 > p50 else 0.0
    return max(1, round(p50 * math.exp(sigma * rng.gauss(0.0, 1.0))))


def generate(
    workflows: Iterable[WorkflowTruth], *, seed: int = 7, days: float = 7.0
) -> Iterator[Call]:
    """Every call of every request, request by request, spread evenly over ``days``."""
    rng = random.Random(seed)
    truths = list(workflows)
    total = sum(w.requests for w in truths)
    order = [w for w in truths for _ in range(w.requests)]
    rng.shuffle(order)
    gap = int(days * 86_400 * 10**9 / max(total, 1))
    for index, workflow in enumerate(order):
        trace = f"{rng.getrandbits(128):032x}"
        clock = BASE_NS + index * gap
        outcome = None
        if workflow.success is not None:
            outcome = 1 if rng.random() < workflow.success else 0
        first = True
        for step in workflow.steps:
            for _turn in range(step.turns):
                for position in range(step.tool_calls + 1):
                    models = [step.model]
                    if step.escalate_model and rng.random() < step.escalate:
                        models.append(step.escalate_model)
                    for model in models:
                        tokens = _lognormal(rng, step.input_p50, step.input_p95)
                        cached = (
                            int(tokens * step.cached_share) if rng.random() < step.cache_hit else 0
                        )
                        asks_tool = position < step.tool_calls and model == step.model
                        yield Call(
                            kind="model",
                            trace_id=trace,
                            span_id=f"{rng.getrandbits(64):016x}",
                            start_ns=clock,
                            end_ns=clock + 900_000_000,
                            workflow=workflow.name if workflow.tagged else None,
                            step=step.name if workflow.tagged else None,
                            model=model,
                            provider=step.provider,
                            input_tokens=tokens,
                            output_tokens=_lognormal(rng, step.output_p50, step.output_p95),
                            cache_read_tokens=cached,
                            tool_calls=1 if asks_tool else 0,
                            outcome=outcome if first else None,
                        )
                        first = False
                        clock += 1_000_000_000
                    if position < step.tool_calls:
                        yield Call(
                            kind="tool",
                            trace_id=trace,
                            span_id=f"{rng.getrandbits(64):016x}",
                            start_ns=clock,
                            end_ns=clock + 200_000_000,
                            workflow=None,
                            step=None,
                            model="",
                            provider=step.provider,
                        )
                        clock += 300_000_000


# -- OpenTelemetry ------------------------------------------------------------------------------


def _attr(key: str, value: object) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}  # OTLP JSON: int64 as a string
    return {"key": key, "value": {"stringValue": str(value)}}


def otel_span(call: Call, *, old_names: bool = False, content: bool = True) -> dict[str, Any]:
    """One span as OTLP JSON encodes it."""
    if call.kind == "tool":
        attributes = [
            _attr("gen_ai.operation.name", "execute_tool"),
            _attr("gen_ai.tool.name", "lookup_order"),
            _attr("gen_ai.tool.call.id", f"call_{call.span_id}"),
        ]
        name = "execute_tool lookup_order"
    else:
        system = "gen_ai.system" if old_names else "gen_ai.provider.name"
        prompt_key = "gen_ai.usage.prompt_tokens" if old_names else "gen_ai.usage.input_tokens"
        output_key = "gen_ai.usage.completion_tokens" if old_names else "gen_ai.usage.output_tokens"
        attributes = [
            _attr("gen_ai.operation.name", "chat"),
            _attr(system, call.provider),
            _attr("gen_ai.request.model", call.model),
            _attr("gen_ai.response.model", call.model),
            _attr("gen_ai.response.id", f"chatcmpl-{call.span_id}"),
            _attr("gen_ai.response.finish_reasons", "tool_calls" if call.tool_calls else "stop"),
            _attr(prompt_key, call.input_tokens),
            _attr(output_key, call.output_tokens),
        ]
        if call.cache_read_tokens:
            read_key = (
                "gen_ai.usage.cache_read_input_tokens"
                if old_names
                else "gen_ai.usage.cache_read.input_tokens"
            )
            attributes.append(_attr(read_key, call.cache_read_tokens))
        if content:  # captured by some instrumentations: replay must never read it
            attributes.append(
                _attr("gen_ai.input.messages", '[{"role":"user","content":"SECRET"}]')
            )
        name = f"chat {call.model}"
    if call.workflow:
        attributes.append(_attr("promptbudget.workflow", call.workflow))
    if call.step:
        attributes.append(_attr("promptbudget.step", call.step))
    if call.outcome is not None:
        attributes.append(_attr("promptbudget.outcome", "success" if call.outcome else "failure"))
    return {
        "traceId": call.trace_id,
        "spanId": call.span_id,
        "parentSpanId": "",
        "name": name,
        "kind": 3,  # SPAN_KIND_CLIENT
        "startTimeUnixNano": str(call.start_ns),
        "endTimeUnixNano": str(call.end_ns),
        "attributes": attributes,
        "status": {},
    }


def write_otel_spans(
    calls: Iterable[Call], out: TextIO, *, old_names: bool = False, content: bool = True
) -> int:
    """JSON lines, one span per line."""
    count = 0
    for call in calls:
        span = otel_span(call, old_names=old_names, content=content)
        out.write(json.dumps(span, separators=(",", ":")) + "\n")
        count += 1
    return count


def write_otlp_export(calls: Iterable[Call], out: TextIO) -> int:
    """JSON lines, one ``ExportTraceServiceRequest`` per trace (the collector's file exporter)."""
    count = 0
    batch: list[Call] = []

    def flush() -> None:
        if not batch:
            return
        document = {
            "resourceSpans": [
                {
                    "resource": {"attributes": [_attr("service.name", "support-api")]},
                    "scopeSpans": [
                        {
                            "scope": {"name": "opentelemetry.instrumentation.openai_v2"},
                            "spans": [otel_span(c) for c in batch],
                        }
                    ],
                }
            ]
        }
        out.write(json.dumps(document, separators=(",", ":")) + "\n")
        batch.clear()

    for call in calls:
        if batch and batch[0].trace_id != call.trace_id:
            flush()
        batch.append(call)
        count += 1
    flush()
    return count


# -- provider responses -------------------------------------------------------------------------


def _iso(ns: int) -> str:
    moment = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _envelope(call: Call, response: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if call.workflow:
        metadata["promptbudget.workflow"] = call.workflow
    if call.step:
        metadata["promptbudget.step"] = call.step
    if call.outcome is not None:
        metadata["promptbudget.outcome"] = "success" if call.outcome else "failure"
    return {
        "timestamp": _iso(call.start_ns),
        "trace_id": call.trace_id,
        "metadata": metadata,
        "response": response,
    }


def openai_chat(call: Call) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "SECRET answer", "refusal": None}
    if call.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{call.span_id}",
                "type": "function",
                "function": {"name": "lookup_order", "arguments": '{"id": "SECRET"}'},
            }
        ]
    return {
        "id": f"chatcmpl-{call.span_id}",
        "object": "chat.completion",
        "created": call.start_ns // 10**9,
        "model": call.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if call.tool_calls else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": call.input_tokens,
            "completion_tokens": call.output_tokens,
            "total_tokens": call.input_tokens + call.output_tokens,
            "prompt_tokens_details": {"cached_tokens": call.cache_read_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_0000000000",
    }


def openai_response(call: Call) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if call.tool_calls:
        output.append(
            {
                "type": "function_call",
                "id": f"fc_{call.span_id}",
                "call_id": f"call_{call.span_id}",
                "name": "lookup_order",
                "arguments": '{"id": "SECRET"}',
                "status": "completed",
            }
        )
    else:
        output.append(
            {
                "type": "message",
                "id": f"msg_{call.span_id}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "SECRET answer", "annotations": []}],
            }
        )
    return {
        "id": f"resp_{call.span_id}",
        "object": "response",
        "created_at": call.start_ns // 10**9,
        "status": "completed",
        "model": call.model,
        "output": output,
        "usage": {
            "input_tokens": call.input_tokens,
            "input_tokens_details": {"cached_tokens": call.cache_read_tokens},
            "output_tokens": call.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": call.input_tokens + call.output_tokens,
        },
        "metadata": {},
    }


def anthropic_message(call: Call) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": "SECRET answer"}]
    if call.tool_calls:
        content.append(
            {
                "type": "tool_use",
                "id": f"toolu_{call.span_id}",
                "name": "lookup_order",
                "input": {"id": "SECRET"},
            }
        )
    return {
        "id": f"msg_{call.span_id}",
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": content,
        "stop_reason": "tool_use" if call.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": {
            # Anthropic: input_tokens excludes the cache reads and writes
            "input_tokens": call.input_tokens - call.cache_read_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": call.cache_read_tokens,
            "output_tokens": call.output_tokens,
        },
    }


def write_responses(calls: Iterable[Call], out: TextIO, style: str) -> int:
    """JSON lines of logged responses in an envelope; ``style``: chat, responses, anthropic."""
    render = {"chat": openai_chat, "responses": openai_response, "anthropic": anthropic_message}[
        style
    ]
    count = 0
    for call in calls:
        if call.kind != "model":
            continue  # provider logs have no tool spans: the response says it asked for one
        out.write(json.dumps(_envelope(call, render(call)), separators=(",", ":")) + "\n")
        count += 1
    return count


# -- LiteLLM and CSV ----------------------------------------------------------------------------

LITELLM_COLUMNS = (
    "request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens",
    "completion_tokens", "startTime", "endTime", "request_duration_ms", "completionStartTime",
    "model", "model_id", "model_group", "custom_llm_provider", "api_base", "user", "metadata",
    "cache_hit", "cache_key", "request_tags", "team_id", "organization_id", "end_user",
    "requester_ip_address", "messages", "response", "session_id", "status",
    "mcp_namespaced_tool_name", "agent_id", "proxy_server_request",
)  # fmt: skip


def litellm_row(call: Call) -> dict[str, Any]:
    spend_metadata: dict[str, Any] = {}
    if call.workflow:
        spend_metadata["promptbudget.workflow"] = call.workflow
    if call.step:
        spend_metadata["promptbudget.step"] = call.step
    metadata = {
        "user_api_key": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
        "user_api_key_alias": None,
        "user_api_key_team_id": None,
        "spend_logs_metadata": spend_metadata or None,
        "requester_ip_address": "",
        "additional_usage_values": {
            "completion_tokens_details": {"reasoning_tokens": 0},
            "prompt_tokens_details": {"cached_tokens": call.cache_read_tokens},
            "cache_read_input_tokens": call.cache_read_tokens,
            "cache_creation_input_tokens": 0,
        },
        "status": "success",
    }
    return {
        "request_id": f"chatcmpl-{call.span_id}",
        "call_type": "acompletion",
        "api_key": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
        "spend": 0.0,
        "total_tokens": call.input_tokens + call.output_tokens,
        "prompt_tokens": call.input_tokens,
        "completion_tokens": call.output_tokens,
        "startTime": _iso(call.start_ns),
        "endTime": _iso(call.end_ns),
        "request_duration_ms": (call.end_ns - call.start_ns) // 10**6,
        "completionStartTime": _iso(call.end_ns),
        "model": call.model,
        "model_id": "",
        "model_group": call.model,
        "custom_llm_provider": call.provider,
        "api_base": "https://api.openai.com/v1",
        "user": "",
        "metadata": json.dumps(metadata),
        "cache_hit": "False",
        "cache_key": "Cache OFF",
        "request_tags": "[]",
        "team_id": "",
        "organization_id": "",
        "end_user": "",
        "requester_ip_address": "",
        "messages": json.dumps([{"role": "user", "content": "SECRET"}]),
        "response": json.dumps({"content": "SECRET"}),
        "session_id": call.trace_id,
        "status": "success",
        "mcp_namespaced_tool_name": "",
        "agent_id": "",
        "proxy_server_request": "{}",
    }


def write_litellm_csv(calls: Iterable[Call], out: TextIO) -> int:
    writer = csv.DictWriter(out, fieldnames=LITELLM_COLUMNS)
    writer.writeheader()
    count = 0
    for call in calls:
        if call.kind == "model":
            writer.writerow(litellm_row(call))
            count += 1
    return count


def write_litellm_jsonl(calls: Iterable[Call], out: TextIO) -> int:
    count = 0
    for call in calls:
        if call.kind == "model":
            out.write(json.dumps(litellm_row(call), separators=(",", ":")) + "\n")
            count += 1
    return count


CSV_COLUMNS = (
    "trace_id", "span_id", "start_time", "kind", "provider", "model", "workflow", "step",
    "input_tokens", "output_tokens", "cache_read_tokens", "outcome",
)  # fmt: skip


def write_csv(calls: Iterable[Call], out: TextIO) -> int:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for call in calls:
        writer.writerow(
            (
                call.trace_id,
                call.span_id,
                _iso(call.start_ns),
                call.kind,
                call.provider,
                call.model,
                call.workflow or "",
                call.step or "",
                call.input_tokens,
                call.output_tokens,
                call.cache_read_tokens,
                "" if call.outcome is None else call.outcome,
            )
        )
        count += 1
    return count


@dataclass
class Written:
    calls: list[Call] = field(default_factory=list)


def write(fmt: str, calls: list[Call], path: Path) -> Path:
    """Write ``calls`` to ``path`` in ``fmt``: otel, otel-old, otlp, chat, responses,
    anthropic, litellm-csv, litellm-jsonl, csv."""
    with path.open("w", encoding="utf-8", newline="") as out:
        match fmt:
            case "otel":
                write_otel_spans(calls, out)
            case "otel-old":
                write_otel_spans(calls, out, old_names=True)
            case "otlp":
                write_otlp_export(calls, out)
            case "chat" | "responses" | "anthropic":
                write_responses(calls, out, fmt)
            case "litellm-csv":
                write_litellm_csv(calls, out)
            case "litellm-jsonl":
                write_litellm_jsonl(calls, out)
            case "csv":
                write_csv(calls, out)
            case _:
                raise ValueError(fmt)
    return path


# -- the bundled sample: examples/logs ----------------------------------------------------------

EXAMPLE_SUPPORT = WorkflowTruth(
    "support-reply",
    (
        StepTruth("classify", "gpt-4.1-nano", 380, 520, 3, 4),
        StepTruth(
            "answer",
            "gpt-4.1-mini",
            3300,
            8600,
            230,
            560,
            cache_hit=0.55,
            cached_share=0.4,
            turns=2,
            tool_calls=1,
            escalate=0.12,
            escalate_model="gpt-5.4",
        ),
    ),
    requests=40,
    success=0.88,
)
EXAMPLE_OTHERS = (
    WorkflowTruth(
        "ticket-summary",
        (StepTruth("summarize_ticket", "gpt-5.4-mini", 2100, 4300, 150, 260),),
        requests=4,
    ),
    WorkflowTruth(
        "escalation-draft",
        (StepTruth("escalate", "gpt-4.1-mini", 900, 1300, 300, 360),),
        requests=4,
    ),
    WorkflowTruth(
        "faq-search",
        (StepTruth("search", "gpt-4.1-nano", 600, 900, 40, 80),),
        requests=3,
        tagged=False,
    ),
)


def write_example(directory: Path) -> None:
    """``examples/logs``: four minutes of a support assistant's production traffic, as OTel
    spans (support-reply) and logged OpenAI responses (the other workflows), with two
    malformed lines."""
    directory.mkdir(parents=True, exist_ok=True)
    minutes = 4 / (24 * 60)
    spans = list(generate([EXAMPLE_SUPPORT], seed=11, days=minutes))
    with (directory / "otel-spans.jsonl").open("w", encoding="utf-8") as out:
        write_otel_spans(spans, out, content=False)
        out.write('{"traceId": "5b8efff798038103d269b633813fc60c", "attributes": [\n')
    responses = list(generate(EXAMPLE_OTHERS, seed=12, days=minutes))
    with (directory / "openai-responses.jsonl").open("w", encoding="utf-8") as out:
        write_responses(responses, out, "chat")
        broken = _envelope(responses[0], openai_chat(responses[0]))
        broken["response"]["usage"]["prompt_tokens"] = -12
        out.write(json.dumps(broken, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    import sys

    write_example(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("examples/logs"))
