"""The OpenAI Python client, guarded: ``chat.completions.create`` and ``responses.create`` run
``before_call`` first (a call that would break a budget raises ``BudgetExceeded`` and is never
sent) and ``after_call`` with the response. Sync and async clients (``OpenAI``,
``AsyncOpenAI``, the Azure ones), streamed or not.

```python
from openai import OpenAI
from promptbudget.runtime import Budgets
from promptbudget.runtime.openai import guard_openai

budgets = Budgets.load("budgets.yaml")
client = guard_openai(OpenAI(), budgets)
with budgets.request("support-reply") as req, req.step("answer"):
    client.chat.completions.create(model="gpt-4.1", messages=msgs)
```

Calls made outside ``with budgets.request(...)`` (of the same ``Budgets``) are each a request
of their own of the ``workflow`` given to ``guard_openai``; without one they are refused with
a clear error. A streamed chat completion asks for usage in the stream
(``stream_options.include_usage``) unless the caller set ``stream_options``, so that it can be
recorded; a stream that ends without usage is recorded with no tokens. Everything else on the
client is passed through unguarded.

A request with a deadline (``budgets.request(W, deadline_ms=...)`` or the workflow's
``max_latency_ms``) sends each call with ``timeout`` set to the seconds it has left (the SDK's
per-request ``timeout``), so that a slow call fails instead of running past it.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from promptbudget.runtime.budgets import Budgets, Request, current_request, current_step
from promptbudget.runtime.outcome import BudgetConfigError

OPENAI_EXTRA_HINT = "pip install 'promptbudget-cli[openai]'"


def guard_openai(
    client: Any, budgets: Budgets, *, workflow: str | None = None, step: str | None = None
) -> Any:
    """``client`` with its ``chat.completions.create`` and ``responses.create`` guarded.

    ``workflow`` and ``step`` apply to calls made outside a ``budgets.request`` block (and
    ``step`` inside one that names none)."""
    if not hasattr(client, "chat") or not hasattr(client, "responses"):
        raise TypeError(
            f"guard_openai expects an OpenAI or AsyncOpenAI client ({OPENAI_EXTRA_HINT}), "
            f"not {type(client).__name__}"
        )
    if workflow is not None:
        budgets.workflow(workflow)  # an unknown name fails now, not on the first call
    return _GuardedClient(client, _Guard(budgets, workflow, step))


class _Guard:
    def __init__(self, budgets: Budgets, workflow: str | None, step: str | None) -> None:
        self.budgets = budgets
        self.workflow = workflow
        self.step = step

    def request(self) -> Request:
        active = current_request()
        if active is not None and active.budgets is self.budgets:
            return active
        if self.workflow is None:
            raise BudgetConfigError(
                "an OpenAI call outside 'with budgets.request(WORKFLOW)': open a request, or "
                "give guard_openai(client, budgets, workflow=...) for single-call requests"
            )
        return self.budgets.request(self.workflow, step=self.step)

    def call(self, create: Any, kwargs: dict[str, Any], api: str) -> Any:
        request = self.request()
        step = current_step() or request.default_step or self.step
        if api == "chat":
            request.before_call(
                model=kwargs.get("model"),
                messages=kwargs.get("messages"),
                tools=kwargs.get("tools"),
                max_output_tokens=_first(kwargs, "max_completion_tokens", "max_tokens"),
                step=step,
            )
            if kwargs.get("stream") and "stream_options" not in kwargs:
                kwargs = {**kwargs, "stream_options": {"include_usage": True}}
        else:
            request.before_call(
                model=kwargs.get("model"),
                messages=kwargs.get("input"),
                system=kwargs.get("instructions"),
                tools=kwargs.get("tools"),
                max_output_tokens=_first(kwargs, "max_output_tokens"),
                step=step,
            )
        kwargs = with_timeout(kwargs, request)
        model = kwargs.get("model")
        result = create(**kwargs)
        if inspect.isawaitable(result):
            return self._finish_async(result, request, model, streamed=bool(kwargs.get("stream")))
        if kwargs.get("stream"):
            return _GuardedStream(result, request, model)
        request.after_call(response=result, model=model)
        return result

    async def _finish_async(
        self, pending: Any, request: Request, model: str | None, *, streamed: bool
    ) -> Any:
        result = await pending
        if streamed:
            return _GuardedAsyncStream(result, request, model)
        request.after_call(response=result, model=model)
        return result


def with_timeout(kwargs: dict[str, Any], request: Request) -> dict[str, Any]:
    """``kwargs`` with the SDK's per-call ``timeout`` (seconds) cut to the time the request
    has left, when it has a deadline (a shorter ``timeout`` of the caller's is kept)."""
    given = kwargs.get("timeout")
    requested = (
        float(given) if isinstance(given, (int, float)) and not isinstance(given, bool) else None
    )
    if request.deadline is None or (given is not None and requested is None):
        return kwargs  # no deadline, or an httpx.Timeout of the caller's: left as given
    return {**kwargs, "timeout": request.timeout(requested)}


def _first(kwargs: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = kwargs.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _usage_of(event: Any) -> Any:
    """Usage carried by a stream event: a chat chunk's ``usage``, or the finished response
    of a responses-API ``response.completed`` event."""
    usage = getattr(event, "usage", None)
    if usage is not None:
        return usage
    response = getattr(event, "response", None)
    if response is not None and getattr(event, "type", "") == "response.completed":
        return getattr(response, "usage", None)
    return None


class _StreamRecorder:
    def __init__(self, stream: Any, request: Request, model: str | None) -> None:
        self._stream = stream
        self._request = request
        self._model = model
        self._usage: Any = None
        self._recorded = False

    def _see(self, event: Any) -> None:
        usage = _usage_of(event)
        if usage is not None:
            self._usage = usage

    def _record(self) -> None:
        if not self._recorded:
            self._recorded = True
            self._request.after_call(usage=self._usage, model=self._model)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _GuardedStream(_StreamRecorder):
    def __iter__(self) -> Iterator[Any]:
        try:
            for event in self._stream:
                self._see(event)
                yield event
        finally:
            self._record()

    def __enter__(self) -> _GuardedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stream.close()
        self._record()


class _GuardedAsyncStream(_StreamRecorder):
    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for event in self._stream:
                self._see(event)
                yield event
        finally:
            self._record()

    async def __aenter__(self) -> _GuardedAsyncStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stream.close()
        self._record()


class _Proxy:
    """Passes every attribute through to the wrapped object."""

    def __init__(self, wrapped: Any, guard: _Guard) -> None:
        self._wrapped = wrapped
        self._guard = guard

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


class _GuardedClient(_Proxy):
    @property
    def chat(self) -> _GuardedChat:
        return _GuardedChat(self._wrapped.chat, self._guard)

    @property
    def responses(self) -> _GuardedResponses:
        return _GuardedResponses(self._wrapped.responses, self._guard)


class _GuardedChat(_Proxy):
    @property
    def completions(self) -> _GuardedCompletions:
        return _GuardedCompletions(self._wrapped.completions, self._guard)


class _GuardedCompletions(_Proxy):
    def create(self, **kwargs: Any) -> Any:
        return self._guard.call(self._wrapped.create, kwargs, "chat")


class _GuardedResponses(_Proxy):
    def create(self, **kwargs: Any) -> Any:
        return self._guard.call(self._wrapped.create, kwargs, "responses")
