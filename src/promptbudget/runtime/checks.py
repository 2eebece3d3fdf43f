"""The run-time checks: one function per kind of limit, over a ``PendingCall``.

``CHECKS`` is the list ``Request.before_call`` runs, in order; a new kind of limit is one more
function here (and one more entry), fed by a field of ``PendingCall``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from promptbudget.runtime.messages import ChatMessage
from promptbudget.runtime.outcome import RequestTotals, Violation
from promptbudget.runtime.spend import SpendStoreError
from promptbudget.simulation import select_rates

if TYPE_CHECKING:
    from promptbudget.manifest.model import Limits, Step, Workflow
    from promptbudget.pricing.catalog import ModelPrice
    from promptbudget.tokenizers import Tokenizer

StorePolicy = Literal["open", "closed"]

logger = logging.getLogger("promptbudget.runtime")


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    price: ModelPrice | None
    tokenizer: Tokenizer


@dataclass(frozen=True)
class PendingCall:
    """A call about to be sent, with everything the checks need: the call, and the state of
    its request (``step_turns``, ``totals``) and of the workflow's spend (``read_spend``)."""

    workflow: Workflow
    step: Step | None
    step_name: str | None
    model: ResolvedModel
    messages: tuple[ChatMessage, ...]
    input_tokens: int
    is_exact: bool
    max_output_tokens: int | None  # what the call asks for
    output_bound: int
    output_bound_source: str
    projected_cost_usd: Decimal | None
    is_new_turn: bool
    step_turns: int  # turns this step of the request has started before this call
    totals: RequestTotals  # the request's calls recorded so far
    step_totals: RequestTotals  # the same, for this step's calls only
    # This UTC month's and day's recorded spend of the workflow, in USD (may raise
    # SpendStoreError), and what to do then.
    read_spend: Callable[[], tuple[Decimal, Decimal]]
    on_store_error: StorePolicy
    # The request's deadline (milliseconds from when it was opened) and where it comes from,
    # and the time it has run so far; None: no deadline.
    deadline: Deadline | None = None
    elapsed_ms: float = 0.0

    def violation(self, code: str, slug: str, message: str, **values: Any) -> Violation:
        return Violation(
            code,
            slug,
            message,
            workflow=self.workflow.name,
            step=self.step_name,
            **values,
        )


@dataclass(frozen=True)
class Deadline:
    """How long a request may take (milliseconds) and where that figure comes from."""

    ms: float
    source: str  # "deadline_ms given to budgets.request", "max_latency_ms p95 of ..."


Check = Callable[[PendingCall], Iterator[Violation]]


def _levels(call: PendingCall) -> list[tuple[str, Limits]]:
    """The limits that apply to the call: the workflow's, then its step's (issue 14's
    ``steps[i].limits``: on that step alone)."""
    levels = [("", call.workflow.limits)]
    if call.step is not None:
        levels.append((f" of step '{call.step.name}'", call.step.limits))
    return levels


def _tightest(call: PendingCall, key: str) -> tuple[int, str] | None:
    """The smallest of a token or count limit over the levels, and where it is set."""
    found = [(getattr(limits, key), where) for where, limits in _levels(call)]
    given = [(value, where) for value, where in found if value is not None]
    return min(given, key=lambda item: item[0]) if given else None


def check_input_tokens(call: PendingCall) -> Iterator[Violation]:
    tightest = _tightest(call, "max_input_tokens")
    if tightest is None:
        return
    limit, where = tightest
    if call.input_tokens > limit:
        yield call.violation(
            "PB101",
            "input-over-budget",
            f"the call sends {call.input_tokens:,} input tokens, over max_input_tokens{where} "
            f"{limit:,} by {call.input_tokens - limit:,}",
            measured=call.input_tokens,
            limit=limit,
            unit="tokens",
            tokens_to_cut=call.input_tokens - limit,
        )


def output_limit(workflow: Workflow, step: Step | None) -> int | None:
    """The tightest output limit of a call of ``step``: the workflow's ``max_output_tokens``,
    the step's ``limits.max_output_tokens`` and the step's ``max_output_tokens`` cap."""
    limits = [workflow.limits.max_output_tokens]
    if step is not None:
        limits += [step.limits.max_output_tokens, step.max_output_tokens]
    given = [limit for limit in limits if limit is not None]
    return min(given) if given else None


def check_output_tokens(call: PendingCall) -> Iterator[Violation]:
    limit = output_limit(call.workflow, call.step)
    if limit is not None and call.max_output_tokens is not None and call.max_output_tokens > limit:
        yield call.violation(
            "PB102",
            "output-over-budget",
            f"the call allows up to {call.max_output_tokens:,} output tokens, over "
            f"max_output_tokens {limit:,}",
            measured=call.max_output_tokens,
            limit=limit,
            unit="tokens",
        )


def check_turns(call: PendingCall) -> Iterator[Violation]:
    tightest = _tightest(call, "max_turns")
    if tightest is None or not call.is_new_turn:
        return
    limit, where = tightest
    turns = call.step_turns + 1
    if turns > limit:
        of = f"step '{call.step_name}'" if call.step_name else "the request"
        yield call.violation(
            "PB104",
            "turns-over-budget",
            f"this call starts turn {turns} of {of}, over max_turns{where} {limit}",
            measured=turns,
            limit=limit,
            unit="turns",
        )


def check_tool_calls(call: PendingCall) -> Iterator[Violation]:
    for where, limits in _levels(call):
        limit = limits.max_tool_calls
        made = call.step_totals.tool_calls if where else call.totals.tool_calls
        if limit is not None and made > limit:
            who = f"step '{call.step_name}'" if where else "the request"
            yield call.violation(
                "PB105",
                "tool-calls-over-budget",
                f"{who} has made {made} tool calls, over max_tool_calls{where} {limit}",
                measured=made,
                limit=limit,
                unit="tool_calls",
            )


def _cut_for_cost(call: PendingCall, excess: Decimal) -> int | None:
    """Input tokens whose price is ``excess``, when removing them can close the gap."""
    price = call.model.price
    if price is None:
        return None
    rate = select_rates(price, call.input_tokens).input_per_mtok / Decimal(1_000_000)
    if rate <= 0:
        return None
    needed = math.ceil(excess / rate)
    return needed if needed <= call.input_tokens else None


def _unpriced(call: PendingCall, key: str) -> Violation:
    return call.violation(
        "PB110",
        "unknown-model",
        f"model {call.model.name!r} has no price, so {key} cannot be enforced; add it under "
        "models: in budgets.yaml",
        measured=None,
        limit=None,
        unit="usd",
    )


def check_request_cost(call: PendingCall) -> Iterator[Violation]:
    """The request's cost so far (or its step's, for a step's limit) plus this call's."""
    for where, limits in _levels(call):
        limit = limits.max_cost_per_request
        if limit is None:
            continue
        if call.projected_cost_usd is None:
            yield _unpriced(call, f"max_cost_per_request{where}")
            return
        spent = call.step_totals.cost_usd if where else call.totals.cost_usd
        measured = spent + call.projected_cost_usd
        if measured > limit.amount:
            who = f"step '{call.step_name}'" if where else "the request"
            yield call.violation(
                "PB106",
                "cost-per-request-over-budget",
                f"{who} would cost ${measured} (${spent} spent, this call up to "
                f"${call.projected_cost_usd}), over max_cost_per_request{where} "
                f"${limit.amount}",
                measured=measured,
                limit=limit.amount,
                unit="usd",
                tokens_to_cut=_cut_for_cost(call, measured - limit.amount),
            )


def check_spend(call: PendingCall) -> Iterator[Violation]:
    limits = call.workflow.limits
    periods = [
        (key, limit)
        for key, limit in (
            ("max_monthly_spend", limits.max_monthly_spend),
            ("max_daily_spend", limits.max_daily_spend),
        )
        if limit is not None
    ]
    if not periods:
        return
    if call.projected_cost_usd is None:
        yield _unpriced(call, periods[0][0])
        return
    try:
        month, day = call.read_spend()
    except SpendStoreError as err:
        if call.on_store_error == "open":
            logger.warning("spend store unavailable, call allowed (on_store_error=open): %s", err)
            return
        yield call.violation(
            "PB107",
            "monthly-spend-over-budget",
            f"the spend store is unavailable and on_store_error is 'closed': {err}",
            measured=None,
            limit=periods[0][1],
            unit="usd",
        )
        return
    spent = {"max_monthly_spend": month, "max_daily_spend": day}
    for key, limit in periods:
        measured = spent[key] + call.projected_cost_usd
        if measured > limit:
            period = "month" if key == "max_monthly_spend" else "day"
            yield call.violation(
                "PB107",
                "monthly-spend-over-budget",
                f"workflow '{call.workflow.name}' has spent ${spent[key]} this {period} (UTC); "
                f"this call (up to ${call.projected_cost_usd}) would take it over {key} "
                f"${limit}",
                measured=measured,
                limit=limit,
                unit="usd",
                tokens_to_cut=_cut_for_cost(call, measured - limit),
            )


def check_deadline(call: PendingCall) -> Iterator[Violation]:
    """A call started once the request's deadline has passed is refused: it could only end
    later still."""
    deadline = call.deadline
    if deadline is not None and call.elapsed_ms >= deadline.ms:
        yield call.violation(
            "PB117",
            "latency-over-budget",
            f"the request has run {call.elapsed_ms:,.0f} ms of its {deadline.ms:,.0f} ms "
            f"deadline ({deadline.source}): no time is left for this call",
            measured=round(call.elapsed_ms),
            limit=round(deadline.ms),
            unit="ms",
        )


CHECKS: list[Check] = [
    check_input_tokens,
    check_output_tokens,
    check_turns,
    check_tool_calls,
    check_request_cost,
    check_spend,
    check_deadline,
]
