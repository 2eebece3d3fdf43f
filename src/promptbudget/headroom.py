"""Headroom: every limit of the manifest next to what was measured against it.

Built once per run from the estimates (and, for template limits, the counted templates);
reporters only format it. A limit is ``ok`` at or under its value, ``over`` above it, and
``unmeasured`` when nothing can be measured against it (no traffic for a monthly limit, no
bounded output for an output limit).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from promptbudget.counting import count_prompt
from promptbudget.estimates import StepEstimate, WorkflowEstimate
from promptbudget.findings import Number
from promptbudget.latency import LatencyStats
from promptbudget.manifest.model import CostLimit, LatencyLimit, Limits, Manifest, TemplateLimit
from promptbudget.pricing.resolve import resolve_model
from promptbudget.suppressions import glob_matches
from promptbudget.tokenizers import TOKENIZERS, get_tokenizer
from promptbudget.units import format_ms, format_tokens, format_usd, format_usd_apart, quantize

if TYPE_CHECKING:
    from promptbudget.rules.base import TemplateResult

Level = Literal["workflow", "step", "template"]
Status = Literal["ok", "over", "unmeasured"]

# Output bounds that are not a bound (PB103 reports them).
UNBOUNDED = frozenset({"model max", "unknown"})

LIMIT_KEYS = (
    "max_input_tokens",
    "max_output_tokens",
    "max_turns",
    "max_tool_calls",
    "max_cost_per_request",
    "max_cost_per_outcome",
    "max_monthly_spend",
    "max_latency_ms",
)

UNITS = {
    "max_input_tokens": "tokens",
    "max_output_tokens": "tokens",
    "max_turns": "turns",
    "max_tool_calls": "tool_calls",
    "max_cost_per_request": "usd",
    "max_cost_per_outcome": "usd",
    "max_monthly_spend": "usd",
    "max_latency_ms": "ms",
    "max_tokens": "tokens",
}

# Short names for tables: what is measured, per what.
LABELS = {
    "max_input_tokens": "input tokens",
    "max_output_tokens": "output tokens",
    "max_turns": "turns",
    "max_tool_calls": "tool calls",
    "max_cost_per_request": "$/request",
    "max_cost_per_outcome": "$/outcome",
    "max_monthly_spend": "$/month",
    "max_latency_ms": "latency",
    "max_tokens": "tokens",
}


@dataclass(frozen=True)
class LimitCheck:
    """One limit and what was measured against it."""

    level: Level
    key: str  # the manifest key: max_input_tokens, ..., max_tokens (templates)
    limit: Number
    measured: Number | None
    workflow: str | None = None
    step: str | None = None
    template: str | None = None  # template limits: the template's path
    variant: str | None = None  # template limits: which prompt of a multi-prompt file
    counted_with: str | None = None  # template limits: the model or encoding counted with
    statistic: str | None = None  # cost limits on a percentile, latency limits: "p50", "p95"
    path: str | None = None  # where the limit is written
    line: int | None = None
    exact: bool = True  # False: the measurement is an estimate (no exact tokenizer)
    # a sampled percentile: its 95% band (quantiles.py) and the samples it was read from
    band: tuple[Number, Number] | None = None
    samples: int | None = None

    @property
    def unit(self) -> str:
        return UNITS[self.key]

    @property
    def within_band(self) -> bool:
        """The limit lies inside the measured percentile's 95% band: whether it is over or
        not is within sampling error (more samples narrow the band)."""
        return self.band is not None and self.band[0] <= self.limit <= self.band[1]

    @property
    def label(self) -> str:
        """``$/request p95``, ``input tokens``, ``tokens (gpt-4.1)``."""
        label = LABELS[self.key]
        if self.statistic and self.statistic != "mean":
            label += f" {self.statistic}"
        if self.counted_with:
            label += f" ({self.counted_with})"
        return label

    @property
    def subject(self) -> str:
        """What the limit is on: ``docs-answer``, ``docs-answer/rewrite``, a template path."""
        if self.level == "template":
            template = self.template or "?"
            return f"{template} [{self.variant}]" if self.variant else template
        if self.level == "step":
            return f"{self.workflow}/{self.step}"
        return self.workflow or "?"

    @property
    def used_pct(self) -> Decimal | None:
        """Measured as a percentage of the limit (None: unmeasured, or a limit of 0)."""
        if self.measured is None or not self.limit:
            return None
        return Decimal(self.measured) / Decimal(self.limit) * 100

    @property
    def status(self) -> Status:
        if self.measured is None:
            return "unmeasured"
        return "over" if self.measured > self.limit else "ok"


def _amount(limit: CostLimit) -> tuple[Decimal, str | None]:
    return limit.amount, (limit.statistic if limit.statistic != "mean" else None)


def step_output_bound(step: StepEstimate) -> int | None:
    """The largest declared or capped output of a step's calls (None: none is bounded)."""
    bounded = [lane.output.bound for lane in step.lanes if lane.output.source not in UNBOUNDED]
    return max(bounded) if bounded else None


def _max(values: Iterable[int | None]) -> int | None:
    known = [value for value in values if value is not None]
    return max(known) if known else None


def workflow_checks(workflow: WorkflowEstimate, display_path: str | None) -> list[LimitCheck]:
    """The workflow's own limits: input, output and turns at its worst step."""
    limits = workflow.workflow.limits
    lines = workflow.workflow.limit_lines
    priced = [step for step in workflow.steps if step.lanes]
    measured: dict[str, Number | None] = {
        "max_input_tokens": _max(step.max_input_tokens for step in priced),
        "max_output_tokens": _max(step_output_bound(step) for step in workflow.steps),
        "max_turns": _max(step.step.turns for step in workflow.steps),
        "max_tool_calls": workflow.tool_calls_per_request,
        "max_monthly_spend": workflow.monthly_spend_usd,
    }
    exact = all(step.exact for step in workflow.steps)
    checks = []
    for key in LIMIT_KEYS:
        value = getattr(limits, key)
        if value is None:
            continue
        if isinstance(value, LatencyLimit):
            line = lines.get(key, workflow.workflow.line)
            latency = workflow.latency.stats if workflow.latency is not None else None
            where = (display_path, line)
            checks.extend(_latency_checks("workflow", workflow, None, value, latency, where))
            continue
        statistic = None
        band: tuple[Number, Number] | None = None
        if isinstance(value, CostLimit):
            value, statistic = _amount(value)
            stats = workflow.cost if key == "max_cost_per_request" else workflow.outcome
            found: Number | None = stats.get(limit_statistic(statistic))
            band = stats.band(limit_statistic(statistic))
        else:
            found = measured[key]
        checks.append(
            LimitCheck(
                level="workflow",
                key=key,
                limit=value,
                measured=found,
                workflow=workflow.name,
                statistic=statistic,
                path=display_path,
                line=lines.get(key, workflow.workflow.line),
                exact=exact or key != "max_input_tokens",
                band=band,
                samples=workflow.samples if band is not None else None,
            )
        )
    return checks


def ms_number(value: float) -> Decimal:
    """Milliseconds as a findings number: to the microsecond, ``4700`` not ``4700.0``."""
    number = Decimal(repr(round(value, 3)))
    return number.to_integral_value() if number == number.to_integral_value() else number


def _latency_checks(
    level: Level,
    workflow: WorkflowEstimate,
    step: str | None,
    limit: LatencyLimit,
    measured: LatencyStats | None,
    where: tuple[str | None, int | None],
) -> list[LimitCheck]:
    """One row per statistic of a ``max_latency_ms`` (p50, p95): unmeasured when a model on
    the path has no speed (PB118), never judged as zero."""
    samples = workflow.latency.samples if workflow.latency is not None else None
    checks = []
    for statistic, value in limit.items():
        band = measured.band(statistic) if measured is not None else None
        checks.append(
            LimitCheck(
                level=level,
                key="max_latency_ms",
                limit=ms_number(value),
                measured=ms_number(measured.get(statistic)) if measured is not None else None,
                workflow=workflow.name,
                step=step,
                statistic=statistic,
                path=where[0],
                line=where[1],
                band=(ms_number(band[0]), ms_number(band[1])) if band is not None else None,
                samples=samples if band is not None else None,
            )
        )
    return checks


def limit_statistic(statistic: str | None) -> Literal["mean", "p50", "p95"]:
    if statistic == "p50":
        return "p50"
    if statistic == "p95":
        return "p95"
    return "mean"


def step_measured(step: StepEstimate, key: str) -> Number | None:
    """What a step limit compares: its largest call's input, its output bound, its turns,
    its tool calls per request, its mean cost per request."""
    if key == "max_input_tokens":
        return step.max_input_tokens if step.lanes else None
    if key == "max_output_tokens":
        return step_output_bound(step)
    if key == "max_turns":
        return step.step.turns
    if key == "max_tool_calls":
        return step.tool_calls_per_request
    if key == "max_cost_per_request":
        return step.cost_usd if step.is_priced else None
    raise ValueError(f"not a step limit: {key}")


STEP_LIMIT_KEYS = (
    "max_input_tokens",
    "max_output_tokens",
    "max_turns",
    "max_tool_calls",
    "max_cost_per_request",
    "max_latency_ms",
)


def step_checks(workflow: WorkflowEstimate, display_path: str | None) -> list[LimitCheck]:
    """Limits written on a step (``steps[i].limits``)."""
    checks = []
    for step in workflow.steps:
        limits: Limits = step.step.limits
        for key in STEP_LIMIT_KEYS:
            value = getattr(limits, key)
            if value is None:
                continue
            line = step.step.limit_lines.get(key, step.step.line)
            if isinstance(value, LatencyLimit):
                stats = step.latency.stats if step.latency is not None else None
                where = (display_path, line)
                checks.extend(_latency_checks("step", workflow, step.name, value, stats, where))
                continue
            if isinstance(value, CostLimit):
                value = value.amount
            checks.append(
                LimitCheck(
                    level="step",
                    key=key,
                    limit=value,
                    measured=step_measured(step, key),
                    workflow=workflow.name,
                    step=step.name,
                    path=display_path,
                    line=line,
                    exact=step.exact or key != "max_input_tokens",
                )
            )
    return checks


def budget_checks(
    workflows: Iterable[WorkflowEstimate], display_path: str | None
) -> tuple[LimitCheck, ...]:
    """Every workflow and step limit, workflow by workflow."""
    checks: list[LimitCheck] = []
    for workflow in workflows:
        checks.extend(workflow_checks(workflow, display_path))
        checks.extend(step_checks(workflow, display_path))
    return tuple(checks)


def template_names(manifest: Manifest, path: Path, display_path: str) -> tuple[str, ...]:
    """The names a ``templates:`` pattern is matched against: the path relative to the
    project root, and relative to the prompts directory."""
    names = [display_path]
    with contextlib.suppress(ValueError):
        names.append(path.resolve().relative_to(manifest.prompts_dir).as_posix())
    return tuple(names)


def limits_for(manifest: Manifest, names: tuple[str, ...]) -> list[TemplateLimit]:
    return [
        limit
        for limit in manifest.templates
        if any(glob_matches(limit.pattern, name) for name in names)
    ]


def _tokens_with(
    result: TemplateResult, counted_with: str, manifest: Manifest
) -> tuple[int | None, bool]:
    """The template's text tokens counted with a model's tokenizer or an encoding, and
    whether that count is exact."""
    if counted_with in TOKENIZERS:
        tokenizer_name = counted_with
    else:
        tokenizer_name = resolve_model(counted_with, manifest.catalog).tokenizer
    if tokenizer_name == result.count.tokenizer:
        return result.count.text_tokens, result.count.exact
    if not result.parsed.is_readable:
        return None, False
    tokenizer = get_tokenizer(tokenizer_name)
    prompt = count_prompt(result.rendered, tokenizer, result.parsed.meta.tools)
    return prompt.text_tokens, prompt.exact


def recounted(result: TemplateResult, manifest: Manifest | None) -> bool:
    """Whether ``template_checks`` may count ``result`` again with another model or encoding
    (a ``templates:`` limit names one for it): it then reads the rendered messages."""
    if manifest is None or not manifest.templates:
        return False
    names = template_names(manifest, result.parsed.path, result.count.path)
    return any(
        counted_with is not None
        for limit in limits_for(manifest, names)
        for counted_with in limit.max_tokens
    )


def template_checks(
    results: Iterable[TemplateResult], manifest: Manifest | None
) -> tuple[LimitCheck, ...]:
    """``templates:`` limits: each template a pattern matches, counted with its own model
    (``max_tokens: N``) or with each model or encoding named. When several patterns limit
    the same template for the same model, each is checked."""
    if manifest is None or not manifest.templates:
        return ()
    checks = []
    for result in results:
        count = result.count
        names = template_names(manifest, result.parsed.path, count.path)
        for limit in limits_for(manifest, names):
            for counted_with, tokens in limit.max_tokens.items():
                if counted_with is None:
                    measured = count.text_tokens
                    exact = count.exact
                    shown = count.model or count.encoding
                else:
                    measured, exact = _tokens_with(result, counted_with, manifest)
                    shown = counted_with
                checks.append(
                    LimitCheck(
                        level="template",
                        key="max_tokens",
                        limit=tokens,
                        measured=measured,
                        template=count.path,
                        variant=count.variant,
                        counted_with=shown,
                        path=manifest.display_path,
                        line=limit.lines.get(counted_with, limit.line),
                        exact=exact,
                    )
                )
    return tuple(checks)


Verdict = Literal["kept", "broken", "fixed", "still over", "unmeasured"]


@dataclass(frozen=True)
class WhatIf:
    """One budget before and after a what-if (``--set``)."""

    before: LimitCheck | None  # None: the limit exists only in the what-if
    after: LimitCheck

    @property
    def verdict(self) -> Verdict:
        was_over = self.before is not None and self.before.status == "over"
        if self.after.status == "unmeasured":
            return "unmeasured"
        if self.after.status == "over":
            return "still over" if was_over else "broken"
        return "fixed" if was_over else "kept"


def _identity(check: LimitCheck) -> tuple[str | None, ...]:
    return (
        check.level,
        check.key,
        check.workflow,
        check.step,
        check.template,
        check.counted_with,
        check.statistic if check.key == "max_latency_ms" else None,
    )


def what_if(before: Iterable[LimitCheck], after: Iterable[LimitCheck]) -> tuple[WhatIf, ...]:
    """Each budget of the what-if next to the same budget as written."""
    written = {_identity(check): check for check in before}
    return tuple(WhatIf(written.get(_identity(check)), check) for check in after)


def _format(value: Number, unit: str, *, exact: bool = False, other: Number | None = None) -> str:
    if unit == "tokens":
        return format_tokens(int(value))
    if unit == "usd":
        amount = Decimal(value)
        if exact:
            return format_usd(amount, exact=True)
        return format_usd_apart(amount, Decimal(other)) if other is not None else format_usd(amount)
    if unit == "ms":
        limit = float(other) if other is not None else None
        return format_ms(float(value), exact=exact, other=limit)
    return f"{int(value):,}"


def format_limit(check: LimitCheck) -> str:
    """The limit as written: ``9,000``, ``$0.006``."""
    return _format(check.limit, check.unit, exact=True)


def format_measured(check: LimitCheck) -> str:
    """What was measured, with enough digits to tell it from the limit; ``-`` if nothing; a
    sampled percentile with its 95% band as ``±3%`` (``format_spread``)."""
    if check.measured is None:
        return "-"
    approx = "" if check.exact else "~"
    shown = approx + _format(check.measured, check.unit, other=check.limit)
    if check.band is not None:
        shown += " " + format_spread(check.measured, check.band)
    return shown


def format_spread(value: Number, band: tuple[Number, Number]) -> str:
    """``±3%``: the farther end of a sampled percentile's 95% band, as a share of the value
    (``±0.4%`` under 1%, ``±<0.1%`` under 0.1%, ``±0%`` when both ends are the value)."""
    low, high = band
    if not value:
        return "±0%" if low == high == value else ""
    half = float(max(Decimal(high) - Decimal(value), Decimal(value) - Decimal(low))) / float(value)
    percent = abs(half) * 100
    if percent == 0:
        return "±0%"
    if percent < 0.1:
        return "±<0.1%"
    if percent < 1:
        return f"±{percent:.1f}%"
    return f"±{percent:.0f}%"


# What narrows a band: the sample count to suggest when a limit is within sampling error.
MORE_SAMPLES = 100_000


def band_text(unit: str, band: tuple[Number, Number], samples: int | None) -> str:
    """``95% band $0.0127-$0.0135 from 1,000 samples``; ``95% band 27,901-31,604 ms ...``."""
    low, high = band
    if unit == "usd":
        shown = f"{format_usd(Decimal(low))}-{format_usd(Decimal(high))}"
    else:
        shown = f"{format_ms(float(low)).removesuffix(' ms')}-{format_ms(float(high))}"
    return f"95% band {shown}" + (f" from {samples:,} samples" if samples else "")


def band_footnote(checks: Iterable[LimitCheck]) -> str | None:
    """The line under a limits table that shows a ``±``: what it means (None: no ``±``)."""
    samples = [check.samples or 0 for check in checks if check.band is not None]
    if not samples:
        return None
    return spread_footnote(max(samples))


def spread_footnote(samples: int) -> str:
    """``±: 95% band from 1,000 samples (--samples 100000 narrows it)``."""
    more = f" (--samples {MORE_SAMPLES} narrows it)" if samples < MORE_SAMPLES else ""
    return f"±: 95% band from {samples:,} samples{more}"


def sampling_note(check: LimitCheck) -> str:
    """What a finding on a sampled percentile adds: ``95% band ... from 1,000 samples``, and
    when the limit lies inside the band, that the verdict is within sampling error ('' for
    an exact measurement)."""
    if check.band is None:
        return ""
    text = band_text(check.unit, check.band, check.samples)
    if check.within_band:
        more = (
            f"--samples {MORE_SAMPLES}" if (check.samples or 0) < MORE_SAMPLES else "more --samples"
        )
        text += f"; within sampling error: {more} narrows it"
    return text


def format_used(check: LimitCheck) -> str:
    """``87%``; ``-`` when unmeasured."""
    used = check.used_pct
    if used is None:
        return "-"
    if used < 1 and used > 0:
        return "<1%"
    return f"{used:.0f}%"


def used_json(check: LimitCheck) -> float | None:
    used = check.used_pct
    return None if used is None else float(quantize(used, Decimal("0.01")))


BAR_WIDTH = 10


def bar(check: LimitCheck, width: int = BAR_WIDTH) -> str:
    """``████████··`` filled to the share used (full when over); empty when unmeasured."""
    used = check.used_pct
    if used is None:
        return ""
    filled = min(width, int(used * width / 100))  # rounded down: full only at 100% or over
    if used > 0 and filled == 0:
        filled = 1
    return "█" * filled + "·" * (width - filled)
