"""The budgets of ``budgets.yaml``, enforced call by call inside the application.

``Budgets`` holds the loaded manifest, the spend store and the policies; ``Budgets.request``
opens one user request of a workflow. Each call goes through ``Request.before_call`` (count
what is about to be sent, run every check in ``CHECKS``, raise or warn) and
``Request.after_call`` (record the provider's usage, its cost and the spend).

The checks themselves are plain functions over a ``PendingCall`` in ``checks.py``, in a list,
so that a new kind of limit is one more function.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from promptbudget.pricing.resolve import resolve_model
from promptbudget.runtime.checks import (
    CHECKS,
    Deadline,
    PendingCall,
    ResolvedModel,
    StorePolicy,
    output_limit,
)
from promptbudget.runtime.messages import count_request, read_messages, read_tools
from promptbudget.runtime.outcome import (
    BudgetConfigError,
    BudgetExceeded,
    CallCheck,
    CallRecord,
    RequestTotals,
    Violation,
)
from promptbudget.runtime.spend import (
    MemoryStore,
    SpendStore,
    SpendStoreError,
    from_nano,
    period_keys,
    to_nano,
)
from promptbudget.runtime.usage import count_tool_calls, read_usage
from promptbudget.simulation import CallTokens, price_call
from promptbudget.tokenizers import get_tokenizer

if TYPE_CHECKING:
    from promptbudget.manifest.model import Manifest, Step, Workflow

Mode = Literal["raise", "warn"]
Outcome = Literal["ok", "warned", "refused"]

logger = logging.getLogger("promptbudget.runtime")

_current_request: contextvars.ContextVar[Request | None] = contextvars.ContextVar(
    "promptbudget_request", default=None
)
_current_step: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "promptbudget_step", default=None
)


def current_request() -> Request | None:
    """The request opened by the innermost ``with budgets.request(...)`` in this context."""
    return _current_request.get()


def current_step() -> str | None:
    """The step named by the innermost ``with request.step(...)`` in this context."""
    return _current_step.get()


class Budgets:
    """The manifest's budgets, for the application to enforce.

    ``mode``: ``"raise"`` (a call that would break a budget raises ``BudgetExceeded`` and is
    not sent) or ``"warn"`` (it is logged on the ``promptbudget.runtime`` logger and goes
    ahead). ``on_violation`` is called with every ``Violation`` in both modes (a metric hook).
    ``store`` keeps spend over time (default: this process only). ``on_store_error``:
    ``"open"`` (default: a store that cannot be reached is logged and the call goes ahead) or
    ``"closed"`` (the call is refused with PB107). ``monotonic`` is the clock request
    deadlines are measured on, in seconds (default ``time.monotonic``; tests pass a fake).
    """

    def __init__(
        self,
        manifest: Manifest,
        *,
        mode: Mode = "raise",
        store: SpendStore | None = None,
        on_store_error: StorePolicy = "open",
        on_violation: Callable[[Violation], None] | None = None,
        key_prefix: str = "promptbudget:",
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        if mode not in ("raise", "warn"):
            raise BudgetConfigError(f"mode must be 'raise' or 'warn', not {mode!r}")
        if on_store_error not in ("open", "closed"):
            raise BudgetConfigError(
                f"on_store_error must be 'open' or 'closed', not {on_store_error!r}"
            )
        self.manifest = manifest
        self.mode: Mode = mode
        self.store: SpendStore = store if store is not None else MemoryStore()
        self.on_store_error: StorePolicy = on_store_error
        self.on_violation = on_violation
        self.key_prefix = key_prefix
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.monotonic = monotonic or time.monotonic
        # Called after every before_call with the request, the check and the outcome ("ok",
        # "warned" or "refused"), before a refusal is raised: tracing hooks (see otel.py).
        self.observers: list[Callable[[Request, CallCheck, Outcome], None]] = []
        self._workflows: dict[str, Workflow] = {w.name: w for w in manifest.workflows}
        self._models: dict[str, ResolvedModel] = {}

    @classmethod
    def load(cls, path: str | Path | None = None, **options: Any) -> Budgets:
        """Load ``budgets.yaml`` (or a ``pyproject.toml`` with ``[tool.promptbudget]``) with
        the loader ``promptbudget check`` uses. Without ``path``: the nearest manifest from the
        current directory up. Keyword options are ``Budgets``'s."""
        from promptbudget.errors import ManifestError
        from promptbudget.manifest.loader import find_manifest, load_manifest
        from promptbudget.pathnames import forget_real

        forget_real()  # a long-lived process: a deploy may have moved a directory since
        if path is None:
            found = find_manifest(Path.cwd())
            if found is None:
                raise ManifestError(
                    "no budgets.yaml (or [tool.promptbudget] in pyproject.toml) in the current "
                    "directory or its parents; pass its path to Budgets.load"
                )
            path = found
        return cls(load_manifest(Path(path)), **options)

    def workflow(self, name: str) -> Workflow:
        try:
            return self._workflows[name]
        except KeyError:
            known = ", ".join(sorted(self._workflows)) or "none"
            raise BudgetConfigError(
                f"no workflow {name!r} in {self.manifest.display_path}; workflows: {known}"
            ) from None

    def request(
        self, workflow: str, *, step: str | None = None, deadline_ms: float | None = None
    ) -> Request:
        """One user request of ``workflow``; use it as a context manager.

        ``deadline_ms``: how long the request may take from now; without it, the workflow's
        ``max_latency_ms`` (its p95, else its p50), else no deadline. Each call then gets the
        time left (``Request.remaining_ms``, the SDK ``timeout`` the integrations set); a call
        started past the deadline is refused (PB117), one that ends past it is reported."""
        found = self.workflow(workflow)
        deadline = None
        if deadline_ms is not None:
            if isinstance(deadline_ms, bool) or not isinstance(deadline_ms, (int, float)):
                raise BudgetConfigError(f"deadline_ms must be a number, not {deadline_ms!r}")
            if not deadline_ms > 0:
                raise BudgetConfigError(f"deadline_ms must be above 0, not {deadline_ms!r}")
            deadline = Deadline(float(deadline_ms), "deadline_ms given to budgets.request")
        else:
            limit = found.limits.max_latency_ms
            if limit is not None:
                statistic, value = limit.items()[-1]  # the p95 when given
                deadline = Deadline(value, f"max_latency_ms {statistic} of workflow '{workflow}'")
        return Request(self, found, step=step, deadline=deadline)

    def spend(self, workflow: str) -> tuple[Decimal, Decimal]:
        """Spend recorded for ``workflow`` this UTC month and this UTC day, in USD."""
        self.workflow(workflow)
        month, day = self.store.get(period_keys(self.key_prefix, workflow, self.clock()))
        return from_nano(month), from_nano(day)

    def resolve_model(self, name: str) -> ResolvedModel:
        """Catalog entry and tokenizer of ``name``, as ``count`` and ``estimate`` pick them
        (resolved once per name)."""
        resolved = self._models.get(name)
        if resolved is None:
            choice = resolve_model(name, self.manifest.catalog)
            resolved = ResolvedModel(name, choice.price, get_tokenizer(choice.tokenizer))
            self._models[name] = resolved
        return resolved

    def report(self, violations: tuple[Violation, ...], *, can_raise: bool) -> None:
        """Tell the hook and the log; raise in raise mode when the call can still be stopped."""
        for violation in violations:
            if self.on_violation is not None:
                self.on_violation(violation)
        if not violations:
            return
        if can_raise and self.mode == "raise":
            raise BudgetExceeded(violations)
        for violation in violations:
            logger.warning("%s %s: %s", violation.code, violation.slug, violation.message)


def _added(
    totals: RequestTotals, tokens: CallTokens, tool_calls: int, cost: Decimal | None
) -> RequestTotals:
    """``totals`` with one more recorded call."""
    return replace(
        totals,
        calls=totals.calls + 1,
        tool_calls=totals.tool_calls + tool_calls,
        input_tokens=totals.input_tokens + tokens.input_tokens,
        output_tokens=totals.output_tokens + tokens.output_tokens,
        cache_read_tokens=totals.cache_read_tokens + tokens.cache_read_tokens,
        cache_write_tokens=(
            totals.cache_write_tokens + tokens.cache_write_tokens + tokens.cache_write_1h_tokens
        ),
        cost_usd=totals.cost_usd + (cost or 0),
        unpriced_calls=totals.unpriced_calls + (cost is None),
    )


@dataclass
class _State:
    totals: RequestTotals = field(default_factory=RequestTotals)
    turns: dict[str | None, int] = field(default_factory=dict)
    steps: dict[str | None, RequestTotals] = field(default_factory=dict)  # totals per step
    last_model: str | None = None
    last_step: str | None = None


class Request:
    """One user request of a workflow: running totals, and the check of each call.

    Thread-safe enough for one request handled by one thread or one asyncio task; share a
    ``Budgets``, not a ``Request``, between concurrent requests.
    """

    def __init__(
        self,
        budgets: Budgets,
        workflow: Workflow,
        *,
        step: str | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        self.budgets = budgets
        self.workflow = workflow
        self.default_step = step
        self.deadline = deadline
        self._started = budgets.monotonic()
        self._call_started: float | None = None
        self._state = _State()
        self._tokens: list[contextvars.Token[Request | None]] = []
        self.records: list[CallRecord] = []
        self.last_check: CallCheck | None = None  # of the latest before_call
        self.last_outcome: Outcome | None = None
        if step is not None:
            self._step(step)

    # -- context ------------------------------------------------------------------------

    def __enter__(self) -> Request:
        self._tokens.append(_current_request.set(self))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _current_request.reset(self._tokens.pop())

    @contextmanager
    def step(self, name: str) -> Iterator[Request]:
        """Name the step of the calls made inside (for integrations that call for you)."""
        self._step(name)
        token = _current_step.set(name)
        try:
            yield self
        finally:
            _current_step.reset(token)

    # -- time ---------------------------------------------------------------------------

    @property
    def elapsed_ms(self) -> float:
        """Milliseconds since the request was opened, on the ``Budgets``' clock."""
        return (self.budgets.monotonic() - self._started) * 1000

    @property
    def remaining_ms(self) -> float | None:
        """Milliseconds left before the deadline (0 once past it); None without one."""
        if self.deadline is None:
            return None
        return max(self.deadline.ms - self.elapsed_ms, 0.0)

    def timeout(self, requested: float | None = None) -> float | None:
        """The SDK ``timeout`` (seconds) for the next call: the time left, or ``requested``
        when that is shorter; ``requested`` alone without a deadline."""
        remaining = self.remaining_ms
        if remaining is None:
            return requested
        left = remaining / 1000
        return left if requested is None else min(left, requested)

    # -- state --------------------------------------------------------------------------

    @property
    def totals(self) -> RequestTotals:
        return self._state.totals

    def turns_of(self, step: str | None) -> int:
        return self._state.turns.get(step, 0)

    def totals_of(self, step: str | None) -> RequestTotals:
        """The running totals of one step's calls in this request."""
        return self._state.steps.get(step, RequestTotals())

    def _step(self, name: str | None) -> Step | None:
        if name is None:
            return None
        for step in self.workflow.steps:
            if step.name == name:
                return step
        known = ", ".join(step.name for step in self.workflow.steps)
        raise BudgetConfigError(
            f"workflow '{self.workflow.name}' has no step {name!r}; steps: {known}"
        )

    def _model_of(self, step: Step | None, model: str | None) -> str:
        if model:
            return model
        if step is not None and step.model:
            return step.model
        if step is None or step.route is None:
            default = self.budgets.manifest.default_model
            if default:
                return default
        where = f"step '{step.name}' uses route '{step.route}'" if step and step.route else ""
        raise BudgetConfigError(
            f"which model does this call of workflow '{self.workflow.name}' use? pass model="
            + (f" ({where})" if where else " (no step model and no defaults.model)")
        )

    # -- calls --------------------------------------------------------------------------

    def preflight(
        self,
        step: str | None = None,
        model: str | None = None,
        messages: Any = None,
        tools: Any = None,
        *,
        system: Any = None,
        max_output_tokens: int | None = None,
    ) -> CallCheck:
        """Count the call and run every check, recording nothing and raising nothing.

        ``messages`` is a chat-completions message list, a responses-API ``input`` (text or
        items) or an Anthropic message list; ``system`` is Anthropic's ``system`` or the
        responses API's ``instructions``; ``max_output_tokens`` is the call's
        ``max_tokens``/``max_completion_tokens``/``max_output_tokens``.
        """
        return self._check(self._pending(step, model, messages, tools, system, max_output_tokens))

    def before_call(
        self,
        step: str | None = None,
        model: str | None = None,
        messages: Any = None,
        tools: Any = None,
        *,
        system: Any = None,
        max_output_tokens: int | None = None,
        enforce: bool = True,
    ) -> CallCheck:
        """``preflight``, then: raise ``BudgetExceeded`` (raise mode) or log and call the hook
        (warn mode) when a budget would break; otherwise the call counts (its turn is
        recorded) and ``after_call`` may follow. Returns the check either way in warn mode.
        ``enforce=False`` reports as warn mode does whatever the mode (for hooks that cannot
        stop the call)."""
        pending = self._pending(step, model, messages, tools, system, max_output_tokens)
        result = self._check(pending)
        outcome: Outcome = "ok"
        if result.violations:
            outcome = "refused" if enforce and self.budgets.mode == "raise" else "warned"
        self.last_check, self.last_outcome = result, outcome
        for observer in self.budgets.observers:
            observer(self, result, outcome)
        self.budgets.report(result.violations, can_raise=enforce)
        if pending.is_new_turn:
            state, name = self._state, pending.step_name
            state.turns[name] = self.turns_of(name) + 1
            state.totals = replace(state.totals, turns=state.totals.turns + 1)
            state.steps[name] = replace(self.totals_of(name), turns=self.turns_of(name))
        self._state.last_model = pending.model.name
        self._state.last_step = pending.step_name
        self._call_started = self.budgets.monotonic()
        return result

    def after_call(
        self,
        usage: Any = None,
        *,
        response: Any = None,
        model: str | None = None,
        tool_calls: int | None = None,
    ) -> CallRecord:
        """Record what the provider reports: ``usage`` (OpenAI chat or responses, Anthropic,
        LiteLLM), or ``response`` (its ``usage`` and the tool calls it asks for). The cost is
        priced with the catalog and formulas of ``estimate``, added to the request's totals
        and to the workflow's spend. Never raises for a budget: the call was already made."""
        if usage is None and response is not None:
            usage = getattr(response, "usage", None)
            if usage is None and isinstance(response, Mapping):
                usage = response.get("usage")
        tokens = read_usage(usage) if usage is not None else CallTokens(0, 0)
        if tool_calls is None:
            tool_calls = count_tool_calls(response) if response is not None else 0
        name = model or self._state.last_model
        if name is None:
            raise BudgetConfigError("after_call without a model: call before_call first")
        step_name = self._state.last_step
        resolved = self.budgets.resolve_model(name)
        cost = price_call(resolved.price, tokens).total_usd if resolved.price else None
        state = self._state
        state.totals = _added(state.totals, tokens, tool_calls, cost)
        state.steps[step_name] = _added(self.totals_of(step_name), tokens, tool_calls, cost)
        if cost is not None:
            self._record_spend(cost)
        now = self.budgets.monotonic()
        latency_ms = (now - self._call_started) * 1000 if self._call_started is not None else None
        self._call_started = None
        violations = tuple(self._after_violations(tokens, step_name, (now - self._started) * 1000))
        self.budgets.report(violations, can_raise=False)
        record = CallRecord(
            workflow=self.workflow.name,
            step=step_name,
            model=name,
            input_tokens=tokens.input_tokens,
            output_tokens=tokens.output_tokens,
            cache_read_tokens=tokens.cache_read_tokens,
            cache_write_tokens=tokens.cache_write_tokens + tokens.cache_write_1h_tokens,
            tool_calls=tool_calls,
            cost_usd=cost,
            violations=violations,
            latency_ms=latency_ms,
        )
        self.records.append(record)
        return record

    def _after_violations(
        self, tokens: CallTokens, step_name: str | None, elapsed_ms: float
    ) -> Iterator[Violation]:
        deadline = self.deadline
        if deadline is not None and elapsed_ms > deadline.ms:
            yield Violation(
                "PB117",
                "latency-over-budget",
                f"the call ended {elapsed_ms - deadline.ms:,.0f} ms past the request's "
                f"{deadline.ms:,.0f} ms deadline ({deadline.source}); the request has run "
                f"{elapsed_ms:,.0f} ms",
                workflow=self.workflow.name,
                step=step_name,
                measured=round(elapsed_ms),
                limit=round(deadline.ms),
                unit="ms",
            )
        limit = output_limit(self.workflow, self._step(step_name))
        if limit is not None and tokens.output_tokens > limit:
            yield Violation(
                "PB102",
                "output-over-budget",
                f"the call replied with {tokens.output_tokens:,} output tokens, over "
                f"max_output_tokens {limit:,} (set max_tokens on the call)",
                workflow=self.workflow.name,
                step=step_name,
                measured=tokens.output_tokens,
                limit=limit,
                unit="tokens",
            )

    def _record_spend(self, cost: Decimal) -> None:
        limits = self.workflow.limits
        if limits.max_monthly_spend is None and limits.max_daily_spend is None:
            return
        budgets = self.budgets
        keys = period_keys(budgets.key_prefix, self.workflow.name, budgets.clock())
        try:
            budgets.store.add(keys, to_nano(cost))
        except SpendStoreError as err:
            logger.error("spend of $%s not recorded: %s", cost, err)

    def _pending(
        self,
        step_name: str | None,
        model: str | None,
        messages: Any,
        tools: Any,
        system: Any,
        max_output_tokens: int | None,
    ) -> PendingCall:
        step_name = step_name or current_step() or self.default_step
        if step_name is None and len(self.workflow.steps) == 1:
            step_name = self.workflow.steps[0].name
        step = self._step(step_name)
        resolved = self.budgets.resolve_model(self._model_of(step, model))
        read = read_messages(messages, system=system)
        counted = count_request(read, resolved.tokenizer, read_tools(tools))
        limit = output_limit(self.workflow, step)
        if max_output_tokens is not None:
            bound, source = max_output_tokens, "the call's max_output_tokens"
        elif limit is not None:
            bound, source = limit, "max_output_tokens of the step or workflow"
        elif step is not None and step.output_tokens is not None:
            from promptbudget.manifest.model import worst  # loaded with the manifest

            bound, source = worst(step.output_tokens), "the step's output_tokens (p95)"
        else:
            bound, source = 0, "none (input only)"
        projected = (
            price_call(resolved.price, CallTokens(counted.input_tokens, bound)).total_usd
            if resolved.price is not None
            else None
        )
        return PendingCall(
            workflow=self.workflow,
            step=step,
            step_name=step_name,
            model=resolved,
            messages=read,
            input_tokens=counted.input_tokens,
            is_exact=counted.is_exact,
            max_output_tokens=max_output_tokens,
            output_bound=bound,
            output_bound_source=source,
            projected_cost_usd=projected,
            is_new_turn=not read or not read[-1].is_tool_result,
            step_turns=self.turns_of(step_name),
            totals=self._state.totals,
            step_totals=self.totals_of(step_name),
            read_spend=partial(self.budgets.spend, self.workflow.name),
            on_store_error=self.budgets.on_store_error,
            deadline=self.deadline,
            elapsed_ms=self.elapsed_ms,
        )

    def _check(self, call: PendingCall) -> CallCheck:
        violations = tuple(violation for check in CHECKS for violation in check(call))
        return CallCheck(
            workflow=self.workflow.name,
            step=call.step_name,
            model=call.model.name,
            input_tokens=call.input_tokens,
            is_exact=call.is_exact,
            output_bound=call.output_bound,
            output_bound_source=call.output_bound_source,
            projected_cost_usd=call.projected_cost_usd,
            is_new_turn=call.is_new_turn,
            violations=violations,
        )
