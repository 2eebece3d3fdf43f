"""``promptbudget lock``: write ``promptbudget.lock`` (or, with ``--check``, only say what would
change)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from promptbudget import __version__
from promptbudget.errors import PromptBudgetError
from promptbudget.evaluation import lock_entries, project_templates
from promptbudget.fileio import atomic_write
from promptbudget.lanes import estimate_workflows
from promptbudget.lockfile import LOCK_NAME, Lock
from promptbudget.options import Options
from promptbudget.project import Project


@dataclass(frozen=True)
class LockResult:
    path: Path
    changes: tuple[str, ...]  # what changed (or would), one line each


def run(options: Options) -> LockResult:
    project = Project.open(options, require_manifest=True)
    results = project_templates(project)
    estimates = estimate_workflows(project, samples=options.samples, seed=options.seed)
    fresh = Lock(lock_entries(project, results, estimates))
    path = project.root / LOCK_NAME
    current = project.lock
    changes = lock_changes(current, fresh)
    if not options.check_only and (current is None or not current.same_as(fresh)):
        data = fresh.to_json(generated_by=f"promptbudget {__version__}").encode("utf-8")
        try:
            atomic_write(path, data)
        except OSError as err:
            raise PromptBudgetError(f"cannot write {LOCK_NAME}: {err.strerror or err}") from err
    return LockResult(path, tuple(changes))


def lock_changes(current: Lock | None, fresh: Lock) -> list[str]:
    if current is None:
        return [f"new lock: {len(fresh.templates)} templates"]
    before, after = current.templates, fresh.templates
    lines = [f"added {name}" for name in sorted(set(after) - set(before))]
    lines += [f"removed {name}" for name in sorted(set(before) - set(after))]
    for name in sorted(set(before) & set(after)):
        old, new = before[name], after[name]
        what = []
        if old.version != new.version:
            what.append(f"version {old.version} -> {new.version}")
        if old.sha256 != new.sha256:
            what.append("content")
        if old.tokens != new.tokens:
            what.append("tokens")
        if what:
            lines.append(f"changed {name}: {', '.join(what)}")
    return lines
