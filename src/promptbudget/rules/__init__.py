"""The rule registry. The CLI, ``promptbudget rules`` and the docs all iterate over ``RULES``."""

from __future__ import annotations

from promptbudget.findings import Severity
from promptbudget.rules import (
    budget,
    compression,
    configuration,
    latency,
    limits,
    models,
    suppression,
    template,
    versioning,
)
from promptbudget.rules.base import Rule, RuleContext, TemplateResult, run_rules

RULES: dict[str, Rule] = {
    r.code: r
    for r in (
        template.template_error,
        suppression.unused_suppression,
        template.template_warning,
        budget.input_over_budget,
        budget.output_over_budget,
        budget.output_unbounded,
        budget.turns_over_budget,
        budget.tool_calls_over_budget,
        budget.cost_per_request_over_budget,
        budget.monthly_spend_over_budget,
        budget.cost_per_outcome_over_budget,
        budget.context_window_exceeded,
        budget.unknown_model,
        limits.template_over_budget,
        configuration.tools_not_sent,
        configuration.cache_rate_without_effect,
        configuration.route_rule_never_matches,
        configuration.tool_calls_without_tools,
        models.deprecated_model,
        latency.latency_over_budget,
        latency.latency_unknown,
        template.unbounded_variable,
        template.undeclared_variable,
        template.cache_unfriendly_prefix,
        compression.duplicated_text,
        compression.compressible,
        versioning.version_not_bumped,
        template.estimated_count,
        template.read_as_plain_text,
    )
}

RULES_BY_SLUG: dict[str, Rule] = {r.slug: r for r in RULES.values()}


def find_rule(name: str) -> Rule | None:
    """A rule by code (``PB101``, any case) or slug (``input-over-budget``)."""
    return RULES.get(name.upper()) or RULES_BY_SLUG.get(name.lower())


def parse_severity(value: str) -> Severity | None:
    """``off`` -> None; ``info``/``warning``/``error`` -> Severity."""
    return None if value == "off" else Severity(value)


__all__ = [
    "RULES",
    "RULES_BY_SLUG",
    "Rule",
    "RuleContext",
    "TemplateResult",
    "find_rule",
    "parse_severity",
    "run_rules",
]
