"""The report every command produces: what it found and measured. Reporters turn it into text;
the CLI prints it and exits with its ``exit_code``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from promptbudget.findings import Finding, Severity

if TYPE_CHECKING:
    from promptbudget.compression import FileCompression
    from promptbudget.counting import TemplateCount
    from promptbudget.diffing import DiffResult
    from promptbudget.estimates import WorkflowEstimate
    from promptbudget.headroom import LimitCheck
    from promptbudget.pricing.catalog import ModelPrice, PriceChange
    from promptbudget.replay.result import ReplayResult


@dataclass(frozen=True)
class Report:
    """What a command found and measured. Reporters turn it into text; the CLI prints it."""

    command: str
    findings: tuple[Finding, ...] = ()
    templates: tuple[TemplateCount, ...] = ()
    workflows: tuple[WorkflowEstimate, ...] = ()
    baseline: tuple[WorkflowEstimate, ...] = ()  # estimate --set: the manifest as written
    # every limit of the manifest with what was measured against it (check, estimate)
    limits: tuple[LimitCheck, ...] = ()
    baseline_limits: tuple[LimitCheck, ...] = ()  # estimate --set: as written
    models: tuple[ModelPrice, ...] = ()
    catalog_as_of: str | None = None
    root: str | None = None  # absolute project root; finding paths are relative to it
    fail_on: Severity = Severity.ERROR
    exit_zero: bool = False
    scoped: bool = False  # check PATH...: only what the files named touch
    # estimate
    why: bool = False
    sets: tuple[str, ...] = ()
    # compress
    compressions: tuple[FileCompression, ...] = ()
    passes: tuple[str, ...] = ()
    # models --diff
    price_file: str | None = None
    price_changes: tuple[PriceChange, ...] = ()
    today: str | None = None  # models: the run's date, to mark deprecated models
    missing_models: tuple[str, ...] = ()
    # diff: base against head; ``findings`` are the ones new in the head
    diff: DiffResult | None = None
    # replay: production statistics, drift and calibration
    replay: ReplayResult | None = None

    def count(self, severity: Severity) -> int:
        return sum(1 for finding in self.findings if finding.severity is severity)

    @property
    def exit_code(self) -> int:
        """0 when nothing reaches ``fail_on`` (or ``--exit-zero``), else 1. ``diff`` also
        fails on a rise above ``--fail-on-increase``."""
        if self.exit_zero:
            return 0
        if self.diff is not None and self.diff.breaches:
            return 1
        return 1 if any(f.severity >= self.fail_on for f in self.findings) else 0
