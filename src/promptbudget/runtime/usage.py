"""Provider-reported usage, read into the ``CallTokens`` the cost formulas take.

- OpenAI chat completions: ``prompt_tokens`` (cached tokens included),
  ``prompt_tokens_details.cached_tokens`` (and ``cache_write_tokens`` from GPT-5.6),
  ``completion_tokens`` (reasoning included).
- OpenAI responses: ``input_tokens`` (cached included), ``input_tokens_details.cached_tokens``,
  ``output_tokens``.
- Anthropic messages: ``input_tokens`` *excludes* the cache: the call's input is
  ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens``; the 1-hour writes
  are ``cache_creation.ephemeral_1h_input_tokens``.
- LiteLLM's ``Usage`` is the chat shape, with Anthropic's ``cache_creation_input_tokens`` as an
  extra field (part of ``prompt_tokens``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promptbudget.runtime.messages import as_mapping
from promptbudget.simulation import CallTokens


def _int(data: Mapping[str, Any] | None, key: str) -> int:
    if data is None:
        return 0
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(value, 0)


def _child(data: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = data.get(key)
    return as_mapping(value) if value is not None else None


def read_usage(usage: Any) -> CallTokens:
    """The tokens of one call from a usage object or dict of any of the shapes above."""
    data = as_mapping(usage)
    if "prompt_tokens" in data or "completion_tokens" in data:  # chat completions, LiteLLM
        details = _child(data, "prompt_tokens_details")
        read = _int(details, "cached_tokens") or _int(data, "cache_read_input_tokens")
        written = _int(details, "cache_write_tokens") or _int(data, "cache_creation_input_tokens")
        return _tokens(_int(data, "prompt_tokens"), _int(data, "completion_tokens"), read, written)
    if "cache_creation_input_tokens" in data or "cache_read_input_tokens" in data:  # Anthropic
        read = _int(data, "cache_read_input_tokens")
        written = _int(data, "cache_creation_input_tokens")
        split = _child(data, "cache_creation")
        written_1h = min(_int(split, "ephemeral_1h_input_tokens"), written)
        return CallTokens(
            input_tokens=_int(data, "input_tokens") + read + written,
            output_tokens=_int(data, "output_tokens"),
            cache_read_tokens=read,
            cache_write_tokens=written - written_1h,
            cache_write_1h_tokens=written_1h,
        )
    details = _child(data, "input_tokens_details")  # responses
    return _tokens(
        _int(data, "input_tokens"),
        _int(data, "output_tokens"),
        _int(details, "cached_tokens"),
        _int(details, "cache_write_tokens"),
    )


def _tokens(prompt: int, output: int, read: int, written: int) -> CallTokens:
    """Cached tokens are a subset of the prompt; a provider that says otherwise is clamped."""
    read = min(read, prompt)
    written = min(written, prompt - read)
    return CallTokens(prompt, output, cache_read_tokens=read, cache_write_tokens=written)


def count_tool_calls(response: Any) -> int:
    """Tool calls the model asked for in ``response``: chat ``choices[].message.tool_calls``,
    responses ``output[]`` items of type ``function_call``, Anthropic ``tool_use`` blocks."""
    data = as_mapping(response)
    total = 0
    for choice in data.get("choices") or ():
        message = as_mapping(choice).get("message")
        if message is not None:
            total += len(as_mapping(message).get("tool_calls") or ())
    for item in data.get("output") or ():
        if as_mapping(item).get("type") == "function_call":
            total += 1
    content = data.get("content")
    if isinstance(content, list):
        total += sum(1 for block in content if as_mapping(block).get("type") == "tool_use")
    return total
