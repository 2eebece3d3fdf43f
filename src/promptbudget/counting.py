"""Count a rendered prompt: text tokens, chat framing, and what each variable contributes.

``text_tokens`` is the sum of the message contents. Static text is counted segment by segment
(a variable boundary breaks BPE merges, as it does in the real request); a capped variable
counts its cap once per ``{{ var }}``, and once in all for the parts of a structured value
(``{% for m in history %}``). ``request_tokens`` adds the chat framing of the tokenizer family
(OpenAI: 3 per message, 1 per ``name``, 3 to prime the reply).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from promptbudget.templates.rendered import Message, RenderedPrompt, Slot
from promptbudget.tokenizers import Tokenizer
from promptbudget.tokenizers.textclass import classify
from promptbudget.tools import Tool, count_tools


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
    uses: int = 0  # how many times a capped value is charged (each {{ var }}, parts once)
    is_function: bool = False  # a function the application provides, not an input


@dataclass(frozen=True)
class PromptCount:
    """Tokens of one rendered prompt under one tokenizer."""

    messages: tuple[MessageCount, ...]
    variables: tuple[VariableCount, ...]
    reply_tokens: int  # once per request
    exact: bool
    is_raw: bool = False  # the template could not be rendered; counted as raw text
    tool_tokens: int = 0  # tool definitions sent with every call (an approximation)

    @property
    def text_tokens(self) -> int:
        return sum(m.tokens for m in self.messages)

    @property
    def request_tokens(self) -> int:
        return (
            sum(m.total_tokens for m in self.messages)
            + (self.reply_tokens if self.messages else 0)
            + self.tool_tokens
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


def count_prompt(
    rendered: RenderedPrompt, tokenizer: Tokenizer, tools: Sequence[Tool] = ()
) -> PromptCount:
    """Count ``rendered`` with ``tokenizer``; ``tools`` are the definitions sent with it."""
    spec = tokenizer.spec
    exact = tokenizer.exact and rendered.is_exact
    message_counts: list[MessageCount] = []
    cap_tokens: dict[str, int] = {}
    cap_uses: dict[str, int] = {}
    parts_charged: set[str] = set()
    for message in rendered.messages:
        tokens = 0
        text_class = None if tokenizer.exact else classify(message.text)
        for part in message.parts:
            if isinstance(part, str):
                tokens += tokenizer.count(part, text_class)
            else:
                charged = _is_charged(part, parts_charged)
                added = part.max_tokens if charged else 0
                tokens += added
                cap_tokens[part.variable] = cap_tokens.get(part.variable, 0) + added
                cap_uses[part.variable] = cap_uses.get(part.variable, 0) + int(charged)
        framing = _framing(message, tokenizer)
        message_counts.append(MessageCount(message.role, tokens, framing))

    variables = []
    for name in rendered.variables:
        value = rendered.values.get(name)
        line = rendered.variable_lines.get(name)
        function = name in rendered.functions
        if value is None:
            variables.append(VariableCount(name, "none", None, 0, line=line, is_function=function))
        elif value.is_cap:
            variables.append(
                VariableCount(
                    name,
                    "cap",
                    value.origin,
                    cap_tokens.get(name, 0),
                    value.max_tokens,
                    line=line,
                    uses=cap_uses.get(name, 0),
                    is_function=function,
                )
            )
        else:
            tokens = tokenizer.count(_sample_text(value.sample))
            variables.append(
                VariableCount(name, "sample", value.origin, tokens, line=line, is_function=function)
            )
    return PromptCount(
        messages=tuple(message_counts),
        variables=tuple(variables),
        reply_tokens=spec.tokens_per_reply,
        exact=exact and not tools,  # tool tokens are an approximation everywhere
        is_raw=rendered.is_raw,
        tool_tokens=count_tools(tools, tokenizer),
    )


def _framing(message: Message, tokenizer: Tokenizer) -> int:
    """What a message costs besides its content: OpenAI's ``num_tokens_from_messages``
    rules (per message, its role, and for a ``name`` 1 more plus the name's tokens)."""
    spec = tokenizer.spec
    framing = spec.tokens_per_message + tokenizer.role_tokens(message.role)
    if message.name:
        framing += spec.tokens_per_name + tokenizer.count(message.name)
    return framing


def _is_charged(slot: Slot, parts_charged: set[str]) -> bool:
    """A whole value is charged every time; the parts of a structured value once in all."""
    if slot.whole:
        return True
    if slot.variable in parts_charged:
        return False
    parts_charged.add(slot.variable)
    return True


@dataclass(frozen=True)
class PromptStructure:
    """A prompt's static skeleton, from a render where every variable is a slot."""

    static_tokens: int  # tools, framing, reply priming and text outside variables
    prefix_tokens: int  # static tokens before the first variable: what a provider can cache
    uses: dict[str, int]  # how many times each variable is charged

    @property
    def static_after_prefix(self) -> int:
        """Static tokens that follow dynamic content (PB203: they could be cached if moved)."""
        return self.static_tokens - self.prefix_tokens


def structure_prompt(
    structural: RenderedPrompt, tokenizer: Tokenizer, tool_tokens: int = 0
) -> PromptStructure:
    """Static tokens and the cacheable prefix of ``structural`` (rendered with slots only).

    The prefix is everything before the first slot in provider order (tools, then system,
    then messages): whole messages with their framing, then the framing and static text of
    the message that holds the first slot. Reply priming comes last and is never cached.
    """
    spec = tokenizer.spec
    static = prefix = tool_tokens  # tools come first, and never change within a step
    open_prefix = True
    uses: dict[str, int] = {}
    parts_charged: set[str] = set()
    for message in structural.messages:
        framing = _framing(message, tokenizer)
        text_class = None if tokenizer.exact else classify(message.text)
        static += framing
        if open_prefix:
            prefix += framing
        for part in message.parts:
            if isinstance(part, str):
                tokens = tokenizer.count(part, text_class)
                static += tokens
                if open_prefix:
                    prefix += tokens
            else:
                open_prefix = False
                if _is_charged(part, parts_charged):
                    uses[part.variable] = uses.get(part.variable, 0) + 1
    if structural.messages:
        static += spec.tokens_per_reply
    return PromptStructure(static_tokens=static, prefix_tokens=prefix, uses=uses)


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
    variant: str | None = None  # one prompt of a multi-prompt file ("2 of 3")
    # prose, code, cjk or mixed: what the estimate's factor and band were chosen for (None
    # for an exact tokenizer)
    text_class: str | None = None

    @property
    def label(self) -> str:
        """The path, and which prompt of the file when it holds several."""
        return f"{self.path} [{self.variant}]" if self.variant else self.path

    @property
    def text_tokens(self) -> int | None:
        return self.prompt.text_tokens if self.prompt is not None else None

    @property
    def request_tokens(self) -> int | None:
        return self.prompt.request_tokens if self.prompt is not None else None


@dataclass(frozen=True)
class CountTotal:
    """``count``'s total for one model (or encoding): the templates counted for it, summed.
    Not exact when any of them is an estimate."""

    model: str | None
    encoding: str
    templates: int
    text_tokens: int
    request_tokens: int
    exact: bool


def count_totals(counts: Iterable[TemplateCount]) -> tuple[CountTotal, ...]:
    """One total per model, in the order the models first appear; a template that could not
    be counted adds nothing (the findings say why)."""
    totals: dict[tuple[str | None, str], CountTotal] = {}
    for count in counts:
        if count.prompt is None:
            continue
        key = (count.model, count.encoding)
        before = totals.get(key, CountTotal(count.model, count.encoding, 0, 0, 0, True))
        totals[key] = CountTotal(
            count.model,
            count.encoding,
            before.templates + 1,
            before.text_tokens + count.prompt.text_tokens,
            before.request_tokens + count.prompt.request_tokens,
            before.exact and count.exact,
        )
    return tuple(totals.values())
