"""JUnit XML, the test report every CI system reads (Jenkins, GitLab, Azure DevOps, CircleCI).

One ``<testsuite>``; one ``<testcase>`` per workflow (classname ``workflow``) and per template
(classname ``template``), and one per finding that belongs to neither. A finding belongs to the
workflow it names, else to the template at its path. A test case fails when findings at or
above ``--fail-on`` belong to it: it gets one ``<failure>`` (``type`` is the rule code, or the
codes, and the body lists every such finding), so ``failures`` counts failing test cases.
Findings below ``--fail-on`` go to the test case's ``<system-out>``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from promptbudget.findings import Finding
from promptbudget.report import Report
from promptbudget.reporters.base import ReportSettings
from promptbudget.reporters.locations import workspace_path

# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def finding_text(finding: Finding) -> str:
    """``budgets.yaml:67: PB106 cost-per-request-over-budget [error] message``."""
    where = finding.path or "-"
    if finding.line:
        where = f"{where}:{finding.line}"
    return f"{where}: {finding.rule} {finding.slug} [{finding.severity.value}] {finding.message}"


@dataclass
class _Case:
    classname: str
    name: str
    findings: list[Finding] = field(default_factory=list)


def junit_cases(report: Report) -> list[_Case]:
    """Workflows, then templates, then one case per finding that belongs to neither."""
    workflows = {w.name: _Case("workflow", w.name) for w in report.workflows}
    templates = {t.path: _Case("template", t.path) for t in report.templates}
    loose: list[_Case] = []
    for finding in report.findings:
        if finding.workflow is not None and finding.workflow in workflows:
            workflows[finding.workflow].findings.append(finding)
        elif finding.path is not None and finding.path in templates:
            templates[finding.path].findings.append(finding)
        else:
            where = finding.path or "project"
            if finding.line:
                where = f"{where}:{finding.line}"
            loose.append(_Case("finding", f"{finding.rule} {finding.slug} ({where})", [finding]))
    return [*workflows.values(), *templates.values(), *loose]


def _limit_properties(element: ET.Element, case: _Case, report: Report) -> None:
    """``<property name="limit:answer:max_input_tokens" value="8,951 of 8,000 tokens (112%,
    over)"/>``: every limit of a workflow (its steps' too) or a template, passing or not."""
    from promptbudget.headroom import format_limit, format_measured, format_used

    if case.classname == "workflow":
        checks = [c for c in report.limits if c.level != "template" and c.workflow == case.name]
    elif case.classname == "template":
        checks = [c for c in report.limits if c.level == "template" and c.template == case.name]
    else:
        return
    if not checks:
        return
    properties = ET.SubElement(element, "properties")
    for check in checks:
        name = ":".join(
            part
            for part in ("limit", check.step, check.variant, check.counted_with, check.key)
            if part
        )
        if check.statistic:
            name += f":{check.statistic}"
        unit = "" if check.unit in ("usd", "ms") else f" {check.unit}"  # their text has it
        value = (
            f"{format_measured(check)} of {format_limit(check)}{unit} "
            f"({format_used(check)}, {check.status})"
        )
        ET.SubElement(properties, "property", name=_xml_text(name), value=_xml_text(value))


def _failure_message(failing: list[Finding], report: Report) -> str:
    if len(failing) == 1:
        (only,) = failing
        return f"{only.rule} {only.slug}: {only.message}"
    rules = ", ".join(dict.fromkeys(f"{f.rule} {f.slug}" for f in failing))
    return f"{len(failing)} findings at or above {report.fail_on.value}: {rules}"


def render_junit(report: Report, settings: ReportSettings) -> str:
    cases = junit_cases(report)
    suites = ET.Element("testsuites", name="promptbudget")
    suite = ET.SubElement(suites, "testsuite", name=f"promptbudget {report.command}")
    failures = 0
    for case in cases:
        element = ET.SubElement(
            suite, "testcase", classname=_xml_text(case.classname), name=_xml_text(case.name)
        )
        element.set("time", "0")
        _limit_properties(element, case, report)
        failing = [f for f in case.findings if f.severity >= report.fail_on]
        passing = [f for f in case.findings if f.severity < report.fail_on]
        # file/line: where a CI annotation for this case goes (the first failing finding;
        # a template's own file otherwise).
        anchor = next((f for f in failing if f.path), None)
        path = (
            anchor.path
            if anchor is not None
            else (case.name if case.classname == "template" else None)
        )
        if path is not None:
            element.set("file", _xml_text(workspace_path(path, settings)))
            if anchor is not None and anchor.line:
                element.set("line", str(anchor.line))
        if failing:
            failures += 1
            failure = ET.SubElement(
                element,
                "failure",
                message=_xml_text(_failure_message(failing, report)),
                type=", ".join(dict.fromkeys(f.rule for f in failing)),
            )
            failure.text = _xml_text("\n".join(finding_text(f) for f in failing))
        if passing:
            out = ET.SubElement(element, "system-out")
            out.text = _xml_text("\n".join(finding_text(f) for f in passing))
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0"}
    for element in (suites, suite):
        for key, value in counts.items():
            element.set(key, value)
        element.set("time", "0")
    suite.set("skipped", "0")
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
