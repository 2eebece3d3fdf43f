"""Tool (function) definitions and what they add to a request, offline.

No provider publishes how tool schemas are tokenized, so these are documented approximations:

- OpenAI (``o200k_base``, ``cl100k_base``): the OpenAI cookbook's ``num_tokens_for_tools``. Per
  function ``func_init`` (7; 10 on cl100k models) plus the tokens of ``name:description``; if it
  has properties ``prop_init`` (3) and per property ``prop_key`` (3) plus the tokens of
  ``name:type:description``; per enum ``enum_init`` (-3) and per item ``enum_item`` (3) plus its
  tokens; ``func_end`` (12) once. Checked by OpenAI against the API at 101 tokens (4o) and 105
  (3.5/4). The formula ignores nested properties, array items, optional-vs-required below the
  top level, nested descriptions, ``anyOf``/``oneOf`` and defaults; what those add is taken
  from the tools written as OpenAI's models read them (``tool_text``: the harmony format's
  TypeScript-like namespace): the tokens of that text minus the tokens of the same tools cut
  down to what the formula models. A flat schema adds nothing, so the cookbook's example
  stays exact; on nested schemas the band is measured in ``tests/unit/test_tool_text.py``.
- Anthropic: the tool definitions as the JSON Claude receives, counted with the Claude
  estimate, plus the tool-use system prompt Anthropic adds (346 tokens for ``tool_choice``
  auto on current models; 159 to 530 across Claude 3 models).
- Everything else (Gemini, open models): the JSON of the definitions, counted with the model's
  estimate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from promptbudget.tokenizers import Tokenizer

ANTHROPIC_TOOL_SYSTEM_TOKENS = 346


class ToolError(ValueError):
    """A tool definition that is not one: the message says what would be valid."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)  # a JSON Schema object
    # A tool the provider runs (Prompty/AgentSchema ``kind: file_search``, ``web_search``,
    # ``code_interpreter``, ``mcp``...): what it adds to a request is not published, so it
    # is not counted; the kind is named instead.
    hosted: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The definition as a provider receives it (Anthropic's shape)."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": dict(self.parameters) or {"type": "object", "properties": {}},
        }


def parse_tool(value: object, where: str) -> Tool:
    """A tool from OpenAI's ``{type: function, function: {...}}``, the flat ``{name,
    description, parameters}``, Anthropic's ``input_schema`` or Prompty's list of parameters."""
    if not isinstance(value, Mapping):
        raise ToolError(f"{where} must be a mapping with a name, a description and parameters")
    spec: Mapping[str, Any] = value
    if isinstance(value.get("function"), Mapping):
        spec = value["function"]
    name = spec.get("name", spec.get("id"))  # Prompty v2 wrote ``id``
    kind = value.get("kind", value.get("type"))
    if (
        isinstance(kind, str)
        and kind != "function"
        and not any(key in spec for key in ("parameters", "input_schema", "function"))
    ):
        label = name if isinstance(name, str) and name else kind
        return Tool(label, str(spec.get("description") or ""), hosted=kind)
    if not isinstance(name, str) or not name:
        raise ToolError(f"{where} needs a name")
    description = spec.get("description") or ""
    if not isinstance(description, str):
        raise ToolError(f"{where}.description must be text")
    parameters = spec.get("parameters", spec.get("input_schema", {}))
    if isinstance(parameters, list):  # Prompty: [{name, kind/type, description}]
        parameters = {
            "type": "object",
            "properties": {
                str(p.get("name")): {
                    "type": p.get("type", p.get("kind", "string")),
                    **({"description": p["description"]} if p.get("description") else {}),
                }
                for p in parameters
                if isinstance(p, Mapping) and p.get("name")
            },
        }
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, Mapping):
        raise ToolError(f"{where}.parameters must be a JSON Schema object")
    return Tool(name, description, parameters)


def parse_tools(values: object, where: str) -> tuple[Tool, ...]:
    if values is None:
        return ()
    if not isinstance(values, list):
        raise ToolError(f"{where} must be a list of tool definitions")
    return tuple(parse_tool(value, f"{where}[{index}]") for index, value in enumerate(values))


def _openai_constants(encoding: str) -> tuple[int, int, int, int, int, int]:
    """(func_init, prop_init, prop_key, enum_init, enum_item, func_end)."""
    func_init = 10 if encoding == "cl100k_base" else 7
    return func_init, 3, 3, -3, 3, 12


def _strip_dot(text: str) -> str:
    return text[:-1] if text.endswith(".") else text


def count_tools(tools: Sequence[Tool], tokenizer: Tokenizer) -> int:
    """Tokens the tool definitions add to every call (see the module docstring)."""
    tools = [tool for tool in tools if tool.hosted is None]
    if not tools:
        return 0
    if tokenizer.exact and tokenizer.spec.encoding in ("o200k_base", "cl100k_base"):
        return _openai_tool_tokens(tools, tokenizer)
    text = json.dumps([tool.as_json() for tool in tools], ensure_ascii=False)
    tokens = tokenizer.count(text)
    if tokenizer.name.startswith("claude"):
        tokens += ANTHROPIC_TOOL_SYSTEM_TOKENS
    return tokens


def _openai_tool_tokens(tools: Sequence[Tool], tokenizer: Tokenizer) -> int:
    return _cookbook_formula(tools, tokenizer) + _beyond_formula(tools, tokenizer)


def _beyond_formula(tools: Sequence[Tool], tokenizer: Tokenizer) -> int:
    """Tokens of what the cookbook formula does not model (nested schemas, defaults...)."""
    from promptbudget.tool_text import flat_parameters, tools_text

    full = [(t.name, t.description, t.parameters) for t in tools]
    flat = [(t.name, t.description, flat_parameters(t.parameters)) for t in tools]
    if full == flat:
        return 0
    return tokenizer.count(tools_text(full)) - tokenizer.count(tools_text(flat))


def _cookbook_formula(tools: Sequence[Tool], tokenizer: Tokenizer) -> int:
    func_init, prop_init, prop_key, enum_init, enum_item, func_end = _openai_constants(
        tokenizer.spec.encoding
    )
    total = 0
    for tool in tools:
        total += func_init
        total += tokenizer.count(f"{tool.name}:{_strip_dot(tool.description)}")
        properties = tool.parameters.get("properties")
        if isinstance(properties, Mapping) and properties:
            total += prop_init
            for key, prop in properties.items():
                total += prop_key
                prop = prop if isinstance(prop, Mapping) else {}
                kind = prop.get("type", "")
                if isinstance(kind, list):
                    kind = "|".join(str(k) for k in kind)
                enum = prop.get("enum")
                if isinstance(enum, list):
                    total += enum_init
                    for item in enum:
                        total += enum_item + tokenizer.count(str(item))
                description = _strip_dot(str(prop.get("description", "")))
                total += tokenizer.count(f"{key}:{kind}:{description}")
    return total + func_end
