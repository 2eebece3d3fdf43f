"""Tool definitions: counted with the OpenAI cookbook's approximation (checked against the
numbers the cookbook checked against the API), shown as their own component, from the
manifest or a template's front matter."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import Run
from promptbudget.tokenizers import get_tokenizer
from promptbudget.tools import (
    ANTHROPIC_TOOL_SYSTEM_TOKENS,
    Tool,
    ToolError,
    count_tools,
    parse_tool,
)

RunCli = Callable[..., Run]

# The cookbook's example (How_to_count_tokens_with_tiktoken, "count tokens for tools").
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {
                    "type": "string",
                    "description": "The city and state, e.g. San Francisco, CA",
                },
                "unit": {
                    "type": "string",
                    "description": "The unit of temperature to return",
                    "enum": ["celsius", "fahrenheit"],
                },
            },
            "required": ["location"],
        },
    },
}
SYSTEM = "You are a helpful assistant that can answer questions and help with tasks."
USER = "What's the weather like in San Francisco?"


def by_hand(encoding: str, func_init: int) -> int:
    tokenizer = get_tokenizer(encoding)
    count = tokenizer.count
    return (
        func_init
        + count("get_current_weather:Get the current weather in a given location")
        + 3  # prop_init
        + 3
        + count("location:string:The city and state, e.g. San Francisco, CA")
        + 3
        - 3  # enum_init
        + 3
        + count("celsius")
        + 3
        + count("fahrenheit")
        + count("unit:string:The unit of temperature to return")
        + 12  # func_end
    )


@pytest.mark.parametrize(("encoding", "func_init"), [("o200k_base", 7), ("cl100k_base", 10)])
def test_openai_formula_by_hand(encoding: str, func_init: int) -> None:
    tool = parse_tool(WEATHER, "tool")
    assert count_tools([tool], get_tokenizer(encoding)) == by_hand(encoding, func_init)


@pytest.mark.parametrize(("model", "expected"), [("gpt-4o", 101), ("gpt-4", 105)])
def test_cookbook_request_matches_what_the_api_returned(
    run_cli: RunCli, make_project: Callable[..., Path], model: str, expected: int
) -> None:
    """The cookbook checked its example against the API: 101 tokens on gpt-4o, 105 on
    gpt-3.5/gpt-4, for the two messages and the tool."""
    root = make_project(
        {
            "budgets.yaml": f"""\
                version: 1
                defaults: {{model: {model}}}
                tools:
                  get_current_weather: {json_flow(WEATHER["function"])}
                workflows:
                  weather:
                    steps:
                      - prompt: a.j2
                        output_tokens: 50
                        tools: [get_current_weather]
                """,
            "prompts/a.j2": f"system:\n{SYSTEM}\nuser:\n{USER}\n",
        }
    )
    run = run_cli("check", "--format", "json", cwd=root)
    assert run.exit_code == 0, run.stdout + run.stderr
    (step,) = run.json()["workflows"][0]["steps"]
    assert step["prompt_tokens"] == expected
    assert step["exact"] is False  # tool tokens are an approximation


def json_flow(value: Any) -> str:
    import json

    return json.dumps(value)


def test_tools_are_their_own_component_and_the_parts_add_up(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = make_project(
        {
            "budgets.yaml": f"""\
                version: 1
                defaults: {{model: gpt-4o}}
                workflows:
                  weather:
                    traffic: {{requests_per_day: 1000}}
                    steps:
                      - prompt: a.j2
                        output_tokens: 50
                        tools: [{json_flow(WEATHER)}]
                """,
            "prompts/a.j2": f"system:\n{SYSTEM}\nuser:\n{USER}\n",
        }
    )
    workflow = run_cli("estimate", "--format", "json", cwd=root).json()["workflows"][0]
    why = {c["component"]: c for c in workflow["why"]}
    tools_tokens = by_hand("o200k_base", 7)
    assert why["tools"]["tokens"] == tools_tokens == 68
    assert why["static"]["tokens"] == 101 - 68
    total = sum(Decimal(str(c["cost_usd"])) for c in workflow["why"])
    assert abs(total - Decimal(str(workflow["cost_per_request_usd"]))) < Decimal("1e-9")
    # gpt-4o: $2.50 in, $10 out per MTok
    assert Decimal(str(why["tools"]["cost_usd"])) == Decimal("0.00017")


def test_prompty_front_matter_tools(run_cli: RunCli, make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "a.prompty": """\
                ---
                name: weather
                model:
                  id: gpt-4o
                tools:
                  - name: get_current_weather
                    kind: function
                    description: Get the current weather in a given location
                    parameters:
                      - name: location
                        kind: string
                        description: The city and state, e.g. San Francisco, CA
                ---
                system:
                Answer briefly.
                """,
        }
    )
    data = run_cli("count", str(root / "a.prompty"), "--format", "json").json()
    (template,) = data["templates"]
    tool = Tool(
        "get_current_weather",
        "Get the current weather in a given location",
        {
            "type": "object",
            "properties": {
                "location": {
                    "type": "string",
                    "description": "The city and state, e.g. San Francisco, CA",
                }
            },
        },
    )
    expected = count_tools([tool], get_tokenizer("o200k_base"))
    assert template["request_tokens"] - (template["text_tokens"] + 3 + 1 + 3) == expected
    assert template["exact"] is False


def test_claude_counts_the_json_and_the_tool_system_prompt() -> None:
    tool = parse_tool(WEATHER, "tool")
    claude = get_tokenizer("claude")
    import json

    text = json.dumps([tool.as_json()], ensure_ascii=False)
    assert count_tools([tool], claude) == claude.count(text) + ANTHROPIC_TOOL_SYSTEM_TOKENS
    gemini = get_tokenizer("gemini")
    assert count_tools([tool], gemini) == gemini.count(text)
    assert count_tools([], claude) == 0


def test_prompty_v2_id_names_a_function_tool() -> None:
    tool = parse_tool(
        {"id": "get_weather", "type": "function", "parameters": [{"name": "city"}]}, "t"
    )
    assert (tool.name, tool.hosted) == ("get_weather", None)
    assert list(tool.parameters["properties"]) == ["city"]


@pytest.mark.parametrize(
    ("value", "name", "kind"),
    [
        ({"id": "file_search", "type": "file_search"}, "file_search", "file_search"),
        ({"kind": "web_search", "connection": {"kind": "key"}}, "web_search", "web_search"),
        ({"name": "docs", "kind": "mcp", "serverName": "docs"}, "docs", "mcp"),
    ],
)
def test_tools_the_provider_runs_are_named_not_counted(
    value: dict[str, Any], name: str, kind: str
) -> None:
    tool = parse_tool(value, "tools[0]")
    assert (tool.name, tool.hosted) == (name, kind)
    o200k = get_tokenizer("o200k_base")
    assert count_tools([tool], o200k) == 0
    weather = parse_tool(WEATHER, "tool")
    assert count_tools([tool, weather], o200k) == count_tools([weather], o200k)


def test_a_hosted_tool_in_front_matter_is_a_pb003(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = make_project(
        {
            "claims.prompty": """\
                ---
                name: Claim Buddy
                model:
                  id: gpt-4o
                tools:
                  - id: file_search
                    type: file_search
                ---
                You help patients with their claims.
                """,
        }
    )
    data = run_cli("count", str(root / "claims.prompty"), "--format", "json").json()
    assert not [f for f in data["findings"] if f["rule"] == "PB001"]
    (finding,) = [f for f in data["findings"] if f["rule"] == "PB003"]
    assert finding["line"] == 5
    assert "tool 'file_search' is a file_search tool the provider runs" in finding["message"]
    (template,) = data["templates"]
    assert template["request_tokens"] == template["text_tokens"] + 3 + 1 + 3  # no tool tokens
    assert template["exact"] is False  # the provider adds what it does not publish


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("search", "must be a mapping"),
        ({"description": "x"}, "needs a name"),
        ({"name": "x", "parameters": "object"}, "parameters must be a JSON Schema object"),
        ({"name": "x", "description": 3}, "description must be text"),
    ],
)
def test_bad_tool_definitions(value: object, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        parse_tool(value, "tools[0]")


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ("[search]", "no tool named 'search' under tools: (defined: none)"),
        ("[{description: no name}]", "needs a name"),
    ],
)
def test_bad_tools_in_the_manifest_are_one_line_exit_2(
    run_cli: RunCli, make_project: Callable[..., Path], tools: str, message: str
) -> None:
    root = make_project(
        {
            "budgets.yaml": f"""\
                version: 1
                defaults: {{model: gpt-4o}}
                workflows:
                  w:
                    steps:
                      - prompt: a.j2
                        output_tokens: 5
                        tools: {tools}
                """,
            "prompts/a.j2": "Hi\n",
        }
    )
    run = run_cli("check", cwd=root)
    assert run.exit_code == 2
    assert "budgets.yaml:8:" in run.stderr and message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_tools_are_in_the_cacheable_prefix() -> None:
    from promptbudget.counting import structure_prompt
    from promptbudget.templates.rendered import Message, RenderedPrompt, Slot

    rendered = RenderedPrompt(
        messages=(Message("user", ("Context: ", Slot("context", 0, whole=True))),),
        variables=("context",),
    )
    tokenizer = get_tokenizer("o200k_base")
    bare = structure_prompt(rendered, tokenizer)
    with_tools = structure_prompt(rendered, tokenizer, tool_tokens=68)
    assert with_tools.prefix_tokens == bare.prefix_tokens + 68
    assert with_tools.static_tokens == bare.static_tokens + 68
