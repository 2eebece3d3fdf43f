"""``promptbudget estimate``: cost per call, request, outcome and month, and why; with
``--set``, the what-if scenario next to the baseline."""

from __future__ import annotations

from promptbudget.estimates import WorkflowEstimate
from promptbudget.evaluation import select_rules, sort_findings
from promptbudget.headroom import budget_checks
from promptbudget.lanes import estimate_workflows
from promptbudget.options import Options
from promptbudget.project import Project
from promptbudget.report import Report
from promptbudget.rules import RuleContext, run_rules

# What makes an estimate partial or approximate (estimate is not a gate).
ESTIMATE_RULES = ("PB103", "PB110", "PB112", "PB113", "PB114", "PB115", "PB116", "PB201", "PB301")


def run(options: Options) -> Report:
    def priced(project: Project) -> tuple[WorkflowEstimate, ...]:
        return estimate_workflows(
            project, samples=options.samples, seed=options.seed, workflow=options.workflow
        )

    baseline_project = Project.open(options, require_manifest=True)
    baseline = priced(baseline_project)
    project = baseline_project
    workflows = baseline
    if options.sets:
        project = Project.open(options, require_manifest=True, overrides=options.sets)
        workflows = priced(project)
    manifest = project.manifest
    assert manifest is not None
    context = RuleContext(workflows=workflows, manifest=manifest, today=options.today)
    findings = run_rules(select_rules(*ESTIMATE_RULES), context, project.severities)
    return Report(
        command="estimate",
        findings=sort_findings(findings),
        workflows=workflows,
        baseline=baseline if options.sets else (),
        limits=budget_checks(workflows, manifest.display_path),
        baseline_limits=(budget_checks(baseline, manifest.display_path) if options.sets else ()),
        exit_zero=True,
        catalog_as_of=project.catalog.as_of,
        root=str(project.root),
        why=options.why,
        sets=options.sets,
    )
