"""What ``check PATH...`` is about: the templates named, and the workflows whose steps send
them (directly or through an include). To tell whether a step's template includes a named
file, it is first asked from the template's include statements alone, each parsed on its own
(``may_reach``): most templates of a large repository cannot reach the file that way, and are
then neither parsed whole nor compiled; the others are parsed (``Project.included``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from promptbudget.cache import active_store, file_keep, file_lookup
from promptbudget.errors import TemplateNotFoundError
from promptbudget.lockfile import LOCK_NAME
from promptbudget.options import Options
from promptbudget.project import Project
from promptbudget.runmemo import include_reads, note_digest, note_includes
from promptbudget.templates.source import (
    MAX_TEMPLATE_BYTES,
    STDIN_ARGUMENT,
    TemplateFormat,
    detect_format,
    display_path,
    iter_prompt_files,
    read_prompt_text,
)
from promptbudget.textscan import include_statements

if TYPE_CHECKING:
    from promptbudget.compression.passages import Passage
    from promptbudget.counting import TemplateCount
    from promptbudget.estimates import WorkflowEstimate
    from promptbudget.findings import Finding

# Naming one of these (as pre-commit does when it changes) means the whole project.
_PROJECT_FILES = frozenset({"pyproject.toml", LOCK_NAME})
# Formats whose includes are not Jinja2 statements of the text: Dotprompt partials; data
# prompts, whose strings may be escaped (``"\u007b% include"``)
_PARSED = frozenset({TemplateFormat.TEXT, TemplateFormat.DOTPROMPT})


def affected(project: Project, options: Options) -> Selection | None:
    """The part of the project ``check PATH...`` is about; None: all of it (the manifest,
    the lock file or a directory holding the manifest was named)."""
    manifest = project.manifest
    assert manifest is not None
    root = project.root.resolve()
    named: set[Path] = set()
    for given in options.paths:
        if given == STDIN_ARGUMENT and project.stdin_path is not None:
            named.add(project.stdin_path)
            continue
        path = (given if given.is_absolute() else options.cwd / given).resolve()
        if not path.exists():
            raise TemplateNotFoundError(f"{given}: no such file or directory")
        if path == manifest.path or (path.is_dir() and manifest.path.is_relative_to(path)):
            return None
        if path.parent == root and path.name in _PROJECT_FILES:
            return None
        if path.is_relative_to(root):
            named.update(p.resolve() for p in iter_prompt_files([path]) if p.is_file())
            named.add(path)
    shown = {display_path(path, project.root) for path in named}
    touches: dict[Path, bool] = {}  # a template several steps send: asked once
    for workflow in manifest.workflows:
        for step in workflow.steps:
            prompt = step.prompt_path  # resolved by the manifest's converter
            if prompt not in touches:
                touches[prompt] = prompt in named or (
                    may_reach(project, prompt, named)
                    and not named.isdisjoint(project.included(prompt))
                )
    workflows = {
        workflow.name
        for workflow in manifest.workflows
        for step in workflow.steps
        if touches[step.prompt_path]
    }
    return Selection(frozenset(shown), frozenset(workflows))


def may_reach(project: Project, path: Path, named: set[Path]) -> bool:
    """Whether the template at ``path`` may include one of ``named``, directly or not; False
    is exact: every file it includes is among those its include statements name
    (``statement_includes``), or among the files the cache knows they include."""
    seen: set[Path] = set()
    pending = [path]
    while pending:
        current = pending.pop()
        if not current.is_file() and not project.is_stdin(current):
            continue  # as ``Project.included`` does
        with include_reads(current):  # a run memo: read for this question alone
            _, found = project.known_includes(current, by_stat=True)
            if found is None:
                found = statement_includes(project, current)
        if found is None:
            return True
        note_includes(current, found)
        for include in found:
            if include in named:
                return True
            if include not in seen:
                seen.add(include)
                pending.append(include)
    return False


def statement_includes(project: Project, path: Path) -> tuple[Path, ...] | None:
    """Every file ``path`` includes, imports or extends, and maybe more, from its include
    statements alone, each parsed on its own (``TemplateRenderer.statement_names``) and
    resolved as ``Project.includes_of`` resolves names; None when it cannot be told that way
    (loaded already, piped in, a Dotprompt or data prompt, unreadable, a statement that does
    not parse alone)."""
    if path in project.templates or project.is_stdin(path) or detect_format(path) in _PARSED:
        return None  # (a step's template and what it includes are named by their real paths)
    names = _statement_names(project, path)
    if not names:
        return None if names is None else ()
    return project.renderer.resolve_includes(path, names)


def _statement_names(project: Project, path: Path) -> list[str] | None:
    """The names ``path``'s include statements give; kept in the cache under the file's stat
    (they depend on its bytes alone), so a later run neither reads nor scans it."""
    store = active_store()
    entry = None
    if store is not None:
        located = str(path)
        entry, kept = file_lookup(
            store, "include statement names", located, MAX_TEMPLATE_BYTES, by_stat=True
        )
        if (
            entry is not None
            and entry.digest is not None
            and isinstance(kept, list)
            and all(isinstance(name, str) for name in kept)
        ):
            note_digest(located, entry.digest, entry.found)  # the run memo relies on its bytes
            return kept
    read = read_prompt_text(path, root=project.root)  # as the parse reads it
    statements = include_statements(read.text) if read.is_readable else None
    if statements is None:
        return None
    names = project.renderer.statement_names(statements) if statements else []
    if names is not None and store is not None and entry is not None:
        file_keep(store, entry, names)
    return names


@dataclass(frozen=True)
class Selection:
    """What ``check PATH...`` reports on: the templates named, and the workflows whose steps
    use them (directly or through an include)."""

    paths: frozenset[str]
    workflows: frozenset[str]

    def priced_workflows(self, project: Project, passages: Iterable[Passage]) -> frozenset[str]:
        """The workflows to simulate: the selected ones, and those that send a template
        sharing a pasted passage with a selected template."""
        shared = {
            path
            for passage in passages
            if self.paths & set(passage.paths)
            for path in passage.paths
        }
        manifest = project.manifest
        assert manifest is not None
        if not shared:
            return self.workflows
        return self.workflows | {
            workflow.name
            for workflow in manifest.workflows
            for step in workflow.steps
            if display_path(step.prompt_path, project.root) in shared
        }

    def apply(
        self,
        findings: tuple[Finding, ...],
        templates: tuple[TemplateCount, ...],
        workflows: tuple[WorkflowEstimate, ...],
    ) -> tuple[tuple[Finding, ...], tuple[TemplateCount, ...], tuple[WorkflowEstimate, ...]]:
        return (
            tuple(
                f
                for f in findings
                if (f.workflow is not None and f.workflow in self.workflows)
                or (f.workflow is None and f.path in self.paths)
            ),
            tuple(t for t in templates if t.path in self.paths),
            tuple(w for w in workflows if w.name in self.workflows),
        )
