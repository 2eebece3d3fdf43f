"""The OpenTelemetry hook with the real SDK and an in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from promptbudget.runtime import BudgetExceeded, Budgets

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk missing")

from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

from promptbudget.runtime.otel import instrument  # noqa: E402

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
SHORT = [{"role": "user", "content": "Where is my order?"}]
LONG = [{"role": "user", "content": "word " * 200}]
GEN_AI = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4.1-mini"}


@pytest.fixture
def budgets(tmp_path: Path) -> Budgets:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "answer.j2").write_text("Hi\n", encoding="utf-8")
    (tmp_path / "budgets.yaml").write_text(MANIFEST, encoding="utf-8")
    return Budgets.load(tmp_path / "budgets.yaml")


@pytest.fixture
def traced(budgets: Budgets) -> Iterator[tuple[Any, InMemorySpanExporter]]:
    provider = sdk_trace.TracerProvider()
    exporter = InMemorySpanExporter()
    instrument(budgets, provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def spans(exporter: InMemorySpanExporter) -> dict[str, dict[str, Any]]:
    return {span.name: dict(span.attributes or {}) for span in exporter.get_finished_spans()}


def test_a_genai_span_inside_a_request_gets_workflow_step_and_outcome(
    budgets: Budgets, traced: tuple[Any, InMemorySpanExporter]
) -> None:
    tracer, exporter = traced
    with budgets.request("support-reply") as req, req.step("answer"):
        check = req.before_call(messages=SHORT)
        # What a GenAI instrumentation does inside client.chat.completions.create:
        with tracer.start_as_current_span("chat gpt-4.1-mini", attributes=GEN_AI):
            pass
        with tracer.start_as_current_span("database query"):
            pass
    found = spans(exporter)
    assert found["chat gpt-4.1-mini"]["promptbudget.workflow"] == "support-reply"
    assert found["chat gpt-4.1-mini"]["promptbudget.step"] == "answer"
    assert found["chat gpt-4.1-mini"]["promptbudget.budget.outcome"] == "ok"
    assert found["chat gpt-4.1-mini"]["promptbudget.budget.input_tokens"] == check.input_tokens
    assert "promptbudget.workflow" not in found["database query"]  # not a GenAI span


def test_a_refused_call_marks_the_current_span(
    budgets: Budgets, traced: tuple[Any, InMemorySpanExporter]
) -> None:
    tracer, exporter = traced
    with (
        tracer.start_as_current_span("handle ticket"),
        budgets.request("support-reply") as req,
        pytest.raises(BudgetExceeded),
    ):
        req.before_call(step="answer", messages=LONG)
    attributes = spans(exporter)["handle ticket"]
    assert attributes["promptbudget.budget.outcome"] == "refused"
    assert attributes["promptbudget.budget.violations"] == "PB101"
    assert attributes["promptbudget.step"] == "answer"


def test_warn_mode_marks_spans_warned(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "answer.j2").write_text("Hi\n", encoding="utf-8")
    (tmp_path / "budgets.yaml").write_text(MANIFEST, encoding="utf-8")
    budgets = Budgets.load(tmp_path / "budgets.yaml", mode="warn")
    provider = sdk_trace.TracerProvider()
    exporter = InMemorySpanExporter()
    instrument(budgets, provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with budgets.request("support-reply") as req:
        req.before_call(messages=LONG)
        with tracer.start_as_current_span("chat", attributes=GEN_AI):
            pass
    assert spans(exporter)["chat"]["promptbudget.budget.outcome"] == "warned"
    provider.shutdown()


def test_instrument_needs_an_sdk_tracer_provider(budgets: Budgets) -> None:
    from opentelemetry.trace import NoOpTracerProvider

    with pytest.raises(TypeError, match="SDK TracerProvider"):
        instrument(budgets, NoOpTracerProvider())
