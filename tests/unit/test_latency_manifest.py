"""The manifest's latency keys: speeds under models:, per-step tool and retrieval times,
retry backoff, and max_latency_ms on workflows and steps."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Run
from promptbudget.manifest.loader import load_manifest
from promptbudget.manifest.model import Duration, LatencyLimit

PROMPT = {"prompts/a.j2": "Hello {{ name }}\n"}

LATENCY = """\
version: 1
defaults: {model: gpt-4.1-mini}
models:
  gpt-4.1-mini: {ttft_ms: {p50: 400, p95: 1200}, output_tokens_per_second: 80}
  acme-small:
    input_per_mtok: 0.1
    output_per_mtok: 0.4
    ttft_ms: 250
    output_tokens_per_second: 150
workflows:
  greet:
    steps:
      - prompt: a.j2
        output_tokens: 50
        tool_calls: 1
        tool_latency_ms: {p50: 200, p95: 800}
        retrieval_latency_ms: 120
        retry: {failure_rate: 5%, max_attempts: 3, backoff_ms: 500}
        limits:
          max_latency_ms: {p50: 900}
    limits:
      max_latency_ms: 3000
"""


def test_latency_keys_load(make_project: Callable[..., Path]) -> None:
    root = make_project({"budgets.yaml": LATENCY, **PROMPT})
    manifest = load_manifest(root / "budgets.yaml", cwd=root)
    mini = manifest.catalog.lookup("gpt-4.1-mini")
    acme = manifest.catalog.lookup("acme-small")
    assert mini is not None and acme is not None
    assert (mini.ttft_ms, mini.ttft_p95_ms, mini.output_tokens_per_second) == (400, 1200, 80)
    assert (acme.ttft_ms, acme.ttft_p95_ms, acme.output_tokens_per_second) == (250, None, 150)
    workflow = manifest.workflows[0]
    step = workflow.steps[0]
    assert step.tool_latency_ms == Duration(200, 800)
    assert step.retrieval_latency_ms == 120
    assert step.retry is not None and step.retry.backoff_ms == 500
    assert step.limits.max_latency_ms == LatencyLimit(p50=900)
    assert workflow.limits.max_latency_ms == LatencyLimit(p95=3000)  # a bare number: the p95
    assert workflow.limit_lines["max_latency_ms"] == 22


def test_duration_is_lognormal_through_both_quantiles() -> None:
    # sigma = ln(p95 / p50) / z95, so the value at z = 1.6448536... is p95 and at 0 is p50.
    duration = Duration(200, 800)
    assert duration.sigma == pytest.approx(math.log(4) / 1.6448536269514722)
    assert duration.at(0) == 200
    assert duration.at(1.6448536269514722) == pytest.approx(800)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("max_latency_ms: 3000", "max_latency_ms: 0", "milliseconds such as 3000"),
        ("max_latency_ms: 3000", "max_latency_ms: {}", "milliseconds such as 3000"),
        ("max_latency_ms: 3000", "max_latency_ms: {p50: 900, p95: 800}", "below p50"),
        ("max_latency_ms: 3000", "max_latency_ms: 1e12", "milliseconds such as 3000"),
        ("retrieval_latency_ms: 120", "retrieval_latency_ms: -1", "milliseconds"),
        ("retrieval_latency_ms: 120", "retrieval_latency_ms: 2h", "milliseconds"),
        ("{p50: 200, p95: 800}", "{p50: 900, p95: 800}", "below p50"),
        ("output_tokens_per_second: 150", "output_tokens_per_second: 0", "tokens per second"),
        ("backoff_ms: 500", "backoff_ms: 1e9", "milliseconds"),
    ],
)
def test_bad_latency_values_are_one_line(
    make_project: Callable[..., Path],
    run_cli: Callable[..., Run],
    old: str,
    new: str,
    message: str,
) -> None:
    assert old in LATENCY
    root = make_project({"budgets.yaml": LATENCY.replace(old, new), **PROMPT})
    result = run_cli("check", cwd=root)
    assert result.exit_code == 2, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert message in lines[0], lines[0]
