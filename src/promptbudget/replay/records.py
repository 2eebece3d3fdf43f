"""One normalized record per model call, tool call or request-level annotation.

Every input format is read into these columns (and nothing else: prompt and completion
contents never leave the reader). ``input_tokens`` always *includes* cached tokens, as
OpenAI's ``prompt_tokens`` and the OTel GenAI ``gen_ai.usage.input_tokens`` do; Anthropic's
usage (which excludes them) is converted when read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["model", "tool", "context"]

# The table the aggregation query reads, in this order. Times are Unix nanoseconds (UTC).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("source", "VARCHAR"),  # file:line, for examples and errors
    ("trace_id", "VARCHAR"),
    ("span_id", "VARCHAR"),
    ("request_id", "VARCHAR"),  # what one workflow request is: the trace, else the call
    ("start_ns", "BIGINT"),
    ("end_ns", "BIGINT"),
    ("kind", "VARCHAR"),  # model | tool | context
    ("provider", "VARCHAR"),
    ("model", "VARCHAR"),
    ("workflow", "VARCHAR"),
    ("step", "VARCHAR"),
    ("input_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("cache_read_tokens", "BIGINT"),
    ("cache_write_tokens", "BIGINT"),
    ("reasoning_tokens", "BIGINT"),
    ("tool_calls", "BIGINT"),  # tool calls a model response asked for (provider logs)
    ("outcome", "INTEGER"),  # 1 success, 0 failure, NULL not recorded
    ("is_batch", "INTEGER"),  # 1 batch API, 0 online, NULL not recorded
    ("ttft_ms", "DOUBLE"),  # time to the first output token or chunk, when the log says
    ("failed", "INTEGER"),  # 1 the call ended in an error (it was retried or the request failed)
)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)


@dataclass
class Record:
    """A call as read from a log, before it is mapped to a workflow and step."""

    source: str
    kind: Kind = "model"
    origin: str = "csv"  # the reader: otel, openai, anthropic, litellm, csv
    trace_id: str | None = None
    span_id: str | None = None
    request_id: str | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    provider: str | None = None
    model: str | None = None
    operation: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    tool_calls: int = 0
    outcome: int | None = None
    is_batch: int | None = None
    ttft_ms: float | None = None  # time to first token (chunk), milliseconds
    failed: int | None = None  # 1 the call ended in an error, 0 it did not, None not recorded
    workflow: str | None = None  # as the app tagged it
    step: str | None = None
    prompt: str | None = None  # a prompt name or path, for mapping
    attributes: dict[str, object] | None = None  # other attributes, for match rules

    def row(self, workflow: str | None, step: str | None) -> tuple[object, ...]:
        return (
            self.source,
            self.trace_id,
            self.span_id,
            self.request_id or self.trace_id or self.span_id or self.source,
            self.start_ns,
            self.end_ns,
            self.kind,
            self.provider,
            self.model,
            workflow,
            step,
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.reasoning_tokens,
            self.tool_calls,
            self.outcome,
            self.is_batch,
            self.ttft_ms,
            self.failed,
        )


class MalformedRecordError(ValueError):
    """A record that cannot be read: counted and shown with its file:line, never fatal."""
