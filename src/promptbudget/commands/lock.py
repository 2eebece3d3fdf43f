"""``promptbudget lock``: write ``promptbudget.lock`` (or, with ``--check``, only say what would
change)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from promptbudget import __version__
from promptbudget.evaluation import lock_entries, project_templates
from promptbudget.fileio import remove_stale_temporaries, replace_file
from promptbudget.lanes import estimate_workflows
from promptbudget.lockfile import LOCK_NAME, Lock, LockError
from promptbudget.options import Options
from promptbudget.project import Project
from promptbudget.templates.source import display_path


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
    if not options.check_only:
        remove_stale_temporaries(project.root)  # what killed runs left behind
    read = _read_bytes(path)
    try:
        current = project.lock
    except LockError as err:  # a broken lock is what this command repairs
        current = None
        changes = [f"replaced a lock that cannot be read ({_why(err, path)})"]
    else:
        changes = lock_changes(current, fresh)
    if not options.check_only and (current is None or not current.same_as(fresh)):
        data = fresh.to_json(generated_by=f"promptbudget {__version__}").encode("utf-8")
        shown = display_path(path, Path.cwd())
        replace_file(path, data, expected=read, shown=shown, activity="locking")
    return LockResult(path, tuple(changes))


def _read_bytes(path: Path) -> bytes | None:
    """The lock's bytes as read now, for the compare-and-swap (None: there is none)."""
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return None  # unreadable: the write then refuses it as changed


def _why(err: LockError, path: Path) -> str:
    """The reason in a LockError, without its file name and its advice to run lock."""
    message = str(err).removesuffix("; regenerate it with 'promptbudget lock'")
    return message.split(": ", 1)[1] if ": " in message else message


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
