"""The run-time guard: counts, every limit, warn mode, usage shapes and costs.

Token counts are checked against OpenAI's cookbook ``num_tokens_from_messages`` written out
below (tiktoken on the bundled rank files, the cookbook's constants); costs against the
vendors' published rates, multiplied out by hand in each test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from promptbudget.errors import ManifestError
from promptbudget.runtime import (
    BudgetConfigError,
    BudgetExceeded,
    Budgets,
    MemoryStore,
    Violation,
    current_request,
)
from promptbudget.tokenizers import load_encoding

MANIFEST = """\
version: 1
defaults: {model: gpt-4.1-mini}
workflows:
  support-reply:
    steps:
      - name: classify
        prompt: classify.j2
        max_output_tokens: 20
      - name: answer
        prompt: answer.j2
        output_tokens: {p50: 250, p95: 600}
    limits:
%s
"""


def write_manifest(tmp_path: Path, limits: str) -> Path:
    (tmp_path / "prompts").mkdir(exist_ok=True)
    for name in ("classify.j2", "answer.j2"):
        (tmp_path / "prompts" / name).write_text("Hello\n", encoding="utf-8")
    path = tmp_path / "budgets.yaml"
    indented = "\n".join(f"      {line}" for line in limits.strip().splitlines())
    path.write_text(MANIFEST % indented, encoding="utf-8")
    return path


@pytest.fixture
def budgets(tmp_path: Path) -> Callable[..., Budgets]:
    def make(limits: str = "max_turns: 100", **options: Any) -> Budgets:
        return Budgets.load(write_manifest(tmp_path, limits), **options)

    return make


def cookbook_tokens(messages: list[dict[str, str]], encoding_name: str) -> int:
    """OpenAI cookbook ``num_tokens_from_messages`` (gpt-4o / gpt-4 rules)."""
    encoding = load_encoding(encoding_name)
    total = 0
    for message in messages:
        total += 3
        for key, value in message.items():
            total += len(encoding.encode_ordinary(value))
            if key == "name":
                total += 1
    return total + 3


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# -- counting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "encoding"), [("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base")]
)
def test_preflight_counts_as_the_cookbook_does_names_included(
    budgets: Callable[..., Budgets], model: str, encoding: str
) -> None:
    messages = [
        {"role": "system", "content": "You are a helpful, pattern-following assistant."},
        {"role": "system", "name": "example_user", "content": "New synergies will help."},
        {"role": "system", "name": "example_assistant", "content": "Things working well."},
        {"role": "user", "content": "This late pivot means we don't have time to boil the ocean."},
    ]
    with budgets().request("support-reply") as req:
        check = req.preflight(step="answer", model=model, messages=messages)
    assert check.input_tokens == cookbook_tokens(messages, encoding)
    assert check.is_exact


def test_responses_input_and_instructions_are_messages(budgets: Callable[..., Budgets]) -> None:
    with budgets().request("support-reply") as req:
        as_text = req.preflight(
            step="answer", model="gpt-4o", messages="Where is my order?", system="Be brief."
        )
        as_items = req.preflight(
            step="answer",
            model="gpt-4o",
            messages=[
                {"role": "user", "content": [{"type": "input_text", "text": "Where is my order?"}]}
            ],
            system="Be brief.",
        )
    expected = cookbook_tokens(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Where is my order?"},
        ],
        "o200k_base",
    )
    assert as_text.input_tokens == as_items.input_tokens == expected


def test_an_image_part_makes_the_count_inexact(budgets: Callable[..., Budgets]) -> None:
    content = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    with budgets().request("support-reply") as req:
        check = req.preflight(step="answer", messages=[{"role": "user", "content": content}])
    assert not check.is_exact
    assert check.input_tokens == cookbook_tokens(user("What is in this picture?"), "o200k_base")


# -- every limit -----------------------------------------------------------------------------


def test_input_over_budget_raises_pb101_with_the_tokens_to_cut(
    budgets: Callable[..., Budgets],
) -> None:
    text = "word " * 100
    sent = cookbook_tokens(user(text), "o200k_base")
    guard = budgets("max_input_tokens: 50")
    with guard.request("support-reply") as req, pytest.raises(BudgetExceeded) as raised:
        req.before_call(step="answer", messages=user(text))
    assert (raised.value.code, raised.value.slug) == ("PB101", "input-over-budget")
    assert (raised.value.measured, raised.value.limit) == (sent, 50)
    assert raised.value.tokens_to_cut == sent - 50
    # Cutting exactly that many tokens of content makes the call fit.
    encoding = load_encoding("o200k_base")
    ids = encoding.encode_ordinary(text)
    shorter = encoding.decode(ids[: len(ids) - (sent - 50)])
    with guard.request("support-reply") as req:
        assert req.before_call(step="answer", messages=user(shorter)).ok


def test_call_max_tokens_over_the_step_limit_raises_pb102(
    budgets: Callable[..., Budgets],
) -> None:
    with budgets().request("support-reply") as req:
        assert req.preflight(step="classify", messages=user("hi"), max_output_tokens=20).ok
        with pytest.raises(BudgetExceeded) as raised:
            req.before_call(step="classify", messages=user("hi"), max_output_tokens=21)
    assert (raised.value.code, raised.value.measured, raised.value.limit) == ("PB102", 21, 20)
    assert raised.value.tokens_to_cut is None  # cutting input cannot fix it


def test_a_new_turn_over_max_turns_raises_pb104_tool_results_are_not_turns(
    budgets: Callable[..., Budgets],
) -> None:
    with budgets("max_turns: 2").request("support-reply", step="answer") as req:
        history = user("first")
        req.before_call(messages=history)
        history += [
            {"role": "assistant", "content": "one"},
            {"role": "tool", "content": "result", "tool_call_id": "1"},
        ]
        req.before_call(messages=history)  # continues turn 1
        history += [{"role": "assistant", "content": "two"}, *user("second")]
        req.before_call(messages=history)  # turn 2
        history += [{"role": "assistant", "content": "three"}, *user("third")]
        with pytest.raises(BudgetExceeded) as raised:
            req.before_call(messages=history)
        assert (raised.value.code, raised.value.measured, raised.value.limit) == ("PB104", 3, 2)
        # Turns are per step: the other step has its own.
        assert req.preflight(step="classify", messages=user("x")).ok


def test_tool_calls_over_budget_raise_pb105_on_the_next_call(
    budgets: Callable[..., Budgets],
) -> None:
    response = {
        "choices": [{"message": {"role": "assistant", "tool_calls": [{"id": "a"}, {"id": "b"}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
    }
    with budgets("max_tool_calls: 1").request("support-reply", step="answer") as req:
        req.before_call(messages=user("look it up"))
        record = req.after_call(response=response)
        assert record.tool_calls == 2
        with pytest.raises(BudgetExceeded) as raised:
            req.before_call(messages=[*user("look it up"), {"role": "tool", "content": "r"}])
    assert (raised.value.code, raised.value.measured, raised.value.limit) == ("PB105", 2, 1)


def test_request_cost_over_budget_raises_pb106_with_tokens_to_cut(
    budgets: Callable[..., Budgets],
) -> None:
    # gpt-4.1-mini: $0.40 per million input tokens, $1.60 per million output tokens.
    # A first call of 1,000 in + 500 out: $0.0004 + $0.0008 = $0.0012 spent.
    # Next call: "answer" projects its output at its p95, 600 tokens: $0.00096.
    # Limit $0.0025: input may cost $0.0025 - $0.0012 - $0.00096 = $0.00034 = 850 tokens.
    guard = budgets("max_cost_per_request: $0.0025")
    encoding = load_encoding("o200k_base")
    text = " ".join(["apple"] * 1200)
    sent = cookbook_tokens(user(text), "o200k_base")
    with guard.request("support-reply", step="answer") as req:
        req.before_call(messages=user("hi"))
        req.after_call(usage={"prompt_tokens": 1000, "completion_tokens": 500})
        assert req.totals.cost_usd == Decimal("0.0012")
        with pytest.raises(BudgetExceeded) as raised:
            req.before_call(messages=user(text))
        error = raised.value
        assert error.code == "PB106"
        assert error.limit == Decimal("0.0025")
        assert error.measured == Decimal("0.0012") + sent * Decimal("0.0000004") + Decimal(
            "0.00096"
        )
        assert error.tokens_to_cut == sent - 850
        ids = encoding.encode_ordinary(text)
        shorter = encoding.decode(ids[: len(ids) - error.tokens_to_cut])
        assert req.preflight(messages=user(shorter)).ok


def at(day: str) -> Callable[[], datetime]:
    return lambda: datetime.fromisoformat(day).replace(tzinfo=timezone.utc)


def test_monthly_spend_raises_pb107_across_requests_and_resets_next_month(
    budgets: Callable[..., Budgets],
) -> None:
    # Each request: 1M input tokens = $0.40 and no output. Limit $1: two fit, the third not.
    store = MemoryStore()
    guard = budgets("max_monthly_spend: $1", store=store, clock=at("2026-12-31T23:00:00"))
    for _ in range(2):
        with guard.request("support-reply", step="classify") as req:
            req.before_call(messages=user("hi"), max_output_tokens=0)
            req.after_call(usage={"prompt_tokens": 1_000_000, "completion_tokens": 0})
    assert guard.spend("support-reply") == (Decimal("0.8"), Decimal("0.8"))
    with guard.request("support-reply", step="classify") as req:
        check = req.preflight(messages=user("x" * 10))
        assert [v.code for v in check.violations] == []
        # $0.80 + 500,001 tokens x $0.40/M > $1.
        big = " ".join(["apple"] * 500_001)
        with pytest.raises(BudgetExceeded) as raised:
            req.before_call(messages=user(big), max_output_tokens=0)
    assert raised.value.code == "PB107"
    assert raised.value.limit == Decimal(1)
    january = Budgets(guard.manifest, store=store, clock=at("2027-01-01T00:00:01"))
    assert january.spend("support-reply") == (Decimal(0), Decimal(0))


def test_daily_spend_raises_pb107(budgets: Callable[..., Budgets]) -> None:
    store = MemoryStore()
    guard = budgets("max_daily_spend: $0.50", store=store, clock=at("2026-12-05T10:00:00"))
    with guard.request("support-reply", step="classify") as req:
        req.before_call(messages=user("hi"), max_output_tokens=0)
        req.after_call(usage={"prompt_tokens": 1_000_000, "completion_tokens": 0})
    with guard.request("support-reply", step="classify") as req, pytest.raises(BudgetExceeded) as e:
        req.before_call(messages=user(" ".join(["apple"] * 300_000)), max_output_tokens=0)
    assert e.value.code == "PB107"
    assert "max_daily_spend" in str(e.value)
    tomorrow = Budgets(guard.manifest, store=store, clock=at("2026-12-06T00:00:00"))
    with tomorrow.request("support-reply", step="classify") as req:
        assert req.preflight(messages=user(" ".join(["apple"] * 300_000))).ok


def test_a_model_without_a_price_cannot_pass_a_cost_limit(
    budgets: Callable[..., Budgets],
) -> None:
    guard = budgets("max_cost_per_request: $1")
    with guard.request("support-reply", step="answer") as req, pytest.raises(BudgetExceeded) as e:
        req.before_call(model="acme-private-model", messages=user("hi"))
    assert e.value.code == "PB110"


# -- warn mode -------------------------------------------------------------------------------


def test_warn_mode_never_raises_and_reports_every_violation(
    budgets: Callable[..., Budgets], caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Violation] = []
    guard = budgets(
        "max_input_tokens: 5\nmax_turns: 1\nmax_tool_calls: 0\nmax_cost_per_request: $0.000001\n"
        "max_monthly_spend: $0.000001",
        mode="warn",
        on_violation=seen.append,
    )
    response = {"choices": [{"message": {"tool_calls": [{"id": "a"}]}}], "usage": {}}
    usage = {"prompt_tokens": 60, "completion_tokens": 500}
    with (
        caplog.at_level(logging.WARNING, logger="promptbudget.runtime"),
        guard.request("support-reply") as req,
    ):
        for _ in range(3):
            check = req.before_call(
                step="classify", messages=user("word " * 50), max_output_tokens=500
            )
            req.after_call(response={**response, "usage": usage})
    assert {v.code for v in check.violations} == {
        "PB101",
        "PB102",
        "PB104",
        "PB105",
        "PB106",
        "PB107",
    }
    assert {v.code for v in seen} == {"PB101", "PB102", "PB104", "PB105", "PB106", "PB107"}
    assert "PB101 input-over-budget" in caplog.text
    assert req.totals.calls == 3


def test_raise_mode_calls_the_hook_before_raising(budgets: Callable[..., Budgets]) -> None:
    seen: list[Violation] = []
    guard = budgets("max_input_tokens: 5", on_violation=seen.append)
    with guard.request("support-reply") as req, pytest.raises(BudgetExceeded):
        req.before_call(step="answer", messages=user("word " * 50))
    assert [v.code for v in seen] == ["PB101"]


# -- after_call: usage shapes and costs ------------------------------------------------------


def test_openai_chat_usage_with_cached_tokens_is_priced_as_estimate_prices_it(
    budgets: Callable[..., Budgets],
) -> None:
    # gpt-4.1: $2 input, $0.50 cached input, $8 output per million tokens.
    # 10,000 prompt tokens of which 8,000 cached, 1,000 output:
    # 2,000 x 2 + 8,000 x 0.5 + 1,000 x 8 = 4,000 + 4,000 + 8,000 = $0.016.
    usage = {
        "prompt_tokens": 10_000,
        "completion_tokens": 1_000,
        "prompt_tokens_details": {"cached_tokens": 8_000},
    }
    with budgets().request("support-reply", step="answer") as req:
        req.before_call(model="gpt-4.1", messages=user("hi"))
        record = req.after_call(usage=usage)
    assert record.cost_usd == Decimal("0.016")
    assert (record.input_tokens, record.cache_read_tokens) == (10_000, 8_000)


def test_responses_usage_is_read(budgets: Callable[..., Budgets]) -> None:
    usage = {
        "input_tokens": 10_000,
        "output_tokens": 1_000,
        "input_tokens_details": {"cached_tokens": 8_000},
        "output_tokens_details": {"reasoning_tokens": 400},
    }
    with budgets().request("support-reply", step="answer") as req:
        req.before_call(model="gpt-4.1", messages="hi")
        assert req.after_call(usage=usage).cost_usd == Decimal("0.016")


def test_anthropic_usage_adds_the_cache_to_input(budgets: Callable[..., Budgets]) -> None:
    # claude-sonnet-4-6: $3 input, $15 output, $0.30 cache read, $3.75 5-minute write,
    # $6 1-hour write per million tokens. input_tokens excludes the cache:
    # 1,000 x 3 + 2,000 x 3.75 + 500 x 6 + 10,000 x 0.30 + 400 x 15
    # = 3,000 + 7,500 + 3,000 + 3,000 + 6,000 = $0.0225.
    usage = {
        "input_tokens": 1_000,
        "cache_creation_input_tokens": 2_500,
        "cache_read_input_tokens": 10_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 2_000, "ephemeral_1h_input_tokens": 500},
        "output_tokens": 400,
    }
    with budgets().request("support-reply", step="answer") as req:
        req.before_call(model="claude-sonnet-4-6", messages=user("hi"))
        record = req.after_call(usage=usage)
    assert record.cost_usd == Decimal("0.0225")
    assert (record.input_tokens, record.cache_read_tokens, record.cache_write_tokens) == (
        13_500,
        10_000,
        2_500,
    )


def test_running_totals_add_up(budgets: Callable[..., Budgets]) -> None:
    with budgets().request("support-reply") as req:
        req.before_call(step="classify", messages=user("a"))
        req.after_call(usage={"prompt_tokens": 100, "completion_tokens": 10})
        req.before_call(step="answer", messages=user("b"))
        req.after_call(usage={"prompt_tokens": 300, "completion_tokens": 200})
    totals = req.totals
    assert (totals.calls, totals.turns, totals.input_tokens, totals.output_tokens) == (
        2,
        2,
        400,
        210,
    )
    # gpt-4.1-mini: 400 x 0.40/M + 210 x 1.60/M = 0.00016 + 0.000336.
    assert totals.cost_usd == Decimal("0.000496")


def test_output_over_budget_after_the_call_is_reported_not_raised(
    budgets: Callable[..., Budgets],
) -> None:
    seen: list[Violation] = []
    with budgets(on_violation=seen.append).request("support-reply", step="classify") as req:
        req.before_call(messages=user("hi"))
        record = req.after_call(usage={"prompt_tokens": 10, "completion_tokens": 21})
    assert [v.code for v in record.violations] == ["PB102"] == [v.code for v in seen]


# -- configuration ---------------------------------------------------------------------------


def test_unknown_workflow_and_step_say_what_exists(budgets: Callable[..., Budgets]) -> None:
    guard = budgets()
    with pytest.raises(BudgetConfigError, match="workflows: support-reply"):
        guard.request("support")
    with pytest.raises(BudgetConfigError, match="steps: classify, answer"):
        guard.request("support-reply", step="anwser")


def test_load_reads_tool_promptbudget_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "a.j2").write_text("Hi\n", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.promptbudget]\nversion = 1\n[tool.promptbudget.defaults]\nmodel = "gpt-4o"\n'
        '[tool.promptbudget.workflows.chat]\nsteps = [{prompt = "a.j2"}]\n'
        '[tool.promptbudget.workflows.chat.limits]\nmax_input_tokens = "1k"\n',
        encoding="utf-8",
    )
    guard = Budgets.load(tmp_path / "pyproject.toml")
    with guard.request("chat") as req, pytest.raises(BudgetExceeded):
        req.before_call(messages=user("word " * 1000))


def test_load_without_a_manifest_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError, match=r"no budgets\.yaml"):
        Budgets.load()


def test_an_invalid_manifest_names_the_line(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, "max_turns: many")
    with pytest.raises(ManifestError, match=r"budgets.yaml:\d+"):
        Budgets.load(path)


def test_the_request_is_current_inside_its_block(budgets: Callable[..., Budgets]) -> None:
    guard = budgets()
    assert current_request() is None
    with guard.request("support-reply") as outer:
        assert current_request() is outer
        with guard.request("support-reply") as inner:
            assert current_request() is inner
        assert current_request() is outer
    assert current_request() is None


# -- other request shapes --------------------------------------------------------------------


def test_anthropic_messages_are_counted_and_a_tool_result_continues_the_turn(
    budgets: Callable[..., Budgets],
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "Where is order 42?"}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "get_order", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "shipped"}],
        },
    ]
    with budgets("max_turns: 1").request("support-reply", step="answer") as req:
        first = req.before_call(model="claude-sonnet-4-6", messages=messages[:1], system="Hi.")
        second = req.before_call(model="claude-sonnet-4-6", messages=messages, system="Hi.")
    assert first.is_new_turn
    assert not second.is_new_turn  # the tool result continues turn 1: no PB104
    assert first.is_exact is False  # Claude is counted with an estimate
    assert second.input_tokens > first.input_tokens


def test_tool_calls_are_read_from_responses_and_anthropic_replies(
    budgets: Callable[..., Budgets],
) -> None:
    responses_reply = {
        "output": [
            {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "b", "name": "g", "arguments": "{}"},
            {"type": "message", "content": []},
        ],
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }
    anthropic_reply = {
        "content": [{"type": "text", "text": "Let me check."}, {"type": "tool_use", "id": "t"}],
        "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 0},
    }
    with budgets().request("support-reply", step="answer") as req:
        req.before_call(messages="hi")
        assert req.after_call(response=responses_reply).tool_calls == 2
        req.before_call(model="claude-sonnet-4-6", messages="hi")
        assert req.after_call(response=anthropic_reply).tool_calls == 1
    assert req.totals.tool_calls == 3


def test_a_message_without_a_role_is_a_clear_type_error(budgets: Callable[..., Budgets]) -> None:
    with (
        budgets().request("support-reply", step="answer") as req,
        pytest.raises(TypeError, match="needs a role"),
    ):
        req.preflight(messages=[{"content": "hi"}])


# -- limits on a step alone (steps[i].limits) ------------------------------------------------

STEP_LIMITS = """\
version: 1
defaults: {model: gpt-4.1-mini}
workflows:
  support-reply:
    steps:
      - name: classify
        prompt: classify.j2
      - name: answer
        prompt: answer.j2
        limits:
          max_input_tokens: 50
          max_output_tokens: 100
          max_turns: 1
          max_tool_calls: 1
          max_cost_per_request: $0.0005
    limits:
      max_input_tokens: 1k
      max_turns: 10
      max_tool_calls: 10
      max_cost_per_request: $1
"""


@pytest.fixture
def step_limited(tmp_path: Path) -> Budgets:
    write_manifest(tmp_path, "max_turns: 1")  # the prompts
    (tmp_path / "budgets.yaml").write_text(STEP_LIMITS, encoding="utf-8")
    return Budgets.load(tmp_path / "budgets.yaml")


def test_a_step_limit_is_tighter_than_the_workflow_limit_on_that_step_only(
    step_limited: Budgets,
) -> None:
    text = "word " * 100  # 108 input tokens: over the step's 50, under the workflow's 1k
    with step_limited.request("support-reply") as req:
        assert req.preflight(step="classify", messages=user(text)).ok
        check = req.preflight(step="answer", messages=user(text), max_output_tokens=101)
    codes = {v.code: v for v in check.violations}
    assert (codes["PB101"].limit, codes["PB101"].tokens_to_cut) == (50, 108 - 50)
    assert "max_input_tokens of step 'answer'" in codes["PB101"].message
    assert codes["PB102"].limit == 100


def test_step_turns_tool_calls_and_cost_count_that_steps_calls(step_limited: Budgets) -> None:
    tools_asked = {"choices": [{"message": {"tool_calls": [{"id": "a"}, {"id": "b"}]}}]}
    with step_limited.request("support-reply") as req:
        # classify's calls do not count towards answer's limits
        for _ in range(3):
            req.before_call(step="classify", messages=user("hi"))
            req.after_call(
                response={**tools_asked, "usage": {"prompt_tokens": 1000, "completion_tokens": 0}}
            )
        assert req.preflight(step="answer", messages=user("hi")).ok
        req.before_call(step="answer", messages=user("hi"))
        # answer: 1,000 in = $0.0004 and two tool calls asked for
        req.after_call(
            response={**tools_asked, "usage": {"prompt_tokens": 1000, "completion_tokens": 0}}
        )
        after = req.preflight(
            step="answer", messages=[*user("hi"), {"role": "user", "content": "more"}]
        )
    codes = {v.code: v for v in after.violations}
    assert (codes["PB104"].measured, codes["PB104"].limit) == (2, 1)
    assert (codes["PB105"].measured, codes["PB105"].limit) == (2, 1)
    assert codes["PB106"].limit == Decimal("0.0005")
    assert codes["PB106"].measured > Decimal("0.0004")
    assert req.totals_of("answer").tool_calls == 2
    assert req.totals.tool_calls == 8  # 6 from classify: under the workflow's 10
