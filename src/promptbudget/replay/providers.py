"""Provider responses logged as JSON lines, and LiteLLM proxy spend-log rows.

* OpenAI Chat Completions (``object: chat.completion``): ``usage.prompt_tokens`` (cached
  included), ``usage.prompt_tokens_details.cached_tokens``, ``usage.completion_tokens``
  (reasoning included), ``usage.completion_tokens_details.reasoning_tokens``.
* OpenAI Responses (``object: response``): ``usage.input_tokens``,
  ``usage.input_tokens_details.cached_tokens``, ``usage.output_tokens``,
  ``usage.output_tokens_details.reasoning_tokens``.
* OpenAI Batch output lines: ``{"custom_id", "response": {"status_code", "body": ...}}``.
* Anthropic Messages (``type: message``): ``usage.input_tokens`` (cache *excluded*),
  ``usage.cache_creation_input_tokens``, ``usage.cache_read_input_tokens``,
  ``usage.output_tokens``.
* LiteLLM ``LiteLLM_SpendLogs`` rows (schema.prisma in BerriAI/litellm): ``request_id``,
  ``call_type``, ``spend``, ``prompt_tokens``, ``completion_tokens``, ``startTime``,
  ``endTime``, ``model``, ``custom_llm_provider``, ``session_id``, ``metadata`` (JSON: its
  ``additional_usage_values`` holds the cache counts, ``spend_logs_metadata`` the caller's
  key-value pairs), ``request_tags``.

A logged response may be wrapped in an envelope the application writes:
``{"timestamp", "trace_id", "request_id", "metadata": {...}, "response": {...}}``. Only usage,
ids, model names, times and metadata are read; message contents never are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from promptbudget.replay import otel, values
from promptbudget.replay.records import MalformedRecordError, Record


def is_litellm_row(obj: Mapping[str, Any]) -> bool:
    return "request_id" in obj and ("call_type" in obj or "spend" in obj)


def is_response(obj: Mapping[str, Any]) -> bool:
    return "usage" in obj or isinstance(obj.get("response"), Mapping)


def _tagged(record: Record, metadata: Mapping[str, Any]) -> None:
    """The promptbudget.* keys (also without the prefix) from a metadata mapping."""

    def pick(name: str) -> object:
        return metadata.get(f"promptbudget.{name}", metadata.get(f"promptbudget_{name}"))

    record.workflow = values.text(pick("workflow")) or record.workflow
    record.step = values.text(pick("step")) or record.step
    record.prompt = values.text(pick("prompt")) or record.prompt
    record.request_id = values.text(pick("request_id")) or record.request_id
    if pick("outcome") is not None:
        record.outcome = values.outcome(pick("outcome"))
    scalars = {k: str(v) for k, v in metadata.items() if isinstance(v, (str, int, float, bool))}
    record.attributes = {**(record.attributes or {}), **scalars}


def response_record(obj: Mapping[str, Any], source: str) -> Record:
    """A logged OpenAI or Anthropic response (possibly in an envelope or a batch line)."""
    envelope: Mapping[str, Any] = {}
    response: Mapping[str, Any] = obj
    is_batch = None
    inner = obj.get("response")
    if isinstance(inner, Mapping) and "usage" not in obj:
        envelope = obj
        if "body" in inner and "custom_id" in obj:  # an OpenAI Batch API output line
            is_batch = 1
            body = inner.get("body")
            if not isinstance(body, Mapping):
                raise MalformedRecordError("the batch line's response.body is not an object")
            response = body
        else:
            response = inner
    usage = response.get("usage")
    if not isinstance(usage, Mapping):
        raise MalformedRecordError("the response has no usage object")
    record = Record(source=source, is_batch=is_batch)
    record.model = values.text(response.get("model"))
    kind = response.get("object") or response.get("type")
    if "prompt_tokens" in usage:  # Chat Completions
        record.provider = "openai"
        record.input_tokens = values.tokens(usage.get("prompt_tokens"), "usage.prompt_tokens")
        record.output_tokens = values.tokens(
            usage.get("completion_tokens"), "usage.completion_tokens"
        )
        details = values.mapping(usage.get("prompt_tokens_details"))
        record.cache_read_tokens = values.tokens(
            details.get("cached_tokens"), "usage.prompt_tokens_details.cached_tokens"
        )
        record.cache_write_tokens = values.tokens(
            details.get("cache_write_tokens"), "usage.prompt_tokens_details.cache_write_tokens"
        )
        record.reasoning_tokens = values.tokens(
            values.mapping(usage.get("completion_tokens_details")).get("reasoning_tokens"),
            "usage.completion_tokens_details.reasoning_tokens",
        )
        choices = response.get("choices")
        first = values.mapping(choices[0]) if isinstance(choices, list) and choices else {}
        calls = values.mapping(first.get("message")).get("tool_calls")
        record.tool_calls = len(calls) if isinstance(calls, list) else 0
        record.start_ns = values.unix_ns(response.get("created"), "created", unit="s")
    elif kind == "message" or "cache_read_input_tokens" in usage or response.get("role"):
        record.provider = "anthropic"  # input_tokens excludes the cached tokens
        uncached = values.tokens(usage.get("input_tokens"), "usage.input_tokens")
        record.cache_read_tokens = values.tokens(
            usage.get("cache_read_input_tokens"), "usage.cache_read_input_tokens"
        )
        record.cache_write_tokens = values.tokens(
            usage.get("cache_creation_input_tokens"), "usage.cache_creation_input_tokens"
        )
        record.input_tokens = uncached + record.cache_read_tokens + record.cache_write_tokens
        record.output_tokens = values.tokens(usage.get("output_tokens"), "usage.output_tokens")
        content = response.get("content")
        record.tool_calls = sum(
            1
            for block in (content if isinstance(content, list) else ())
            if isinstance(block, Mapping) and block.get("type") == "tool_use"
        )
    elif "input_tokens" in usage:  # Responses
        record.provider = "openai"
        record.input_tokens = values.tokens(usage.get("input_tokens"), "usage.input_tokens")
        record.output_tokens = values.tokens(usage.get("output_tokens"), "usage.output_tokens")
        record.cache_read_tokens = values.tokens(
            values.mapping(usage.get("input_tokens_details")).get("cached_tokens"),
            "usage.input_tokens_details.cached_tokens",
        )
        record.reasoning_tokens = values.tokens(
            values.mapping(usage.get("output_tokens_details")).get("reasoning_tokens"),
            "usage.output_tokens_details.reasoning_tokens",
        )
        output = response.get("output")
        record.tool_calls = sum(
            1
            for item in (output if isinstance(output, list) else ())
            if isinstance(item, Mapping) and item.get("type") == "function_call"
        )
        record.start_ns = values.unix_ns(response.get("created_at"), "created_at", unit="s")
    else:
        raise MalformedRecordError(
            "usage has neither prompt_tokens (OpenAI Chat Completions) nor input_tokens "
            "(OpenAI Responses, Anthropic Messages)"
        )
    if record.cache_read_tokens + record.cache_write_tokens > record.input_tokens:
        raise MalformedRecordError("cached tokens exceed the prompt tokens they are part of")
    record.origin = record.provider
    _tagged(record, values.mapping(response.get("metadata")))
    if envelope:
        _tagged(record, values.mapping(envelope.get("metadata")))
        for key in ("timestamp", "start_time", "created"):
            if envelope.get(key) is not None:
                record.start_ns = values.unix_ns(envelope.get(key), key)
                break
        if envelope.get("end_time") is not None:
            record.end_ns = values.unix_ns(envelope.get("end_time"), "end_time")
        record.trace_id = values.text(envelope.get("trace_id")) or record.trace_id
        record.request_id = values.text(envelope.get("request_id")) or record.request_id
        if is_batch:
            record.span_id = values.text(envelope.get("custom_id"))
    record.span_id = record.span_id or values.text(response.get("id"))
    return record


def _json_field(value: object, field: str) -> Any:
    """LiteLLM exports JSON columns as JSON text (CSV, the spend-logs API) or as objects."""
    if isinstance(value, str) and value.strip():
        try:
            return json.loads(value)
        except ValueError:
            raise MalformedRecordError(f"{field} is not valid JSON") from None
    return value


def litellm_record(row: Mapping[str, Any], source: str) -> Record:
    """A ``LiteLLM_SpendLogs`` row (JSON object, or a CSV row with the same column names)."""
    metadata = values.mapping(_json_field(row.get("metadata"), "metadata"))
    usage = values.mapping(metadata.get("additional_usage_values"))
    record = Record(source=source, origin="litellm")
    record.span_id = values.text(row.get("request_id"))
    record.model = values.text(row.get("model")) or values.text(row.get("model_group"))
    record.provider = values.text(row.get("custom_llm_provider"))
    record.input_tokens = values.tokens(row.get("prompt_tokens"), "prompt_tokens")
    record.output_tokens = values.tokens(row.get("completion_tokens"), "completion_tokens")
    record.cache_read_tokens = values.tokens(
        usage.get("cache_read_input_tokens")
        or values.mapping(usage.get("prompt_tokens_details")).get("cached_tokens"),
        "metadata.additional_usage_values.cache_read_input_tokens",
    )
    record.cache_write_tokens = values.tokens(
        usage.get("cache_creation_input_tokens"),
        "metadata.additional_usage_values.cache_creation_input_tokens",
    )
    record.reasoning_tokens = values.tokens(
        values.mapping(usage.get("completion_tokens_details")).get("reasoning_tokens"),
        "metadata.additional_usage_values.completion_tokens_details.reasoning_tokens",
    )
    if record.cache_read_tokens + record.cache_write_tokens > record.input_tokens:
        record.input_tokens += record.cache_read_tokens + record.cache_write_tokens
    record.start_ns = values.unix_ns(row.get("startTime"), "startTime")
    record.end_ns = values.unix_ns(row.get("endTime"), "endTime")
    first = values.unix_ns(row.get("completionStartTime"), "completionStartTime")
    # a non-streamed call's completionStartTime is its endTime: no time to first token
    start, end = record.start_ns, record.end_ns
    if first is not None and start is not None and end is not None and start <= first < end:
        record.ttft_ms = (first - start) / 1e6
    record.request_id = values.text(row.get("session_id"))
    _tagged(record, values.mapping(metadata.get("spend_logs_metadata")))
    tags = _json_field(row.get("request_tags"), "request_tags")
    for tag in tags if isinstance(tags, list) else ():
        if isinstance(tag, str) and "=" in tag and tag.startswith("promptbudget."):
            key, _, value = tag.partition("=")
            _tagged(record, {key: value})
    record.trace_id = record.request_id
    call_type = values.text(row.get("call_type")) or ""
    if "embedding" in call_type:
        record.kind = "context"
    return record


def csv_record(row: Mapping[str, Any], source: str, columns: Mapping[str, str]) -> Record:
    """A row of a CSV or Parquet file whose columns are the documented names (see README),
    or renamed to them by ``replay.columns`` in budgets.yaml."""

    def get(name: str) -> Any:
        return row.get(columns.get(name, name))

    kind = values.text(get("kind")) or "model"
    if kind not in {"model", "tool", "context"}:
        raise MalformedRecordError(f"kind is {kind!r}; expected model, tool or context")
    record = Record(source=source, kind=kind)  # type: ignore[arg-type]
    record.trace_id = values.text(get("trace_id"))
    record.span_id = values.text(get("span_id"))
    record.request_id = values.text(get("request_id"))
    record.start_ns = values.unix_ns(get("start_time"), columns.get("start_time", "start_time"))
    record.end_ns = values.unix_ns(get("end_time"), columns.get("end_time", "end_time"))
    record.provider = values.text(get("provider"))
    record.model = values.text(get("model"))
    for field in (
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "tool_calls",
    ):
        setattr(record, field, values.tokens(get(field), columns.get(field, field)))
    if get("failed") not in (None, ""):
        record.failed = values.outcome(get("failed"))
    if get("ttft_ms") not in (None, ""):
        name = columns.get("ttft_ms", "ttft_ms")
        record.ttft_ms = values.duration_ms(get("ttft_ms"), name, unit="ms")
    no_usage = get("input_tokens") in (None, "") and get("output_tokens") in (None, "")
    if kind == "model" and no_usage and not record.failed:
        raise MalformedRecordError("the row has neither input_tokens nor output_tokens")
    if record.cache_read_tokens + record.cache_write_tokens > record.input_tokens:
        raise MalformedRecordError("cached tokens exceed the input tokens they are part of")
    record.workflow = values.text(get("workflow"))
    record.step = values.text(get("step"))
    record.prompt = values.text(get("prompt"))
    if get("outcome") not in (None, ""):
        record.outcome = values.outcome(get("outcome"))
    if get("is_batch") not in (None, ""):
        record.is_batch = values.outcome(get("is_batch"))
    record.attributes = {str(k): str(v) for k, v in row.items() if v not in (None, "")}
    return record


def json_record(obj: Any, source: str) -> list[Record]:
    """Whatever one JSON value in a log is: an OTLP export (many spans), one span, a logged
    response, or a LiteLLM spend-log row."""
    if not isinstance(obj, Mapping):
        raise MalformedRecordError(f"expected a JSON object, found {type(obj).__name__}")
    if "resourceSpans" in obj:
        found = []
        for span in otel.export_spans(obj):
            record = otel.span_record(span, source)
            if record is not None:
                found.append(record)
        return found
    if otel.is_span(obj):
        record = otel.span_record(obj, source)
        return [record] if record is not None else []
    if is_litellm_row(obj):
        return [litellm_record(obj, source)]
    if is_response(obj):
        return [response_record(obj, source)]
    raise MalformedRecordError(
        "not a usage record: expected an OTLP export (resourceSpans), a span (traceId, "
        "attributes), a response with usage, or a LiteLLM spend-log row (request_id, spend)"
    )
