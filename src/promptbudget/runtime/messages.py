"""An outgoing request, as the application builds it, counted the way ``count`` counts a template.

The messages are turned into the ``RenderedPrompt`` a template would render to (one message per
chat message, its text as the only part) and counted by ``counting.count_prompt`` with the
model's tokenizer: chat framing, reply priming and tool definitions come from the same code as
``promptbudget count``, so run time and CI cannot disagree.

Three request shapes are read, as dicts or as the SDKs' objects:

- OpenAI chat completions: ``[{"role", "content", "name"?, "tool_calls"?}]``; ``content`` is
  text, a list of parts (``{"type": "text", "text"}``; images and audio are not counted and
  make the count inexact) or None.
- OpenAI responses: ``input`` as text or a list of items: messages (``input_text`` /
  ``output_text`` parts), ``function_call`` and ``function_call_output`` items; ``instructions``
  is a leading system message.
- Anthropic messages: ``system`` apart; content blocks ``text``, ``tool_use`` and
  ``tool_result``.

A message's ``name`` is counted by ``count_prompt`` as OpenAI's cookbook says (1 + the tokens of
the name), as for a template's named messages. Tool calls
and tool results inside messages are counted as the text of their name and arguments, an
approximation (the provider's own serialisation is not published), so the count is then
marked inexact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptbudget.tools import Tool, parse_tools

if TYPE_CHECKING:
    from promptbudget.counting import PromptCount
    from promptbudget.tokenizers import Tokenizer

# Roles whose message carries the result of a tool call: a call that ends with one continues
# the current turn instead of starting a new one.
TOOL_RESULT_ROLES = frozenset({"tool", "function"})


@dataclass(frozen=True)
class ChatMessage:
    """One message of an outgoing request, reduced to what is counted."""

    role: str
    text: str
    name: str | None = None
    is_exact: bool = True  # False: parts that are not text (images, tool calls) were left out
    is_tool_result: bool = False


@dataclass(frozen=True)
class RequestCount:
    """What one outgoing call sends, in tokens."""

    prompt: PromptCount
    is_exact: bool

    @property
    def input_tokens(self) -> int:
        return self.prompt.request_tokens


def as_mapping(value: Any) -> Mapping[str, Any]:
    """A dict, or an SDK object (pydantic ``model_dump``, or its attributes)."""
    if isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        dumped = dump(exclude_none=True)
        if isinstance(dumped, Mapping):
            return dumped
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, Mapping):
        return {k: v for k, v in attributes.items() if not k.startswith("_")}
    raise TypeError(f"a message must be a mapping with a role and content, not {value!r:.80}")


def _dumps(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _content_text(content: Any) -> tuple[str, bool]:
    """The text of a message's content, and whether nothing but text was in it."""
    if content is None:
        return "", True
    if isinstance(content, str):
        return content, True
    if isinstance(content, Mapping):
        content = [content]
    if not isinstance(content, Iterable):
        return str(content), False
    texts: list[str] = []
    exact = True
    for raw in content:
        part = as_mapping(raw) if not isinstance(raw, str) else {"type": "text", "text": raw}
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
        elif kind == "tool_use":  # Anthropic: the model asked for a tool
            texts.append(f"{part.get('name', '')}{_dumps(part.get('input', {}))}")
            exact = False
        elif kind == "tool_result":  # Anthropic: the application's answer
            text, _ = _content_text(part.get("content"))
            texts.append(text)
            exact = False
        else:  # images, audio, files: not counted offline
            exact = False
    return "".join(texts), exact


def _tool_calls_text(calls: Any) -> str:
    texts = []
    for raw in calls or ():
        call = as_mapping(raw)
        function = call.get("function")
        function = as_mapping(function) if function is not None else call
        texts.append(f"{function.get('name', '')}{_dumps(function.get('arguments', ''))}")
    return "".join(texts)


def _is_anthropic_tool_result(content: Any) -> bool:
    if isinstance(content, str) or not isinstance(content, Iterable):
        return False
    return any(
        not isinstance(block, str) and as_mapping(block).get("type") == "tool_result"
        for block in content
    )


def read_message(value: Any) -> ChatMessage:
    """One message or responses-API input item."""
    item = as_mapping(value)
    kind = item.get("type")
    if kind == "function_call":
        text = f"{item.get('name', '')}{_dumps(item.get('arguments', ''))}"
        return ChatMessage("assistant", text, is_exact=False)
    if kind == "function_call_output":
        return ChatMessage(
            "tool", _dumps(item.get("output", "")), is_exact=False, is_tool_result=True
        )
    role = item.get("role")
    if not isinstance(role, str) or not role:
        raise TypeError(f"a message needs a role (system, user, assistant, tool): {item!r:.80}")
    text, exact = _content_text(item.get("content"))
    if item.get("tool_calls"):
        text += _tool_calls_text(item["tool_calls"])
        exact = False
    name = item.get("name")
    return ChatMessage(
        role,
        text,
        name=name if isinstance(name, str) and name else None,
        is_exact=exact,
        is_tool_result=role in TOOL_RESULT_ROLES or _is_anthropic_tool_result(item.get("content")),
    )


def read_messages(messages: Any, *, system: Any = None) -> tuple[ChatMessage, ...]:
    """The messages of a request: a list of messages/items, or one text (a user message).

    ``system`` is Anthropic's ``system`` or the responses API's ``instructions``.
    """
    read: list[ChatMessage] = []
    if system is not None:
        text, exact = _content_text(system)
        read.append(ChatMessage("system", text, is_exact=exact))
    if messages is None:
        return tuple(read)
    if isinstance(messages, str):
        return (*read, ChatMessage("user", messages))
    return (*read, *(read_message(message) for message in messages))


def read_tools(tools: Any) -> tuple[Tool, ...]:
    """Tool definitions in OpenAI's chat or responses shape, or Anthropic's."""
    if not tools:
        return ()
    if isinstance(tools, Sequence) and tools and isinstance(tools[0], Tool):
        return tuple(tools)
    return parse_tools([dict(as_mapping(tool)) for tool in tools], "tools")


def count_request(
    messages: Sequence[ChatMessage], tokenizer: Tokenizer, tools: Sequence[Tool] = ()
) -> RequestCount:
    """Count ``messages`` exactly as ``promptbudget count`` counts the same chat template."""
    # Imported here: the template engine is only needed once a call is counted.
    from promptbudget.counting import count_prompt
    from promptbudget.templates.rendered import Message, RenderedPrompt

    rendered = RenderedPrompt(
        messages=tuple(Message(m.role, (m.text,) if m.text else (), m.name) for m in messages),
        variables=(),
    )
    prompt = count_prompt(rendered, tokenizer, tools)  # names included (1 + their tokens)
    exact = prompt.exact and all(m.is_exact for m in messages)
    return RequestCount(prompt=prompt, is_exact=exact)
