"""``check PATH...``: report only on the files named (as pre-commit passes them) and the
workflows that use them."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from conftest import EXAMPLES, Run

RunCli = Callable[..., Run]


@pytest.fixture
def over_budget(tmp_path: Path) -> Path:
    target = tmp_path / "over-budget"
    shutil.copytree(EXAMPLES / "over-budget", target)
    return target


def _rules(run: Run) -> set[tuple[str, str | None, str | None]]:
    return {(f["rule"], f["path"], f["workflow"]) for f in run.json()["findings"]}


def test_no_paths_reports_everything(run_cli: RunCli, over_budget: Path) -> None:
    run = run_cli("check", "--format", "json", cwd=over_budget)
    workflows = {w["name"] for w in run.json()["workflows"]}
    assert workflows == {"support-reply", "ticket-summary", "escalation-draft"}
    assert run.exit_code == 1


def test_a_template_selects_its_workflow_and_its_own_findings(
    run_cli: RunCli, over_budget: Path
) -> None:
    run = run_cli("check", "prompts/support/answer.prompty", "--format", "json", cwd=over_budget)
    data = run.json()
    assert {w["name"] for w in data["workflows"]} == {"support-reply"}
    assert [t["path"] for t in data["templates"]] == ["prompts/support/answer.prompty"]
    rules = {rule for rule, _, _ in _rules(run)}
    assert {"PB101", "PB106", "PB107", "PB108", "PB203"} <= rules
    assert "PB301" not in rules  # escalate.prompty was not named
    assert run.exit_code == 1


def test_a_template_in_a_passing_workflow_passes(run_cli: RunCli, over_budget: Path) -> None:
    run = run_cli(
        "check", "prompts/support/summarize_ticket.j2", "--format", "json", cwd=over_budget
    )
    assert {w["name"] for w in run.json()["workflows"]} == {"ticket-summary"}
    assert run.json()["findings"] == []
    assert run.exit_code == 0


def test_a_partial_selects_the_workflows_that_include_it(
    run_cli: RunCli, over_budget: Path
) -> None:
    includers = [
        p.name
        for p in (over_budget / "prompts/support").iterdir()
        if "policy.j2" in p.read_text(encoding="utf-8")
    ]
    assert includers, "the example should include its policy partial"
    run = run_cli("check", "prompts/partials/policy.j2", "--format", "json", cwd=over_budget)
    assert "support-reply" in {w["name"] for w in run.json()["workflows"]}
    assert run.exit_code == 1


def test_the_manifest_means_everything(run_cli: RunCli, over_budget: Path) -> None:
    run = run_cli(
        "check",
        "budgets.yaml",
        "prompts/support/summarize_ticket.j2",
        "--format",
        "json",
        cwd=over_budget,
    )
    assert len(run.json()["workflows"]) == 3
    assert run.exit_code == 1


def test_files_outside_the_prompts_are_ignored(run_cli: RunCli, over_budget: Path) -> None:
    (over_budget / "notes.md").write_text("not a prompt\n", encoding="utf-8")
    run = run_cli("check", "notes.md", "--format", "json", cwd=over_budget)
    assert run.json()["findings"] == []
    assert run.json()["workflows"] == []
    assert run.exit_code == 0


def test_a_missing_path_is_a_usage_error(run_cli: RunCli, over_budget: Path) -> None:
    run = run_cli("check", "prompts/nope.j2", cwd=over_budget)
    assert run.exit_code == 2
    assert "prompts/nope.j2: no such file or directory" in run.stderr
    assert "Traceback" not in run.stderr


def test_files_no_workflow_uses_say_so(run_cli: RunCli, over_budget: Path) -> None:
    (over_budget / "notes.md").write_text("not a prompt\n", encoding="utf-8")
    run = run_cli("check", "notes.md", cwd=over_budget)
    assert run.exit_code == 0
    assert "no workflow uses the files named" in run.stdout


def test_the_manifest_is_found_from_the_files_named(run_cli: RunCli, over_budget: Path) -> None:
    repo = over_budget.parent
    run = run_cli(
        "check", "over-budget/prompts/support/answer.prompty", "--format", "json", cwd=repo
    )
    assert run.exit_code == 1, run.stderr
    assert {w["name"] for w in run.json()["workflows"]} == {"support-reply"}


def test_files_of_two_projects_run_once_per_project(run_cli: RunCli, over_budget: Path) -> None:
    repo = over_budget.parent
    shutil.copytree(EXAMPLES, repo / "passing", ignore=shutil.ignore_patterns("over-budget"))
    run = run_cli(
        "check",
        "over-budget/prompts/support/answer.prompty",
        "passing/prompts/support/classify.j2",
        cwd=repo,
    )
    assert run.exit_code == 1  # the worst of the two
    assert "over-budget/budgets.yaml (paths below are relative to it)" in run.stdout
    assert "passing/budgets.yaml (paths below are relative to it)" in run.stdout
    assert "all budgets hold" in run.stdout and "PB101" in run.stdout


def test_one_report_formats_refuse_two_projects(run_cli: RunCli, over_budget: Path) -> None:
    repo = over_budget.parent
    shutil.copytree(over_budget, repo / "second")
    run = run_cli(
        "check",
        "over-budget/prompts/support/answer.prompty",
        "second/prompts/support/answer.prompty",
        "--format",
        "json",
        cwd=repo,
    )
    assert run.exit_code == 2
    assert "the files named belong to 2 projects; --format json" in run.stderr


def test_a_selection_reports_the_same_numbers_as_the_whole_run(
    run_cli: RunCli, over_budget: Path
) -> None:
    """Only the selected workflows are simulated; what they report must not change."""
    whole = run_cli("check", "--format", "json", cwd=over_budget).json()
    by_name = {w["name"]: w for w in whole["workflows"]}
    whole_findings = [
        (f["rule"], f["path"], f["workflow"], f["message"]) for f in whole["findings"]
    ]
    for template in sorted((over_budget / "prompts").rglob("*.*")):
        path = template.relative_to(over_budget).as_posix()
        part = run_cli("check", path, "--format", "json", cwd=over_budget).json()
        for workflow in part["workflows"]:
            assert workflow == by_name[workflow["name"]], (path, workflow["name"])
        for finding in part["findings"]:
            key = (finding["rule"], finding["path"], finding["workflow"], finding["message"])
            assert key in whole_findings, (path, key)


def test_a_pasted_passage_is_priced_across_every_workflow(run_cli: RunCli, tmp_path: Path) -> None:
    """PB204 on a selected template states what every copy costs, including copies in
    workflows that were not selected (and so are not reported)."""
    case = yaml.safe_load((Path(__file__).parents[1] / "rules/cases/PB204.yaml").read_text())[0]
    for name, text in case["files"].items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    run = run_cli("check", "prompts/answer.j2", "--format", "json", cwd=tmp_path)
    assert [w["name"] for w in run.json()["workflows"]] == ["support"]
    (message,) = [f["message"] for f in run.json()["findings"] if f["rule"] == "PB204"]
    assert "the copies cost $7.13 a month across support, escalate" in message


def test_a_passage_is_reported_at_the_named_template_whatever_the_order(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """``check PATH`` on the copy whose path sorts last (what a pre-commit hook runs after
    that file was edited) reports the passage there, naming the other copies; it reported
    nothing, the finding being placed at the first copy, which the check did not name."""
    case = yaml.safe_load((Path(__file__).parents[1] / "rules/cases/PB204.yaml").read_text())[0]
    for name, text in case["files"].items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    whole = run_cli("check", "--format", "json", "--no-cache", cwd=tmp_path).json()
    ((first, first_line, others),) = [
        (f["path"], f["line"], f["message"]) for f in whole["findings"] if f["rule"] == "PB204"
    ]
    assert first == "prompts/answer.j2" and "is also in prompts/escalate.j2:" in others
    for cache in ("--no-cache", None):
        args = ["check", "prompts/escalate.j2", "--format", "json", *([cache] if cache else [])]
        run = run_cli(*args, cwd=tmp_path)
        (finding,) = [f for f in run.json()["findings"] if f["rule"] == "PB204"]
        assert finding["path"] == "prompts/escalate.j2", finding
        assert f"is also in prompts/answer.j2:{first_line}" in finding["message"], finding
