"""A small project whose budgets.yaml the generated logs are replayed against."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

BUDGETS = """\
version: 1
variables:
  message: {max_tokens: 200}
defaults:
  model: gpt-4.1-mini
routes:
  everyday:            # the cheap model, escalated when its answer is rejected
    model: gpt-4.1-mini
    escalation: {to: gpt-5.4, rate: 8%}
workflows:
  support:
    traffic: {requests_per_day: 1000}
    success_rate: 90%
    steps:
      - name: classify
        prompt: classify.j2
        model: gpt-4.1-nano
        output_tokens: 3
      - name: answer
        prompt: answer.j2
        route: everyday
        turns: 2
        tool_calls: 1
        tool_result_tokens: 200
        output_tokens: {p50: 180, p95: 450}   # from the design review
        prompt_cache_hit_rate: 80%
    limits:
      max_input_tokens: 8k
      max_output_tokens: 600
      max_turns: 4
      max_tool_calls: 2
      max_cost_per_request: {p95: $0.015}
      max_monthly_spend: $600
"""


@pytest.fixture(name="project")
def project_fixture(make_project: Callable[..., Path]) -> Path:
    return make_project(
        {
            "budgets.yaml": BUDGETS,
            "prompts/classify.j2": "Classify this message: {{ message }}\n",
            "prompts/answer.j2": "You are a support agent. Answer: {{ message }}\n",
        }
    ).resolve()
