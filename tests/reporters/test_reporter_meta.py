"""Meta-tests (STYLE §5): every reporter handles every command, severity and format."""

from __future__ import annotations

import inspect
import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import TODAY
from promptbudget.commands.check import run as run_check
from promptbudget.commands.count import run as run_count
from promptbudget.commands.models import run as run_models
from promptbudget.findings import Finding, Severity
from promptbudget.options import Options, OutputFormat
from promptbudget.report import Report
from promptbudget.reporters import ReportSettings, get_reporter
from promptbudget.reporters.github import render_github
from promptbudget.reporters.json import render_json
from promptbudget.reporters.junit import render_junit
from promptbudget.reporters.markdown import render_markdown
from promptbudget.reporters.sarif import render_sarif
from promptbudget.reporters.text import render_text

RUN_DATE = date.fromisoformat(TODAY)  # the date the CLI sees in the tests

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

FORMATS = [fmt for fmt in OutputFormat if fmt is not OutputFormat.AUTO]
COMMANDS = ["count", "check", "models"]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda fmt: fmt.value)
def test_every_format_but_auto_maps_to_a_reporter(fmt: OutputFormat) -> None:
    assert callable(get_reporter(fmt))


def test_formats_map_to_their_own_reporters() -> None:
    # text, junit and markdown receive the report with control characters escaped
    assert inspect.unwrap(get_reporter(OutputFormat.TEXT)) is render_text
    assert get_reporter(OutputFormat.JSON) is render_json
    assert get_reporter(OutputFormat.GITHUB) is render_github
    assert get_reporter(OutputFormat.SARIF) is render_sarif
    assert inspect.unwrap(get_reporter(OutputFormat.JUNIT)) is render_junit
    assert inspect.unwrap(get_reporter(OutputFormat.MARKDOWN)) is render_markdown
    assert len({inspect.unwrap(get_reporter(fmt)) for fmt in FORMATS}) == len(FORMATS)


def test_auto_must_be_resolved_before_choosing_a_reporter() -> None:
    with pytest.raises(ValueError, match="resolve"):
        get_reporter(OutputFormat.AUTO)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda fmt: fmt.value)
def test_every_reporter_renders_an_empty_report(fmt: OutputFormat, command: str) -> None:
    report = Report(command=command, catalog_as_of="2026-01-01")
    output = get_reporter(fmt)(report, ReportSettings())
    assert isinstance(output, str)
    assert output.endswith("\n")
    assert "None" not in output


@pytest.mark.parametrize("command", COMMANDS)
def test_empty_json_report_is_valid_json_with_schema_version(command: str) -> None:
    payload = json.loads(render_json(Report(command=command), ReportSettings()))
    assert payload["schema_version"] == 1
    assert payload["command"] == command


@pytest.mark.parametrize("command", ["count", "check"])
def test_empty_text_report_summarises_zero_findings(command: str) -> None:
    text = render_text(Report(command=command), ReportSettings())
    assert "0 errors, 0 warnings" in text


def _report_with(severity: Severity) -> Report:
    finding = Finding(
        rule="PB999",
        slug="example-rule",
        severity=severity,
        message=f"a {severity.value} message",
        path="prompts/a.j2",
        line=2,
    )
    return Report(command="check", findings=(finding,))


@pytest.mark.parametrize("severity", list(Severity), ids=lambda s: s.value)
def test_every_severity_renders_in_text(severity: Severity) -> None:
    text = render_text(_report_with(severity), ReportSettings())
    assert (
        f"prompts/a.j2:2: PB999 example-rule [{severity.value}] a {severity.value} message"
        in text.splitlines()
    )


@pytest.mark.parametrize("severity", list(Severity), ids=lambda s: s.value)
def test_every_severity_renders_in_color(severity: Severity) -> None:
    text = render_text(_report_with(severity), ReportSettings(color=True))
    assert "\x1b[" in text
    assert f"[{severity.value}]" in text


@pytest.mark.parametrize("severity", list(Severity), ids=lambda s: s.value)
def test_every_severity_renders_in_github(severity: Severity) -> None:
    command = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
    (line, _summary) = render_github(_report_with(severity), ReportSettings()).splitlines()
    assert line.startswith(f"::{command[severity]} file=prompts/a.j2,line=2,")


@pytest.mark.parametrize("severity", list(Severity), ids=lambda s: s.value)
def test_every_severity_renders_in_json(severity: Severity) -> None:
    payload = json.loads(render_json(_report_with(severity), ReportSettings()))
    assert payload["findings"][0]["severity"] == severity.value
    plural = {Severity.ERROR: "errors", Severity.WARNING: "warnings", Severity.INFO: "infos"}
    assert payload["summary"][plural[severity]] == 1


@pytest.mark.parametrize("severity", list(Severity), ids=lambda s: s.value)
def test_every_severity_renders_in_sarif(severity: Severity) -> None:
    level = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
    payload = json.loads(render_sarif(_report_with(severity), ReportSettings()))
    (result,) = payload["runs"][0]["results"]
    assert result["level"] == level[severity]


@pytest.mark.parametrize("severity", list(Severity), ids=lambda s: s.value)
def test_every_severity_renders_in_junit(severity: Severity) -> None:
    text = render_junit(_report_with(severity), ReportSettings())
    body = "failure" if severity >= Severity.ERROR else "system-out"
    assert f"<{body}" in text
    assert (
        f"prompts/a.j2:2: PB999 example-rule [{severity.value}] a {severity.value} message" in text
    )


@pytest.mark.parametrize("severity", list(Severity), ids=lambda s: s.value)
def test_every_severity_renders_in_markdown(severity: Severity) -> None:
    text = render_markdown(_report_with(severity), ReportSettings())
    assert f"- `prompts/a.j2:2` **PB999** example-rule: a {severity.value} message" in text
    assert text.startswith(
        "<!-- promptbudget -->\n## ❌"
        if severity is Severity.ERROR
        else "<!-- promptbudget -->\n## ✅"
    )


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda fmt: fmt.value)
def test_every_format_is_accepted_by_the_cli_enum(fmt: OutputFormat) -> None:
    assert OutputFormat(fmt.value) is fmt


@pytest.mark.parametrize("width", [80, 100, 120])
@pytest.mark.parametrize("command", ["check", "count", "models"])
def test_text_never_truncates_numbers_or_names(command: str, width: int) -> None:
    options = Options(cwd=EXAMPLES / "over-budget", color=False, today=RUN_DATE)
    report = {"check": run_check, "count": run_count, "models": run_models}[command](options)
    assert "…" not in render_text(report, ReportSettings(width=width))


@given(st.text(max_size=60), st.text(max_size=60))
def test_a_finding_line_written_without_rich_is_what_rich_writes(where: str, message: str) -> None:
    """Without colour, ``_print_finding`` writes a line with no tab itself: byte for byte
    what Rich prints (a tab, which Rich expands, goes through Rich)."""
    import io

    from rich.console import Console
    from rich.text import Text

    from promptbudget.reporters.text import _print_finding

    line = Text()
    line.append(where, style="bold")
    line.append(": ")
    line.append(message, style="dim")
    written = []
    for fast in (True, False):
        buffer = io.StringIO()
        console = Console(
            file=buffer, width=80, color_system=None, force_terminal=False, no_color=True,
            highlight=False, markup=False, emoji=False, legacy_windows=False,
        )  # fmt: skip
        if fast:
            _print_finding(console, line, wrap=False)
        else:
            console.print(line, soft_wrap=True)
        written.append(buffer.getvalue())
    assert written[0] == written[1]
