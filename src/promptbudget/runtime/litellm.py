"""A LiteLLM callback that enforces the budgets: a pre-call hook and a success callback.

```python
import litellm
from promptbudget.runtime import Budgets
from promptbudget.runtime.litellm import PromptBudgetCallback

budgets = Budgets.load("budgets.yaml")
litellm.callbacks = [PromptBudgetCallback(budgets, workflow="support-reply")]
```

- **Pre-call hook** (``async_pre_call_deployment_hook``): LiteLLM runs it before every async
  call (``acompletion``, ``aresponses``, the ``Router`` and the proxy, which call them); it
  runs ``before_call`` and a call that would break a budget raises ``BudgetExceeded`` there,
  before anything is sent.
- **Success callback** (``log_success_event`` / ``async_log_success_event``): ``after_call``
  with the response's usage and tool calls.
- **Deadline**: in a request with a deadline the pre-call hook returns the call's arguments
  with ``timeout`` (seconds, LiteLLM's per-call parameter) cut to the time left, which
  LiteLLM sends; the sync path cannot change them.
- Sync ``litellm.completion``: LiteLLM gives a callback no way to stop a sync call (it
  catches what ``log_pre_api_call`` raises), so there the check runs in that hook and can only
  warn (log + ``on_violation``). Guard sync calls with ``req.before_call`` yourself, or use
  the async API.

The request a call belongs to: the innermost ``with budgets.request(...)`` (and
``req.step(...)``) around the call; else ``metadata={"promptbudget_workflow": ...,
"promptbudget_step": ...}`` on the call (what a proxy client can send); else the callback's
``workflow``/``step``: each call then is a request of its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from promptbudget.runtime.budgets import Budgets, Request, current_request, current_step
from promptbudget.runtime.openai import with_timeout
from promptbudget.runtime.outcome import BudgetConfigError

LITELLM_EXTRA_HINT = "pip install 'promptbudget-cli[litellm]'"

try:
    from litellm.integrations.custom_logger import CustomLogger
except ImportError as err:  # pragma: no cover - exercised only without litellm
    raise ImportError(f"promptbudget.runtime.litellm needs litellm: {LITELLM_EXTRA_HINT}") from err

logger = logging.getLogger("promptbudget.runtime")


class PromptBudgetCallback(CustomLogger):
    """Enforce ``budgets`` on LiteLLM calls (see the module docstring)."""

    def __init__(
        self, budgets: Budgets, *, workflow: str | None = None, step: str | None = None
    ) -> None:
        super().__init__()
        if workflow is not None:
            budgets.workflow(workflow)
        self.budgets = budgets
        self.workflow = workflow
        self.step = step
        self._calls: dict[str, tuple[Request, str | None]] = {}  # call id -> request, model
        self._lock = threading.Lock()

    # -- which request -------------------------------------------------------------------

    def _request(self, kwargs: Mapping[str, Any]) -> tuple[Request, str | None]:
        metadata = _metadata(kwargs)
        active = current_request()
        step = current_step() or metadata.get("promptbudget_step")
        if active is not None and active.budgets is self.budgets:
            return active, step or active.default_step or self.step
        workflow = metadata.get("promptbudget_workflow") or self.workflow
        if not workflow:
            raise BudgetConfigError(
                "a LiteLLM call outside 'with budgets.request(WORKFLOW)' and without "
                "metadata={'promptbudget_workflow': ...}: open a request, send the metadata, "
                "or give PromptBudgetCallback(budgets, workflow=...)"
            )
        step = step or self.step
        return self.budgets.request(str(workflow), step=step), step

    def _before(self, kwargs: Mapping[str, Any], *, enforce: bool) -> Request | None:
        call_id = kwargs.get("litellm_call_id")
        if call_id is not None:
            with self._lock:
                if call_id in self._calls:
                    return None  # already checked by the pre-call hook
        request, step = self._request(kwargs)
        # The pre-call hook gets the call's keyword arguments; the logging hook LiteLLM's
        # call details, with the model parameters under optional_params.
        params = {**(kwargs.get("optional_params") or {}), **kwargs}
        model = kwargs.get("model")
        if "messages" in params or "input" not in params:
            request.before_call(
                step=step,
                model=model,
                messages=params.get("messages"),
                tools=params.get("tools"),
                max_output_tokens=_first(params, "max_completion_tokens", "max_tokens"),
                enforce=enforce,
            )
        else:  # the responses API
            request.before_call(
                step=step,
                model=model,
                messages=params.get("input"),
                system=params.get("instructions"),
                tools=params.get("tools"),
                max_output_tokens=_first(params, "max_output_tokens"),
                enforce=enforce,
            )
        if call_id is not None:
            with self._lock:
                self._calls[call_id] = (request, model)
        return request

    def _after(self, kwargs: Mapping[str, Any], response: Any) -> None:
        call_id = kwargs.get("litellm_call_id")
        with self._lock:
            found = self._calls.pop(call_id, None) if call_id is not None else None
        if found is None:
            return  # not a call this callback checked (or recorded already)
        request, model = found
        request.after_call(response=response, model=model)

    def _forget(self, kwargs: Mapping[str, Any]) -> None:
        call_id = kwargs.get("litellm_call_id")
        if call_id is not None:
            with self._lock:
                self._calls.pop(call_id, None)

    # -- LiteLLM's hooks -----------------------------------------------------------------

    async def async_pre_call_deployment_hook(
        self, kwargs: dict[str, Any], call_type: Any
    ) -> dict[str, Any] | None:
        request = self._before(kwargs, enforce=True)
        if request is None or request.deadline is None:
            return None
        return with_timeout(kwargs, request)  # LiteLLM sends the kwargs this returns

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: dict[str, Any]) -> None:
        """The sync path: LiteLLM swallows what this raises, so it can only warn."""
        try:
            self._before({"messages": messages, **kwargs}, enforce=False)
        except BudgetConfigError as err:
            logger.error("LiteLLM call not checked: %s", err)

    def log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._after(kwargs, response_obj)

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._after(kwargs, response_obj)

    def log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._forget(kwargs)

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._forget(kwargs)


def _metadata(kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    for source in (kwargs, kwargs.get("litellm_params") or {}):
        metadata = source.get("metadata") if isinstance(source, Mapping) else None
        if isinstance(metadata, Mapping):
            return metadata
    return {}


def _first(kwargs: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = kwargs.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
