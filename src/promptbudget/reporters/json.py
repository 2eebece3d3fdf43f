"""The JSON reporter: a stable, versioned contract (``"schema_version": 1``)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from promptbudget.counting import TemplateCount
from promptbudget.estimates import StepEstimate, WorkflowEstimate
from promptbudget.findings import Finding, Report, Severity
from promptbudget.pricing.catalog import LongContextTier, ModelPrice
from promptbudget.reporters.base import ReportSettings, usd_number

SCHEMA_VERSION = 1


def render_json(report: Report, settings: ReportSettings) -> str:
    payload: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "command": report.command}
    if report.command == "models":
        payload["catalog_as_of"] = report.catalog_as_of
        payload["models"] = [model_json(m) for m in report.models]
        return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    payload["summary"] = summary_json(report)
    payload["findings"] = [finding_json(f) for f in report.findings]
    if report.command == "check":
        payload["workflows"] = [workflow_json(w) for w in report.workflows]
    payload["templates"] = [template_json(t) for t in report.templates]
    payload["catalog_as_of"] = report.catalog_as_of
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def summary_json(report: Report) -> dict[str, int]:
    return {
        "errors": report.count(Severity.ERROR),
        "warnings": report.count(Severity.WARNING),
        "infos": report.count(Severity.INFO),
        "exit_code": report.exit_code,
    }


def _number(value: int | Decimal | None) -> int | float | None:
    if isinstance(value, Decimal):
        return usd_number(value)
    return value


def finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "slug": finding.slug,
        "severity": finding.severity.value,
        "message": finding.message,
        "path": finding.path,
        "line": finding.line,
        "workflow": finding.workflow,
        "step": finding.step,
        "measured": _number(finding.measured),
        "limit": _number(finding.limit),
        "unit": finding.unit,
    }


def template_json(count: TemplateCount) -> dict[str, Any]:
    prompt = count.prompt
    return {
        "path": count.path,
        "format": count.format,
        "model": count.model,
        "encoding": count.encoding,
        "tokenizer": count.tokenizer,
        "exact": count.exact,
        # The tokenizer's band; a raw-text count of an exact tokenizer has no band to state.
        "error_band": None if count.error_band == "exact" else count.error_band,
        "text_tokens": count.text_tokens,
        "request_tokens": count.request_tokens,
        "messages": [
            {"role": m.role, "tokens": m.tokens, "request_tokens": m.total_tokens}
            for m in (prompt.messages if prompt else ())
        ],
        "variables": [
            {
                "name": v.name,
                "source": v.source,
                "origin": v.origin,
                "tokens": v.tokens,
                "max_tokens": v.max_tokens,
            }
            for v in (prompt.variables if prompt else ())
        ],
    }


def step_json(step: StepEstimate) -> dict[str, Any]:
    return {
        "name": step.name,
        "prompt": step.template_path,
        "model": step.model,
        "tokenizer": step.tokenizer,
        "exact": step.exact,
        "priced": step.is_priced,
        "prompt_tokens": step.prompt.request_tokens if step.prompt else None,
        "output_tokens": step.output.tokens,
        "output_bound": step.output.bound,
        "output_source": step.output.source,
        "turns": step.step.turns,
        "tool_calls": step.step.tool_calls,
        "calls": [
            {
                "turn": call.turn,
                "index": call.index,
                "input_tokens": call.input_tokens,
                "output_tokens": call.output_tokens,
                "cost_usd": usd_number(call.cost_usd),
                "long_context": call.is_long_context,
            }
            for call in step.calls
        ],
        "max_input_tokens": step.max_input_tokens,
        "cost_per_request_usd": usd_number(step.cost_per_request_usd),
    }


def workflow_json(workflow: WorkflowEstimate) -> dict[str, Any]:
    return {
        "name": workflow.name,
        "complete": workflow.is_complete,
        "cost_per_request_usd": usd_number(workflow.cost_per_request_usd),
        "cost_per_outcome_usd": usd_number(workflow.cost_per_outcome_usd),
        "monthly_spend_usd": usd_number(workflow.monthly_spend_usd),
        "requests_per_month": _plain(workflow.workflow.requests_per_month),
        "success_rate": _plain(workflow.workflow.success_rate),
        "calls_per_request": workflow.calls_per_request,
        "tool_calls_per_request": workflow.tool_calls_per_request,
        "steps": [step_json(step) for step in workflow.steps],
    }


def _plain(value: Decimal | None) -> int | float | None:
    """A count or a share as a JSON number: an integer when it is whole."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _rate(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def _tier_json(tier: LongContextTier | None) -> dict[str, Any] | None:
    if tier is None:
        return None
    return {
        "threshold_tokens": tier.threshold_tokens,
        "input_per_mtok": _rate(tier.input_per_mtok),
        "output_per_mtok": _rate(tier.output_per_mtok),
        "cache_read_per_mtok": _rate(tier.cache_read_per_mtok),
        "cache_write_per_mtok": _rate(tier.cache_write_per_mtok),
    }


def model_json(model: ModelPrice) -> dict[str, Any]:
    return {
        "name": model.name,
        "provider": model.provider,
        "billing": model.billing,
        "tokenizer": model.tokenizer,
        "input_per_mtok": _rate(model.input_per_mtok),
        "output_per_mtok": _rate(model.output_per_mtok),
        "cache_read_per_mtok": _rate(model.cache_read_per_mtok),
        "cache_write_per_mtok": _rate(model.cache_write_per_mtok),
        "cache_write_1h_per_mtok": _rate(model.cache_write_1h_per_mtok),
        "batch_input_per_mtok": _rate(model.batch_input_per_mtok),
        "batch_output_per_mtok": _rate(model.batch_output_per_mtok),
        "long_context": _tier_json(model.long_context),
        "context_window": model.context_window,
        "max_output_tokens": model.max_output_tokens,
        "cache_min_tokens": model.cache_min_tokens,
        "deprecation_date": model.deprecation_date,
        "aliases": list(model.aliases),
        "origin": model.origin,
        "source": model.source,
        "notes": model.notes,
    }
