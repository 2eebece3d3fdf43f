"""The shared vocabulary at the bottom of the package: severities and findings.

Nothing here imports anything else of promptbudget: every other module may import it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import NoReturn


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
    # Project-relative paths the message names (``(budgets.yaml:14)``): reporters move them
    # as they move ``path`` (relative to the current directory, or to the repository).
    message_paths: tuple[str, ...] = ()

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
