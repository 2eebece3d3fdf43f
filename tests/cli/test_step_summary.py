"""Inside GitHub Actions, ``check`` and ``diff`` append their markdown to the job summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import EXAMPLES, Run

RunCli = Callable[..., Run]


@pytest.fixture
def actions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(EXAMPLES.parent))
    return summary


def test_check_appends_markdown_to_the_summary(run_cli: RunCli, actions: Path) -> None:
    run = run_cli("check", cwd=EXAMPLES / "over-budget")
    assert run.exit_code == 1
    text = actions.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n<!-- promptbudget -->\n## ❌ promptbudget check")
    assert "PB101" in text
    assert run.stdout.startswith("::warning file=examples/over-budget/")  # auto: annotations


def test_not_outside_actions(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run_cli("check", cwd=EXAMPLES)
    assert not summary.exists()


def test_other_commands_do_not_write_it(run_cli: RunCli, actions: Path) -> None:
    run_cli("count", cwd=EXAMPLES)
    run_cli("estimate", cwd=EXAMPLES)
    assert actions.read_text(encoding="utf-8") == "# earlier step\n"


def test_markdown_written_to_the_summary_is_not_written_twice(
    run_cli: RunCli, actions: Path
) -> None:
    run = run_cli("check", "--format", "markdown", "--output", str(actions), cwd=EXAMPLES)
    assert run.exit_code == 0
    assert actions.read_text(encoding="utf-8").count("<!-- promptbudget -->") == 1


def test_an_unwritable_summary_is_a_warning(
    run_cli: RunCli, actions: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path))  # a directory
    run = run_cli("check", "--format", "json", cwd=EXAMPLES / "over-budget")
    assert run.exit_code == 1  # the check's own exit code
    assert run.json()["summary"]["errors"] == 4
    assert "promptbudget: warning: cannot append to GITHUB_STEP_SUMMARY" in run.stderr
    assert "Traceback" not in run.stderr
