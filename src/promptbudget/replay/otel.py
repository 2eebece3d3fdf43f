"""OpenTelemetry GenAI spans: OTLP JSON (``resourceSpans/scopeSpans/spans``, typed attribute
values) and JSON lines of single spans (OTLP-shaped, or the SDK console exporter's flat form).

Attribute names follow the GenAI semantic conventions (opentelemetry.io/docs/specs/semconv/
gen-ai/gen-ai-spans/), with the older spellings still emitted by many instrumentations.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from promptbudget.replay import values
from promptbudget.replay.records import MalformedRecordError, Record

# current name first; then older names for the same value
INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHE_READ = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.input_tokens.cached",
)
CACHE_WRITE = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.input_tokens.cache_write",
)
REASONING = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.output_tokens.reasoning")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
# time to the first chunk of a streamed response, in seconds: the span attribute of semconv
# v1.41 (semantic-conventions PR #3607), then the name some instrumentations emit (Sentry)
TTFT_SECONDS = ("gen_ai.response.time_to_first_chunk", "gen_ai.response.time_to_first_token")
MODEL_CALLS = frozenset(
    {"chat", "text_completion", "generate_content", "responses", "completion", "create_response"}
)
TOOL_CALLS = frozenset({"execute_tool"})

# the convention an application sets (on any span of the request; workflow is inherited
# by the other spans of the trace)
WORKFLOW = "promptbudget.workflow"
STEP = "promptbudget.step"
PROMPT = "promptbudget.prompt"
OUTCOME = "promptbudget.outcome"
BATCH = "promptbudget.batch"


_SCALARS = ("stringValue", "intValue", "doubleValue", "boolValue")


def _typed(value: object) -> object:
    """An OTLP ``AnyValue`` ({"stringValue": ...} / intValue / doubleValue / boolValue) as a
    plain value; arrays and key-value lists are not read."""
    if type(value) is not dict:
        return value if not isinstance(value, Mapping) else None
    for key in _SCALARS:
        if key in value:
            return value[key]
    return None


def attributes(raw: object) -> dict[str, object]:
    """Span attributes, from OTLP's ``[{key, value: {...}}]`` or a plain mapping."""
    if type(raw) is list:
        found: dict[str, object] = {}
        for item in raw:
            if type(item) is dict:
                key = item.get("key")
                if type(key) is str:
                    found[key] = _typed(item.get("value"))
        return found
    if isinstance(raw, Mapping):
        return {str(k): v for k, v in raw.items() if not isinstance(v, (list, dict))}
    return {}


def _first(attrs: Mapping[str, object], names: tuple[str, ...]) -> object:
    for name in names:
        if name in attrs:
            return attrs[name]
    return None


def _id(value: object) -> str | None:
    shown = values.text(value)
    if shown and shown.startswith("0x"):
        shown = shown[2:]
    return shown.lower() if shown else None


def span_record(span: Mapping[str, Any], source: str) -> Record | None:
    """One span as a record, or ``None`` for spans that are neither a model call, a tool call
    nor a carrier of the promptbudget attributes."""
    attrs = attributes(span.get("attributes"))
    operation = values.text(attrs.get("gen_ai.operation.name"))
    has_usage = any(name in attrs for name in INPUT + OUTPUT)
    tagged = any(name.startswith("promptbudget.") for name in attrs)
    if operation in TOOL_CALLS:
        kind = "tool"
    elif has_usage or operation in MODEL_CALLS:
        kind = "model"
    elif tagged:
        kind = "context"
    else:
        return None
    context = values.mapping(span.get("context"))
    trace_id = _id(span.get("traceId") or span.get("trace_id") or context.get("trace_id"))
    span_id = _id(span.get("spanId") or span.get("span_id") or context.get("span_id"))
    if trace_id is None:
        raise MalformedRecordError("the span has no traceId")
    start = span.get("startTimeUnixNano")
    end = span.get("endTimeUnixNano")
    record = Record(
        source=source,
        kind=kind,  # type: ignore[arg-type]
        origin="otel",
        trace_id=trace_id,
        span_id=span_id,
        start_ns=(
            values.unix_ns(start, "startTimeUnixNano", unit="ns")
            if start is not None
            else values.unix_ns(span.get("start_time"), "start_time")
        ),
        end_ns=(
            values.unix_ns(end, "endTimeUnixNano", unit="ns")
            if end is not None
            else values.unix_ns(span.get("end_time"), "end_time")
        ),
        provider=values.text(_first(attrs, PROVIDER)),
        model=values.text(attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model")),
        operation=operation,
        workflow=values.text(attrs.get(WORKFLOW)),
        step=values.text(attrs.get(STEP)),
        prompt=values.text(attrs.get(PROMPT)),
        outcome=values.outcome(attrs.get(OUTCOME)) if OUTCOME in attrs else None,
        is_batch=values.outcome(attrs.get(BATCH)) if BATCH in attrs else None,
        attributes=attrs,  # read (as text) by the match rules only
    )
    status = values.mapping(span.get("status")).get("code")
    if kind != "context":
        # OTLP JSON writes the status code as 2 or "STATUS_CODE_ERROR"; GenAI spans of a failed
        # call carry error.type (semantic conventions: required when the operation failed)
        failed = status in (2, "2", "STATUS_CODE_ERROR", "ERROR") or "error.type" in attrs
        record.failed = 1 if failed else 0
    if kind == "model":
        if not has_usage and record.failed:
            return record  # a failed attempt: no usage, no cost; counted as a call that failed
        if not has_usage:
            raise MalformedRecordError(
                f"the {operation or 'model'} span has no gen_ai.usage.input_tokens or "
                "gen_ai.usage.output_tokens"
            )
        record.input_tokens = values.tokens(_first(attrs, INPUT), "gen_ai.usage.input_tokens")
        record.output_tokens = values.tokens(_first(attrs, OUTPUT), "gen_ai.usage.output_tokens")
        record.cache_read_tokens = values.tokens(_first(attrs, CACHE_READ), CACHE_READ[0])
        record.cache_write_tokens = values.tokens(_first(attrs, CACHE_WRITE), CACHE_WRITE[0])
        record.reasoning_tokens = values.tokens(_first(attrs, REASONING), REASONING[0])
        record.ttft_ms = values.duration_ms(_first(attrs, TTFT_SECONDS), TTFT_SECONDS[0])
        cached = record.cache_read_tokens + record.cache_write_tokens
        if cached > record.input_tokens:
            # an instrumentation that reports input the Anthropic way (cache excluded)
            record.input_tokens += cached
    return record


def export_spans(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The spans of an OTLP ``ExportTraceServiceRequest`` (``resourceSpans`` →
    ``scopeSpans`` (or the older ``instrumentationLibrarySpans``) → ``spans``)."""
    resource_spans = document.get("resourceSpans")
    if not isinstance(resource_spans, list):
        raise MalformedRecordError("resourceSpans is not a list")
    for resource in resource_spans:
        scopes = values.mapping(resource).get("scopeSpans")
        if scopes is None:
            scopes = values.mapping(resource).get("instrumentationLibrarySpans")
        for scope in scopes if isinstance(scopes, list) else ():
            spans = values.mapping(scope).get("spans")
            for span in spans if isinstance(spans, list) else ():
                if isinstance(span, Mapping):
                    yield span


def is_span(obj: Mapping[str, Any]) -> bool:
    return ("traceId" in obj or "trace_id" in obj or "context" in obj) and "attributes" in obj
