"""Tools as OpenAI's models read them, checked against an independent renderer.

``harmony_text`` below is written for this test from OpenAI's published description of the
format (github.com/openai/harmony ``docs/format.md`` and the gpt-oss cookbook: a ``#
Tools`` section, ``## functions``, ``namespace functions {``, one ``// description`` and
``type name = (_: {...}) => any;`` per function, properties as ``name?: type,`` with
``//`` comments, ``} // namespace functions``), not from promptbudget's code. On generated
nested schemas promptbudget's count must stay within the band the README states of the
tokens of that text.
"""

from __future__ import annotations

import json
import random
import statistics
from typing import Any

import pytest

from promptbudget.tokenizers import get_tokenizer
from promptbudget.tool_text import tools_text
from promptbudget.tools import Tool, count_tools

# The band promptbudget's tool count keeps against the rendered text (README, "Tools").
BAND_LOW, BAND_HIGH = -0.05, 0.20


def ts_type(schema: dict[str, Any], pad: str) -> str:
    """The TypeScript-like type of one schema (the independent reference)."""
    union = schema.get("oneOf", schema.get("anyOf"))
    if isinstance(union, list):
        rows = []
        for option in union:
            rendered = ts_type(option, pad + "   ")
            if option.get("nullable") and "null" not in rendered:
                rendered = rendered + " | null"
            comments = [option["description"]] if "description" in option else []
            if "default" in option:
                comments.append(default_note(option))
            rows.append(pad + " | " + rendered + (" // " + " ".join(comments) if comments else ""))
        return "\n" + "\n".join(rows)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join("number" if k == "integer" else k for k in kind)
    if kind == "string" and schema.get("enum"):
        return " | ".join(json.dumps(v) for v in schema["enum"])
    simple = {"string": "string", "number": "number", "integer": "number", "boolean": "boolean"}
    if kind in simple:
        return simple[kind]
    if kind == "array":
        return ts_type(schema["items"], pad) + "[]" if "items" in schema else "Array<any>"
    if kind != "object":
        return "any"
    lines = []
    if "description" in schema:
        lines.append(f"{pad}// {schema['description']}\n")
    lines.append("{\n")
    needed = set(schema.get("required", []))
    for key, prop in schema.get("properties", {}).items():
        optional = "" if key in needed else "?"
        union = prop.get("oneOf", prop.get("anyOf"))
        if union is not None:
            own = prop.get("description")
            same_as_first = own is not None and union[0].get("description") == own
            if own is not None and not same_as_first:
                lines.append(f"{pad}// {own}\n")
            if "default" in prop:
                lines.append(f"{pad}// {default_note(prop)}\n")
            lines.append(f"{pad}{key}{optional}:\n")
            for number, option in enumerate(union):
                rendered = ts_type(option, pad + "   ")
                notes = []
                first_hidden = number == 0 and own is not None and not same_as_first
                if "description" in option and not first_hidden and option["description"] != own:
                    notes.append(option["description"])
                if "default" in option:
                    notes.append(default_note(option))
                tail = " // " + " ".join(notes) if notes else ""
                lines.append(f"{pad} | {rendered}{tail}\n")
            lines.append(f"{pad},\n")
            continue
        if "description" in prop:
            lines.append(f"{pad}// {prop['description']}\n")
        row = f"{pad}{key}{optional}: {ts_type(prop, pad + '    ')},"
        if "default" in prop:
            row += " // " + default_note(prop)
        lines.append(row + "\n")
    lines.append(pad + "}")
    return "".join(lines)


def default_note(schema: dict[str, Any]) -> str:
    value = schema["default"]
    if isinstance(value, str):
        return f"default: {value}" if schema.get("enum") else f'default: "{value}"'
    return "default: " + json.dumps(value, separators=(",", ":"))


def harmony_text(functions: list[dict[str, Any]]) -> str:
    out = "# Tools\n\n## functions\n\nnamespace functions {\n"
    for function in functions:
        for line in function["description"].splitlines():
            out += "\n// " + line
        params = function.get("parameters")
        signature = f"(_: {ts_type(params, '')})" if params else "()"
        out += f"\ntype {function['name']} = {signature} => any;\n"
    return out + "\n} // namespace functions"


# -- generated nested schemas ---------------------------------------------------------------

WORDS = [
    "the",
    "city",
    "state",
    "order",
    "id",
    "number",
    "of",
    "items",
    "to",
    "return",
    "customer",
    "name",
    "date",
    "unit",
]


def phrase(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))).capitalize()


def schema(rng: random.Random, depth: int) -> dict[str, Any]:
    kinds = ["string", "number", "integer", "boolean", "enum"]
    if depth < 3:
        kinds += ["object", "array", "object", "anyOf"]
    kind = rng.choice(kinds)
    node: dict[str, Any]
    if kind == "enum":
        node = {"type": "string", "enum": rng.sample(WORDS, rng.randint(2, 4))}
    elif kind == "object":
        props = {
            f"{rng.choice(WORDS)}_{i}": schema(rng, depth + 1) for i in range(rng.randint(1, 4))
        }
        node = {"type": "object", "properties": props}
        node["required"] = [k for k in props if rng.random() < 0.5]
    elif kind == "array":
        node = {"type": "array", "items": schema(rng, depth + 1)}
    elif kind == "anyOf":
        node = {"anyOf": [schema(rng, depth + 1) for _ in range(2)]}
    else:
        node = {"type": kind}
    if rng.random() < 0.6:
        node["description"] = phrase(rng)
    if rng.random() < 0.2 and kind in ("string", "number", "integer", "boolean", "enum"):
        node["default"] = {
            "string": "x",
            "number": 1.5,
            "integer": 3,
            "boolean": True,
            "enum": node.get("enum", ["x"])[0],
        }[kind]
    return node


def tool_set(rng: random.Random) -> list[dict[str, Any]]:
    tools = []
    for index in range(rng.randint(1, 3)):
        params = schema(rng, 0)
        if params.get("type") != "object":
            params = {"type": "object", "properties": {"value": params}, "required": ["value"]}
        tools.append({"name": f"tool_{index}", "description": phrase(rng), "parameters": params})
    return tools


def as_tools(functions: list[dict[str, Any]]) -> list[Tool]:
    return [Tool(f["name"], f["description"], f["parameters"]) for f in functions]


def test_the_text_is_openais_format_on_generated_schemas() -> None:
    rng = random.Random(7)
    for _ in range(150):
        functions = tool_set(rng)
        triples = [(f["name"], f["description"], f["parameters"]) for f in functions]
        assert tools_text(triples) == harmony_text(functions), json.dumps(functions)


def test_the_gpt_oss_cookbook_example() -> None:
    functions = [
        {"name": "get_location", "description": "Gets the location of the user.", "parameters": {}},
        {
            "name": "get_current_weather",
            "description": "Gets the current weather in the provided location.",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA",
                    },
                    "format": {
                        "type": "string",
                        "enum": ["celsius", "fahrenheit"],
                        "default": "celsius",
                    },
                },
                "required": ["location"],
            },
        },
    ]
    expected = (
        "# Tools\n\n## functions\n\nnamespace functions {\n\n"
        "// Gets the location of the user.\ntype get_location = () => any;\n\n"
        "// Gets the current weather in the provided location.\n"
        "type get_current_weather = (_: {\n"
        "// The city and state, e.g. San Francisco, CA\nlocation: string,\n"
        'format?: "celsius" | "fahrenheit", // default: celsius\n'
        "}) => any;\n\n} // namespace functions"
    )
    triples = [(f["name"], f["description"], f["parameters"]) for f in functions]
    assert harmony_text(functions) == expected
    assert tools_text(triples) == expected


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
def test_nested_schemas_are_counted_within_the_band(encoding: str) -> None:
    tokenizer = get_tokenizer(encoding)
    rng = random.Random(2026)
    errors = []
    for _ in range(200):
        functions = tool_set(rng)
        reference = tokenizer.count(harmony_text(functions))
        counted = count_tools(as_tools(functions), tokenizer)
        errors.append((counted - reference) / reference)
    assert min(errors) >= BAND_LOW and max(errors) <= BAND_HIGH, (min(errors), max(errors))
    assert abs(statistics.median(errors)) < 0.1
