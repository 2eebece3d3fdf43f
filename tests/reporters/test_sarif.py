"""SARIF 2.1.0: valid against the OASIS schema (offline), every rule described, locations
relative to the workspace, fingerprints that survive edits."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import socket
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from jsonschema import Draft7Validator
from referencing import Registry

from conftest import TODAY
from promptbudget import __version__
from promptbudget.commands.check import run as run_check
from promptbudget.commands.count import run as run_count
from promptbudget.findings import Finding, Severity
from promptbudget.options import Options, OutputFormat
from promptbudget.report import Report
from promptbudget.reporters import ReportSettings, get_reporter
from promptbudget.reporters.sarif import doc_markdown, render_sarif
from promptbudget.rules import RULES

RUN_DATE = date.fromisoformat(TODAY)  # the date the CLI sees in the tests

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "sarif-2.1.0.json"
SCHEMA_SHA256 = "7c9688f0a1c4a4e1649ecc78521087e664729c1dff56ee8212ff195c7b16132a"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


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


@functools.cache
def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def validate(log: dict[str, Any]) -> None:
    """Against the shipped schema, with an empty registry: nothing can be fetched."""
    validator = Draft7Validator(load_schema(), registry=Registry())
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def sarif(report: Report, settings: ReportSettings | None = None) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(render_sarif(report, settings or ReportSettings()))
    return log


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


def results_of(*findings: Finding) -> list[dict[str, Any]]:
    log = sarif(Report(command="check", findings=findings))
    validate(log)
    results: list[dict[str, Any]] = log["runs"][0]["results"]
    return results


# -- the schema ------------------------------------------------------------------------------


def test_shipped_schema_is_the_recorded_copy() -> None:
    data = SCHEMA_PATH.read_bytes().replace(b"\r\n", b"\n")
    assert hashlib.sha256(data).hexdigest() == SCHEMA_SHA256
    schema = load_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["$id"].endswith("/sarif-schema-2.1.0.json")
    Draft7Validator.check_schema(schema)


def test_no_ref_in_the_schema_needs_the_network() -> None:
    found = list(refs(load_schema()))
    assert found
    assert all(ref.startswith("#/") for ref in found), [r for r in found if r[:2] != "#/"]


def test_the_schema_is_not_vacuous() -> None:
    good = sarif(Report(command="check", findings=(finding(),)))
    validate(good)
    validator = Draft7Validator(load_schema(), registry=Registry())
    broken = [
        {**good, "version": "2.0.0"},
        {**good, "runs": [{"results": []}]},  # no tool
        json.loads(json.dumps(good).replace('"level": "error"', '"level": "fatal"')),
        json.loads(json.dumps(good).replace('"startLine": 3', '"startLine": 0')),
    ]
    for log in broken:
        assert not validator.is_valid(log)


# -- valid output ----------------------------------------------------------------------------


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    ("command", "project", "fail_on"),
    [
        ("check", "over-budget", "error"),
        ("check", "over-budget", "info"),
        ("check", "examples", "error"),
        ("count", "examples", "error"),
    ],
)
def test_output_validates_against_the_sarif_schema(
    command: str, project: str, fail_on: str, render_report: Callable[..., str]
) -> None:
    cwd = EXAMPLES if project == "examples" else EXAMPLES / project
    log = json.loads(render_report("sarif", command, cwd, fail_on))
    validate(log)
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1
    json_findings = json.loads(render_report("json", command, cwd, fail_on))["findings"]
    assert len(log["runs"][0]["results"]) == len(json_findings)
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == [f["rule"] for f in json_findings]


@pytest.mark.usefixtures("no_network")
def test_empty_project_validates_and_has_no_results(
    run_cli: Callable[..., Any], make_project: Callable[..., Path]
) -> None:
    root = make_project({"budgets.yaml": "version: 1\n"})
    (root / "prompts").mkdir()
    result = run_cli("check", "--format", "sarif", cwd=root)
    assert result.exit_code == 0
    log = result.json()
    validate(log)
    assert log["runs"][0]["results"] == []
    assert str(root) not in result.stdout


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("command", ["check", "count", "models"])
def test_empty_report_validates(command: str) -> None:
    validate(sarif(Report(command=command)))


# -- tool and rules --------------------------------------------------------------------------


def test_driver_names_the_tool_and_its_version() -> None:
    driver = sarif(Report(command="check"))["runs"][0]["tool"]["driver"]
    assert driver["name"] == "promptbudget"
    assert driver["version"] == __version__
    assert driver["informationUri"] == "https://github.com/promptbudget/promptbudget"


def test_every_rule_is_described_with_help() -> None:
    rules = sarif(Report(command="check"))["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(RULES)
    for descriptor, rule in zip(rules, RULES.values(), strict=True):
        assert descriptor["name"] == "".join(p.capitalize() for p in rule.slug.split("-"))
        assert descriptor["shortDescription"]["text"] == rule.summary
        assert descriptor["fullDescription"]["text"]
        assert descriptor["help"]["text"] == rule.doc.replace("``", "`")  # no reST literals
        assert "``" not in descriptor["help"]["text"].split("Fails")[0]
        assert "**Why:**" in descriptor["help"]["markdown"]
        assert "```" in descriptor["help"]["markdown"]  # the Fails/Passes examples
        assert descriptor["defaultConfiguration"]["level"] == LEVELS[rule.default_severity]
        assert descriptor["properties"]["slug"] == rule.slug


def readme_rules_table() -> tuple[set[str], set[str]]:
    """(the GitHub anchors of README's headings, the codes in its Rules section's table)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    headings = re.findall(r"^#+ (.+)$", readme, flags=re.MULTILINE)
    anchors = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
    section = readme.split("\n## Rules\n", 1)[1].split("\n## ", 1)[0]
    return anchors, set(re.findall(r"^\| (PB\d{3}) \|", section, flags=re.MULTILINE))


def test_every_rule_has_a_help_uri_to_its_documentation() -> None:
    rules = sarif(Report(command="check"))["runs"][0]["tool"]["driver"]["rules"]
    anchors, documented = readme_rules_table()
    for descriptor in rules:
        uri = descriptor["helpUri"]
        assert uri.startswith("https://github.com/promptbudget/promptbudget#")  # absolute
        assert uri.split("#", 1)[1] in anchors  # a README section GitHub links to
        assert descriptor["id"] in documented  # and the rule is in that section's table


def test_rule_help_markdown_fences_the_examples() -> None:
    doc = (
        "Does a thing with ``x``.\n\nWhy: because.\n\nFails:\n    a: 1\n\n    b: 2\n\n"
        "Passes (info):\n    c: 3\n"
    )
    assert doc_markdown(doc) == (
        "Does a thing with `x`.\n\n**Why:** because.\n\n**Fails:**\n\n```\na: 1\n\nb: 2\n```\n\n"
        "**Passes (info):**\n\n```\nc: 3\n```\n"
    )


def test_results_point_at_their_rule_descriptor(render_report: Callable[..., str]) -> None:
    run = json.loads(render_report("sarif", "check", EXAMPLES / "over-budget"))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert {r["ruleId"] for r in run["results"]} == {
        "PB101",
        "PB106",
        "PB107",
        "PB108",
        "PB113",
        "PB115",
        "PB116",
        "PB203",
        "PB301",
    }
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_a_rule_missing_from_the_registry_still_gets_a_descriptor() -> None:
    log = sarif(Report(command="check", findings=(finding(rule="PB999", slug="new-rule"),)))
    validate(log)
    run = log["runs"][0]
    (result,) = run["results"]
    descriptor = run["tool"]["driver"]["rules"][result["ruleIndex"]]
    assert descriptor["id"] == "PB999"
    assert descriptor["name"] == "NewRule"
    assert len(run["tool"]["driver"]["rules"]) == len(RULES) + 1


# -- results ---------------------------------------------------------------------------------


@pytest.mark.parametrize("severity", list(Severity), ids=lambda s: s.value)
def test_severity_maps_to_level(severity: Severity) -> None:
    (result,) = results_of(finding(severity=severity))
    assert result["level"] == LEVELS[severity]


def test_result_has_message_location_and_region() -> None:
    (result,) = results_of(finding())
    assert result["ruleId"] == "PB101"
    assert result["message"] == {"text": "too many tokens"}
    assert result["locations"] == [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": "prompts/a.j2", "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": 3},
            }
        }
    ]


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("prompts/my prompt.j2", "prompts/my%20prompt.j2"),
        ("prompts/100%.j2", "prompts/100%25.j2"),
        ("prompts/café#1.j2", "prompts/caf%C3%A9%231.j2"),
    ],
)
def test_uris_are_percent_encoded(path: str, uri: str) -> None:
    (result,) = results_of(finding(path=path))
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == uri


def test_run_says_it_completed() -> None:
    log = sarif(Report(command="check"))
    assert log["runs"][0]["invocations"] == [{"executionSuccessful": True}]


def test_descriptions_fit_github_limits() -> None:
    for descriptor in sarif(Report(command="check"))["runs"][0]["tool"]["driver"]["rules"]:
        assert len(descriptor["fullDescription"]["text"]) <= 1024
        assert "promptbudget" in descriptor["properties"]["tags"]


def test_finding_without_a_line_has_no_region() -> None:
    (result,) = results_of(finding(line=None))
    assert "region" not in result["locations"][0]["physicalLocation"]


def test_finding_without_a_path_has_no_location() -> None:
    (result,) = results_of(finding(path=None, line=None, workflow="w"))
    assert "locations" not in result
    assert result["partialFingerprints"]


def test_properties_carry_measured_limit_unit_workflow_and_step() -> None:
    over = finding(
        workflow="support",
        step="answer",
        measured=Decimal("0.0123456"),
        limit=Decimal("0.01"),
        unit="usd",
    )
    (result, plain) = results_of(over, finding())
    assert result["properties"] == {
        "workflow": "support",
        "step": "answer",
        "measured": 0.0123456,
        "limit": 0.01,
        "unit": "usd",
        "used_pct": 123.46,
    }
    assert "properties" not in plain


def test_over_budget_properties(render_report: Callable[..., str]) -> None:
    run = json.loads(render_report("sarif", "check", EXAMPLES / "over-budget"))["runs"][0]
    pb101 = next(r for r in run["results"] if r["ruleId"] == "PB101")
    assert pb101["properties"] == {
        "workflow": "support-reply",
        "step": "answer",
        "measured": 8951,
        "limit": 8000,
        "unit": "tokens",
        "used_pct": 111.89,  # 8,951 / 8,000
    }
    limits = run["properties"]["limits"]
    assert len(limits) == 19  # every limit of workflows, a step, templates; passing too
    turns = next(c for c in limits if c["key"] == "max_turns")
    assert (turns["measured"], turns["limit"], turns["status"]) == (2, 4, "ok")


# -- fingerprints ----------------------------------------------------------------------------


def fingerprint(result: dict[str, Any]) -> str:
    (value,) = result["partialFingerprints"].values()
    assert isinstance(value, str)
    return value


def test_fingerprint_ignores_line_message_and_numbers() -> None:
    base = finding(workflow="w", step="s")
    moved = finding(workflow="w", step="s", line=40, message="other words", measured=99)
    (a,) = results_of(base)
    (b,) = results_of(moved)
    assert fingerprint(a) == fingerprint(b)
    assert re.fullmatch(r"[0-9a-f]{32}:1", fingerprint(a))


@pytest.mark.parametrize(
    "change",
    [{"rule": "PB102"}, {"path": "prompts/b.j2"}, {"workflow": "other"}, {"step": "other"}],
    ids=["rule", "path", "workflow", "step"],
)
def test_fingerprint_depends_on_rule_path_workflow_and_step(change: dict[str, str]) -> None:
    (a,) = results_of(finding(workflow="w", step="s"))
    (b,) = results_of(finding(**{"workflow": "w", "step": "s", **change}))
    assert fingerprint(a) != fingerprint(b)


def test_findings_sharing_a_key_get_distinct_fingerprints() -> None:
    first, second, other = results_of(
        finding(message="variable a"), finding(message="variable b"), finding(rule="PB102")
    )
    assert fingerprint(first).endswith(":1")
    assert fingerprint(second).endswith(":2")
    assert fingerprint(first).split(":")[0] == fingerprint(second).split(":")[0]
    assert fingerprint(other).endswith(":1")


def test_fingerprints_are_stable_across_runs(run_cli: Callable[..., Any]) -> None:
    first = run_cli("check", "--format", "sarif", cwd=EXAMPLES / "over-budget").json()
    second = run_cli("check", "--format", "sarif", cwd=EXAMPLES / "over-budget").json()
    prints = [fingerprint(r) for r in first["runs"][0]["results"]]
    assert prints == [fingerprint(r) for r in second["runs"][0]["results"]]
    assert len(set(prints)) == len(prints)


# -- uris ------------------------------------------------------------------------------------


def uris(log: dict[str, Any]) -> list[str]:
    return [
        location["physicalLocation"]["artifactLocation"]["uri"]
        for result in log["runs"][0]["results"]
        for location in result.get("locations", [])
    ]


def assert_relative(uri: str) -> None:
    pure = PurePosixPath(uri)
    assert "\\" not in uri
    assert not pure.is_absolute()
    assert not re.match(r"^[A-Za-z]:", uri)
    assert ".." not in pure.parts
    assert "://" not in uri


def test_uris_are_relative_to_the_project_outside_github(run_cli: Callable[..., Any]) -> None:
    project = EXAMPLES / "over-budget"
    log = run_cli("check", "--format", "sarif", cwd=project).json()
    found = uris(log)
    assert set(found) == {
        "budgets.yaml",
        "prompts/support/answer.prompty",
        "prompts/support/escalate.prompty",
    }
    for uri in found:
        assert_relative(uri)
        assert (project / uri).is_file()


@pytest.mark.parametrize(
    ("cwd", "args"),
    [
        (EXAMPLES / "over-budget", ()),
        (EXAMPLES / "over-budget" / "prompts", ()),
        (REPO, ("--config", "examples/over-budget/budgets.yaml")),
    ],
    ids=["project", "subdirectory", "config-from-root"],
)
def test_uris_are_rebased_onto_the_github_workspace(
    cwd: Path, args: tuple[str, ...], run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", str(REPO))
    log = run_cli("check", "--format", "sarif", *args, cwd=cwd).json()
    found = uris(log)
    assert set(found) == {
        "examples/over-budget/budgets.yaml",
        "examples/over-budget/prompts/support/answer.prompty",
        "examples/over-budget/prompts/support/escalate.prompty",
    }
    for uri in found:
        assert_relative(uri)
        assert (REPO / uri).is_file()


def test_uris_never_climb_out_of_the_workspace(tmp_path: Path) -> None:
    """A project outside the workspace keeps project-relative paths, never ``../``."""
    settings = ReportSettings(root=str(tmp_path / "project"), workspace=str(tmp_path / "ws"))
    (uri,) = uris(sarif(Report(command="check", findings=(finding(),)), settings))
    assert uri == "prompts/a.j2"


def test_from_a_subdirectory_without_a_workspace_uris_stay_project_relative(
    run_cli: Callable[..., Any],
) -> None:
    log = run_cli("check", "--format", "sarif", cwd=EXAMPLES / "over-budget" / "prompts").json()
    for uri in uris(log):
        assert_relative(uri)
        assert (EXAMPLES / "over-budget" / uri).is_file()


def test_sarif_output_file_matches_stdout(run_cli: Callable[..., Any], tmp_path: Path) -> None:
    target = tmp_path / "promptbudget.sarif"
    written = run_cli("check", "-f", "sarif", "-o", str(target), cwd=EXAMPLES / "over-budget")
    printed = run_cli("check", "-f", "sarif", cwd=EXAMPLES / "over-budget")
    assert written.exit_code == printed.exit_code == 1
    assert written.stdout == ""
    assert target.read_text(encoding="utf-8") == printed.stdout
