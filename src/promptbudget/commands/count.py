"""``promptbudget count``: tokens per template (and per message), per model."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from promptbudget.cache import cache_key
from promptbudget.evaluation import (
    build_default_encoding,
    evaluate_template,
    lint,
    select_rules,
    settled,
)
from promptbudget.filecache import COUNT, context_key, through_cache
from promptbudget.findings import Severity
from promptbudget.options import Options
from promptbudget.pathnames import real
from promptbudget.project import Project
from promptbudget.report import Report
from promptbudget.rules import RuleContext, TemplateResult
from promptbudget.selection import fail_on, filter_findings
from promptbudget.suppressions import Suppression
from promptbudget.templates.parse import variants_of
from promptbudget.templates.source import FoundFile, display_path

# What can be said of a template on its own, without a workflow.
COUNT_RULES = ("PB001", "PB003", "PB110", "PB201", "PB202", "PB301", "PB302")


@dataclass
class FileCount:
    """What ``count`` keeps of one file (in the cache too: filecache.py)."""

    results: list[TemplateResult]  # ``settled``
    released: list[Suppression]  # what Project.release kept


def run(options: Options) -> Report:
    project = Project.open(options, require_manifest=False)
    # A model the catalog does not know is counted all the same: with its family's tokenizer
    # (an older Claude, an OpenAI snapshot), else approximately (o200k_base, ±25%, marked ~);
    # PB110 says so, as a warning: count needs no price.
    arguments = list(project.template_arguments(options))

    def count_file(index: int) -> FileCount:
        """One file's results, and what ``release`` kept of it (in a worker process, or
        here)."""
        argument, path = arguments[index]
        include_root = project.include_root(argument, path)
        # Files found by walking a directory stay inside it; a file named explicitly is
        # read wherever it points.
        parsed = project.load(path, confine_to=include_root if argument.is_dir() else None)
        names: Iterable[str | None] = options.models or (
            parsed.meta.model or project.default_model,
        )
        # Each file is kept only as the rules and the report read it (``settled``): a
        # large tree is counted in flat memory.
        found = [
            settled(
                evaluate_template(
                    project,
                    part,
                    name,
                    include_root=include_root,
                    manifest_variables=frozenset(project.manifest_variables),
                )
            )
            for part in variants_of(parsed)
            for name in names
        ]
        project.release(path)
        return FileCount(found, project.released(path) or [])

    # Each file's results are kept in the cache under what decides them besides the file's
    # own inputs (filecache.py): the options that shape the project and the models asked
    # for, and how the file was named (its includes' root; walked, it is confined to it). A
    # large tree is counted on every core, with the same results in the same order.
    files = [
        FoundFile(os.fspath(p), os.fspath(real(p)), display_path(p, project.root))
        for _, p in arguments
    ]
    shape = context_key(COUNT, options.project_shape())
    contexts = None
    if shape is not None:
        contexts = [
            cache_key(shape, os.fspath(project.include_root(a, p)), str(a.is_dir()))
            for a, p in arguments
        ]
    results: list[TemplateResult] = []
    counted = through_cache(
        files,
        count_file,
        FileCount,
        cache_kind=COUNT,
        contexts=contexts,
        label="counting templates",
        prepare=build_default_encoding,
    )
    for (_, path), done in zip(arguments, counted, strict=True):
        results.extend(done.results)
        project.keep_released(path, done.released)
    context = RuleContext(templates=tuple(results), manifest=project.manifest)
    return Report(
        command="count",
        findings=filter_findings(
            lint(
                project,
                select_rules(*COUNT_RULES),
                context,
                unused=False,
                defaults={"PB110": Severity.WARNING},
            ),
            options,
            project.manifest,
        ),
        templates=tuple(r.count for r in results),
        fail_on=fail_on(options, project.manifest),
        exit_zero=options.exit_zero,
        catalog_as_of=project.catalog.as_of,
        root=str(project.root),
    )
