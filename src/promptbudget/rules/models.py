"""PB116: rules about the models a project names (their catalog entry, not their prompts)."""

from __future__ import annotations

from collections.abc import Iterator

from promptbudget.findings import Finding, Severity
from promptbudget.pricing.catalog import ModelPrice, is_deprecated
from promptbudget.rules.base import Rule, RuleContext, rule


def _deprecation_words(model: ModelPrice) -> str:
    successor = f"; its successor is {model.successor}" if model.successor else ""
    return f"was deprecated on {model.deprecation_date} (catalog){successor}"


@rule("PB116", "deprecated-model", Severity.WARNING, "a model is past its deprecation date")
def deprecated_model(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A workflow step or a template uses a model the catalog dates as deprecated on or
    before today.

    Why: a deprecated model is switched off or re-routed by its provider, often at a different
    price; the budget was checked against a model that will not answer. The date comes from
    the catalog (LiteLLM's ``deprecation_date``, with its source), and the message names the
    successor when the catalog knows one. Today's date is the run's (set
    ``PROMPTBUDGET_TODAY=YYYY-MM-DD`` to reproduce a run).

    Fails:
        model: deepseek-chat   # deprecated 2026-07-24

    Passes:
        model: deepseek-flash
    """
    today = ctx.today
    if today is None:
        return
    for workflow in ctx.workflows:
        for step in workflow.steps:
            seen: set[str] = set()
            for lane in step.lanes:
                price = lane.price
                if price is None or price.name in seen or not is_deprecated(price, today):
                    continue
                seen.add(price.name)
                yield self.finding(
                    severity,
                    f"step '{step.name}' of workflow '{workflow.name}' uses model "
                    f"'{lane.model}', which {_deprecation_words(price)}",
                    path=ctx.manifest.display_path if ctx.manifest else None,
                    line=(
                        ctx.manifest.model_line(workflow.name, step.step, lane.model)
                        if ctx.manifest and lane.model
                        else step.step.line
                    ),
                    workflow=workflow.name,
                    step=step.name,
                )
    catalog = ctx.manifest.catalog if ctx.manifest else None
    if catalog is None:
        return
    reported: set[str] = set()
    for result in ctx.templates:
        name = result.count.model
        if result.in_workflow or not name or not result.model_known:
            continue
        price = catalog.lookup(name)
        if price is None or not is_deprecated(price, today):
            continue
        manifest = ctx.manifest
        if (
            manifest is not None
            and result.parsed.meta.model is None
            and name == manifest.default_model
            and "$.defaults.model" in manifest.lines
        ):
            if name not in reported:  # once, at defaults.model's line
                reported.add(name)
                yield self.finding(
                    severity,
                    f"defaults.model '{name}' {_deprecation_words(price)}",
                    path=manifest.display_path,
                    line=manifest.lines["$.defaults.model"],
                )
            continue
        yield self.finding(
            severity,
            f"model '{name}' {_deprecation_words(price)}",
            path=result.parsed.display_path,
            line=1,
        )
