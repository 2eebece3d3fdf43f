"""A rule is a declaration (code, slug, default severity) plus a pure generator of findings."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from promptbudget.findings import Finding, Number, Severity

if TYPE_CHECKING:
    from promptbudget.compression import CompressionResult
    from promptbudget.compression.passages import Passage
    from promptbudget.counting import TemplateCount
    from promptbudget.estimates import WorkflowEstimate
    from promptbudget.lockfile import Lock, LockedTemplate
    from promptbudget.manifest.model import Manifest
    from promptbudget.suppressions import Outcome
    from promptbudget.templates.meta import ParsedTemplate
    from promptbudget.templates.rendered import RenderedPrompt


@dataclass(frozen=True)
class TemplateResult:
    """One template as evaluated on its own (its samples plus the manifest's variables)."""

    parsed: ParsedTemplate
    rendered: RenderedPrompt
    count: TemplateCount
    model_known: bool = True
    closest_models: tuple[str, ...] = ()
    manifest_variables: frozenset[str] = frozenset()  # declared for it in the manifest
    in_workflow: bool = False


@dataclass(frozen=True)
class RuleContext:
    """Everything a rule may look at. Rules never read anything else."""

    templates: tuple[TemplateResult, ...] = ()
    workflows: tuple[WorkflowEstimate, ...] = ()
    manifest: Manifest | None = None
    step_variable_lines: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    # What safe compression passes would save per template path (PB205).
    compressions: Mapping[str, CompressionResult] = field(default_factory=dict)
    # Passages pasted into several templates (PB204).
    passages: tuple[Passage, ...] = ()
    # Dollars a month one static token of a template costs, and the workflows that pay it.
    token_rates: Mapping[str, tuple[Decimal, tuple[str, ...]]] = field(default_factory=dict)
    min_savings: Decimal = Decimal("0.05")
    # promptbudget.lock as committed, and what it would hold now (PB206).
    lock: Lock | None = None
    locked_now: Mapping[str, LockedTemplate] = field(default_factory=dict)
    # What the suppressions did once every other rule ran (PB002).
    suppressions: Outcome | None = None
    # The run's date (PB116 deprecation); None skips date-dependent rules.
    today: date | None = None


_LITERAL = re.compile(r"``(.+?)``")

Check = Callable[["Rule", RuleContext, Severity], Iterator[Finding]]


@dataclass(frozen=True)
class Rule:
    code: str
    slug: str
    default_severity: Severity
    summary: str
    check: Check = field(repr=False)

    @property
    def doc(self) -> str:
        """The rule's documentation: the docstring of its check function."""
        return inspect.cleandoc(self.check.__doc__ or "")

    @property
    def plain_doc(self) -> str:
        """The documentation for a terminal: reStructuredText literals in the prose
        (````x````) as inline code (```x```); the indented examples exactly as written."""
        return "\n".join(
            line if line.startswith((" ", "\t")) else _LITERAL.sub(r"`\1`", line)
            for line in self.doc.splitlines()
        )

    def finding(
        self,
        severity: Severity,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        workflow: str | None = None,
        step: str | None = None,
        measured: Number | None = None,
        limit: Number | None = None,
        unit: str | None = None,
        message_paths: tuple[str, ...] = (),
    ) -> Finding:
        return Finding(
            rule=self.code,
            slug=self.slug,
            severity=severity,
            message=message,
            path=path,
            line=line,
            workflow=workflow,
            step=step,
            measured=measured,
            limit=limit,
            unit=unit,
            message_paths=tuple(p for p in message_paths if p),
        )


def rule(code: str, slug: str, severity: Severity, summary: str) -> Callable[[Check], Rule]:
    """Declare a rule around its check function (whose docstring is the documentation)."""

    def wrap(check: Check) -> Rule:
        return Rule(code=code, slug=slug, default_severity=severity, summary=summary, check=check)

    return wrap


def run_rules(
    rules: dict[str, Rule], context: RuleContext, severities: dict[str, Severity | None]
) -> list[Finding]:
    """Run every enabled rule; ``severities`` maps code -> severity (None: off)."""
    findings: list[Finding] = []
    for code, current in rules.items():
        severity = severities.get(code, current.default_severity)
        if severity is None:
            continue
        findings.extend(current.check(current, context, severity))
    return findings


def plural(count: int | Any, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"
