"""GitHub Actions workflow commands: one annotation per finding.

``::error file=F,line=L,title=T::message``. Data (the message) escapes ``%``, CR and LF;
properties additionally escape ``:`` and ``,`` (as actions/toolkit does).
"""

from __future__ import annotations

import os
from pathlib import Path

from promptbudget.findings import Finding, Severity
from promptbudget.report import Report
from promptbudget.reporters.base import ReportSettings

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _annotation_path(path: str, settings: ReportSettings) -> str:
    """Paths relative to the workspace (GitHub resolves annotations from the repo root)."""
    if settings.root is None or settings.workspace is None:
        return path
    absolute = Path(settings.root, path).resolve()
    try:
        return Path(os.path.relpath(absolute, Path(settings.workspace).resolve())).as_posix()
    except ValueError:
        return path


def annotation(finding: Finding, settings: ReportSettings) -> str:
    properties = []
    if finding.path:
        properties.append(f"file={escape_property(_annotation_path(finding.path, settings))}")
        if finding.line:
            properties.append(f"line={finding.line}")
    properties.append(f"title={escape_property(f'{finding.rule} {finding.slug}')}")
    return f"::{_COMMAND[finding.severity]} {','.join(properties)}::{escape_data(finding.message)}"


def render_github(report: Report, settings: ReportSettings) -> str:
    lines = [annotation(f, settings) for f in report.findings]
    errors = report.count(Severity.ERROR)
    warnings = report.count(Severity.WARNING)
    lines.append(
        f"promptbudget {report.command}: {errors} error(s), {warnings} warning(s), "
        f"{report.count(Severity.INFO)} info"
    )
    return "\n".join(lines) + "\n"
