"""``--output FILE``: the report goes to the file, nothing to stdout; failures are one line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
@pytest.mark.parametrize(
    ("project", "exit_code"), [("examples", 0), ("over-budget", 1)], ids=["pass", "fail"]
)
def test_output_writes_the_report_to_the_file_and_nothing_to_stdout(
    fmt: str, project: str, exit_code: int, run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    cwd = EXAMPLES if project == "examples" else EXAMPLES / project
    target = tmp_path / f"report.{fmt}"
    written = run_cli("check", "--format", fmt, "--output", str(target), cwd=cwd)
    printed = run_cli("check", "--format", fmt, cwd=cwd)

    assert written.exit_code == printed.exit_code == exit_code
    assert written.stdout == ""
    assert written.stderr == ""
    assert target.read_text(encoding="utf-8") == printed.stdout


@pytest.mark.parametrize("command", ["count", "models"])
def test_output_works_for_count_and_models(
    command: str, run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    target = tmp_path / "report.json"
    result = run_cli(command, "--format", "json", "-o", str(target), cwd=EXAMPLES)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert (
        target.read_text(encoding="utf-8")
        == run_cli(command, "--format", "json", cwd=EXAMPLES).stdout
    )


def test_output_relative_to_the_working_directory(
    run_cli: Callable[..., Any], make_project: Callable[..., Path]
) -> None:
    root = make_project({"budgets.yaml": "version: 1\n"})
    (root / "prompts").mkdir()
    result = run_cli("check", "--format", "json", "--output", "report.json", cwd=root)
    assert (result.exit_code, result.stdout) == (0, "")
    assert (root / "report.json").read_text(encoding="utf-8").startswith("{")


def test_output_overwrites_an_existing_file(run_cli: Callable[..., Any], tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    target.write_text("stale report that is much longer than the new one\n" * 100, encoding="utf-8")
    result = run_cli("check", "--format", "github", "--output", str(target), cwd=EXAMPLES)
    assert result.exit_code == 0
    assert (
        target.read_text(encoding="utf-8")
        == run_cli("check", "--format", "github", cwd=EXAMPLES).stdout
    )


def test_output_file_has_no_colour_even_on_a_terminal(
    run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    on_terminal = run_cli("check", "--format", "text", cwd=EXAMPLES / "over-budget")
    assert "\x1b[" in on_terminal.stdout  # the patch works: a terminal gets colour

    target = tmp_path / "report.txt"
    result = run_cli(
        "check", "--format", "text", "--output", str(target), cwd=EXAMPLES / "over-budget"
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "\x1b[" not in target.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_output_into_a_missing_directory_is_a_one_line_usage_error(
    fmt: str, run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    target = tmp_path / "missing" / "report.txt"
    result = run_cli(
        "check", "--format", fmt, "--output", str(target), cwd=EXAMPLES / "over-budget"
    )

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("promptbudget: error: cannot write --output ")
    assert "report.txt" in result.stderr
    assert "Traceback" not in result.stderr
    assert not target.parent.exists()


def test_output_onto_a_directory_is_a_one_line_usage_error(
    run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    result = run_cli("check", "--output", str(tmp_path), cwd=EXAMPLES)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "is a directory" in result.stderr
    assert "Traceback" not in result.stderr
