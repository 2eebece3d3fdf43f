"""Which included file made a template grow between two checkouts: the include chain from the
template to the first changed file it includes, and that file's first changed line (``diff``
names them, so growth in ``partials/b.j2`` is not reported at the includer's line 1)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from promptbudget.cache import read_regular_file
from promptbudget.diffing import DiffResult, TemplateDiff
from promptbudget.project import Project
from promptbudget.report import Report
from promptbudget.templates.source import display_path

MAX_INCLUDE_BYTES = 4 * 1024 * 1024


def locate_include_growth(
    project: Project, head: Report, result: DiffResult, base_root: Path
) -> DiffResult:
    """``result`` with each changed template whose own file is the same at the base, but
    which includes (directly or not) a file that changed, marked with the include chain and
    the changed file's first changed line."""
    paths = {t.label: t.path for t in head.templates}
    marked = []
    for template in result.templates:
        path = paths.get(template.path)
        if template.status != "changed" or path is None:
            marked.append(template)
            continue
        head_file = project.root / path
        if _read(head_file) != _read(base_root / path):
            marked.append(template)  # the template itself changed: its own line says so
            continue
        found = _changed_include(project, head_file, base_root)
        marked.append(_marked(template, found) if found else template)
    return replace(result, templates=tuple(marked))


def _marked(template: TemplateDiff, found: tuple[tuple[str, ...], int]) -> TemplateDiff:
    chain, line = found
    return replace(template, via=chain, line=line)


def _changed_include(
    project: Project, start: Path, base_root: Path
) -> tuple[tuple[str, ...], int] | None:
    """(chain of display paths from ``start`` to the first changed include, its first
    changed line), depth first in include order; None when no included file changed."""
    root = project.root.resolve()
    stack: list[tuple[Path, tuple[str, ...]]] = [(start, (display_path(start, project.root),))]
    seen: set[Path] = {start.resolve()}
    while stack:
        current, chain = stack.pop()
        parsed = project.load(current, confine_to=project.root)
        for include in reversed(project.renderer.includes_of(parsed)):
            resolved = include.resolve()
            if resolved in seen or not resolved.is_relative_to(root):
                continue
            seen.add(resolved)
            step = (*chain, display_path(include, project.root))
            head = _read(include)
            base = _read(base_root / resolved.relative_to(root))
            if head != base:
                return step, _first_changed_line(base, head)
            stack.append((include, step))
    return None


def _read(path: Path) -> bytes | None:
    return read_regular_file(path, MAX_INCLUDE_BYTES)


def _first_changed_line(base: bytes | None, head: bytes | None) -> int:
    old = (base or b"").splitlines()
    new = (head or b"").splitlines()
    for number, (a, b) in enumerate(zip(old, new, strict=False), start=1):
        if a != b:
            return number
    return max(1, min(len(old) + 1, len(new)))  # lines added (or removed) at the end
