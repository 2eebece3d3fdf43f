"""The OpenAI wrapper against the real ``openai`` SDK, served by an in-process fake endpoint
(``httpx.MockTransport``): no network. A refused call never reaches the endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from promptbudget.runtime import BudgetConfigError, BudgetExceeded, Budgets

openai = pytest.importorskip("openai", reason="the openai package is not installed ([openai])")
httpx = pytest.importorskip("httpx", reason="httpx comes with openai")

from promptbudget.runtime.openai import guard_openai  # noqa: E402 - after the skip

MANIFEST = """\
version: 1
defaults: {model: gpt-4.1-mini}
workflows:
  support-reply:
    steps:
      - {name: classify, prompt: classify.j2, max_output_tokens: 20}
      - {name: answer, prompt: answer.j2}
    limits:
      max_input_tokens: 100
      max_tool_calls: 1
"""

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4.1-mini-2025-04-14",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Your order ships today."},
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 0},
    },
}
RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 0,
    "status": "completed",
    "model": "gpt-4.1-mini",
    "output": [
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Ships today.", "annotations": []}],
        }
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {
        "input_tokens": 1000,
        "output_tokens": 500,
        "total_tokens": 1500,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    },
}
PENDING = {**RESPONSE, "status": "in_progress", "output": [], "usage": None}
# 1,000 in + 500 out on gpt-4.1-mini ($0.40 / $1.60 per million): $0.0004 + $0.0008.
COST = Decimal("0.0012")


class FakeOpenAI:
    """Answers /chat/completions and /responses; remembers every request body it received."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def respond(self, request: Any) -> Any:
        body = json.loads(request.content)
        self.bodies.append(body)
        if request.url.path.endswith("/responses"):
            if body.get("stream"):
                events = [
                    {"type": "response.created", "sequence_number": 0, "response": PENDING},
                    {
                        "type": "response.output_text.delta",
                        "sequence_number": 1,
                        "item_id": "msg_1",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": "Ships today.",
                        "logprobs": [],
                    },
                    {"type": "response.completed", "sequence_number": 2, "response": RESPONSE},
                ]
                text = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
                return httpx.Response(
                    200, content=text.encode(), headers={"content-type": "text/event-stream"}
                )
            return httpx.Response(200, json=RESPONSE)
        if body.get("stream"):
            chunk = {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "gpt-4.1-mini",
            }
            events = [
                {
                    **chunk,
                    "choices": [{"index": 0, "delta": {"content": "Ships"}, "finish_reason": None}],
                },
                {**chunk, "choices": [], "usage": CHAT["usage"]},
            ]
            text = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
            return httpx.Response(
                200, content=text.encode(), headers={"content-type": "text/event-stream"}
            )
        return httpx.Response(200, json=CHAT)

    async def respond_async(self, request: Any) -> Any:
        return self.respond(request)

    def client(self) -> Any:
        transport = httpx.MockTransport(self.respond)
        return openai.OpenAI(
            api_key="test",
            base_url="http://fake-openai.local/v1",
            http_client=httpx.Client(transport=transport),
            max_retries=0,
        )

    def async_client(self) -> Any:
        transport = httpx.MockTransport(self.respond_async)
        return openai.AsyncOpenAI(
            api_key="test",
            base_url="http://fake-openai.local/v1",
            http_client=httpx.AsyncClient(transport=transport),
            max_retries=0,
        )


@pytest.fixture
def budgets(tmp_path: Path) -> Budgets:
    (tmp_path / "prompts").mkdir()
    for name in ("classify.j2", "answer.j2"):
        (tmp_path / "prompts" / name).write_text("Hi\n", encoding="utf-8")
    (tmp_path / "budgets.yaml").write_text(MANIFEST, encoding="utf-8")
    return Budgets.load(tmp_path / "budgets.yaml")


@pytest.fixture
def server() -> FakeOpenAI:
    return FakeOpenAI()


SHORT = [{"role": "user", "content": "Where is my order?"}]
LONG = [{"role": "user", "content": "word " * 200}]


def test_a_call_over_budget_is_refused_before_it_is_sent(
    budgets: Budgets, server: FakeOpenAI
) -> None:
    client = guard_openai(server.client(), budgets)
    with budgets.request("support-reply") as req, req.step("answer"):
        reply = client.chat.completions.create(model="gpt-4.1-mini", messages=SHORT)
        assert reply.choices[0].message.content == "Your order ships today."
        with pytest.raises(BudgetExceeded) as raised:
            client.chat.completions.create(model="gpt-4.1-mini", messages=LONG)
    assert raised.value.code == "PB101"
    assert len(server.bodies) == 1  # the refused call never reached the server
    assert (req.totals.calls, req.totals.cost_usd) == (1, COST)


def test_max_tokens_of_the_call_is_checked_against_the_step(
    budgets: Budgets, server: FakeOpenAI
) -> None:
    client = guard_openai(server.client(), budgets)
    with budgets.request("support-reply", step="classify"), pytest.raises(BudgetExceeded) as e:
        client.chat.completions.create(model="gpt-4.1-mini", messages=SHORT, max_tokens=50)
    assert e.value.code == "PB102"
    assert server.bodies == []


def test_responses_api_is_guarded_and_recorded(budgets: Budgets, server: FakeOpenAI) -> None:
    client = guard_openai(server.client(), budgets)
    with budgets.request("support-reply", step="answer") as req:
        reply = client.responses.create(
            model="gpt-4.1-mini", input="Where is my order?", instructions="Be brief."
        )
        assert reply.output_text == "Ships today."
        with pytest.raises(BudgetExceeded):
            client.responses.create(model="gpt-4.1-mini", input="word " * 200)
    assert len(server.bodies) == 1
    assert req.totals.cost_usd == COST


def test_a_streamed_chat_completion_asks_for_usage_and_records_it(
    budgets: Budgets, server: FakeOpenAI
) -> None:
    client = guard_openai(server.client(), budgets)
    with budgets.request("support-reply", step="answer") as req:
        stream = client.chat.completions.create(model="gpt-4.1-mini", messages=SHORT, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Ships"
    assert server.bodies[0]["stream_options"] == {"include_usage": True}
    assert (req.totals.calls, req.totals.cost_usd) == (1, COST)


def test_a_streamed_response_is_recorded_from_its_completed_event(
    budgets: Budgets, server: FakeOpenAI
) -> None:
    client = guard_openai(server.client(), budgets)
    with budgets.request("support-reply", step="answer") as req:
        stream = client.responses.create(model="gpt-4.1-mini", input="Where?", stream=True)
        kinds = [event.type for event in stream]
    assert kinds == ["response.created", "response.output_text.delta", "response.completed"]
    assert (req.totals.calls, req.totals.cost_usd) == (1, COST)


def test_the_async_client_is_guarded(budgets: Budgets, server: FakeOpenAI) -> None:
    client = guard_openai(server.async_client(), budgets)

    async def scenario() -> tuple[Decimal, str]:
        with budgets.request("support-reply", step="answer") as req:
            await client.chat.completions.create(model="gpt-4.1-mini", messages=SHORT)
            await client.responses.create(model="gpt-4.1-mini", input="Where is my order?")
            stream = await client.chat.completions.create(
                model="gpt-4.1-mini", messages=SHORT, stream=True
            )
            async for _ in stream:
                pass
            try:
                await client.chat.completions.create(model="gpt-4.1-mini", messages=LONG)
            except BudgetExceeded as err:
                return req.totals.cost_usd, err.code
        raise AssertionError("the long call was not refused")

    cost, code = asyncio.run(scenario())
    assert code == "PB101"
    assert cost == 3 * COST
    assert len(server.bodies) == 3


def test_outside_a_request_the_wrappers_workflow_makes_one_call_requests(
    budgets: Budgets, server: FakeOpenAI
) -> None:
    client = guard_openai(server.client(), budgets, workflow="support-reply", step="answer")
    client.chat.completions.create(model="gpt-4.1-mini", messages=SHORT)
    with pytest.raises(BudgetExceeded):
        client.chat.completions.create(model="gpt-4.1-mini", messages=LONG)
    assert len(server.bodies) == 1


def test_outside_a_request_without_a_workflow_is_a_clear_error(
    budgets: Budgets, server: FakeOpenAI
) -> None:
    client = guard_openai(server.client(), budgets)
    with pytest.raises(BudgetConfigError, match=r"outside 'with budgets\.request"):
        client.chat.completions.create(model="gpt-4.1-mini", messages=SHORT)
    assert server.bodies == []


def test_tool_calls_in_responses_count_towards_max_tool_calls(
    budgets: Budgets, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = [
        {"id": f"call_{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        for i in range(2)
    ]
    message = {"role": "assistant", "content": None, "tool_calls": calls}
    monkeypatch.setitem(CHAT, "choices", [{"index": 0, "message": message, "finish_reason": "x"}])
    client = guard_openai(server.client(), budgets)
    with budgets.request("support-reply", step="answer"):
        reply = client.chat.completions.create(model="gpt-4.1-mini", messages=SHORT)
        history: list[Any] = [*SHORT, reply.choices[0].message]
        history += [{"role": "tool", "tool_call_id": c["id"], "content": "ok"} for c in calls]
        with pytest.raises(BudgetExceeded) as raised:
            client.chat.completions.create(model="gpt-4.1-mini", messages=history)
    assert (raised.value.code, raised.value.measured) == ("PB105", 2)


def test_other_client_attributes_pass_through(budgets: Budgets, server: FakeOpenAI) -> None:
    raw = server.client()
    client = guard_openai(raw, budgets)
    assert client.base_url == raw.base_url
    assert client.models is not None


def test_something_that_is_not_a_client_is_refused(budgets: Budgets) -> None:
    not_a_client: Callable[[], None] = lambda: None  # noqa: E731
    with pytest.raises(TypeError, match="OpenAI or AsyncOpenAI client"):
        guard_openai(not_a_client, budgets)
