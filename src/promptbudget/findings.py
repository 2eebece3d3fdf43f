"""The shared vocabulary: severities, findings and the report every command produces."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from promptbudget.compression import FileCompression
    from promptbudget.counting import TemplateCount
    from promptbudget.diffing import DiffResult
    from promptbudget.estimates import WorkflowEstimate
    from promptbudget.pricing.catalog import ModelPrice, PriceChange


class Severity(enum.Enum):
    """How much a finding matters; ``--fail-on`` compares against this order."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}

Number = int | Decimal


def assert_never(value: NoReturn) -> NoReturn:
    """Exhaustiveness check for ``match`` over enums (``typing.assert_never`` is 3.11+)."""
    raise AssertionError(f"unhandled value: {value!r}")


@dataclass(frozen=True)
class Finding:
    """One problem found in a template or a workflow. Frozen: rules yield complete findings."""

    rule: str
    slug: str
    severity: Severity
    message: str
    path: str | None = None
    line: int | None = None
    workflow: str | None = None
    step: str | None = None
    measured: Number | None = None
    limit: Number | None = None
    unit: str | None = None

    @property
    def sort_key(self) -> tuple[str, int, str, str, str, str]:
        return (
            self.path or "",
            self.line or 0,
            self.workflow or "",
            self.step or "",
            self.rule,
            self.message,
        )


@dataclass(frozen=True)
class Report:
    """What a command found and measured. Reporters turn it into text; the CLI prints it."""

    command: str
    findings: tuple[Finding, ...] = ()
    templates: tuple[TemplateCount, ...] = ()
    workflows: tuple[WorkflowEstimate, ...] = ()
    baseline: tuple[WorkflowEstimate, ...] = ()  # estimate --set: the manifest as written
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
    missing_models: tuple[str, ...] = ()
    # diff: base against head; ``findings`` are the ones new in the head
    diff: DiffResult | None = None

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
