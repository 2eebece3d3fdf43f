"""Output a pull request controls: no injected Actions workflow command in any format, no
terminal escape, Rich markup printed as written (issue 11 item 4, 18 item 5, 20 item 5)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Run
from promptbudget.reporters.escape import escape_control, escape_report, guard_line_starts

RunCli = Callable[..., Run]
MakeProject = Callable[..., Path]

FORMATS = ["text", "json", "github", "sarif", "junit", "markdown"]
INJECTED = "::warning title=pwned::injected"
# An annotation line the github reporter writes: a command of ours, properties escaped.
_OURS = re.compile(r"^::(error|warning|notice) (file=[^,:]*,)?(line=\d+,)?title=PB\d{3} [\w-]+::")

MANIFEST = """\
version: 1
prompts: prompts/
defaults:
  model: gpt-4.1-mini
workflows:
  reply:
    traffic: {requests_per_day: 100}
    steps:
      - name: answer
        prompt: a.j2
        output_tokens: 50
"""


def _hostile_project(make_project: MakeProject) -> Path:
    nl = "\n"
    return make_project(
        {
            "budgets.yaml": MANIFEST,
            "prompts/a.j2": "Hi {{ name }}\n",
            # a newline in a file name
            f"prompts/x{nl}{INJECTED}{nl}.j2": "Hello {{ who }}\n",
            # a model name and an input name with newlines, in front matter
            "prompts/m.j2": (
                "---\n"
                'model: "gpt-4.1\\n::add-mask::secret"\n'
                'inputs: {"q\\n::stop-commands::tok": {type: string}}\n'
                "---\nHi {{ other }}\n"
            ),
            # a Handlebars variable name with a newline (segment literal)
            "prompts/h.prompt": "---\nmodel: gpt-4.1-mini\n---\nHi {{[v\n::error::x]}}\n",
            # an exception message echoing template text
            "prompts/broken.j2": "{% if %}\n::notice::from-the-template\n",
            # ESC sequences
            "prompts/esc\x1b[2J.j2": "Hi\n",
            # Rich markup in names
            "prompts/[i]tal.j2": "Hi {{ zz }}\n",
            "prompts/[bold red]loud[/].j2": "Hi {{ zz }}\n",
            "prompts/close.j2": '---\nmodel: "[/x]"\n---\nHi\n',
        }
    )


def _command_lines(text: str, fmt: str) -> list[str]:
    lines = [line for line in text.splitlines() if line.lstrip().startswith("::")]
    if fmt == "github":
        lines = [line for line in lines if not _OURS.match(line)]
    return lines


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("command", [["check"], ["count", "prompts"]])
def test_no_line_a_pr_controls_starts_a_workflow_command(
    fmt: str, command: list[str], run_cli: RunCli, make_project: MakeProject
) -> None:
    root = _hostile_project(make_project)
    run = run_cli(*command, "--format", fmt, cwd=root)
    assert run.exit_code in {0, 1}, run.stderr
    assert "Traceback" not in run.stderr
    assert _command_lines(run.stdout, fmt) == []
    assert _command_lines(run.stderr, fmt) == []
    assert "\x1b" not in run.stdout + run.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_rich_markup_in_names_prints_as_written(
    fmt: str, run_cli: RunCli, make_project: MakeProject
) -> None:
    root = _hostile_project(make_project)
    run = run_cli("count", "prompts", "--format", fmt, cwd=root)
    assert "Traceback" not in run.stderr
    out = run.stdout
    if fmt == "sarif":  # artifact URIs are percent-encoded, as SARIF requires
        assert "%5Bi%5Dtal.j2" in out
        return
    if fmt == "json":
        out = json.dumps(json.loads(out))
    assert "[i]tal.j2" in out
    assert "[bold red]loud[/].j2" in out


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_models_with_markup_in_a_price_file(fmt: str, run_cli: RunCli, tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    entry = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "mode": "chat"}
    prices.write_text(json.dumps({"[/x]": entry, "a\n::warning::m": entry}), encoding="utf-8")
    run = run_cli("models", "--prices", str(prices), "--format", fmt, cwd=tmp_path)
    assert run.exit_code == 0, run.stderr
    assert "[/x]" in run.stdout
    assert _command_lines(run.stdout, fmt) == []


def test_an_error_message_with_a_newline_is_one_line(
    run_cli: RunCli, make_project: MakeProject
) -> None:
    root = make_project({"prompts/a.j2": "Hi\n"})
    run = run_cli("check", "--config", f"missing\n{INJECTED}.yaml", cwd=root)
    assert run.exit_code == 2
    assert len(run.stderr.splitlines()) == 1
    assert "\\n::warning" in run.stderr


# -- the escaper itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("nul\x00", "nul\\0"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("bell\x07", "bell\\x07"),
        ("del\x7f", "del\\x7f"),
        ("c1\x85next", "c1\\x85next"),
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("plain [i] text", "plain [i] text"),
    ],
)
def test_escape_control(raw: str, shown: str) -> None:
    assert escape_control(raw) == shown


def test_guard_line_starts_only_touches_line_starts() -> None:
    text = "a::b\n::warning x\n   ::add-mask::y\nok\n"
    assert guard_line_starts(text) == "a::b\n\\x3a:warning x\n   \\x3a:add-mask::y\nok\n"


def test_escape_report_reaches_nested_strings_and_keeps_the_rest() -> None:
    from promptbudget.findings import Finding, Severity
    from promptbudget.report import Report

    clean = Finding("PB001", "template-error", Severity.ERROR, "fine", path="a.j2", line=1)
    dirty = Finding("PB001", "template-error", Severity.ERROR, "bad\n::x", path="b\n.j2")
    report = Report(command="check", findings=(clean, dirty), sets=("k=v\n",))
    escaped = escape_report(report)
    assert escaped.findings[0] is clean
    assert escaped.findings[1].message == "bad\\n::x"
    assert escaped.findings[1].path == "b\\n.j2"
    assert escaped.sets == ("k=v\\n",)
    assert escape_report(Report(command="check", findings=(clean,))).findings[0] is clean
