"""The LiteLLM callback against the real ``litellm`` SDK and a fake OpenAI-compatible server
on localhost (``http.server`` in a thread): no network."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_runtime_deadline import FakeClock, load

from promptbudget.runtime import BudgetExceeded, Budgets, Violation

# The SDK and the callback, imported by ``_sdk`` when these tests run: importing litellm
# takes 3 s of CPU, which every test process paid when this module was collected.
litellm: Any = None
PromptBudgetCallback: Any = None


@pytest.fixture(autouse=True, scope="module")
def _sdk() -> None:
    global litellm, PromptBudgetCallback
    # LiteLLM fetches its price map from GitHub at import unless told to use its bundled copy.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    litellm = pytest.importorskip("litellm", reason="the litellm package is not installed")
    from promptbudget.runtime.litellm import PromptBudgetCallback as callback

    PromptBudgetCallback = callback


# LiteLLM's own models warn as they are built (pydantic on ReadOnly TypedDicts): not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Items? .* using the `ReadOnly` qualifier:UserWarning"
)

MANIFEST = """\
version: 1
defaults: {model: gpt-4.1-mini}
workflows:
  support-reply:
    steps:
      - {name: answer, prompt: answer.j2}
    limits:
      max_input_tokens: 100
"""

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4.1-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Ships today."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
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
# 1,000 in + 500 out on gpt-4.1-mini ($0.40 / $1.60 per million): $0.0004 + $0.0008.
COST = Decimal("0.0012")
SHORT = [{"role": "user", "content": "Where is my order?"}]
LONG = [{"role": "user", "content": "word " * 200}]


class FakeServer:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                bodies.append(json.loads(self.rfile.read(length)))
                out = json.dumps(RESPONSE if self.path.endswith("/responses") else CHAT).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def call(self, **kwargs: Any) -> dict[str, Any]:
        return {"model": "openai/gpt-4.1-mini", "api_base": self.url, "api_key": "test", **kwargs}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.thread.start()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()
    fake.thread.join()


@pytest.fixture
def budgets(tmp_path: Path) -> Budgets:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "answer.j2").write_text("Hi\n", encoding="utf-8")
    (tmp_path / "budgets.yaml").write_text(MANIFEST, encoding="utf-8")
    return Budgets.load(tmp_path / "budgets.yaml")


def install(monkeypatch: pytest.MonkeyPatch, callback: PromptBudgetCallback) -> threading.Event:
    """Register ``callback`` alone (LiteLLM copies callbacks into its per-event lists: those
    are restored after the test too); the event is set each time it records a call."""
    for name in (
        "input_callback",
        "success_callback",
        "failure_callback",
        "_async_input_callback",
        "_async_success_callback",
        "_async_failure_callback",
    ):
        monkeypatch.setattr(litellm, name, [])
    monkeypatch.setattr(litellm, "callbacks", [callback])
    recorded = threading.Event()
    original = callback._after

    def after(kwargs: Any, response: Any) -> None:
        original(kwargs, response)
        recorded.set()

    monkeypatch.setattr(callback, "_after", after)
    return recorded


def test_async_call_over_budget_is_refused_before_it_is_sent(
    budgets: Budgets, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = install(monkeypatch, PromptBudgetCallback(budgets))
    sent = len(server.bodies)

    async def scenario() -> tuple[Decimal, str]:
        with budgets.request("support-reply") as req:
            reply = await litellm.acompletion(**server.call(messages=SHORT))
            assert reply.choices[0].message.content == "Ships today."
            assert await asyncio.to_thread(recorded.wait, 30)
            try:
                await litellm.acompletion(**server.call(messages=LONG))
            except BudgetExceeded as err:
                return req.totals.cost_usd, err.code
        raise AssertionError("the long call was not refused")

    cost, code = asyncio.run(scenario())
    assert code == "PB101"
    assert cost == COST
    assert len(server.bodies) == sent + 1  # the refused call never reached the server


def test_metadata_names_the_workflow_outside_a_request(
    budgets: Budgets, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, PromptBudgetCallback(budgets))
    metadata = {"promptbudget_workflow": "support-reply", "promptbudget_step": "answer"}
    sent = len(server.bodies)

    async def scenario() -> None:
        await litellm.acompletion(**server.call(messages=LONG, metadata=metadata))

    with pytest.raises(BudgetExceeded) as raised:
        asyncio.run(scenario())
    assert (raised.value.code, raised.value.violation.step) == ("PB101", "answer")
    assert len(server.bodies) == sent


def test_sync_completion_is_recorded_and_warned_about(
    budgets: Budgets, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Violation] = []
    budgets.on_violation = seen.append
    recorded = install(monkeypatch, PromptBudgetCallback(budgets, workflow="support-reply"))
    with budgets.request("support-reply") as req:
        litellm.completion(**server.call(messages=LONG))
        assert recorded.wait(30)
    assert [v.code for v in seen] == ["PB101"]  # LiteLLM cannot stop a sync call: a warning
    assert (req.totals.calls, req.totals.cost_usd) == (1, COST)


def test_async_responses_api_is_guarded_and_recorded(
    budgets: Budgets, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = install(monkeypatch, PromptBudgetCallback(budgets))
    sent = len(server.bodies)

    async def scenario() -> tuple[Decimal, str]:
        with budgets.request("support-reply") as req:
            await litellm.aresponses(**server.call(input="Where is my order?"))
            assert await asyncio.to_thread(recorded.wait, 30)
            try:
                await litellm.aresponses(**server.call(input="word " * 200))
            except BudgetExceeded as err:
                return req.totals.cost_usd, err.code
        raise AssertionError("the long call was not refused")

    cost, code = asyncio.run(scenario())
    assert (cost, code) == (COST, "PB101")
    assert len(server.bodies) == sent + 1


def test_the_litellm_pre_call_hook_returns_the_call_with_the_time_left(tmp_path: Path) -> None:
    """LiteLLM sends the keyword arguments ``async_pre_call_deployment_hook`` returns
    (litellm.utils.async_pre_call_deployment_hook); ``timeout`` is its per-call seconds. Here,
    not in test_runtime_deadline.py, so that one test process imports litellm (3 s of CPU)."""
    clock = FakeClock()
    budgets = load(tmp_path, monotonic=clock)
    callback = PromptBudgetCallback(budgets)
    call = {"model": "gpt-4.1-mini", "messages": SHORT, "litellm_call_id": "c1"}

    async def scenario() -> tuple[Any, Any]:
        with budgets.request("support-reply", deadline_ms=3000):
            clock.advance(1000)
            timed = await callback.async_pre_call_deployment_hook(dict(call), None)
        with budgets.request("support-reply"):
            untimed = await callback.async_pre_call_deployment_hook(
                {**call, "litellm_call_id": "c2"}, None
            )
        return timed, untimed

    timed, untimed = asyncio.run(scenario())
    assert timed["timeout"] == pytest.approx(2.0)
    assert timed["messages"] == SHORT
    assert untimed is None  # no deadline: the call goes as LiteLLM built it
