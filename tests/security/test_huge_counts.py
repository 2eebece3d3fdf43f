"""Unbounded simulation (issue 11 item 6): a 6-line manifest with huge counts kept ``check``
busy for hours with growing memory. Every count has a schema maximum, and the worst manifest
the schema accepts still simulates quickly. Each case runs in a child process under a timeout
and an address-space limit (on the old code: killed at the timeout)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from security.bounded_run import RunBounded

MakeProject = Callable[..., Path]

STEP = """\
version: 1
prompts: prompts/
defaults:
  model: gpt-4.1-mini
workflows:
  reply:
    traffic: {{requests_per_day: 1000}}
    steps:
      - prompt: a.j2
        output_tokens: 50
        {extra}
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param("turns: 10000000\n        tool_calls: 1000", "turns", id="issue-example"),
        pytest.param("turns: 3000", "turns, 1 to 100", id="turns-3000"),
        pytest.param("tool_calls: 100000", "tool_calls", id="tool-calls"),
        pytest.param("turns: 100\n        tool_calls: 100", "1,000", id="calls-per-step"),
        pytest.param(
            "retry: {failure_rate: 50%, max_attempts: 100000}", "max_attempts", id="retry"
        ),
        pytest.param("output_tokens: 1000000000000", "output_tokens", id="tokens"),
    ],
)
def test_huge_counts_are_refused_by_the_schema(
    extra: str, expected: str, run_bounded: RunBounded, make_project: MakeProject
) -> None:
    manifest = STEP.format(extra=extra).replace(
        "output_tokens: 50\n        output_tokens", "output_tokens"
    )
    root = make_project({"budgets.yaml": manifest, "prompts/a.j2": "Hi {{ q }}\n"}, dedent=False)
    run = run_bounded("check", cwd=root, timeout=120)
    run.assert_clean(2)
    # one line per breach (every manifest error is reported at once), each with its line
    assert run.error_lines, run.stderr
    assert all(line.startswith("promptbudget: error: budgets.yaml:") for line in run.error_lines), (
        run.stderr
    )
    assert expected in run.stderr, run.stderr


def test_the_worst_accepted_manifest_simulates(
    run_bounded: RunBounded, make_project: MakeProject
) -> None:
    """1,000 model calls per request (10 turns of 99 tool calls), 20 attempts each, a
    three-step workflow with a 50% failure rate: finishes (2.4 s of CPU when measured)."""
    step = (
        "      - name: s{n}\n        prompt: a.j2\n        output_tokens: {p50: 500, p95: 4000}\n"
        "        turns: 10\n        tool_calls: 99\n        tool_result_tokens: 2000\n"
        "        retry: {failure_rate: 50%, max_attempts: 20}\n"
    )
    manifest = STEP.format(extra="").split("    steps:\n")[0] + "    steps:\n"
    manifest += "".join(step.replace("{n}", str(n)) for n in range(3))
    root = make_project({"budgets.yaml": manifest, "prompts/a.j2": "Hi {{ q }}\n"}, dedent=False)
    run = run_bounded("check", "--format", "json", cwd=root, timeout=300)
    run.assert_clean(0, 1)
