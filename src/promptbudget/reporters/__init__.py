"""Reporters turn a ``Report`` into text; the CLI owns the stream. Imported lazily, so a JSON run
never pays for Rich."""

from __future__ import annotations

import functools
from collections.abc import Callable

from promptbudget.findings import assert_never
from promptbudget.options import OutputFormat
from promptbudget.report import Report
from promptbudget.reporters.base import ReportSettings

Reporter = Callable[[Report, ReportSettings], str]


def get_reporter(fmt: OutputFormat) -> Reporter:
    """The reporter for a resolved format (``auto`` must be resolved first)."""
    match fmt:
        case OutputFormat.TEXT:
            from promptbudget.reporters.text import render_text

            return _escaped(render_text)
        case OutputFormat.JSON:
            from promptbudget.reporters.json import render_json

            return render_json
        case OutputFormat.GITHUB:
            from promptbudget.reporters.github import render_github

            return render_github
        case OutputFormat.SARIF:
            from promptbudget.reporters.sarif import render_sarif

            return render_sarif
        case OutputFormat.JUNIT:
            from promptbudget.reporters.junit import render_junit

            return _escaped(render_junit)
        case OutputFormat.MARKDOWN:
            from promptbudget.reporters.markdown import render_markdown

            return _escaped(render_markdown)
        case OutputFormat.AUTO:
            raise ValueError("resolve OutputFormat.AUTO before choosing a reporter")
        case _:
            assert_never(fmt)


def _escaped(render: Reporter) -> Reporter:
    """``render`` over the report with control characters in every string escaped (the
    line-oriented formats; see ``reporters/escape.py``)."""

    @functools.wraps(render)
    def escaped(report: Report, settings: ReportSettings) -> str:
        from promptbudget.reporters.escape import escape_report, guard_line_starts

        return guard_line_starts(render(escape_report(report), settings))

    return escaped


__all__ = ["ReportSettings", "Reporter", "get_reporter"]
