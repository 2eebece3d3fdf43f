"""Markdown for PR comments and job summaries: the verdict first, cells that cannot break the
table, findings folded when there are many. Exact output: golden/*.markdown (test_golden.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from conftest import TODAY
from promptbudget.commands.check import run as run_check
from promptbudget.findings import Finding, Severity
from promptbudget.options import Options
from promptbudget.report import Report
from promptbudget.reporters import ReportSettings
from promptbudget.reporters.markdown import md_code, md_text, render_markdown

RUN_DATE = date.fromisoformat(TODAY)  # the date the CLI sees in the tests

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
OVER_BUDGET = EXAMPLES / "over-budget"
INFO = "\u2139\ufe0f"  # the information-source emoji


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


def markdown(*findings: Finding, **report: Any) -> str:
    return render_markdown(Report(command="check", findings=findings, **report), ReportSettings())


def table_rows(text: str) -> list[str]:
    """The rows of the first table."""
    rows: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    return rows


def tables(text: str) -> list[list[str]]:
    """Every table's rows, in order."""
    found: list[list[str]] = []
    previous = False
    for line in text.splitlines():
        is_row = line.startswith("|")
        if is_row and not previous:
            found.append([])
        if is_row:
            found[-1].append(line)
        previous = is_row
    return found


def cells(row: str) -> list[str]:
    """Split a GFM table row the way GitHub does: on ``|`` not escaped with a backslash."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


# -- escaping --------------------------------------------------------------------------------


def test_pipe_in_a_message_is_escaped() -> None:
    text = markdown(finding(message="input | output over budget"))
    assert "input \\| output over budget" in text
    assert "input | output" not in text


def test_pipe_in_a_workflow_name_cannot_split_its_table_row() -> None:
    over = run_check(Options(cwd=OVER_BUDGET, today=RUN_DATE))
    workflow = over.workflows[0]
    renamed = replace(workflow, workflow=replace(workflow.workflow, name="a|b"))
    report = Report(
        command="check",
        workflows=(renamed,),
        findings=(finding(workflow="a|b"),),
    )
    text = render_markdown(report, ReportSettings())
    header, _rule, row = table_rows(text)
    assert len(cells(row)) == len(cells(header)) == 6
    assert cells(row)[0] == "a\\|b"
    assert cells(row)[-1] == "❌ PB101"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a|b", "a\\|b"),
        ("costs $0.04, over $0.015", "costs \\$0.04, over \\$0.015"),  # no GitHub math
        ("<script>", "\\<script\\>"),
        ("*bold* and `code` and [link](x)", "\\*bold\\* and \\`code\\` and \\[link\\](x)"),
        ("~strike~ & co", "\\~strike\\~ \\& co"),
        ("max_input_tokens", "max_input_tokens"),  # intraword: readable, not emphasis
        ("_lead and trail_", "\\_lead and trail\\_"),
        ("back\\slash", "back\\\\slash"),
        ("see owner/repo#65", "see owner/repo#&#8203;65"),  # no cross-reference
        ("ask @someone", "ask @&#8203;someone"),  # no mention
        ("line one\nline two", "line one line two"),
    ],
)
def test_md_text_escapes(raw: str, escaped: str) -> None:
    assert md_text(raw) == escaped


@pytest.mark.parametrize(
    ("raw", "in_table", "code"),
    [
        ("prompts/a.j2:3", False, "`prompts/a.j2:3`"),
        ("a|b.j2", True, "`a\\|b.j2`"),
        ("a|b.j2", False, "`a|b.j2`"),
        ("we`ird.j2", False, "`` we`ird.j2 ``"),
    ],
)
def test_md_code(raw: str, in_table: bool, code: str) -> None:
    assert md_code(raw, in_table=in_table) == code


def test_paths_are_code() -> None:
    text = markdown(finding(path="prompts/support/answer.prompty", line=25))
    assert "- `prompts/support/answer.prompty:25` **PB101** input-over-budget: " in text


# -- the verdict -----------------------------------------------------------------------------


def test_title_says_fail_with_counts() -> None:
    text = markdown(finding(), finding(severity=Severity.WARNING), finding(severity=Severity.INFO))
    assert text.splitlines()[1] == (
        "## ❌ promptbudget check: 1 error, 1 warning, 1 info (failing on error and above)"
    )


def test_title_says_pass_below_fail_on() -> None:
    text = markdown(finding(severity=Severity.WARNING))
    assert text.splitlines()[1] == "## ✅ promptbudget check: 0 errors, 1 warning"


def test_title_with_fail_on_warning_and_exit_zero() -> None:
    text = markdown(finding(severity=Severity.WARNING), fail_on=Severity.WARNING, exit_zero=True)
    assert text.splitlines()[1] == (
        "## ❌ promptbudget check: 0 errors, 1 warning "
        "(failing on warning and above, exit code 0: --exit-zero)"
    )


def test_workflow_status_lists_the_rules_that_fired(run_cli: Callable[..., Any]) -> None:
    text = run_cli("check", "--format", "markdown", "--fail-on", "warning", cwd=OVER_BUDGET).stdout
    status = {cells(row)[0]: cells(row)[-1] for row in table_rows(text)[2:]}
    assert status == {
        "support-reply": "❌ PB101, PB106, PB107, PB108, PB113, PB115, PB116, PB203",
        "ticket-summary": "✅",
        "escalation-draft": f"✅ {INFO} PB301",
    }


# -- folding ---------------------------------------------------------------------------------


def test_ten_findings_are_shown_open() -> None:
    text = markdown(*(finding(line=n) for n in range(1, 11)))
    assert "<details>" not in text
    assert "**❌ 10 errors**" in text


def test_more_than_ten_findings_fold_by_severity() -> None:
    many = [finding(line=n) for n in range(1, 10)]
    many += [finding(severity=Severity.WARNING), finding(severity=Severity.INFO)]
    text = markdown(*many)
    assert text.count("<details>") == 3
    assert "<details><summary>❌ 9 errors</summary>" in text
    assert "<details><summary>⚠️ 1 warning</summary>" in text
    assert f"<details><summary>{INFO} 1 info</summary>" in text
    assert text.index("❌ 9 errors") < text.index("⚠️ 1 warning") < text.index(f"{INFO} 1 info")
    # a blank line after <summary> so that GitHub renders the list inside as Markdown
    assert "</summary>\n\n- " in text
    assert text.count("</details>") == 3


# -- through the CLI -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "cwd", "exit_code"),
    [
        (("check",), OVER_BUDGET, 1),
        (("check",), EXAMPLES, 0),
        (("count",), EXAMPLES, 0),
        (("estimate",), EXAMPLES, 0),
    ],
)
def test_cli_markdown(
    args: tuple[str, ...], cwd: Path, exit_code: int, run_cli: Callable[..., Any]
) -> None:
    result = run_cli(*args, "--format", "markdown", cwd=cwd)
    assert result.exit_code == exit_code
    assert result.stderr == ""
    marker = "<!-- promptbudget -->\n"
    assert result.stdout.startswith(
        f"{marker}## {'❌' if exit_code else '✅'} promptbudget {args[0]}: "
    )
    for table in tables(result.stdout):
        for row in table:
            assert len(cells(row)) == len(cells(table[0]))


def test_estimate_markdown_has_the_workflow_table(run_cli: Callable[..., Any]) -> None:
    text = run_cli("estimate", "--format", "markdown", cwd=EXAMPLES).stdout
    check = run_cli("check", "--format", "markdown", cwd=EXAMPLES).stdout
    assert table_rows(text) == table_rows(check)
    assert len(table_rows(text)) == 2 + 3


def test_limits_table_shows_every_limit_passing_and_failing(run_cli: Callable[..., Any]) -> None:
    # examples/over-budget/budgets.yaml: support-reply has 7 limits (4 over), ticket-summary 4,
    # escalation-draft 4 and its step 1, three templates 1 each; 8,951 input tokens against
    # 8,000 (PB101's own figures) is 112%.
    text = run_cli("check", "--format", "markdown", cwd=OVER_BUDGET).stdout
    _, limits = tables(text)
    assert cells(limits[0]) == ["budget", "limit on", "measured", "limit", "used", ""]
    rows = [cells(row) for row in limits[2:]]
    assert len(rows) == 7 + 4 + 4 + 1 + 3
    assert rows[0] == ["support-reply", "input tokens", "**8,951**", "8,000", "112%", "❌ over"]
    assert sum(1 for row in rows if row[-1] == "❌ over") == 4
    assert ["", "turns", "2", "4", "50%", "✅"] in rows
