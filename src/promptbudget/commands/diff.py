"""``promptbudget diff [--base REF]``: the project at a git ref against the working tree, both
evaluated by ``check``, compared (``diffing.compare``). Without ``--base``, the base is found
as CI runs it (``git.find_base``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from promptbudget.commands import check
from promptbudget.diffing import compare
from promptbudget.errors import PromptBudgetError
from promptbudget.git import (
    GitError,
    base_checkout,
    display_ref,
    find_base,
    git_toplevel,
    resolve_ref,
)
from promptbudget.manifest.loader import find_manifest
from promptbudget.options import Options
from promptbudget.report import Report
from promptbudget.selection import fail_on_increase


def run(options: Options, environ: Mapping[str, str] | None = None) -> Report:
    """``environ`` (the process's by default) holds the CI variables that name the base when
    ``--base`` is not given."""
    threshold = options.fail_on_increase
    if threshold is None:  # the manifest's fail_on_increase, unless --fail-on-increase
        from promptbudget.project import Project

        threshold = fail_on_increase(options, Project.open(options, require_manifest=True).manifest)
    cwd = options.cwd.resolve()
    top = git_toplevel(cwd)
    base_ref, found = options.base_ref, None
    if base_ref is None:
        found_base = find_base(top, os.environ if environ is None else environ)
        base_ref, commit, found = found_base.ref, found_base.commit, found_base.how
    else:
        commit = resolve_ref(top, base_ref)
    head_options = replace(options, paths=())
    head = check.run(head_options)
    manifest = options.config if options.config is not None else find_manifest(cwd)
    assert manifest is not None  # run_check found it, or raised
    manifest = (manifest if manifest.is_absolute() else cwd / manifest).resolve()
    project_root = Path(head.root or cwd).resolve()
    if not project_root.is_relative_to(top):
        raise GitError(f"the project at {project_root} is not inside the repository at {top}")
    subdir = project_root.relative_to(top).as_posix()
    subdir = "" if subdir == "." else subdir

    base_problem: str | None = None
    with base_checkout(top, commit, subdir) as directory:
        base_cwd = directory / cwd.relative_to(top) if cwd.is_relative_to(top) else directory
        base_cwd.mkdir(parents=True, exist_ok=True)
        base_manifest = directory / manifest.relative_to(top)
        if base_manifest.is_file():
            try:
                base = check.run(replace(head_options, cwd=base_cwd, config=base_manifest))
            except PromptBudgetError as err:
                base, base_problem = Report(command="check"), str(err)
        else:
            shown = manifest.relative_to(top).as_posix()
            base, base_problem = (
                Report(command="check"),
                f"{shown} does not exist at {display_ref(base_ref)}",
            )
        result = compare(
            base,
            head,
            base_ref=base_ref,
            base_commit=commit,
            threshold=threshold,
            base_problem=base_problem,
        )
        if result.changed_templates:  # growth in an included file: where, and through what
            from promptbudget.includes import locate_include_growth
            from promptbudget.project import Project

            project = Project.open(head_options, require_manifest=True)
            result = locate_include_growth(project, head, result, directory / subdir)
    result = replace(result, base_found=found)
    return Report(
        command="diff",
        findings=result.new_findings,
        templates=head.templates,
        workflows=head.workflows,
        fail_on=head.fail_on,
        exit_zero=options.exit_zero,
        catalog_as_of=head.catalog_as_of,
        root=head.root,
        diff=result,
    )
