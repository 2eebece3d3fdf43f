"""Count a rendered prompt: text tokens, chat framing, and what each variable contributes.

``text_tokens`` is the sum of the message contents. Static text is counted segment by segment
(a variable boundary breaks BPE merges, as it does in the real request); a capped variable
counts its cap once per ``{{ var }}``, and once in all for the parts of a structured value
(``{% for m in history %}``). ``request_tokens`` adds the chat framing of the tokenizer family
(OpenAI: 3 per message, 1 per ``name``, 3 to prime the reply).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from promptbudget.templates.render import RenderedPrompt, Slot
from promptbudget.tokenizers import Tokenizer


@dataclass(frozen=True)
class MessageCount:
    role: str
    tokens: int  # content tokens
    framing_tokens: int  # per-message overhead, role included

    @property
    def total_tokens(self) -> int:
        return self.tokens + self.framing_tokens


@dataclass(frozen=True)
class VariableCount:
    name: str
    source: str  # "sample", "cap" or "none"
    origin: str | None  # where the value came from
    tokens: int  # tokens this variable adds to the prompt (caps as declared)
    max_tokens: int | None = None
    line: int | None = None  # file line of its first use


@dataclass(frozen=True)
class PromptCount:
    """Tokens of one rendered prompt under one tokenizer."""

    messages: tuple[MessageCount, ...]
    variables: tuple[VariableCount, ...]
    reply_tokens: int  # once per request
    exact: bool
    is_raw: bool = False  # the template could not be rendered; counted as raw text

    @property
    def text_tokens(self) -> int:
        return sum(m.tokens for m in self.messages)

    @property
    def request_tokens(self) -> int:
        return sum(m.total_tokens for m in self.messages) + (
            self.reply_tokens if self.messages else 0
        )

    @property
    def static_tokens(self) -> int:
        """Tokens that do not come from a capped variable."""
        return self.text_tokens - sum(v.tokens for v in self.variables if v.source == "cap")

    @property
    def last_user_tokens(self) -> int:
        """Content plus framing of the last user message (a later turn's user input)."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.total_tokens
        return 0


def count_prompt(rendered: RenderedPrompt, tokenizer: Tokenizer) -> PromptCount:
    """Count ``rendered`` with ``tokenizer``."""
    spec = tokenizer.spec
    exact = tokenizer.exact and rendered.is_exact
    message_counts: list[MessageCount] = []
    cap_tokens: dict[str, int] = {}
    parts_charged: set[str] = set()
    for message in rendered.messages:
        tokens = 0
        for part in message.parts:
            if isinstance(part, str):
                tokens += tokenizer.count(part)
            else:
                added = _slot_tokens(part, parts_charged)
                tokens += added
                cap_tokens[part.variable] = cap_tokens.get(part.variable, 0) + added
        framing = spec.tokens_per_message + tokenizer.count(message.role)
        message_counts.append(MessageCount(message.role, tokens, framing))

    variables = []
    for name in rendered.variables:
        value = rendered.values.get(name)
        line = rendered.variable_lines.get(name)
        if value is None:
            variables.append(VariableCount(name, "none", None, 0, line=line))
        elif value.is_cap:
            tokens = cap_tokens.get(name, 0)
            variables.append(
                VariableCount(name, "cap", value.origin, tokens, value.max_tokens, line=line)
            )
        else:
            tokens = tokenizer.count(_sample_text(value.sample))
            variables.append(VariableCount(name, "sample", value.origin, tokens, line=line))
    return PromptCount(
        messages=tuple(message_counts),
        variables=tuple(variables),
        reply_tokens=spec.tokens_per_reply,
        exact=exact,
        is_raw=rendered.is_raw,
    )


def _slot_tokens(slot: Slot, parts_charged: set[str]) -> int:
    if slot.whole:
        return slot.max_tokens
    if slot.variable in parts_charged:
        return 0
    parts_charged.add(slot.variable)
    return slot.max_tokens


def _sample_text(sample: Any) -> str:
    """A sample's text as a template would print it (for the per-variable breakdown)."""
    if isinstance(sample, str):
        return sample
    if isinstance(sample, list):
        return "\n".join(_sample_text(item) for item in sample)
    if isinstance(sample, dict):
        return "\n".join(_sample_text(v) for v in sample.values())
    return "" if sample is None else str(sample)


@dataclass(frozen=True)
class TemplateCount:
    """One template counted for one model: the ``count`` command's unit of output."""

    path: str
    format: str
    model: str | None
    tokenizer: str
    encoding: str
    exact: bool
    error_band: str
    prompt: PromptCount | None  # None: the file could not be read at all

    @property
    def text_tokens(self) -> int | None:
        return self.prompt.text_tokens if self.prompt is not None else None

    @property
    def request_tokens(self) -> int | None:
        return self.prompt.request_tokens if self.prompt is not None else None
