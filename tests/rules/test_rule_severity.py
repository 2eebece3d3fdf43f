"""Per-rule severity in budgets.yaml: ``rules: {PB201: off}``, by code or slug."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Run

# A template whose only problem is an unbounded variable (PB201, an error by default).
ANSWER = """\
system:
You are Acme's support assistant. Answer only from these help-center articles:
{{ context }}

user:
{{ question }}
"""

MANIFEST = """\
version: 1
defaults: {{model: gpt-4.1-mini}}
variables:
  question: {{max_tokens: 200}}
rules:
{rules}
"""


def project(make_project: Callable[..., Path], rules: str) -> Path:
    return make_project(
        {"budgets.yaml": MANIFEST.format(rules=rules), "prompts/support/answer.j2": ANSWER},
        dedent=False,
    )


def pb201(result: Run) -> list[dict[str, object]]:
    return [f for f in result.json()["findings"] if f["rule"] == "PB201"]


def test_default_severity_is_error(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = project(make_project, "  PB301: info")
    result = run_cli("check", "--format", "json", cwd=root)
    assert result.exit_code == 1
    assert [f["severity"] for f in pb201(result)] == ["error"]


@pytest.mark.parametrize("value", ["off", '"off"'])
@pytest.mark.parametrize("name", ["PB201", "unbounded-variable"])
def test_off_removes_the_finding(
    name: str, value: str, make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    # Unquoted ``off`` is a YAML 1.1 boolean; in rules: it must still mean the severity.
    root = project(make_project, f"  {name}: {value}")
    result = run_cli("check", "--format", "json", cwd=root)
    assert result.exit_code == 0, result.stderr
    assert pb201(result) == []
    assert result.json()["summary"]["exit_code"] == 0


@pytest.mark.parametrize("name", ["unbounded-variable", "PB201"])
def test_warning_downgrades_severity_and_exit_code(
    name: str, make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = project(make_project, f"  {name}: warning")
    result = run_cli("check", "--format", "json", cwd=root)
    assert result.exit_code == 0, result.stderr
    assert [f["severity"] for f in pb201(result)] == ["warning"]
    summary = result.json()["summary"]
    assert (summary["errors"], summary["warnings"], summary["exit_code"]) == (0, 1, 0)


def test_warning_still_fails_with_fail_on_warning(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = project(make_project, "  unbounded-variable: warning")
    result = run_cli("check", "--format", "json", "--fail-on", "warning", cwd=root)
    assert result.exit_code == 1


def test_info_rule_raised_to_error_fails(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project(
        {
            "budgets.yaml": "version: 1\nrules:\n  estimated-count: error\n",
            "prompts/support/escalate.j2": "---\nmodel: claude-haiku-4-5\n---\n"
            "Write a short hand-over message to a human specialist.\n",
        },
        dedent=False,
    )
    result = run_cli("check", "--format", "json", cwd=root)
    assert result.exit_code == 1
    findings = result.json()["findings"]
    assert [(f["rule"], f["severity"]) for f in findings] == [("PB301", "error")]


@pytest.mark.parametrize("value", ["off", '"off"', "warning"])
def test_unknown_rule_is_a_one_line_manifest_error(
    value: str, make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    # PB999 is on line 7 of the manifest (rules: is line 5).
    root = project(make_project, f"  PB201: warning\n  PB999: {value}")
    result = run_cli("check", "--format", "json", cwd=root)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("promptbudget: error: budgets.yaml:7: ")
    assert "PB999" in lines[0]
    assert "promptbudget rules" in lines[0]


def test_unknown_slug_is_a_manifest_error(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = project(make_project, "  unbounded-variables: warning")
    result = run_cli("check", "--format", "json", cwd=root)
    assert result.exit_code == 2
    assert result.stderr.startswith("promptbudget: error: budgets.yaml:6: ")
    assert "unbounded-variables" in result.stderr


def test_invalid_severity_is_a_manifest_error(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = project(make_project, "  PB201: fatal")
    result = run_cli("check", "--format", "json", cwd=root)
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line
    assert line.startswith("promptbudget: error: budgets.yaml:6: ")
    assert "off, info, warning, error" in line
