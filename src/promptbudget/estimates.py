"""Per-step and per-workflow estimates: tokens of every call, cost per request, per outcome and
per month. Built from counted prompts and catalog prices; rules and reporters read them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from promptbudget.counting import PromptCount
from promptbudget.manifest.model import Step, Workflow
from promptbudget.pricing.catalog import ModelPrice
from promptbudget.simulation import (
    ZERO,
    CallPlan,
    CallTokens,
    Conversation,
    cost_per_outcome,
    plan_calls,
    price_call,
)
from promptbudget.tokenizers import Tokenizer


@dataclass(frozen=True)
class OutputBound:
    """The output tokens used for cost, and the bound the limits are checked against."""

    tokens: int  # expected reply tokens per call (what is paid)
    cap: int | None  # the API's max output tokens, if declared (template or step)
    source: str  # "output_tokens", "cap", "model max" or "unknown"

    @property
    def bound(self) -> int:
        """The most a call can reply: the cap when there is one."""
        return self.cap if self.cap is not None else self.tokens


def output_bound(step: Step, template_cap: int | None, price: ModelPrice | None) -> OutputBound:
    cap = step.max_output_tokens if step.max_output_tokens is not None else template_cap
    if step.output_tokens is not None:
        tokens = min(step.output_tokens, cap) if cap is not None else step.output_tokens
        return OutputBound(tokens, cap, "output_tokens")
    if cap is not None:
        return OutputBound(cap, cap, "cap")
    if price is not None and price.max_output_tokens is not None:
        return OutputBound(price.max_output_tokens, None, "model max")
    return OutputBound(0, None, "unknown")


@dataclass(frozen=True)
class CallEstimate:
    turn: int
    index: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    is_long_context: bool


@dataclass(frozen=True)
class StepEstimate:
    workflow: str
    step: Step
    template_path: str
    model: str | None
    price: ModelPrice | None
    tokenizer: str
    exact: bool
    prompt: PromptCount | None  # None when the template could not be read at all
    output: OutputBound
    calls: tuple[CallEstimate, ...]

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def cost_per_request_usd(self) -> Decimal:
        return sum((call.cost_usd for call in self.calls), ZERO)

    @property
    def max_input_tokens(self) -> int:
        return max((call.input_tokens for call in self.calls), default=0)

    @property
    def worst_call(self) -> CallEstimate | None:
        return max(self.calls, key=lambda call: call.input_tokens, default=None)

    @property
    def tool_calls_per_request(self) -> int:
        return self.step.turns * self.step.tool_calls

    @property
    def is_priced(self) -> bool:
        return self.price is not None


@dataclass(frozen=True)
class WorkflowEstimate:
    workflow: Workflow
    steps: tuple[StepEstimate, ...]

    @property
    def name(self) -> str:
        return self.workflow.name

    @property
    def is_complete(self) -> bool:
        """False when a step's model is unknown (its calls are not priced)."""
        return all(step.is_priced for step in self.steps)

    @property
    def cost_per_request_usd(self) -> Decimal:
        return sum((step.cost_per_request_usd for step in self.steps), ZERO)

    @property
    def cost_per_outcome_usd(self) -> Decimal:
        return cost_per_outcome(self.cost_per_request_usd, self.workflow.success_rate)

    @property
    def monthly_spend_usd(self) -> Decimal | None:
        per_month = self.workflow.requests_per_month
        if per_month is None:
            return None
        return self.cost_per_request_usd * per_month

    @property
    def calls_per_request(self) -> int:
        return sum(len(step.calls) for step in self.steps)

    @property
    def max_turns(self) -> int:
        return max((step.step.turns for step in self.steps), default=0)

    @property
    def tool_calls_per_request(self) -> int:
        return sum(step.tool_calls_per_request for step in self.steps)


def estimate_step(
    workflow: Workflow,
    step: Step,
    *,
    template_path: str,
    prompt: PromptCount | None,
    template_cap: int | None,
    model: str | None,
    price: ModelPrice | None,
    tokenizer: Tokenizer,
) -> StepEstimate:
    """Plan and price every call ``step`` makes in one request of ``workflow``."""
    output = output_bound(step, template_cap, price)
    calls: tuple[CallEstimate, ...] = ()
    if prompt is not None:
        framing = tokenizer.spec.tokens_per_message
        reply_framing = framing + tokenizer.count("assistant")
        user_tokens = (
            step.user_turn_tokens + framing + tokenizer.count("user")
            if step.user_turn_tokens is not None
            else prompt.last_user_tokens
        )
        conversation = Conversation(
            prompt_tokens=prompt.request_tokens,
            output_tokens=output.tokens,
            turns=step.turns,
            tool_calls=step.tool_calls,
            user_message_tokens=user_tokens,
            reply_message_framing=reply_framing,
            tool_result_message_tokens=(
                step.tool_result_tokens + framing + tokenizer.count("tool")
                if step.tool_calls
                else 0
            ),
        )
        calls = tuple(_price(plan, price) for plan in plan_calls(conversation))
    return StepEstimate(
        workflow=workflow.name,
        step=step,
        template_path=template_path,
        model=model,
        price=price,
        tokenizer=tokenizer.name,
        exact=tokenizer.exact and (prompt.exact if prompt is not None else False),
        prompt=prompt,
        output=output,
        calls=calls,
    )


def _price(plan: CallPlan, price: ModelPrice | None) -> CallEstimate:
    if price is None:
        return CallEstimate(
            plan.turn, plan.index, plan.input_tokens, plan.output_tokens, ZERO, False
        )
    cost = price_call(price, CallTokens(plan.input_tokens, plan.output_tokens))
    return CallEstimate(
        plan.turn,
        plan.index,
        plan.input_tokens,
        plan.output_tokens,
        cost.total_usd,
        cost.rates.is_long_context,
    )
