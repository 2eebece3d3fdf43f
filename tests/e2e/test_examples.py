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
    assert (pb101["measured"], pb101["limit"], pb101["unit"]) == (6792, 6000, "tokens")


def test_over_budget_text_names_rule_file_line_measured_and_limit(
    run_cli: Callable[..., Run],
) -> None:
    result = run_cli("check", cwd=EXAMPLES / "over-budget")
    assert result.exit_code == 1
    line = next(line for line in result.stdout.splitlines() if "PB107" in line)
    assert line.startswith("budgets.yaml:")
    assert "max_monthly_spend $4,000 (" in line


def test_examples_count(run_cli: Callable[..., Run]) -> None:
    result = run_cli("count", "--format", "json", cwd=EXAMPLES)
    assert result.exit_code == 0, result.stdout
    paths = [t["path"] for t in result.json()["templates"]]
    assert "prompts/support/answer.prompty" in paths


def test_readme_worked_example(run_cli: Callable[..., Run]) -> None:
    """The `answer` step worked out by hand in the README's cost model section."""
    payload = run_cli("check", "--format", "json", cwd=EXAMPLES).json()
    workflow = next(w for w in payload["workflows"] if w["name"] == "support-reply")
    answer = next(s for s in workflow["steps"] if s["name"] == "answer")
    assert answer["prompt_tokens"] == 3158
    assert [c["input_tokens"] for c in answer["calls"]] == [3158, 3816, 4134, 4792]
    assert [c["output_tokens"] for c in answer["calls"]] == [250] * 4
    # (15,900 x $0.40 + 1,000 x $1.60) / 1,000,000
    assert answer["cost_per_request_usd"] == 0.00796
