"""What changed between two ``check`` results: workflows, templates, findings, breaches.

Pure: it compares what two runs measured and knows nothing of git or of how the runs were
made (that is ``commands/diff.py`` and ``git.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, Protocol

from promptbudget.findings import Finding
from promptbudget.units import parse_percent_option

if TYPE_CHECKING:
    from promptbudget.counting import TemplateCount
    from promptbudget.estimates import WorkflowEstimate

Status = Literal["added", "removed", "changed", "unchanged"]


class Measured(Protocol):
    """What one side of a diff measured: a ``check`` report has all three."""

    @property
    def findings(self) -> tuple[Finding, ...]: ...

    @property
    def templates(self) -> tuple[TemplateCount, ...]: ...

    @property
    def workflows(self) -> tuple[WorkflowEstimate, ...]: ...


# -- what is compared ------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One quantity at the base and at the head (None: not measured on that side). What it
    measures may exist on one side only (``in_base``, ``in_head``): a new template."""

    base: Decimal | None
    head: Decimal | None
    in_base: bool = True
    in_head: bool = True

    @property
    def delta(self) -> Decimal | None:
        if self.base is None or self.head is None:
            return None
        return self.head - self.base

    @property
    def percent(self) -> Decimal | None:
        """The change in percent of the base; None when there is no base to compare with."""
        delta = self.delta
        if delta is None or not self.base:
            return None
        return delta / self.base * 100

    @property
    def status(self) -> Status:
        if not self.in_base:
            return "added"
        if not self.in_head:
            return "removed"
        return "unchanged" if self.base == self.head else "changed"


@dataclass(frozen=True)
class WorkflowDiff:
    name: str
    cost_per_request: Change  # mean, USD
    cost_per_request_p95: Change
    monthly_spend: Change  # USD; None when the workflow declares no traffic
    tokens_per_request: Change  # every token sent and received, weighted like the cost
    latency_p50: Change = Change(None, None)  # milliseconds per request (simulated)
    latency_p95: Change = Change(None, None)

    @property
    def has_latency(self) -> bool:
        return any(
            value is not None
            for change in (self.latency_p50, self.latency_p95)
            for value in (change.base, change.head)
        )

    @property
    def status(self) -> Status:
        changes = (
            self.cost_per_request,
            self.cost_per_request_p95,
            self.monthly_spend,
            self.tokens_per_request,
            self.latency_p50,
            self.latency_p95,
        )
        first = self.cost_per_request.status
        if first in ("added", "removed"):
            return first
        return "changed" if any(c.status == "changed" for c in changes) else "unchanged"

    @property
    def weight(self) -> Decimal:
        """How much this row moved, for sorting the biggest movers first."""
        change = self.monthly_spend
        if change.delta is None and change.head is None and change.base is None:
            change = self.cost_per_request
        return _moved(change)


def _moved(change: Change) -> Decimal:
    """The size of a change; an added or removed row moved by its whole value."""
    if change.delta is not None:
        return abs(change.delta)
    return abs(change.head if change.head is not None else (change.base or Decimal(0)))


@dataclass(frozen=True)
class TemplateDiff:
    path: str
    model: str | None
    tokens: Change  # request tokens (messages and chat framing) for its model
    # The template itself is unchanged and an included file grew: the include chain from
    # the template to that file, and the file's first changed line (``includes.py``).
    via: tuple[str, ...] = ()
    line: int | None = None

    @property
    def status(self) -> Status:
        return self.tokens.status

    @property
    def weight(self) -> Decimal:
        return _moved(self.tokens)


@dataclass(frozen=True)
class Breach:
    """A rise above ``--fail-on-increase``."""

    subject: str  # "workflow 'support-reply'" or "prompts/a.j2"
    quantity: str  # "cost per request", "monthly spend", "tokens"
    change: Change


@dataclass(frozen=True)
class DiffResult:
    base_ref: str
    base_commit: str
    workflows: tuple[WorkflowDiff, ...]
    templates: tuple[TemplateDiff, ...]
    new_findings: tuple[Finding, ...]  # in the head, not in the base
    fixed_findings: tuple[Finding, ...]  # in the base, gone from the head
    threshold: Decimal | None = None  # --fail-on-increase, in percent
    breaches: tuple[Breach, ...] = ()
    base_problem: str | None = None  # why the base could not be evaluated, if it could not
    base_found: str | None = None  # no --base: how the base was found ("GITHUB_BASE_REF")

    @property
    def monthly_total(self) -> Change:
        return _total(w.monthly_spend for w in self.workflows)

    @property
    def changed_workflows(self) -> tuple[WorkflowDiff, ...]:
        return tuple(w for w in self.workflows if w.status != "unchanged")

    @property
    def changed_templates(self) -> tuple[TemplateDiff, ...]:
        return tuple(t for t in self.templates if t.status != "unchanged")


def _total(changes: Iterator[Change] | tuple[Change, ...]) -> Change:
    base: Decimal | None = None
    head: Decimal | None = None
    in_base = in_head = False
    for change in changes:
        in_base = in_base or change.in_base
        in_head = in_head or change.in_head
        if change.base is not None:
            base = (base or Decimal(0)) + change.base
        if change.head is not None:
            head = (head or Decimal(0)) + change.head
    return Change(base, head, in_base, in_head)


def parse_increase(value: str) -> Decimal:
    """``--fail-on-increase 10%`` -> ``Decimal(10)`` (percent; more than 100% is allowed)."""
    return parse_percent_option(value, "--fail-on-increase", "10%")


# -- comparing two reports -------------------------------------------------------------------


def _finding_key(finding: Finding) -> tuple[str, str, str, str]:
    """Findings match across commits by rule and place, not by line or numbers (an edit
    above a finding moves it; a budget that is broken by more is still the same finding)."""
    return (finding.rule, finding.path or "", finding.workflow or "", finding.step or "")


def _workflow_change(
    base: WorkflowEstimate | None, head: WorkflowEstimate | None, measure: str
) -> Change:
    def value(estimate: WorkflowEstimate | None) -> Decimal | None:
        if estimate is None:
            return None
        if measure == "mean":
            return estimate.cost.mean
        if measure == "p95":
            return estimate.cost.p95
        if measure == "monthly":
            return estimate.monthly_spend_usd
        if measure in ("latency_p50", "latency_p95"):
            stats = estimate.latency.stats if estimate.latency is not None else None
            if stats is None:
                return None
            value = stats.p50 if measure == "latency_p50" else stats.p95
            return Decimal(repr(round(value, 3)))
        return sum((c.tokens for c in estimate.components), Decimal(0))

    return Change(value(base), value(head), base is not None, head is not None)


def compare(
    base: Measured,
    head: Measured,
    *,
    base_ref: str,
    base_commit: str,
    threshold: Decimal | None = None,
    base_problem: str | None = None,
) -> DiffResult:
    """What changed from ``base`` to ``head`` (both ``check`` reports)."""
    base_workflows = {w.name: w for w in base.workflows}
    head_workflows = {w.name: w for w in head.workflows}
    names = [*head_workflows, *(n for n in base_workflows if n not in head_workflows)]
    workflows = [
        WorkflowDiff(
            name=name,
            cost_per_request=_workflow_change(
                base_workflows.get(name), head_workflows.get(name), "mean"
            ),
            cost_per_request_p95=_workflow_change(
                base_workflows.get(name), head_workflows.get(name), "p95"
            ),
            monthly_spend=_workflow_change(
                base_workflows.get(name), head_workflows.get(name), "monthly"
            ),
            tokens_per_request=_workflow_change(
                base_workflows.get(name), head_workflows.get(name), "tokens"
            ),
            latency_p50=_workflow_change(
                base_workflows.get(name), head_workflows.get(name), "latency_p50"
            ),
            latency_p95=_workflow_change(
                base_workflows.get(name), head_workflows.get(name), "latency_p95"
            ),
        )
        for name in names
    ]
    base_templates = {t.label: t for t in base.templates}
    head_templates = {t.label: t for t in head.templates}
    paths = sorted({*base_templates, *head_templates})
    templates = []
    for path in paths:
        before, after = base_templates.get(path), head_templates.get(path)
        shown = after or before
        templates.append(
            TemplateDiff(
                path=path,
                model=shown.model if shown is not None else None,
                tokens=Change(
                    _tokens(before.request_tokens) if before else None,
                    _tokens(after.request_tokens) if after else None,
                    in_base=before is not None,
                    in_head=after is not None,
                ),
            )
        )
    base_keys = {_finding_key(f) for f in base.findings}
    head_keys = {_finding_key(f) for f in head.findings}
    workflows.sort(key=lambda w: (-w.weight, w.name))
    templates.sort(key=lambda t: (-t.weight, t.path))
    result = DiffResult(
        base_ref=base_ref,
        base_commit=base_commit,
        workflows=tuple(workflows),
        templates=tuple(templates),
        new_findings=tuple(f for f in head.findings if _finding_key(f) not in base_keys),
        fixed_findings=tuple(f for f in base.findings if _finding_key(f) not in head_keys),
        threshold=threshold,
        base_problem=base_problem,
    )
    if threshold is None:
        return result
    return replace(result, breaches=tuple(_breaches(result, threshold)))


def _tokens(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _breaches(result: DiffResult, threshold: Decimal) -> Iterator[Breach]:
    """Rises above the threshold. Added workflows and templates have no base to rise from:
    their budgets in budgets.yaml are what hold them."""
    for workflow in result.workflows:
        subject = f"workflow {workflow.name!r}"
        for quantity, change in (
            ("cost per request", workflow.cost_per_request),
            ("monthly spend", workflow.monthly_spend),
            ("tokens per request", workflow.tokens_per_request),
        ):
            if change.percent is not None and change.percent > threshold:
                yield Breach(subject, quantity, change)
    for template in result.templates:
        if template.tokens.percent is not None and template.tokens.percent > threshold:
            yield Breach(template.path, "tokens", template.tokens)
