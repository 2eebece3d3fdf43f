"""OpenTelemetry: the workflow, the step and the budget outcome on the spans of each call.

```python
from promptbudget.runtime.otel import instrument

instrument(budgets)   # after the SDK's TracerProvider is set up
```

Two things happen:

- **GenAI spans** (those started with a ``gen_ai.*`` attribute, as the OpenTelemetry GenAI
  instrumentations start them, e.g. ``opentelemetry-instrumentation-openai-v2``) started inside
  ``with budgets.request(...)`` get ``promptbudget.workflow`` and ``promptbudget.step`` (the
  attributes ``promptbudget replay`` maps spans to workflows with), and the outcome of the
  pre-flight check that let the call through (a span processor, ``on_start``).
- **The current span** at each ``before_call`` (the application's span around the call) gets
  the same, including for a call that was refused, which never gets a GenAI span.

Attributes: ``promptbudget.workflow``, ``promptbudget.step``, ``promptbudget.budget.outcome``
(``ok``, ``warned`` or ``refused``), ``promptbudget.budget.violations`` (rule codes, e.g.
``PB101,PB106``), ``promptbudget.budget.input_tokens`` (the pre-flight count). They are kept
apart from ``promptbudget.outcome``, which ``replay`` reads as the request's business outcome.
"""

from __future__ import annotations

from typing import Any

from promptbudget.runtime.budgets import Budgets, Outcome, Request, current_request, current_step
from promptbudget.runtime.outcome import CallCheck

OTEL_EXTRA_HINT = "pip install 'promptbudget-cli[otel]' (and opentelemetry-sdk to export)"

WORKFLOW = "promptbudget.workflow"
STEP = "promptbudget.step"
BUDGET_OUTCOME = "promptbudget.budget.outcome"
BUDGET_VIOLATIONS = "promptbudget.budget.violations"
BUDGET_INPUT_TOKENS = "promptbudget.budget.input_tokens"


def _trace() -> Any:
    try:
        from opentelemetry import trace
    except ImportError as err:
        raise ImportError(
            f"promptbudget.runtime.otel needs opentelemetry-api: {OTEL_EXTRA_HINT}"
        ) from err
    return trace


def attributes(request: Request, check: CallCheck, outcome: Outcome) -> dict[str, Any]:
    """The span attributes for one checked call."""
    values: dict[str, Any] = {
        WORKFLOW: request.workflow.name,
        BUDGET_OUTCOME: outcome,
        BUDGET_INPUT_TOKENS: check.input_tokens,
    }
    if check.step is not None:
        values[STEP] = check.step
    if check.violations:
        values[BUDGET_VIOLATIONS] = ",".join(v.code for v in check.violations)
    return values


class PromptBudgetSpanProcessor:
    """Tags GenAI spans started inside a request of ``budgets`` (an SDK ``SpanProcessor``)."""

    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        request = current_request()
        if request is None or request.budgets is not self.budgets:
            return
        started = getattr(span, "attributes", None) or {}
        if not any(str(key).startswith("gen_ai.") for key in started):
            return
        check, outcome = request.last_check, request.last_outcome
        if check is not None and outcome is not None:
            span.set_attributes(attributes(request, check, outcome))
            return
        span.set_attribute(WORKFLOW, request.workflow.name)
        step = current_step() or request.default_step
        if step is not None:
            span.set_attribute(STEP, step)

    def _on_ending(self, span: Any) -> None:  # the SDK calls it on every processor
        pass

    def on_end(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def instrument(budgets: Budgets, tracer_provider: Any = None) -> PromptBudgetSpanProcessor:
    """Tag spans with the budgets' workflow, step and outcome (see the module docstring).

    ``tracer_provider`` is the SDK ``TracerProvider`` to add the span processor to (default:
    the global one). Returns the processor."""
    trace = _trace()
    provider = tracer_provider or trace.get_tracer_provider()
    processor = PromptBudgetSpanProcessor(budgets)
    add = getattr(provider, "add_span_processor", None)
    if add is None:
        raise TypeError(
            "instrument() needs an SDK TracerProvider (opentelemetry-sdk) to tag GenAI spans; "
            f"the tracer provider is a {type(provider).__name__}"
        )
    add(processor)

    def annotate_current_span(request: Request, check: CallCheck, outcome: Outcome) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes(attributes(request, check, outcome))

    budgets.observers.append(annotate_current_span)
    return processor
