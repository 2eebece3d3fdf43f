"""Where a finding is, for reports read outside the project directory (SARIF, Markdown)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from promptbudget.reporters.base import ReportSettings


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
