"""Where a finding is: relative to the current directory for the reports a person reads in
a terminal or a file (text, JSON, Markdown, JUnit), relative to the repository for the ones
GitHub resolves (annotations, SARIF)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath

from promptbudget.estimates import WorkflowEstimate
from promptbudget.findings import Finding
from promptbudget.headroom import LimitCheck
from promptbudget.report import Report
from promptbudget.reporters.base import ReportSettings
from promptbudget.templates.source import STDIN_NAME


def workspace_path(path: str, settings: ReportSettings) -> str:
    """A project-relative path as a relative, ``/``-separated path from the workspace.

    GitHub resolves code-scanning locations and job-summary paths from the repository root
    (the workspace), so a project in ``examples/`` of the repository reports
    ``examples/prompts/a.j2``. When the project root is not inside the workspace (or either
    is unknown), the path stays relative to the project root: it never climbs out with
    ``..`` and is never absolute.
    """
    posix = PurePosixPath(path.replace("\\", "/"))
    if settings.root is None or settings.workspace is None:
        return posix.as_posix()
    try:
        prefix = Path(settings.root).resolve().relative_to(Path(settings.workspace).resolve())
    except (ValueError, OSError):
        return posix.as_posix()
    return (PurePosixPath(prefix.as_posix()) / posix).as_posix()


def move_message_paths(finding: Finding, move: Callable[[str], str]) -> Finding:
    """``finding`` with each path its message names (``message_paths``) moved as its
    location is, so ``(budgets.yaml:14)`` reads ``(services/bot/budgets.yaml:14)`` where
    the location does. Only whole paths are replaced (``budgets.yaml``, not inside
    ``a/budgets.yaml``)."""
    if not finding.message_paths:
        return finding
    moved = {path: move(path) for path in finding.message_paths}
    if all(old == new for old, new in moved.items()):
        return finding
    pattern = re.compile(
        "|".join(
            rf"(?<![\w./-]){re.escape(path)}(?![\w/-]|\.\w)"
            for path in sorted(moved, key=len, reverse=True)
        )
    )
    return replace(
        finding,
        message=pattern.sub(lambda match: moved[match.group(0)], finding.message),
        message_paths=tuple(moved.values()),
    )


def in_workspace(report: Report, settings: ReportSettings) -> Report:
    """``report`` with the paths inside finding messages relative to the workspace, as
    ``github`` and ``sarif`` show the findings' locations."""
    if settings.root is None or settings.workspace is None:
        return report

    def finding(item: Finding) -> Finding:
        return move_message_paths(item, lambda path: workspace_path(path, settings))

    diff = report.diff
    if diff is not None:
        diff = replace(
            diff,
            new_findings=tuple(map(finding, diff.new_findings)),
            fixed_findings=tuple(map(finding, diff.fixed_findings)),
        )
    return replace(report, findings=tuple(map(finding, report.findings)), diff=diff)


def relative_to_cwd(report: Report, cwd: Path) -> Report:
    """``report`` with every project-relative path made relative to ``cwd``, as a terminal
    user (or an editor, or a CI log) reads it: ``services/bot/budgets.yaml:61`` from a
    monorepo root, ``../prompts/x.j2:3`` from a subfolder."""
    if report.root is None:
        return report
    try:
        root, here = Path(report.root).resolve(), cwd.resolve()
    except OSError:
        return report
    if root == here:
        return report

    def move(path: str) -> str:
        if not path or PurePosixPath(path).is_absolute() or path == STDIN_NAME:
            return path  # a template piped in (count -) is named, not placed
        try:
            return Path(os.path.relpath(root / path, here)).as_posix()
        except ValueError:  # another drive on Windows
            return path

    def finding(item: Finding) -> Finding:
        item = move_message_paths(item, move)
        return replace(item, path=move(item.path)) if item.path else item

    def workflow(item: WorkflowEstimate) -> WorkflowEstimate:
        steps = tuple(replace(s, template_path=move(s.template_path)) for s in item.steps)
        return replace(item, steps=steps)

    def limit(item: LimitCheck) -> LimitCheck:
        return replace(
            item,
            template=move(item.template) if item.template else item.template,
            path=move(item.path) if item.path else item.path,
        )

    diff = report.diff
    if diff is not None:
        templates = {t.path for t in diff.templates}
        diff = replace(
            diff,
            templates=tuple(
                replace(t, path=move(t.path), via=tuple(map(move, t.via))) for t in diff.templates
            ),
            new_findings=tuple(map(finding, diff.new_findings)),
            fixed_findings=tuple(map(finding, diff.fixed_findings)),
            breaches=tuple(
                replace(b, subject=move(b.subject)) if b.subject in templates else b
                for b in diff.breaches
            ),
        )
    return replace(
        report,
        findings=tuple(map(finding, report.findings)),
        templates=tuple(replace(t, path=move(t.path)) for t in report.templates),
        workflows=tuple(map(workflow, report.workflows)),
        baseline=tuple(map(workflow, report.baseline)),
        limits=tuple(map(limit, report.limits)),
        baseline_limits=tuple(map(limit, report.baseline_limits)),
        compressions=tuple(replace(c, path=move(c.path)) for c in report.compressions),
        diff=diff,
    )
