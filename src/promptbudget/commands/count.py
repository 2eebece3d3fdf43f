"""``promptbudget count``: tokens per template (and per message), per model."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from promptbudget.evaluation import (
    build_default_encoding,
    evaluate_template,
    lint,
    select_rules,
    settled,
)
from promptbudget.findings import Severity
from promptbudget.options import Options
from promptbudget.parallel import in_order
from promptbudget.project import Project
from promptbudget.report import Report
from promptbudget.rules import RuleContext, TemplateResult
from promptbudget.selection import fail_on, filter_findings
from promptbudget.suppressions import Suppression
from promptbudget.templates.parse import variants_of

# What can be said of a template on its own, without a workflow.
COUNT_RULES = ("PB001", "PB003", "PB110", "PB201", "PB202", "PB301", "PB302")


def run(options: Options) -> Report:
    project = Project.open(options, require_manifest=False)
    # A model the catalog does not know is counted all the same: with its family's tokenizer
    # (an older Claude, an OpenAI snapshot), else approximately (o200k_base, ±25%, marked ~);
    # PB110 says so, as a warning: count needs no price.
    arguments = list(project.template_arguments(options))

    def count_file(given: tuple[Path, Path]) -> tuple[list[TemplateResult], list[Suppression]]:
        """One file's results, and what ``release`` kept of it (in a worker process, or
        here)."""
        argument, path = given
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
        return found, project.released(path) or []

    results: list[TemplateResult] = []
    # A large tree is counted on every core, with the same results in the same order.
    for (_, path), (found, released) in zip(
        arguments,
        in_order(arguments, count_file, "counting templates", prepare=build_default_encoding),
        strict=True,
    ):
        results.extend(found)
        project.keep_released(path, released)
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
