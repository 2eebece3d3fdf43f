"""Assumptions in budgets.yaml against what production did, with what each gap costs.

Each assumption is compared with its observed value; the cost impact is the ``estimate`` of
the workflow's monthly spend with the observed value put in (a ``--set`` what-if, through the
same project loading, rendering and cost model) minus the estimate as written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml

from promptbudget.errors import PromptBudgetError
from promptbudget.lanes import estimate_workflows
from promptbudget.manifest.model import Distribution, Manifest, Step, Workflow
from promptbudget.options import Options
from promptbudget.project import Project
from promptbudget.replay.judgement import duration
from promptbudget.replay.stats import StepStats, WorkflowStats

MATERIAL = 0.10  # a relative gap above this is drift
MIN_OBSERVED = 30  # fewer requests or calls than this: shown, never called drift
IMPACT_SAMPLES = 200  # Monte Carlo draws per what-if; the same seed on both sides of a gap


@dataclass(frozen=True)
class Drift:
    """One assumption: where it is in budgets.yaml, what it says and what production did."""

    workflow: str
    step: str | None
    key: str  # e.g. output_tokens, prompt_cache_hit_rate, traffic.requests_per_day
    path: tuple[str | int, ...]  # its place in budgets.yaml (for --calibrate)
    assumed: str
    observed: str
    value: Any  # the observed value as budgets.yaml would hold it
    is_material: bool
    basis: str  # what the observation rests on: "12,875 calls over 7.0 days"
    monthly_impact_usd: Decimal | None = None
    route: str | None = None
    too_few: bool = False  # too few observations to call a gap drift

    @property
    def override(self) -> str:
        """The ``--set`` what-if that puts the observed value in."""
        value = yaml.safe_dump(self.value, default_flow_style=True).strip()
        value = value.removesuffix("\n...").strip()
        if self.route is not None:
            return f"routes.{self.route}.escalation.rate={value}"
        if self.step is not None:
            return f"{self.workflow}.steps.{self.step}.{self.key}={value}"
        return f"{self.workflow}.{self.key}={value}"


def _percent(value: float) -> str:
    shown = f"{value * 100:.1f}".rstrip("0").rstrip(".")
    return f"{shown}%"


def _gap(assumed: float, observed: float, *, tokens: bool = False) -> bool:
    if tokens and abs(observed - assumed) <= 5:
        return False  # a few tokens either way is noise, not drift
    if assumed == 0:
        return observed != 0
    return abs(observed - assumed) / abs(assumed) > MATERIAL


def _rate_gap(assumed: float, observed: float) -> bool:
    difference = abs(observed - assumed)
    return difference > 0.05 or (_gap(assumed, observed) and difference > 0.01)


def _step_index(workflow: Workflow, step: Step) -> int:
    return workflow.steps.index(step)


def _step_drift(
    workflow: Workflow, step: Step, stats: StepStats, manifest: Manifest
) -> list[Drift]:
    found = []
    where: tuple[str | int, ...] = (
        "workflows",
        workflow.name,
        "steps",
        _step_index(workflow, step),
    )
    basis = f"{stats.calls:,} calls in {stats.requests:,} requests"
    output = stats.output_tokens
    if output.n:
        p50, p95 = round(output.p50), round(output.p95)
        value: Any = {"p50": p50, "p95": p95} if p95 > p50 else p50
        declared = step.output_tokens
        if isinstance(declared, Distribution):
            assumed = f"p50 {declared.p50:,}, p95 {declared.p95:,}"
            material = _gap(declared.p50, p50, tokens=True) or _gap(declared.p95, p95, tokens=True)
        elif declared is not None:
            assumed = f"{declared:,}"
            material = _gap(declared, p95, tokens=True) or _gap(declared, p50, tokens=True)
        else:
            assumed = "not declared"
            material = True
        found.append(
            Drift(
                workflow.name,
                step.name,
                "output_tokens",
                (*where, "output_tokens"),
                assumed,
                f"p50 {p50:,}, p95 {p95:,}",
                value,
                material,
                basis,
            )
        )
    if step.prompt_cache_hit_rate is not None or stats.cache_hits:
        observed = stats.cache_hit_rate
        declared_rate = float(step.prompt_cache_hit_rate or 0)
        found.append(
            Drift(
                workflow.name,
                step.name,
                "prompt_cache_hit_rate",
                (*where, "prompt_cache_hit_rate"),
                _percent(declared_rate)
                if step.prompt_cache_hit_rate is not None
                else "not declared",
                _percent(observed),
                _percent(observed),
                _rate_gap(declared_rate, observed),
                basis,
            )
        )
    if stats.turns.n:
        turns = max(1, round(stats.turns.mean))
        found.append(
            Drift(
                workflow.name,
                step.name,
                "turns",
                (*where, "turns"),
                f"{step.turns}",
                f"{stats.turns.mean:.2f} on average (p95 {stats.turns.p95:g})",
                turns,
                turns != step.turns,
                f"{stats.requests:,} requests",
            )
        )
        per_turn = stats.tool_calls.mean / max(stats.turns.mean, 1)
        tools = round(per_turn)
        if step.tool_calls or stats.tool_calls.total:
            found.append(
                Drift(
                    workflow.name,
                    step.name,
                    "tool_calls",
                    (*where, "tool_calls"),
                    f"{step.tool_calls} per turn",
                    f"{per_turn:.2f} per turn ({stats.tool_calls.mean:.2f} per request)",
                    tools,
                    tools != step.tool_calls,
                    f"{stats.requests:,} requests",
                )
            )
    route = manifest.routes.get(step.route) if step.route else None
    seen: set[str] = set()
    while route is not None and route.name not in seen and route.escalation is None:
        seen.add(route.name)
        route = manifest.routes.get(route.default or route.model or "")
    if route is not None and route.escalation is not None and stats.calls:
        rate = stats.escalation_rate
        assumed_rate = float(route.escalation.rate)
        found.append(
            Drift(
                workflow.name,
                step.name,
                "escalation.rate",
                ("routes", route.name, "escalation", "rate"),
                _percent(assumed_rate),
                _percent(rate),
                _percent(rate),
                _rate_gap(assumed_rate, rate),
                f"{stats.escalated_calls:,} escalated of {stats.calls:,} calls",
                route=route.name,
            )
        )
    return found


def compare(manifest: Manifest, observed: tuple[WorkflowStats, ...]) -> list[Drift]:
    """Every assumption that the logs say something about."""
    by_name = {w.name: w for w in observed}
    found: list[Drift] = []
    for workflow in manifest.workflows:
        stats = by_name.get(workflow.name)
        if stats is None or not stats.requests:
            continue
        if workflow.requests_per_day is not None and stats.days:
            served = 1 - float(workflow.semantic_cache_hit_rate)
            per_day = stats.requests_per_day / served if served > 0 else stats.requests_per_day
            rounded = int(float(f"{per_day:.3g}"))
            found.append(
                Drift(
                    workflow.name,
                    None,
                    "traffic.requests_per_day",
                    ("workflows", workflow.name, "traffic", "requests_per_day"),
                    f"{float(workflow.requests_per_day):,.0f} a day",
                    f"{per_day:,.0f} a day",
                    rounded,
                    _gap(float(workflow.requests_per_day), per_day),
                    f"{stats.requests:,} requests over {duration(stats.days)}"
                    + (f", semantic cache {_percent(1 - served)} added back" if served < 1 else ""),
                )
            )
        if stats.success_rate is not None:
            found.append(
                Drift(
                    workflow.name,
                    None,
                    "success_rate",
                    ("workflows", workflow.name, "success_rate"),
                    _percent(float(workflow.success_rate)),
                    _percent(stats.success_rate),
                    _percent(stats.success_rate),
                    _rate_gap(float(workflow.success_rate), stats.success_rate),
                    f"{stats.outcomes:,} recorded outcomes",
                )
            )
        steps = {s.name: s for s in workflow.steps}

        for step_stats in stats.steps:
            step = steps.get(step_stats.step)
            if step is not None:
                found.extend(_step_drift(workflow, step, step_stats, manifest))
        if stats.requests < MIN_OBSERVED:  # too few to call anything drift
            few = f" (only {stats.requests} requests)"
            found = [d for d in found if d.workflow != workflow.name] + [
                dataclasses.replace(d, is_material=False, too_few=True, basis=d.basis + few)
                for d in found
                if d.workflow == workflow.name
            ]
    return found


def with_impact(drifts: list[Drift], options: Options) -> list[Drift]:
    """Each material drift with the monthly cost of the gap (estimate with the observed value
    minus the estimate as written); ``None`` where the estimate cannot be made."""
    baselines: dict[str, Decimal | None] = {}
    result = []
    for drift in drifts:
        if not drift.is_material:
            result.append(drift)
            continue
        scoped = dataclasses.replace(options, workflow=drift.workflow)
        try:
            if drift.workflow not in baselines:
                project = Project.open(scoped, require_manifest=True)
                baselines[drift.workflow] = _monthly(project, options, drift.workflow)
            what_if = Project.open(scoped, require_manifest=True, overrides=(drift.override,))
            after = _monthly(what_if, options, drift.workflow)
        except PromptBudgetError:
            result.append(drift)
            continue
        before = baselines[drift.workflow]
        impact = after - before if after is not None and before is not None else None
        result.append(dataclasses.replace(drift, monthly_impact_usd=impact))
    return result


def _monthly(project: Project, options: Options, workflow: str) -> Decimal | None:
    estimates = estimate_workflows(
        project, samples=min(options.samples, IMPACT_SAMPLES), seed=options.seed, workflow=workflow
    )
    return estimates[0].monthly_spend_usd if estimates else None
