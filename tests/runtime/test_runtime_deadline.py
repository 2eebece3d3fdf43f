"""A request deadline in the run-time guard: the time left passed to each call, a call started
past the deadline refused, one that ends past it reported. Every test runs on a fake clock
(``Budgets(monotonic=...)``): no sleeps, no timed assertions."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from promptbudget.runtime import BudgetConfigError, BudgetExceeded, Budgets, Violation

MANIFEST = """\
version: 1
defaults: {model: gpt-4.1-mini}
workflows:
  support-reply:
    steps:
      - {name: answer, prompt: answer.j2}
    limits:
%s
"""
SHORT = [{"role": "user", "content": "Where is my order?"}]
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}


class FakeClock:
    """Seconds, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += ms / 1000


def load(tmp_path: Path, limits: str = "max_turns: 10", **options: Any) -> Budgets:
    (tmp_path / "prompts").mkdir(exist_ok=True)
    (tmp_path / "prompts" / "answer.j2").write_text("Hi\n", encoding="utf-8")
    (tmp_path / "budgets.yaml").write_text(MANIFEST % f"      {limits}", encoding="utf-8")
    return Budgets.load(tmp_path / "budgets.yaml", **options)


def test_the_time_left_is_what_the_deadline_minus_the_elapsed_time_leaves(tmp_path: Path) -> None:
    clock = FakeClock()
    budgets = load(tmp_path, monotonic=clock)
    with budgets.request("support-reply", deadline_ms=2000) as req:
        clock.advance(500)
        assert req.elapsed_ms == pytest.approx(500)
        assert req.remaining_ms == pytest.approx(1500)
        assert req.timeout() == pytest.approx(1.5)
        assert req.timeout(1.0) == pytest.approx(1.0)  # a shorter timeout of the caller's
        assert req.timeout(30.0) == pytest.approx(1.5)
        clock.advance(4000)
        assert req.remaining_ms == 0
    with budgets.request("support-reply") as free:
        assert free.deadline is None and free.remaining_ms is None
        assert free.timeout(7.0) == 7.0


def test_a_call_started_past_the_deadline_is_refused(tmp_path: Path) -> None:
    clock = FakeClock()
    budgets = load(tmp_path, monotonic=clock)
    with budgets.request("support-reply", deadline_ms=2000) as req:
        req.before_call(messages=SHORT)
        clock.advance(1200)
        req.after_call(USAGE)
        clock.advance(800)  # 2,000 ms: nothing left
        with pytest.raises(BudgetExceeded) as raised:
            req.before_call(messages=SHORT)
    violation = raised.value.violation
    assert (violation.code, violation.slug) == ("PB117", "latency-over-budget")
    assert (violation.measured, violation.limit, violation.unit) == (2000, 2000, "ms")
    assert "deadline_ms given to budgets.request" in violation.message
    assert req.totals.calls == 1


def test_a_call_that_ends_past_the_deadline_is_reported_not_raised(tmp_path: Path) -> None:
    clock = FakeClock()
    seen: list[Violation] = []
    budgets = load(tmp_path, monotonic=clock, on_violation=seen.append)
    with budgets.request("support-reply", deadline_ms=2000) as req:
        clock.advance(1000)
        req.before_call(messages=SHORT)
        clock.advance(1600)  # ends at 2,600 ms
        record = req.after_call(USAGE)
    assert record.latency_ms == pytest.approx(1600)
    (violation,) = record.violations
    assert violation.code == "PB117"
    assert (violation.measured, violation.limit) == (2600, 2000)
    assert "ended 600 ms past" in violation.message
    assert seen == [violation]


def test_warn_mode_logs_a_late_call_and_lets_it_go(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    budgets = load(tmp_path, monotonic=clock, mode="warn")
    with budgets.request("support-reply", deadline_ms=100) as req:
        clock.advance(150)
        with caplog.at_level(logging.WARNING, logger="promptbudget.runtime"):
            check = req.before_call(messages=SHORT)
    assert [v.code for v in check.violations] == ["PB117"]
    assert "PB117 latency-over-budget" in caplog.text


@pytest.mark.parametrize(
    ("limit", "deadline", "source"),
    [
        ("max_latency_ms: 3000", 3000, "max_latency_ms p95 of workflow 'support-reply'"),
        ("max_latency_ms: {p50: 1000, p95: 4000}", 4000, "max_latency_ms p95"),
        ("max_latency_ms: {p50: 1000}", 1000, "max_latency_ms p50"),
    ],
)
def test_the_deadline_defaults_to_the_workflows_max_latency_ms(
    tmp_path: Path, limit: str, deadline: int, source: str
) -> None:
    budgets = load(tmp_path, limit, monotonic=FakeClock())
    req = budgets.request("support-reply")
    assert req.deadline is not None
    assert req.deadline.ms == deadline
    assert source in req.deadline.source
    assert budgets.request("support-reply", deadline_ms=50).deadline.ms == 50  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", [0, -5, "3s", True])
def test_a_bad_deadline_is_a_config_error(tmp_path: Path, bad: Any) -> None:
    budgets = load(tmp_path)
    with pytest.raises(BudgetConfigError, match="deadline_ms must be"):
        budgets.request("support-reply", deadline_ms=bad)


def test_the_openai_wrapper_sends_the_time_left_as_the_sdk_timeout(tmp_path: Path) -> None:
    """The SDK's per-request ``timeout`` (seconds) reaches httpx as the request's timeout
    extension; a refused call is never sent."""
    pytest.importorskip("openai", reason="the openai package is not installed ([openai])")
    import httpx
    import openai

    from promptbudget.runtime.openai import guard_openai

    chat = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4.1-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Today."},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
    timeouts: list[Any] = []

    def respond(request: Any) -> Any:
        json.loads(request.content)
        timeouts.append(request.extensions.get("timeout"))
        return httpx.Response(200, json=chat)

    client = openai.OpenAI(
        api_key="test",
        base_url="http://fake-openai.local/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(respond)),
        max_retries=0,
    )
    clock = FakeClock()
    budgets = load(tmp_path, monotonic=clock)
    guarded = guard_openai(client, budgets)
    with budgets.request("support-reply", deadline_ms=2000):
        clock.advance(250)
        guarded.chat.completions.create(model="gpt-4.1-mini", messages=SHORT)
        guarded.chat.completions.create(model="gpt-4.1-mini", messages=SHORT, timeout=0.5)
        clock.advance(1750)
        with pytest.raises(BudgetExceeded):
            guarded.chat.completions.create(model="gpt-4.1-mini", messages=SHORT)
    assert len(timeouts) == 2
    assert timeouts[0]["read"] == pytest.approx(1.75)
    assert timeouts[1]["read"] == pytest.approx(0.5)
    with budgets.request("support-reply"):  # no deadline: the client's own timeout
        guarded.chat.completions.create(model="gpt-4.1-mini", messages=SHORT)
    assert timeouts[2]["read"] == pytest.approx(600)  # the SDK's default, 10 minutes
