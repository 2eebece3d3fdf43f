"""The JSON output is a stable contract (DESIGN §4, ``"schema_version": 1``).

The schema below is written from the design document, not from the reporter: it is what a
consumer of the JSON may rely on. Extra keys are allowed where the design says "at least";
a finding has exactly the documented keys.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from jsonschema import Draft202012Validator

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_NUMBER = {"type": ["number", "null"]}
NULLABLE_COUNT = {"type": ["integer", "null"], "minimum": 0}
MONEY = {"type": "number", "minimum": 0}
RELATIVE_PATH = {"type": "string", "minLength": 1, "pattern": r"^(?![/\\])(?!.*\\)(?![A-Za-z]:)"}

FINDING = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "rule",
        "slug",
        "severity",
        "message",
        "path",
        "line",
        "workflow",
        "step",
        "measured",
        "limit",
        "unit",
    ],
    "properties": {
        "rule": {"type": "string", "pattern": r"^PB\d{3}$"},
        "slug": {"type": "string", "pattern": r"^[a-z0-9]+(-[a-z0-9]+)*$"},
        "severity": {"enum": ["error", "warning", "info"]},
        "message": {"type": "string", "minLength": 1},
        "path": {"oneOf": [RELATIVE_PATH, {"type": "null"}]},
        "line": {"type": ["integer", "null"], "minimum": 1},
        "workflow": NULLABLE_STRING,
        "step": NULLABLE_STRING,
        "measured": NULLABLE_NUMBER,
        "limit": NULLABLE_NUMBER,
        "unit": NULLABLE_STRING,
    },
}

TEMPLATE = {
    "type": "object",
    "required": [
        "path",
        "format",
        "model",
        "encoding",
        "exact",
        "text_tokens",
        "request_tokens",
        "messages",
        "variables",
    ],
    "properties": {
        "path": RELATIVE_PATH,
        "format": {"type": "string", "minLength": 1},
        "model": NULLABLE_STRING,
        "encoding": {"type": "string", "minLength": 1},
        "exact": {"type": "boolean"},
        "text_tokens": NULLABLE_COUNT,
        "request_tokens": NULLABLE_COUNT,
        "messages": {"type": "array", "items": {"type": "object"}},
        "variables": {"type": "array", "items": {"type": "object"}},
    },
}

STEP = {
    "type": "object",
    "required": ["cost_per_request_usd"],
    "properties": {"cost_per_request_usd": MONEY},
}

WORKFLOW = {
    "type": "object",
    "required": [
        "name",
        "cost_per_request_usd",
        "cost_per_outcome_usd",
        "monthly_spend_usd",
        "steps",
    ],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "cost_per_request_usd": MONEY,
        "cost_per_outcome_usd": MONEY,
        "monthly_spend_usd": {"oneOf": [MONEY, {"type": "null"}]},  # null: no traffic declared
        "steps": {"type": "array", "items": STEP},
    },
}

SUMMARY = {
    "type": "object",
    "required": ["errors", "warnings", "infos", "exit_code"],
    "properties": {
        "errors": {"type": "integer", "minimum": 0},
        "warnings": {"type": "integer", "minimum": 0},
        "infos": {"type": "integer", "minimum": 0},
        "exit_code": {"enum": [0, 1]},
    },
}

COMMON = {
    "schema_version": {"const": 1},
    "summary": SUMMARY,
    "findings": {"type": "array", "items": FINDING},
}

COUNT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["schema_version", "summary", "findings", "templates", "totals"],
    "properties": {
        **COMMON,
        "templates": {"type": "array", "items": TEMPLATE},
        "totals": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "model",
                    "encoding",
                    "templates",
                    "text_tokens",
                    "request_tokens",
                    "exact",
                ],
                "additionalProperties": False,
                "properties": {
                    "model": {"type": ["string", "null"]},
                    "encoding": {"type": "string"},
                    "templates": {"type": "integer", "minimum": 1},
                    "text_tokens": {"type": "integer", "minimum": 0},
                    "request_tokens": {"type": "integer", "minimum": 0},
                    "exact": {"type": "boolean"},
                },
            },
        },
    },
}

CHECK_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["schema_version", "summary", "findings", "workflows"],
    "properties": {**COMMON, "workflows": {"type": "array", "items": WORKFLOW}},
}

SCHEMAS = {"count": COUNT_SCHEMA, "check": CHECK_SCHEMA}
RUNS = [
    pytest.param(("count", EXAMPLES, 0), id="count-examples"),
    pytest.param(("count", EXAMPLES / "over-budget", 0), id="count-over-budget"),
    pytest.param(("check", EXAMPLES, 0), id="check-examples"),
    pytest.param(("check", EXAMPLES / "over-budget", 1), id="check-over-budget"),
]


@pytest.fixture(params=RUNS)
def run(request: pytest.FixtureRequest, run_cli: Callable[..., Any]) -> tuple[str, Path, Any]:
    command, project, exit_code = request.param
    result = run_cli(command, "--format", "json", cwd=project)
    assert result.exit_code == exit_code, result.stderr
    assert result.stderr == ""
    return command, project, result


def test_schemas_are_valid_json_schemas() -> None:
    for schema in SCHEMAS.values():
        Draft202012Validator.check_schema(schema)


def test_output_validates_against_the_documented_schema(run: tuple[str, Path, Any]) -> None:
    command, _, result = run
    payload = result.json()
    errors = sorted(Draft202012Validator(SCHEMAS[command]).iter_errors(payload), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_summary_exit_code_is_the_process_exit_code(run: tuple[str, Path, Any]) -> None:
    _, _, result = run
    assert result.json()["summary"]["exit_code"] == result.exit_code


def test_summary_counts_the_findings(run: tuple[str, Path, Any]) -> None:
    _, _, result = run
    payload = result.json()
    severities = [f["severity"] for f in payload["findings"]]
    assert payload["summary"]["errors"] == severities.count("error")
    assert payload["summary"]["warnings"] == severities.count("warning")
    assert payload["summary"]["infos"] == severities.count("info")


def paths_in(payload: dict[str, Any]) -> Iterator[str]:
    for finding in payload["findings"]:
        if finding["path"] is not None:
            yield finding["path"]
    for template in payload.get("templates", []):
        yield template["path"]
    for workflow in payload.get("workflows", []):
        for step in workflow["steps"]:
            if step.get("prompt") is not None:
                yield step["prompt"]


def test_paths_are_relative_to_the_project_root_with_slashes(run: tuple[str, Path, Any]) -> None:
    _, project, result = run
    paths = list(paths_in(result.json()))
    assert paths
    for path in paths:
        assert "\\" not in path
        pure = PurePosixPath(path)
        assert not pure.is_absolute()
        assert ".." not in pure.parts
        assert (project / path).is_file(), f"{path} is not a file under the project root"


def money_values(payload: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for workflow in payload.get("workflows", []):
        for key in ("cost_per_request_usd", "cost_per_outcome_usd", "monthly_spend_usd"):
            yield f"{workflow['name']}.{key}", workflow[key]
        for step in workflow["steps"]:
            yield (
                f"{workflow['name']}.{step.get('name')}.cost_per_request_usd",
                step["cost_per_request_usd"],
            )
    for finding in payload["findings"]:
        if finding["unit"] == "usd":
            yield f"{finding['rule']}.measured", finding["measured"]
            yield f"{finding['rule']}.limit", finding["limit"]


def test_money_values_are_json_numbers(run: tuple[str, Path, Any]) -> None:
    command, _, result = run
    values = list(money_values(result.json()))
    if command == "check":
        assert values
    for where, value in values:
        assert isinstance(value, (int, float)), f"{where} = {value!r}"
        assert not isinstance(value, bool), where
        assert math.isfinite(value), where


@pytest.mark.parametrize("project", ["examples", "over-budget"])
def test_workflow_cost_is_the_sum_of_its_steps(project: str, run_cli: Callable[..., Any]) -> None:
    cwd = EXAMPLES if project == "examples" else EXAMPLES / project
    workflows = run_cli("check", "--format", "json", cwd=cwd).json()["workflows"]
    assert workflows
    for workflow in workflows:
        steps = sum(step["cost_per_request_usd"] for step in workflow["steps"])
        assert abs(steps - workflow["cost_per_request_usd"]) <= 1e-12, workflow["name"]


def test_count_reports_every_template_once(run_cli: Callable[..., Any]) -> None:
    payload = run_cli("count", "--format", "json", cwd=EXAMPLES).json()
    paths = [t["path"] for t in payload["templates"]]
    on_disk = sorted(
        p.relative_to(EXAMPLES).as_posix() for p in (EXAMPLES / "prompts").rglob("*") if p.is_file()
    )
    assert sorted(paths) == on_disk


def test_over_budget_findings_carry_measured_limit_and_unit(run_cli: Callable[..., Any]) -> None:
    payload = run_cli("check", "--format", "json", cwd=EXAMPLES / "over-budget").json()
    by_rule = {f["rule"]: f for f in payload["findings"]}
    assert by_rule["PB101"]["measured"] > by_rule["PB101"]["limit"] == 8000
    assert by_rule["PB101"]["unit"] == "tokens"
    assert by_rule["PB106"]["measured"] > by_rule["PB106"]["limit"] == 0.015
    assert by_rule["PB106"]["unit"] == "usd"


def test_empty_project_is_a_valid_empty_report(
    run_cli: Callable[..., Any], make_project: Callable[..., Path]
) -> None:
    root = make_project({"budgets.yaml": "version: 1\n"})
    (root / "prompts").mkdir()
    for command, schema in SCHEMAS.items():
        result = run_cli(command, "--format", "json", cwd=root)
        assert result.exit_code == 0
        payload = result.json()
        assert not list(Draft202012Validator(schema).iter_errors(payload))
        assert payload["findings"] == []
        assert payload["summary"] == {"errors": 0, "warnings": 0, "infos": 0, "exit_code": 0}


def test_schema_rejects_what_the_contract_forbids(run_cli: Callable[..., Any]) -> None:
    """The schema is not vacuous: each of these breaks the contract and is caught."""
    good = run_cli("check", "--format", "json", cwd=EXAMPLES / "over-budget").json()
    validator = Draft202012Validator(CHECK_SCHEMA)
    assert validator.is_valid(good)

    def broken(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        payload = json.loads(json.dumps(good))
        change(payload)
        return payload

    mutations: list[Callable[[dict[str, Any]], None]] = [
        lambda p: p.update(schema_version=2),
        lambda p: p["summary"].pop("infos"),
        lambda p: p["findings"][0].update(extra=1),
        lambda p: p["findings"][0].pop("unit"),
        lambda p: p["findings"][0].update(severity="fatal"),
        lambda p: p["findings"][0].update(path="/abs/budgets.yaml"),
        lambda p: p["findings"][0].update(path="prompts\\a.j2"),
        lambda p: p["findings"][0].update(measured="0.05"),
        lambda p: p["workflows"][0].update(cost_per_request_usd="0.05"),
        lambda p: p["workflows"][0].pop("steps"),
        lambda p: p["workflows"][0]["steps"][0].update(cost_per_request_usd=None),
    ]
    for mutation in mutations:
        assert not validator.is_valid(broken(mutation))


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_a_symlink_is_reported_by_its_own_path(
    run_cli: Callable[..., Any], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret outside the repo\n", encoding="utf-8")
    root = make_project({"budgets.yaml": "version: 1\n"})
    (root / "prompts").mkdir()
    (root / "prompts" / "link.txt").symlink_to(outside)
    for command in ("check", "count"):
        payload = run_cli(command, "--format", "json", cwd=root).json()
        paths = {f["path"] for f in payload["findings"]} | {t["path"] for t in payload["templates"]}
        assert paths <= {"prompts/link.txt"}, (command, paths)


def test_invalid_utf8_is_not_counted_as_exact(
    run_cli: Callable[..., Any], make_project: Callable[..., Path]
) -> None:
    root = make_project({"budgets.yaml": "version: 1\n", "prompts/bin.txt": b"\xff\xfe bad\n"})
    payload = run_cli("count", "--format", "json", cwd=root).json()
    assert [f["rule"] for f in payload["findings"]] == ["PB001"]
    (template,) = payload["templates"]
    assert template["exact"] is False
