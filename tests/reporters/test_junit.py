"""JUnit XML: parses, one test case per workflow and per template, failures only at or above
``--fail-on``, and counts that match the test cases."""

from __future__ import annotations

import functools
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from conftest import TODAY
from promptbudget.commands.check import run as run_check
from promptbudget.commands.count import run as run_count
from promptbudget.findings import Finding, Severity
from promptbudget.options import Options, OutputFormat
from promptbudget.report import Report
from promptbudget.reporters import ReportSettings, get_reporter
from promptbudget.reporters.junit import render_junit

RUN_DATE = date.fromisoformat(TODAY)  # the date the CLI sees in the tests

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
OVER_BUDGET = EXAMPLES / "over-budget"
RANK = {"info": 0, "warning": 1, "error": 2}


@functools.cache
def _pipeline_report(command: str, cwd: Path, fail_on: str) -> Report:
    options = Options(cwd=cwd, fail_on=Severity(fail_on), color=False, today=RUN_DATE)
    return {"check": run_check, "count": run_count}[command](options)


@pytest.fixture(scope="module")
def render_report() -> Callable[..., str]:
    """``render_report("junit", "check", cwd, "warning")``: what ``promptbudget check --format
    junit --fail-on warning`` prints in ``cwd`` outside GitHub Actions; the pipeline runs once
    per project and ``--fail-on`` (reports are frozen), whatever the format."""

    def render(fmt: str, command: str, cwd: Path, fail_on: str = "error") -> str:
        report = _pipeline_report(command, cwd, fail_on)
        settings = ReportSettings(workspace=str(cwd), root=report.root or str(cwd))
        return get_reporter(OutputFormat(fmt))(report, settings)

    return render


def parse(text: str) -> ET.Element:
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "testsuites"
    return root


def suite_of(root: ET.Element) -> ET.Element:
    (suite,) = root.findall("testsuite")
    return suite


def cases(root: ET.Element) -> list[ET.Element]:
    return suite_of(root).findall("testcase")


def case_named(root: ET.Element, classname: str, name: str) -> ET.Element:
    (case,) = [c for c in cases(root) if (c.get("classname"), c.get("name")) == (classname, name)]
    return case


def assert_counts(root: ET.Element) -> None:
    testcases = cases(root)
    failed = [c for c in testcases if c.find("failure") is not None]
    for element in (root, suite_of(root)):
        assert element.get("tests") == str(len(testcases))
        assert element.get("failures") == str(len(failed))
        assert element.get("errors") == "0"
    for case in testcases:
        assert len(case.findall("failure")) <= 1
        assert case.find("error") is None


def rules_in(element: ET.Element | None) -> set[str]:
    """Rule codes on the lines of a <failure> or <system-out> body."""
    if element is None or not element.text:
        return set()
    return {line.split(": ", 1)[1].split(" ", 1)[0] for line in element.text.splitlines()}


def render(*findings: Finding, **report: Any) -> ET.Element:
    return parse(
        render_junit(Report(command="check", findings=findings, **report), ReportSettings())
    )


def finding(**changes: Any) -> Finding:
    fields: dict[str, Any] = {
        "rule": "PB101",
        "slug": "input-over-budget",
        "severity": Severity.ERROR,
        "message": "too many tokens",
        "path": "budgets.yaml",
        "line": 3,
    }
    fields.update(changes)
    return Finding(**fields)


# -- real projects ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "project"),
    [("check", "examples"), ("check", "over-budget"), ("count", "examples")],
)
def test_one_test_case_per_workflow_and_per_template(
    command: str, project: str, render_report: Callable[..., str]
) -> None:
    cwd = EXAMPLES if project == "examples" else OVER_BUDGET
    payload = json.loads(render_report("json", command, cwd))
    root = parse(render_report("junit", command, cwd))
    assert suite_of(root).get("name") == f"promptbudget {command}"
    expected = [("workflow", w["name"]) for w in payload.get("workflows", [])]
    expected += [("template", t["path"]) for t in payload["templates"]]
    assert [(c.get("classname"), c.get("name")) for c in cases(root)] == expected
    if command == "check":
        assert any(classname == "workflow" for classname, _ in expected)
    assert any(classname == "template" for classname, _ in expected)
    assert_counts(root)


@pytest.mark.parametrize("fail_on", ["error", "warning", "info"])
def test_failures_are_the_findings_at_or_above_fail_on(
    fail_on: str, render_report: Callable[..., str]
) -> None:
    findings = json.loads(render_report("json", "check", OVER_BUDGET, fail_on))["findings"]
    root = parse(render_report("junit", "check", OVER_BUDGET, fail_on))
    assert_counts(root)

    failing = {f["rule"] for f in findings if RANK[f["severity"]] >= RANK[fail_on]}
    passing = {f["rule"] for f in findings if RANK[f["severity"]] < RANK[fail_on]}
    assert {r for c in cases(root) for r in rules_in(c.find("failure"))} == failing
    assert {r for c in cases(root) for r in rules_in(c.find("system-out"))} == passing
    for case in cases(root):
        failure = case.find("failure")
        if failure is not None:
            assert failure.get("type") == ", ".join(
                dict.fromkeys(
                    line.split(": ", 1)[1].split(" ", 1)[0]
                    for line in (failure.text or "").splitlines()
                )
            )
            assert failure.get("message")


def test_over_budget_failures_by_fail_on(render_report: Callable[..., str]) -> None:
    def failed(fail_on: str = "error") -> dict[str, set[str]]:
        root = parse(render_report("junit", "check", OVER_BUDGET, fail_on))
        return {
            str(c.get("name")): rules_in(c.find("failure"))
            for c in cases(root)
            if c.find("failure") is not None
        }

    assert failed() == {"support-reply": {"PB101", "PB106", "PB107", "PB108"}}
    warned = {"PB101", "PB106", "PB107", "PB108", "PB113", "PB115", "PB116", "PB203"}
    assert failed("warning") == {"support-reply": warned}
    assert failed("info") == {
        "support-reply": warned,
        "escalation-draft": {"PB301"},
    }


def test_lower_findings_go_to_system_out(render_report: Callable[..., str]) -> None:
    root = parse(render_report("junit", "check", OVER_BUDGET))
    support = case_named(root, "workflow", "support-reply")
    assert rules_in(support.find("system-out")) == {"PB113", "PB115", "PB116", "PB203"}
    escalation = case_named(root, "workflow", "escalation-draft")
    assert escalation.find("failure") is None
    out = escalation.find("system-out")
    assert out is not None
    assert (out.text or "").startswith(
        "prompts/support/escalate.prompty:1: PB301 estimated-count [info] token counts for"
    )
    passing = case_named(root, "workflow", "ticket-summary")
    assert [child.tag for child in passing] == ["properties"]


def test_every_limit_is_a_property_of_its_test_case(render_report: Callable[..., str]) -> None:
    root = parse(render_report("junit", "check", OVER_BUDGET))
    support = case_named(root, "workflow", "support-reply")
    values = {p.get("name"): p.get("value") for p in support.iter("property")}
    # examples/over-budget: PB101 measures 8,951 input tokens against max_input_tokens 8,000.
    assert values["limit:max_input_tokens"] == "8,951 of 8,000 tokens (112%, over)"
    assert values["limit:max_turns"] == "2 of 4 turns (50%, ok)"
    assert len(values) == 7


def test_count_findings_belong_to_their_template(render_report: Callable[..., str]) -> None:
    root = parse(render_report("junit", "count", EXAMPLES))
    escalate = case_named(root, "template", "prompts/support/escalate.prompty")
    assert rules_in(escalate.find("system-out")) == {"PB301"}
    assert suite_of(root).get("failures") == "0"


# -- through the CLI -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "cwd"),
    [(("check",), OVER_BUDGET), (("check", "--fail-on", "warning"), OVER_BUDGET)],
    ids=["check", "fail-on-warning"],
)
def test_cli_prints_what_the_reporter_renders(
    args: tuple[str, ...], cwd: Path, run_cli: Callable[..., Any], render_report: Callable[..., str]
) -> None:
    result = run_cli(*args, "--format", "junit", cwd=cwd)
    assert result.stderr == ""
    fail_on = args[-1] if "--fail-on" in args else "error"
    assert result.stdout == render_report("junit", args[0], cwd, fail_on)


def test_junit_exit_code_is_the_check_exit_code(run_cli: Callable[..., Any]) -> None:
    assert run_cli("check", "--format", "junit", cwd=OVER_BUDGET).exit_code == 1
    assert run_cli("check", "--format", "junit", cwd=EXAMPLES).exit_code == 0
    zero = run_cli("check", "--format", "junit", "--exit-zero", cwd=OVER_BUDGET)
    assert zero.exit_code == 0
    assert suite_of(parse(zero.stdout)).get("failures") == "1"  # still reported


def test_empty_project_is_an_empty_suite(
    run_cli: Callable[..., Any], make_project: Callable[..., Path]
) -> None:
    root = make_project({"budgets.yaml": "version: 1\n"})
    (root / "prompts").mkdir()
    result = run_cli("check", "--format", "junit", cwd=root)
    assert result.exit_code == 0
    parsed = parse(result.stdout)
    assert cases(parsed) == []
    assert_counts(parsed)


# -- findings that belong to no workflow or template -------------------------------------------


def test_a_finding_of_no_workflow_or_template_is_its_own_test_case() -> None:
    root = render(
        finding(rule="PB110", slug="unknown-model", path="budgets.yaml", line=12),
        finding(rule="PB999", slug="project-rule", path=None, line=None, severity=Severity.INFO),
        finding(workflow="gone", path=None, line=None),  # names a workflow the report lacks
    )
    assert [(c.get("classname"), c.get("name")) for c in cases(root)] == [
        ("finding", "PB110 unknown-model (budgets.yaml:12)"),
        ("finding", "PB999 project-rule (project)"),
        ("finding", "PB101 input-over-budget (project)"),
    ]
    assert_counts(root)
    assert suite_of(root).get("failures") == "2"


def test_a_finding_of_an_unknown_workflow_falls_back_to_its_template() -> None:
    from promptbudget.counting import TemplateCount

    template = TemplateCount(
        path="prompts/a.j2",
        format="jinja2",
        model=None,
        tokenizer="o200k_base",
        encoding="o200k_base",
        exact=True,
        error_band="exact",
        prompt=None,
    )
    root = render(
        finding(path="prompts/a.j2", workflow=None),
        finding(path="prompts/a.j2", workflow="not-in-report", rule="PB203", slug="cache"),
        templates=(template,),
    )
    case = case_named(root, "template", "prompts/a.j2")
    assert rules_in(case.find("failure")) == {"PB101", "PB203"}
    assert_counts(root)


def test_one_failing_finding_is_the_failure_message() -> None:
    root = render(finding(message="over by 5"))
    (case,) = cases(root)
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("type") == "PB101"
    assert failure.get("message") == "PB101 input-over-budget: over by 5"


@pytest.mark.parametrize(
    "message",
    [
        'quote " and <tag> & amp',
        "line one\nline two\r\nthree",
        "bell \x07 nul \x00 esc \x1b",
        "é ✓ 🎉",
    ],
    ids=["markup", "newlines", "control", "unicode"],
)
def test_any_message_gives_parseable_xml(message: str) -> None:
    root = render(finding(message=message), finding(message=message, severity=Severity.INFO))
    failure = cases(root)[0].find("failure")
    assert failure is not None
    assert (failure.text or "").startswith("budgets.yaml:3: PB101 input-over-budget [error] ")
    if message.isprintable():
        assert message in (failure.text or "")


def test_cases_carry_file_and_line_for_ci_annotations(
    render_report: Callable[..., str],
) -> None:
    root = parse(render_report("junit", "check", EXAMPLES / "over-budget"))
    support = case_named(root, "workflow", "support-reply")
    assert (support.get("file"), support.get("line")) == ("budgets.yaml", "67")
    answer = case_named(root, "template", "prompts/support/answer.prompty")
    assert answer.get("file") == "prompts/support/answer.prompty"
    assert answer.get("line") is None  # its PB203 is a warning, below --fail-on
    ticket = case_named(root, "workflow", "ticket-summary")
    assert ticket.get("file") is None and ticket.find("failure") is None
