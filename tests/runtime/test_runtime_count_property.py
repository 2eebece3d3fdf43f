"""Pre-flight counts equal ``promptbudget count`` on the same messages.

The messages are written as a Jinja2 chat template (``role:`` marker lines, each message's
text below its marker), which ``count`` reads as chat messages; tools go in its front matter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Run
from promptbudget.runtime import Budgets

MANIFEST = """\
version: 1
workflows:
  chat:
    steps: [{name: reply, prompt: reply.j2}]
"""

# Text a template reads as itself: no braces (``{{``, ``{%``, ``{#``), no control characters
# but newlines (files are read with CR as LF), no surrounding whitespace (a message's text is
# stripped) and no line that is a role marker.
_MARKER = re.compile(r"(?im)^\s*#?\s*(system|user|assistant|developer|function|tool|tools)\b")
TEXT = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="{}"),
        st.just("\n"),
    ),
    max_size=200,
).filter(lambda text: text == text.strip() and not _MARKER.search(text))
MESSAGES = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant", "developer"]), "content": TEXT},
        optional={"name": st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,15}", fullmatch=True)},
    ),
    min_size=1,
    max_size=6,
)


def chat_template(messages: list[dict[str, str]]) -> str:
    """Role markers, ``user[name="bob"]:`` for a named message (Prompty's syntax)."""
    return "".join(
        f"{m['role']}" + (f'[name="{m["name"]}"]' if "name" in m else "") + f":\n{m['content']}\n\n"
        for m in messages
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runtime-count")
    (root / "prompts").mkdir()
    (root / "prompts" / "reply.j2").write_text("Hi\n", encoding="utf-8")
    (root / "budgets.yaml").write_text(MANIFEST, encoding="utf-8")
    return root


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(messages=MESSAGES, model=st.sampled_from(["gpt-4.1", "gpt-4", "claude-sonnet-4-6"]))
def test_preflight_equals_count_on_the_same_messages(
    project: Path,
    run_cli: Callable[..., Run],
    messages: list[dict[str, str]],
    model: str,
) -> None:
    chat = project / "chat.j2"
    chat.write_text(chat_template(messages), encoding="utf-8")
    result = run_cli("count", str(chat), "--model", model, "--format", "json", cwd=project)
    assert result.exit_code == 0, result.stderr
    counted = result.json()["templates"][0]
    with Budgets.load(project / "budgets.yaml").request("chat") as req:
        check = req.preflight(model=model, messages=messages)
    assert check.input_tokens == counted["request_tokens"]
    assert check.is_exact == counted["exact"]


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "description": "Look up an order by its number.",
            "parameters": {
                "type": "object",
                "properties": {
                    "order_id": {"type": "string", "description": "The order number"},
                    "detail": {"type": "string", "enum": ["summary", "full"]},
                },
                "required": ["order_id"],
            },
        },
    },
    {"type": "function", "function": {"name": "escalate", "description": "Hand over."}},
]


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-3.5-turbo", "claude-sonnet-4-6"])
def test_preflight_counts_tools_as_count_does(
    project: Path, run_cli: Callable[..., Run], model: str
) -> None:
    template = project / "prompts" / "tools.j2"
    template.write_text(
        "---\ntools: " + json.dumps(TOOLS) + "\n---\nsystem:\nYou help with orders.\n\n"
        "user:\nWhere is order 42?\n",
        encoding="utf-8",
    )
    result = run_cli("count", str(template), "--model", model, "--format", "json", cwd=project)
    assert result.exit_code == 0, result.stderr
    counted = result.json()["templates"][0]
    messages = [
        {"role": "system", "content": "You help with orders."},
        {"role": "user", "content": "Where is order 42?"},
    ]
    with Budgets.load(project / "budgets.yaml").request("chat") as req:
        check = req.preflight(model=model, messages=messages, tools=TOOLS)
    assert check.input_tokens == counted["request_tokens"]
    assert not check.is_exact  # tool definitions are an approximation, as count says


@pytest.mark.parametrize("model", ["gpt-4.1", "claude-sonnet-4-6", "gpt-5.4"])
def test_a_recorded_call_costs_what_estimate_says_the_same_call_costs(
    tmp_path: Path, run_cli: Callable[..., Run], model: str
) -> None:
    (tmp_path / "prompts").mkdir()
    messages = [
        {"role": "system", "content": "You answer billing questions in two sentences."},
        {"role": "user", "content": "Why was I charged twice for invoice 1042 this month?"},
    ]
    (tmp_path / "prompts" / "reply.j2").write_text(chat_template(messages), encoding="utf-8")
    (tmp_path / "budgets.yaml").write_text(
        f"version: 1\nworkflows:\n  chat:\n    steps:\n"
        f"      - {{name: reply, prompt: reply.j2, model: {model}, output_tokens: 250}}\n",
        encoding="utf-8",
    )
    result = run_cli("estimate", "--format", "json", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    estimated = result.json()["workflows"][0]["cost_per_request_usd"]
    with Budgets.load(tmp_path / "budgets.yaml").request("chat") as req:
        check = req.before_call(messages=messages)
        usage = {"prompt_tokens": check.input_tokens, "completion_tokens": 250}
        record = req.after_call(usage=usage)
    assert record.cost_usd is not None
    assert float(record.cost_usd) == pytest.approx(float(estimated), rel=1e-9)
