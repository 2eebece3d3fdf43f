"""``promptbudget check``: every workflow and template against its limits and rules."""

from __future__ import annotations

from promptbudget.affected import affected
from promptbudget.compression.passages import find_passages_touching, selected_paragraphs
from promptbudget.evaluation import check_templates, lint, lock_entries
from promptbudget.fingerprints import passage_fingerprints
from promptbudget.headroom import budget_checks, recounted, template_checks
from promptbudget.includes import name_largest_includes
from promptbudget.lanes import estimate_workflows, template_rates
from promptbudget.options import Options
from promptbudget.pricing.resolve import DEFAULT_TOKENIZER
from promptbudget.project import Project
from promptbudget.report import Report
from promptbudget.rules import RULES, RuleContext
from promptbudget.runmemo import note_passages
from promptbudget.selection import fail_on, filter_findings
from promptbudget.tokenizers import get_tokenizer


def run(options: Options) -> Report:
    # check --set: the what-if is what is checked (and gated on)
    project = Project.open(options, require_manifest=True, overrides=options.sets)
    manifest = project.manifest
    assert manifest is not None
    selection = affected(project, options) if options.paths else None
    # check PATH...: only the templates named are rendered, counted and compressed; PB204
    # still compares the text of every template (read, not rendered).
    settings = manifest.compression
    evaluated = check_templates(
        project,
        settings,
        only=selection.paths if selection else None,
        keep_text=project.lock is not None,  # versions and hashes, models the steps send
        keep_messages=lambda result: recounted(result, manifest),
        cached_as=options.project_shape(),  # what shapes the project (filecache.py)
    )
    results, compressions, bodies = evaluated.results, evaluated.compressions, evaluated.bodies
    tokenizer = get_tokenizer(DEFAULT_TOKENIZER)
    if selection is None:
        passages = tuple(evaluated.index.passages(tokenizer, settings.duplicate_min_tokens))
    else:  # the passages in the named templates, found in every template's fingerprints
        paragraphs = selected_paragraphs(bodies, settings.duplicate_min_tokens)
        note_passages(project.root, paragraphs)
        others = passage_fingerprints(project, paragraphs)
        passages = tuple(
            find_passages_touching(bodies, others, tokenizer, settings.duplicate_min_tokens)
        )
    # check PATH...: only the workflows the files touch are simulated (each workflow's
    # numbers do not depend on the others), and those whose templates share a pasted
    # passage with them (PB204 says what every copy costs).
    only = selection.priced_workflows(project, passages) if selection is not None else None
    estimates = estimate_workflows(
        project, samples=options.samples, seed=options.seed, only=only, workflow=options.workflow
    )
    lock = project.lock
    locked = [r for r in results if selection is None or r.parsed.display_path in selection.paths]
    step_lines = {
        (workflow.name, step.name): {
            name: spec.line for name, spec in step.variables.items() if spec.line is not None
        }
        for workflow in manifest.workflows
        for step in workflow.steps
    }
    context = RuleContext(
        templates=tuple(results),
        workflows=estimates,
        manifest=manifest,
        step_variable_lines=step_lines,
        compressions=compressions,
        passages=passages,
        token_rates=template_rates(project, estimates),
        min_savings=settings.min_savings,
        lock=lock,
        locked_now=lock_entries(project, locked, estimates) if lock is not None else {},
        today=options.today,
    )
    findings = filter_findings(lint(project, RULES, context, unused=True), options, manifest)
    findings = name_largest_includes(project, findings)
    templates = tuple(r.count for r in results)
    if selection is not None:
        findings, templates, estimates = selection.apply(findings, templates, estimates)
    shown = {t.path for t in templates}
    limits = budget_checks(estimates, manifest.display_path) + tuple(
        c for c in template_checks(results, manifest) if c.template in shown
    )
    return Report(
        command="check",
        findings=findings,
        templates=templates,
        workflows=estimates,
        limits=limits,
        scoped=bool(options.paths),
        sets=options.sets,
        fail_on=fail_on(options, project.manifest),
        exit_zero=options.exit_zero,
        catalog_as_of=project.catalog.as_of,
        root=str(project.root),
    )
