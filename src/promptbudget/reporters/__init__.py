"""Reporters turn a ``Report`` into text; the CLI owns the stream. Imported lazily, so a JSON run
never pays for Rich."""

from __future__ import annotations

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

            return render_text
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

            return render_junit
        case OutputFormat.MARKDOWN:
            from promptbudget.reporters.markdown import render_markdown

            return render_markdown
        case OutputFormat.AUTO:
            raise ValueError("resolve OutputFormat.AUTO before choosing a reporter")
        case _:
            assert_never(fmt)


__all__ = ["ReportSettings", "Reporter", "get_reporter"]
