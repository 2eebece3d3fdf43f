"""``promptbudget baseline``: add missing workflow limits at today's values plus headroom,
editing budgets.yaml in place (or, with ``--diff``, only planning it). Limits someone wrote
(workflow, step or template) that break today are listed and kept, or raised with
``--raise``."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from promptbudget.baseline import (
    LimitChange,
    Skipped,
    decode_manifest,
    edit_manifest,
    encode_manifest,
    plan_broken,
    plan_limits,
)
from promptbudget.errors import ManifestError, ManifestErrors, PromptBudgetError, UsageError
from promptbudget.evaluation import project_templates
from promptbudget.fileio import reason, remove_stale_temporaries, replace_file
from promptbudget.headroom import budget_checks, template_checks
from promptbudget.lanes import estimate_workflows
from promptbudget.manifest.loader import load_manifest
from promptbudget.manifest.model import CostLimit
from promptbudget.options import Options
from promptbudget.project import Project


@dataclass(frozen=True)
class BaselineResult:
    path: Path
    changes: tuple[LimitChange, ...]
    skipped: tuple[Skipped, ...]
    before: str
    after: str
    kept: tuple[LimitChange, ...] = ()  # written limits broken today, left as written


def run(options: Options) -> BaselineResult:
    """Plan the limits and, unless ``options.diff``, write them."""
    project = Project.open(options, require_manifest=True)
    manifest = project.manifest
    assert manifest is not None
    if manifest.path.suffix not in {".yaml", ".yml"}:
        raise UsageError(
            f"baseline edits budgets.yaml; {manifest.display_path} is not one. Run it with "
            "--diff and copy the limits by hand"
        )
    estimates = estimate_workflows(
        project, samples=options.samples, seed=options.seed, workflow=options.workflow
    )
    checks = [c for c in budget_checks(estimates, manifest.display_path) if c.level == "step"]
    if manifest.templates and options.workflow is None:
        checks.extend(template_checks(project_templates(project), manifest))
    planned = plan_limits(estimates, options.headroom) + plan_broken(checks, options.headroom)
    # A limit someone wrote is theirs: raised only with --raise, else listed and kept.
    kept = () if options.raise_limits else tuple(c for c in planned if c.before is not None)
    planned = [c for c in planned if c.before is None or options.raise_limits]
    if not options.diff:
        remove_stale_temporaries(manifest.path.parent)  # what killed runs left behind
    try:
        raw = manifest.path.read_bytes()
    except OSError as err:
        raise PromptBudgetError(f"{manifest.display_path}: cannot be read ({reason(err)})") from err
    text, bom, crlf = decode_manifest(raw)
    edited, skipped = edit_manifest(text, planned)
    skipped_names = {s.workflow for s in skipped}
    changes = tuple(
        c
        for c in planned
        if c.subject not in skipped_names
        and not (c.workflow in skipped_names and c.template is None)
    )
    _check_edit(manifest.path, edited, changes, options)
    if not options.diff and edited != text:
        replace_file(
            manifest.path,
            encode_manifest(edited, bom=bom, crlf=crlf),
            expected=raw,
            shown=manifest.display_path,
            activity="baseline ran",
        )
    return BaselineResult(manifest.path, changes, tuple(skipped), text, edited, kept)


def _check_edit(
    path: Path, edited: str, changes: tuple[LimitChange, ...], options: Options
) -> None:
    """The edited manifest must load and hold exactly the planned limits (else it is a bug,
    and budgets.yaml is left as it was). Loaded from memory: no scratch file."""
    try:
        loaded = load_manifest(path, cwd=options.cwd, text=edited)
    except ManifestError as err:  # a measured value past what budgets.yaml can hold
        problems = err.errors if isinstance(err, ManifestErrors) else (err,)
        first = problems[0]
        where = f" for {first.json_path.removeprefix('$.')}" if first.json_path else ""
        raise PromptBudgetError(
            f"baseline cannot write the limits it measured{where}: {first.detail}; "
            "budgets.yaml was not changed (check the distributions and traffic it measures)"
        ) from err
    workflows = {w.name: w for w in loaded.workflows}
    for change in changes:
        value: object
        if change.template is not None:
            value = next(
                (
                    tokens
                    for limit in loaded.templates
                    for name, tokens in limit.max_tokens.items()
                    if limit.lines.get(name, limit.line) == change.line
                ),
                None,
            )
        elif change.step is not None:
            steps = {s.name: s for s in workflows[change.workflow].steps}
            value = getattr(steps[change.step].limits, change.key)
        else:
            value = getattr(workflows[change.workflow].limits, change.key)
        amount = value.amount if isinstance(value, CostLimit) else value
        if not isinstance(amount, int | Decimal) or Decimal(amount) != change.after:
            raise PromptBudgetError(
                f"baseline could not write {change.key} for {change.subject} safely "
                f"(it reads back as {amount}); budgets.yaml was not changed. This is a bug: "
                "please report it with your budgets.yaml"
            )
