"""GitHub Actions annotations: workflow-command syntax, escaping, and paths in the workspace."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from promptbudget.findings import Finding, Severity
from promptbudget.options import OutputFormat
from promptbudget.report import Report
from promptbudget.reporters import ReportSettings
from promptbudget.reporters.github import render_github

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def finding(**changes: Any) -> Finding:
    fields: dict[str, Any] = {
        "rule": "PB101",
        "slug": "input-over-budget",
        "severity": Severity.ERROR,
        "message": "too many tokens",
        "path": "prompts/a.j2",
        "line": 3,
    }
    fields.update(changes)
    return Finding(**fields)


def annotations(*findings: Finding, settings: ReportSettings | None = None) -> list[str]:
    """The annotation lines (everything but the final summary line)."""
    report = Report(command="check", findings=findings)
    lines = render_github(report, settings or ReportSettings()).splitlines()
    assert len(lines) == len(findings) + 1
    return lines[:-1]


# -- syntax ----------------------------------------------------------------------------------


def test_error_finding_is_an_error_command_with_file_line_and_title() -> None:
    assert annotations(finding()) == [
        "::error file=prompts/a.j2,line=3,title=PB101 input-over-budget::too many tokens"
    ]


@pytest.mark.parametrize(
    ("severity", "command"),
    [(Severity.ERROR, "error"), (Severity.WARNING, "warning"), (Severity.INFO, "notice")],
)
def test_severity_picks_the_workflow_command(severity: Severity, command: str) -> None:
    (line,) = annotations(finding(severity=severity))
    assert line.startswith(f"::{command} file=prompts/a.j2,")


def test_finding_without_a_path_has_no_file_or_line() -> None:
    no_path = finding(path=None, line=7, rule="PB107", slug="monthly-spend-over-budget")
    assert annotations(no_path) == [
        "::error title=PB107 monthly-spend-over-budget::too many tokens"
    ]


def test_finding_without_a_line_has_a_file_but_no_line() -> None:
    assert annotations(finding(line=None)) == [
        "::error file=prompts/a.j2,title=PB101 input-over-budget::too many tokens"
    ]


def test_one_annotation_per_finding_in_report_order_then_a_summary_line() -> None:
    report = Report(
        command="count",
        findings=(
            finding(path="b.j2"),
            finding(path="a.j2", severity=Severity.WARNING),
            finding(path=None, severity=Severity.INFO),
        ),
    )
    lines = render_github(report, ReportSettings()).splitlines()
    assert [line.split(" ", 1)[0] for line in lines[:3]] == ["::error", "::warning", "::notice"]
    assert lines[3] == "promptbudget count: 1 error(s), 1 warning(s), 1 info"


def test_empty_report_is_only_the_summary_line() -> None:
    text = render_github(Report(command="check"), ReportSettings())
    assert text == "promptbudget check: 0 error(s), 0 warning(s), 0 info\n"


# -- escaping --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "escaped"),
    [
        ("458% over", "458%25 over"),
        ("line one\nline two", "line one%0Aline two"),
        ("line one\r\nline two", "line one%0D%0Aline two"),
        ("carriage\rreturn", "carriage%0Dreturn"),
        ("already %0A escaped", "already %250A escaped"),  # % first, or this decodes to LF
        ("costs $0.01: over, by far", "costs $0.01: over, by far"),  # : and , stay in data
        ("a::b", "a::b"),
    ],
)
def test_message_escapes_percent_cr_and_lf(message: str, escaped: str) -> None:
    (line,) = annotations(finding(message=message))
    assert line == f"::error file=prompts/a.j2,line=3,title=PB101 input-over-budget::{escaped}"


@pytest.mark.parametrize(
    ("path", "escaped"),
    [
        ("prompts/a,b.j2", "prompts/a%2Cb.j2"),
        ("prompts/a:b.j2", "prompts/a%3Ab.j2"),
        ("prompts/100%.j2", "prompts/100%25.j2"),
        ("prompts/a\nb.j2", "prompts/a%0Ab.j2"),
        ("prompts/a\rb.j2", "prompts/a%0Db.j2"),
        ("prompts/%3A,:.j2", "prompts/%253A%2C%3A.j2"),
    ],
)
def test_file_property_escapes_colon_and_comma_too(path: str, escaped: str) -> None:
    (line,) = annotations(finding(path=path))
    assert line == f"::error file={escaped},line=3,title=PB101 input-over-budget::too many tokens"


def test_title_property_is_escaped() -> None:
    (line,) = annotations(finding(rule="PB1:01", slug="input,over%budget\n"))
    assert line == (
        "::error file=prompts/a.j2,line=3,title=PB1%3A01 input%2Cover%25budget%0A::too many tokens"
    )


def test_no_annotation_breaks_onto_a_second_line() -> None:
    nasty = finding(path="a\r\nb", rule="PB\n1", slug="s\r", message="m\n\r\n")
    assert len(annotations(nasty)) == 1


# -- paths -----------------------------------------------------------------------------------


def test_paths_are_rebased_onto_the_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "repo"
    root = workspace / "examples"
    root.mkdir(parents=True)
    settings = ReportSettings(root=str(root), workspace=str(workspace))
    lines = annotations(
        finding(path="prompts/support/answer.prompty", line=1),
        finding(path="budgets.yaml", line=39),
        finding(path=None),
        settings=settings,
    )
    assert lines[0].startswith("::error file=examples/prompts/support/answer.prompty,line=1,")
    assert lines[1].startswith("::error file=examples/budgets.yaml,line=39,")
    assert lines[2].startswith("::error title=")


def test_paths_stay_as_they_are_when_root_is_the_workspace(tmp_path: Path) -> None:
    settings = ReportSettings(root=str(tmp_path), workspace=str(tmp_path))
    (line,) = annotations(finding(path="prompts/a.j2"), settings=settings)
    assert line.startswith("::error file=prompts/a.j2,")


def test_paths_stay_as_they_are_without_a_workspace(tmp_path: Path) -> None:
    (line,) = annotations(finding(), settings=ReportSettings(root=str(tmp_path)))
    assert line.startswith("::error file=prompts/a.j2,")


def test_rebased_paths_use_forward_slashes_and_are_escaped(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    root = workspace / "a,b"
    root.mkdir(parents=True)
    settings = ReportSettings(root=str(root), workspace=str(workspace))
    (line,) = annotations(finding(path="prompts/x.j2"), settings=settings)
    assert line.startswith("::error file=a%2Cb/prompts/x.j2,line=3,")


# -- through the CLI -------------------------------------------------------------------------


def test_cli_format_github_annotates_over_budget_project(run_cli: Callable[..., Any]) -> None:
    result = run_cli("check", "--format", "github", cwd=EXAMPLES / "over-budget")
    assert result.exit_code == 1
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    # sorted by file and line: the deprecated classify model (line 46, PB116) comes first
    assert lines[0].startswith("::warning file=budgets.yaml,line=48,title=PB116 deprecated-model")
    pb106 = next(line for line in lines if "PB106" in line)
    assert pb106.startswith(
        "::error file=budgets.yaml,line=67,title=PB106 cost-per-request-over-budget::"
        "workflow 'support-reply' costs $"
    )
    assert pb106.endswith(
        "per request at the p95, over max_cost_per_request $0.015 (193%25 over; 95%25 band "
        "$0.0433-$0.0451 from 1,000 samples)"
    )
    assert all(line.startswith(("::error ", "::warning ", "::notice ")) for line in lines[:-1])
    assert lines[-1] == "promptbudget check: 4 error(s), 4 warning(s), 1 info"


def test_cli_rebases_annotations_onto_github_workspace(
    run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project in examples/over-budget of the checked-out repo, checked from its directory."""
    monkeypatch.setenv("GITHUB_WORKSPACE", str(REPO))
    result = run_cli("check", "--format", "github", cwd=EXAMPLES / "over-budget")
    assert result.exit_code == 1
    files = set(re.findall(r"^::\w+ file=([^,]*),", result.stdout, flags=re.MULTILINE))
    assert files == {
        "examples/over-budget/budgets.yaml",
        "examples/over-budget/prompts/support/answer.prompty",
        "examples/over-budget/prompts/support/escalate.prompty",
    }
    for path in files:
        assert (REPO / path).is_file()


# -- --format auto ---------------------------------------------------------------------------


@pytest.mark.parametrize("args", [("--format", "auto"), ()], ids=["explicit", "default"])
def test_auto_format_is_github_inside_github_actions(
    args: tuple[str, ...], run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = run_cli("check", *args, cwd=EXAMPLES / "over-budget")
    assert result.exit_code == 1
    assert result.stdout.startswith("::warning file=budgets.yaml,line=48,")
    assert result.stdout.endswith("promptbudget check: 4 error(s), 4 warning(s), 1 info\n")


@pytest.mark.parametrize("value", [None, "false", ""])
def test_auto_format_is_text_outside_github_actions(
    value: str | None, run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is not None:
        monkeypatch.setenv("GITHUB_ACTIONS", value)
    auto = run_cli("check", "--format", "auto", cwd=EXAMPLES / "over-budget")
    text = run_cli("check", "--format", "text", cwd=EXAMPLES / "over-budget")
    assert auto.exit_code == text.exit_code == 1
    assert auto.stdout == text.stdout
    assert "::error" not in auto.stdout


@pytest.mark.parametrize(
    ("environ", "resolved"),
    [
        ({"GITHUB_ACTIONS": "true"}, OutputFormat.GITHUB),
        ({"GITHUB_ACTIONS": "false"}, OutputFormat.TEXT),
        ({}, OutputFormat.TEXT),
    ],
)
def test_auto_resolves_from_the_environment(
    environ: dict[str, str], resolved: OutputFormat
) -> None:
    assert OutputFormat.AUTO.resolve(environ=environ) is resolved


@pytest.mark.parametrize("fmt", [f for f in OutputFormat if f is not OutputFormat.AUTO])
def test_explicit_format_ignores_the_environment(fmt: OutputFormat) -> None:
    assert fmt.resolve(environ={"GITHUB_ACTIONS": "true"}) is fmt


def annotated_files(stdout: str) -> set[str]:
    return set(re.findall(r"^::\w+ file=([^,]*),", stdout, flags=re.MULTILINE))


OVER_BUDGET_FILES = {
    "examples/over-budget/budgets.yaml",
    "examples/over-budget/prompts/support/answer.prompty",
    "examples/over-budget/prompts/support/escalate.prompty",
}


def test_annotations_with_config_from_the_workspace_root(
    run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", str(REPO))
    result = run_cli(
        "check", "--format", "github", "--config", "examples/over-budget/budgets.yaml", cwd=REPO
    )
    assert result.exit_code == 1
    assert annotated_files(result.stdout) == OVER_BUDGET_FILES


def test_annotations_from_a_subdirectory_of_the_project(
    run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", str(REPO))
    result = run_cli("check", "--format", "github", cwd=EXAMPLES / "over-budget" / "prompts")
    assert result.exit_code == 1
    assert annotated_files(result.stdout) == OVER_BUDGET_FILES
