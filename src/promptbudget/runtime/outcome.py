"""What a run-time check finds: violations, the exception that carries them, and the check of
one call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from promptbudget.errors import PromptBudgetError


@dataclass(frozen=True)
class Violation:
    """One budget a call would break (or, after the call, did break).

    ``code`` and ``slug`` are the rule's, as ``promptbudget check`` reports them (``PB101
    input-over-budget``); ``measured`` and ``limit`` are in ``unit`` (``tokens``, ``turns``,
    ``tool_calls``, ``usd``, ``ms``). ``tokens_to_cut`` is how many input tokens the call must
    lose to fit, when cutting input can make it fit at all.
    """

    code: str
    slug: str
    message: str
    workflow: str
    step: str | None
    measured: int | Decimal | None
    limit: int | Decimal | None
    unit: str
    tokens_to_cut: int | None = None


class BudgetExceeded(Exception):  # named as the issue and the README do, not *Error
    """A call would break a budget; it was not sent. ``violations`` lists every broken one;
    ``code``, ``measured``, ``limit`` and ``tokens_to_cut`` are the first's."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        if not violations:
            raise ValueError("BudgetExceeded needs at least one violation")
        self.violations = tuple(violations)
        super().__init__("; ".join(f"{v.code} {v.slug}: {v.message}" for v in self.violations))

    @property
    def violation(self) -> Violation:
        return self.violations[0]

    @property
    def code(self) -> str:
        return self.violation.code

    @property
    def slug(self) -> str:
        return self.violation.slug

    @property
    def measured(self) -> int | Decimal | None:
        return self.violation.measured

    @property
    def limit(self) -> int | Decimal | None:
        return self.violation.limit

    @property
    def unit(self) -> str:
        return self.violation.unit

    @property
    def tokens_to_cut(self) -> int | None:
        return tokens_to_cut(self.violations)


class BudgetConfigError(PromptBudgetError):
    """The guard is used in a way the manifest cannot answer: an unknown workflow or step, or
    a call with no model."""


def tokens_to_cut(violations: Sequence[Violation]) -> int | None:
    """Input tokens to remove so that every violation goes away: 0 when there is none, None
    when one of them cannot be fixed by cutting input (turns, tool calls, output)."""
    needed = 0
    for violation in violations:
        if violation.tokens_to_cut is None:
            return None
        needed = max(needed, violation.tokens_to_cut)
    return needed


@dataclass(frozen=True)
class CallCheck:
    """The pre-flight check of one call: what it sends, what it may cost, what it breaks.

    ``output_bound`` is the output the cost is projected with: the call's own
    ``max_output_tokens``, else the tighter of the step's ``max_output_tokens`` and the
    workflow's limit, else the step's declared ``output_tokens`` (its p95), else 0 (input
    only); ``output_bound_source`` says which.
    """

    workflow: str
    step: str | None
    model: str
    input_tokens: int
    is_exact: bool
    output_bound: int
    output_bound_source: str
    projected_cost_usd: Decimal | None  # None: the model has no price
    is_new_turn: bool
    violations: tuple[Violation, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def tokens_to_cut(self) -> int | None:
        return tokens_to_cut(self.violations)


@dataclass(frozen=True)
class CallRecord:
    """One call after it was made: the provider's usage and its cost."""

    workflow: str
    step: str | None
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    tool_calls: int
    cost_usd: Decimal | None  # None: the model has no price
    violations: tuple[Violation, ...] = ()
    latency_ms: float | None = None  # before_call to after_call, on the Budgets' clock


@dataclass(frozen=True)
class RequestTotals:
    """A request's running totals over the calls recorded so far."""

    calls: int = 0
    turns: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    unpriced_calls: int = 0  # calls whose model has no price (not in cost_usd)
