"""The bundled examples, as a new user runs them."""

from __future__ import annotations

from collections.abc import Callable

from conftest import EXAMPLES, Run


def test_examples_pass(run_cli: Callable[..., Run]) -> None:
    result = run_cli("check", cwd=EXAMPLES)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "all budgets hold" in result.stdout
    assert result.stderr == ""


def test_over_budget_example_fails_and_says_why(run_cli: Callable[..., Run]) -> None:
    result = run_cli("check", "--format", "json", cwd=EXAMPLES / "over-budget")
    assert result.exit_code == 1
    findings = result.json()["findings"]
    errors = [f for f in findings if f["severity"] == "error"]
    assert {f["rule"] for f in errors} == {"PB101", "PB106", "PB107", "PB108"}
    for finding in errors:
        assert finding["path"] and finding["line"]
        assert finding["measured"] > finding["limit"]
    pb101 = next(f for f in errors if f["rule"] == "PB101")
    assert pb101["path"] == "prompts/support/answer.prompty"
    # The worst case: the 5,000-token context cap, replies at their 600-token cap, turn 2
    # after the tool call.
    assert (pb101["measured"], pb101["limit"], pb101["unit"]) == (8951, 8000, "tokens")
    pb203 = [f for f in findings if f["rule"] == "PB203"]
    assert [(f["path"], f["line"], f["severity"]) for f in pb203] == [
        ("prompts/support/answer.prompty", 25, "warning")
    ]


def test_over_budget_text_names_rule_file_line_measured_and_limit(
    run_cli: Callable[..., Run],
) -> None:
    result = run_cli("check", cwd=EXAMPLES / "over-budget")
    assert result.exit_code == 1
    line = next(line for line in result.stdout.splitlines() if "PB107" in line)
    assert line.startswith("budgets.yaml:")
    assert "max_monthly_spend $6,000 (" in line


def test_examples_count(run_cli: Callable[..., Run]) -> None:
    result = run_cli("count", "--format", "json", cwd=EXAMPLES)
    assert result.exit_code == 0, result.stdout
    paths = [t["path"] for t in result.json()["templates"]]
    assert "prompts/support/answer.prompty" in paths
