"""Finding lines wrap under their location at the terminal width (text only): a long location or
message never breaks a number or a path; piped output and the CI formats keep one line each."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from rich.text import Text

from conftest import EXAMPLES, Run
from promptbudget.reporters.tables import wrap_hanging

RunCli = Callable[..., Run]
OVER_BUDGET = EXAMPLES / "over-budget"
NUMBER = re.compile(r"\$?\d[\d,.]*%?")

MESSAGE = (
    "prompts/support/answer.prompty:1: PB101 input-over-budget [error] step 'answer' of "
    "workflow 'support-reply' sends 8,951 input tokens at its largest call (turn 2, after "
    "tool call 1 of 4 calls), over max_input_tokens 8,000 by 951 ($1,294.93 a month)"
)


@pytest.mark.parametrize("width", [40, 57, 80, 120])
def test_wrapped_lines_fit_keep_every_word_and_indent_under_the_location(width: int) -> None:
    lines = [line.plain for line in wrap_hanging(Text(MESSAGE), width)]
    assert all(len(line) <= width for line in lines)
    assert lines[0].startswith("prompts/support/answer.prompty:1: ")
    assert all(line.startswith("  ") and line[2] != " " for line in lines[1:])
    assert " ".join(line.strip() for line in lines) == MESSAGE  # nothing lost, nothing split
    assert [m.group() for line in lines for m in NUMBER.finditer(line)] == [
        m.group() for m in NUMBER.finditer(MESSAGE)
    ]


def test_a_line_that_fits_is_left_alone() -> None:
    assert [line.plain for line in wrap_hanging(Text("a.j2:1: PB201 short"), 80)] == [
        "a.j2:1: PB201 short"
    ]


def test_a_word_longer_than_the_line_overflows_whole() -> None:
    location = "prompts/" + "deeply/" * 12 + "nested.j2:12:"
    lines = [line.plain for line in wrap_hanging(Text(f"{location} PB201 slug 1,234,567"), 40)]
    assert lines == [location, "  PB201 slug 1,234,567"]


def test_styles_survive_the_wrap() -> None:
    text = Text()
    text.append("a.j2:1:", style="bold")
    text.append(" " + "word " * 30, style="red")
    lines = wrap_hanging(text, 40)
    assert len(lines) > 2
    assert lines[0].spans[0].style == "bold"
    assert all(any(span.style == "red" for span in line.spans) for line in lines[1:])


def finding_lines(stdout: str) -> list[str]:
    return stdout.split("\n\n")[0].splitlines()


def test_at_a_terminal_width_findings_wrap(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    piped = run_cli("check", cwd=OVER_BUDGET).stdout
    one_per_finding = finding_lines(piped)
    assert all(": PB" in line for line in one_per_finding)  # piped: one line each, for grep
    assert max(len(line) for line in one_per_finding) > 160  # even past the table width
    monkeypatch.setenv("COLUMNS", "80")
    wrapped = finding_lines(run_cli("check", cwd=OVER_BUDGET).stdout)
    assert len(wrapped) > len(one_per_finding)
    assert all(len(line) <= 80 for line in wrapped)
    starts = [line for line in wrapped if not line.startswith("  ")]
    assert all(full.startswith(start) for start, full in zip(starts, one_per_finding, strict=True))
    assert " ".join(line.strip() for line in wrapped) == " ".join(one_per_finding)


@pytest.mark.parametrize("fmt", ["github", "junit", "json", "sarif"])
def test_ci_formats_never_wrap(fmt: str, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    wide = run_cli("check", "--format", fmt, cwd=OVER_BUDGET).stdout
    monkeypatch.setenv("COLUMNS", "80")
    assert run_cli("check", "--format", fmt, cwd=OVER_BUDGET).stdout == wide
