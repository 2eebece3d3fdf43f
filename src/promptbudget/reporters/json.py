"""The JSON reporter: a stable, versioned contract (``"schema_version": 1``)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from promptbudget.compression import FileCompression
from promptbudget.counting import TemplateCount, count_totals
from promptbudget.diffing import Change, DiffResult
from promptbudget.estimates import (
    StepEstimate,
    WorkflowEstimate,
    time_of_day_splits,
    unmodelled_pricing,
)
from promptbudget.findings import Finding, Number, Severity
from promptbudget.headroom import LimitCheck, used_json, what_if
from promptbudget.lane import Lane, call_cost, is_long_context, iter_calls
from promptbudget.latency import LatencyStats, StepLatency, WorkflowLatency
from promptbudget.manifest.model import typical
from promptbudget.pricing.catalog import LongContextTier, ModelPrice, is_deprecated
from promptbudget.report import Report
from promptbudget.reporters.base import ReportSettings, usd_number
from promptbudget.reporters.jsontext import Items, dumps
from promptbudget.units import quantize

SCHEMA_VERSION = 1


def render_json(report: Report, settings: ReportSettings) -> str:
    payload: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "command": report.command}
    if report.command == "models":
        payload["catalog_as_of"] = report.catalog_as_of
        payload["models"] = Items(model_json(m, report.today) for m in report.models)
        return dumps(payload)
    if report.command == "compress":
        payload["passes"] = list(report.passes)
        payload["files"] = Items(compression_json(c) for c in report.compressions)
        payload["total"] = {
            "tokens_before": sum(c.result.tokens_before for c in report.compressions if c.result),
            "tokens_after": sum(c.result.tokens_after for c in report.compressions if c.result),
            "monthly_savings_usd": usd_number(
                sum(
                    (
                        c.monthly_savings_usd
                        for c in report.compressions
                        if c.monthly_savings_usd is not None
                    ),
                    Decimal(0),
                )
            )
            if any(c.monthly_savings_usd is not None for c in report.compressions)
            else None,
        }
        return dumps(payload)
    if report.command == "models-diff":
        payload["catalog_as_of"] = report.catalog_as_of
        payload["file"] = report.price_file
        payload["changes"] = [
            {
                "model": change.model,
                "field": change.field,
                "bundled": _value_json(change.bundled),
                "file": _value_json(change.other),
            }
            for change in report.price_changes
        ]
        payload["missing"] = list(report.missing_models)
        return dumps(payload)
    payload["summary"] = summary_json(report)
    payload["findings"] = Items(finding_json(f) for f in report.findings)
    if report.diff is not None:
        payload["diff"] = diff_json(report.diff)
        payload["catalog_as_of"] = report.catalog_as_of
        return dumps(payload)
    if report.command == "replay" and report.replay is not None:
        from promptbudget.reporters.replay_format import replay_json

        payload["replay"] = replay_json(report.replay)
        payload["catalog_as_of"] = report.catalog_as_of
        return dumps(payload)
    if report.command in {"check", "estimate"}:
        payload["workflows"] = [workflow_json(w, report.limits) for w in report.workflows]
    if report.sets:
        payload["sets"] = list(report.sets)
    if report.command == "estimate" and report.baseline:
        payload["sets"] = list(report.sets)
        payload["baseline"] = [workflow_json(w, report.baseline_limits) for w in report.baseline]
        payload["what_if_budgets"] = [
            {
                "workflow": pair.after.workflow,
                "step": pair.after.step,
                "key": pair.after.key,
                "statistic": pair.after.statistic,
                "baseline": _number(pair.before.measured) if pair.before else None,
                "baseline_band": _band(pair.before.band) if pair.before else None,
                "what_if": _number(pair.after.measured),
                "what_if_band": _band(pair.after.band),
                "limit": _number(pair.after.limit),
                "unit": pair.after.unit,
                "used_pct": used_json(pair.after),
                "verdict": pair.verdict,
            }
            for pair in what_if(report.baseline_limits, report.limits)
        ]
    if report.command != "estimate":
        payload["templates"] = Items(template_json(t, report.limits) for t in report.templates)
    if report.command == "count":  # summed per model; estimates make the sum one too
        payload["totals"] = [
            {
                "model": total.model,
                "encoding": total.encoding,
                "templates": total.templates,
                "text_tokens": total.text_tokens,
                "request_tokens": total.request_tokens,
                "exact": total.exact,
            }
            for total in count_totals(report.templates)
        ]
    payload["catalog_as_of"] = report.catalog_as_of
    return dumps(payload)


def _change_json(change: Change, *, usd: bool) -> dict[str, Any]:
    def number(value: Decimal | None) -> int | float | None:
        if value is None:
            return None
        return usd_number(value) if usd else _plain(value)

    percent = change.percent
    return {
        "base": number(change.base),
        "head": number(change.head),
        "delta": number(change.delta),
        "delta_percent": None if percent is None else float(quantize(percent, Decimal("0.0001"))),
        "status": change.status,
    }


def diff_json(diff: DiffResult) -> dict[str, Any]:
    """``diff``: base and head per workflow and template; ``findings`` are the new ones."""
    return {
        "base": {
            "ref": diff.base_ref,
            "commit": diff.base_commit,
            "problem": diff.base_problem,
            "found": diff.base_found,
        },
        "fail_on_increase_percent": None if diff.threshold is None else float(diff.threshold),
        "monthly_spend_usd": _change_json(diff.monthly_total, usd=True),
        "workflows": [
            {
                "name": w.name,
                "status": w.status,
                "cost_per_request_usd": _change_json(w.cost_per_request, usd=True),
                "cost_per_request_p95_usd": _change_json(w.cost_per_request_p95, usd=True),
                "monthly_spend_usd": _change_json(w.monthly_spend, usd=True),
                "tokens_per_request": _change_json(w.tokens_per_request, usd=False),
                "latency_p50_ms": _change_json(w.latency_p50, usd=False),
                "latency_p95_ms": _change_json(w.latency_p95, usd=False),
            }
            for w in diff.workflows
        ],
        "templates": [
            {
                "path": t.path,
                "model": t.model,
                "status": t.status,
                "request_tokens": _change_json(t.tokens, usd=False),
                "via": list(t.via),  # grew through an included file: template → ... → file
                "line": t.line,  # that file's first changed line
            }
            for t in diff.templates
        ],
        "fixed_findings": [finding_json(f) for f in diff.fixed_findings],
        "breaches": [
            {
                "subject": b.subject,
                "quantity": b.quantity,
                "change": _change_json(b.change, usd="tokens" not in b.quantity),
            }
            for b in diff.breaches
        ],
    }


def compression_json(item: FileCompression) -> dict[str, Any]:
    result = item.result
    return {
        "path": item.path,
        "tokenizer": item.tokenizer,
        "tokens_before": result.tokens_before if result else None,
        "tokens_after": result.tokens_after if result else None,
        "tokens_saved": result.tokens_saved if result else None,
        "passes": {p.name: p.tokens_saved for p in result.passes} if result else {},
        "monthly_savings_usd": usd_number(item.monthly_savings_usd),
        "workflows": list(item.workflows),
        "changed": result.changed if result else False,
        "written": item.written,
        "error": item.error,
        "skipped": item.skipped,
        "diff": item.diff,
    }


def _value_json(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, LongContextTier):
        return _tier_json(value)
    return value


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


def _band(band: tuple[Number, Number] | None) -> list[int | float | None] | None:
    """A sampled percentile's 95% band as ``[low, high]``; null when exact."""
    return None if band is None else [_number(band[0]), _number(band[1])]


def _usd_band(band: tuple[Decimal, Decimal] | None) -> list[float | None] | None:
    return None if band is None else [usd_number(band[0]), usd_number(band[1])]


def limit_json(check: LimitCheck) -> dict[str, Any]:
    """One limit: what it is on, what was measured, the share used and the status."""
    return {
        "key": check.key,
        "statistic": check.statistic,
        "counted_with": check.counted_with,
        "measured": _number(check.measured),
        "measured_band": _band(check.band),
        "within_sampling_error": check.within_band,
        "limit": _number(check.limit),
        "unit": check.unit,
        "used_pct": used_json(check),
        "status": check.status,
        "exact": check.exact,
        "path": check.path,
        "line": check.line,
    }


def template_json(count: TemplateCount, limits: Sequence[LimitCheck] = ()) -> dict[str, Any]:
    prompt = count.prompt
    return {
        "path": count.path,
        "variant": count.variant,
        "format": count.format,
        "model": count.model,
        "encoding": count.encoding,
        "tokenizer": count.tokenizer,
        "exact": count.exact,
        # The tokenizer's band; a raw-text count of an exact tokenizer has no band to state.
        "error_band": None if count.error_band == "exact" else count.error_band,
        # prose, code, cjk or mixed: the kind of text the estimate's factor was chosen for
        "text_class": count.text_class,
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
        "limits": [
            limit_json(c)
            for c in limits
            if c.level == "template" and c.template == count.path and c.variant == count.variant
        ],
    }


def _calls_json(lane: Lane) -> list[dict[str, Any]]:
    return [
        {
            "turn": turn,
            "index": index,
            "input_tokens": call.input_tokens,
            "output_tokens": call.output,
            "cost_usd": usd_number(call_cost(lane, call)),
            "long_context": is_long_context(lane, call),
        }
        for turn, index, call in iter_calls(lane)
    ]


def lane_json(lane: Lane) -> dict[str, Any]:
    return {
        "traffic_class": lane.traffic_class.name,
        "class_share": _plain(lane.traffic_class.share),
        "model": lane.model or None,
        "share": _plain(lane.routed.weight),
        "weight": _plain(lane.weight),
        "escalated": lane.routed.escalated,
        "via": list(lane.routed.via),
        "tokenizer": lane.tokenizer.name,
        "exact": lane.exact,
        "priced": lane.price is not None,
        "prompt_tokens": lane.prompt.request_tokens if lane.prompt else None,
        "cacheable_prefix_tokens": lane.structure.prefix_tokens if lane.structure else None,
        "max_input_tokens": lane.max_input_tokens,
        "output_bound": lane.output.bound,
        "calls": _calls_json(lane),
    }


def step_json(step: StepEstimate, limits: Sequence[LimitCheck] = ()) -> dict[str, Any]:
    primary = step.primary
    return {
        "name": step.name,
        "prompt": step.template_path,
        "model": step.model,
        "models": list(step.models),
        "exact": step.exact,
        "priced": step.is_priced,
        "prompt_tokens": primary.prompt.request_tokens if primary and primary.prompt else None,
        "output_tokens": typical(primary.output.tokens) if primary else None,
        "output_bound": primary.output.bound if primary else None,
        "output_source": primary.output.source if primary else None,
        "turns": step.step.turns,
        "tool_calls": step.step.tool_calls,
        "calls": _calls_json(primary) if primary else [],
        "max_input_tokens": step.max_input_tokens,
        "cost_per_request_usd": usd_number(step.cost_usd),
        "break_even_escalation_rate": _plain(step.break_even_escalation),
        "latency": step_latency_json(step.latency),
        "lanes": [lane_json(lane) for lane in step.lanes],
        "limits": [
            limit_json(c)
            for c in limits
            if c.level == "step" and c.workflow == step.workflow and c.step == step.name
        ],
    }


def workflow_json(workflow: WorkflowEstimate, limits: Sequence[LimitCheck] = ()) -> dict[str, Any]:
    outcome = workflow.outcome
    return {
        "name": workflow.name,
        "complete": workflow.is_complete,
        "cost_per_request_usd": usd_number(workflow.cost.mean),
        "cost_per_request_p50_usd": usd_number(workflow.cost.p50),
        "cost_per_request_p50_usd_band": _usd_band(workflow.cost.p50_band),
        "cost_per_request_p95_usd": usd_number(workflow.cost.p95),
        "cost_per_request_p95_usd_band": _usd_band(workflow.cost.p95_band),
        "cost_per_outcome_usd": usd_number(outcome.mean),
        "cost_per_outcome_p50_usd": usd_number(outcome.p50),
        "cost_per_outcome_p50_usd_band": _usd_band(outcome.p50_band),
        "cost_per_outcome_p95_usd": usd_number(outcome.p95),
        "cost_per_outcome_p95_usd_band": _usd_band(outcome.p95_band),
        "monthly_spend_usd": usd_number(workflow.monthly_spend_usd),
        "requests_per_month": _plain(workflow.workflow.requests_per_month),
        "success_rate": _plain(workflow.workflow.success_rate),
        "semantic_cache_hit_rate": _plain(workflow.workflow.semantic_cache_hit_rate),
        "calls_per_request": _plain(workflow.calls_per_request),
        "tool_calls_per_request": workflow.tool_calls_per_request,
        "monte_carlo": {
            "samples": workflow.samples,
            "seed": workflow.seed,
            "mean": "sampled" if workflow.mean_is_sampled else "exact",
        },
        "latency": latency_json(workflow.latency),
        "model_mix": [
            {"model": model or None, "call_share": _plain(calls), "cost_share": _plain(cost)}
            for model, calls, cost in workflow.model_mix()
        ],
        "limits": [
            limit_json(c) for c in limits if c.level == "workflow" and c.workflow == workflow.name
        ],
        "steps": [step_json(step, limits) for step in workflow.steps],
        "unmodelled": {
            model: list(dimensions) for model, dimensions in unmodelled_pricing(workflow).items()
        },
        "why": [
            {
                "step": c.step,
                "model": c.model or None,
                "component": c.name,
                "tokens": _plain(c.tokens),
                "cost_usd": usd_number(c.cost_usd),
            }
            for c in workflow.components
        ],
        "time_of_day": [
            {
                "step": split.step,
                "model": split.model,
                "off_peak_share": _plain(split.time_of_day.off_peak_share),
                "even_spread": split.time_of_day.is_even_spread,
                "cost_usd": usd_number(split.cost_usd),
                "peak_usd": usd_number(split.peak_usd) if split.peak_usd is not None else None,
                "off_peak_usd": (
                    usd_number(split.off_peak_usd) if split.off_peak_usd is not None else None
                ),
            }
            for split in time_of_day_splits(workflow)
        ],
    }


def _ms(value: float) -> int | float:
    number = round(value, 3)
    return int(number) if number == int(number) else number


def _ms_band(band: tuple[float, float] | None) -> list[int | float] | None:
    return None if band is None else [_ms(band[0]), _ms(band[1])]


def _stats_json(stats: LatencyStats | None) -> dict[str, Any]:
    if stats is None:
        return {
            "mean_ms": None,
            "p50_ms": None,
            "p50_ms_band": None,
            "p95_ms": None,
            "p95_ms_band": None,
        }
    return {
        "mean_ms": _ms(stats.mean),
        "p50_ms": _ms(stats.p50),
        "p50_ms_band": _ms_band(stats.p50_band),
        "p95_ms": _ms(stats.p95),
        "p95_ms_band": _ms_band(stats.p95_band),
    }


def step_latency_json(latency: StepLatency | None) -> dict[str, Any] | None:
    """A step's simulated latency: null stats when unknown (``unknown_models``) or
    asynchronous (``batch``); ``parts``: mean milliseconds by where they go."""
    if latency is None:
        return None
    return {
        **_stats_json(latency.stats),
        "batch": latency.is_batch,
        "unknown_models": list(latency.missing),
        "parts_ms": {part: _ms(ms) for part, ms in latency.parts.items()},
    }


def latency_json(latency: WorkflowLatency | None) -> dict[str, Any] | None:
    if latency is None:
        return None
    return {
        **_stats_json(latency.stats),
        "samples": latency.samples,
        "seed": latency.seed,
        "unknown_models": list(latency.missing),
        "batch_steps": list(latency.batch_steps),
    }


def _plain(value: Decimal | None) -> int | float | None:
    """A count or a share as a JSON number: an integer when it is whole."""
    if value is None:
        return None
    if value == value.to_integral_value():
        return int(value)
    return float(quantize(value, Decimal("1e-12")))


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


def _off_peak_json(model: ModelPrice) -> dict[str, Any] | None:
    off = model.off_peak
    if off is None:
        return None
    return {
        "input_per_mtok": _rate(off.input_per_mtok),
        "output_per_mtok": _rate(off.output_per_mtok),
        "cache_read_per_mtok": _rate(off.cache_read_per_mtok),
        "off_peak_hours_per_week": len(off.hours),
    }


def model_json(model: ModelPrice, report_today: str | None = None) -> dict[str, Any]:
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
        "cache_increment_tokens": model.cache_increment_tokens,
        "deprecation_date": model.deprecation_date,
        "deprecated": is_deprecated(model, report_today),
        "successor": model.successor,
        "off_peak": _off_peak_json(model),
        "unmodelled": list(model.unmodelled),
        "host": model.host,
        "litellm_key": model.litellm_key,
        "aliases": list(model.aliases),
        "origin": model.origin,
        "source": model.source,
        "notes": model.notes,
        "ttft_ms": model.ttft_ms,
        "ttft_p95_ms": model.ttft_p95_ms,
        "output_tokens_per_second": model.output_tokens_per_second,
        "speed_source": model.speed_source,
        "speed_date": model.speed_date,
    }
