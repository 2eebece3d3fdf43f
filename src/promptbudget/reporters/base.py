"""What every reporter receives besides the report: presentation settings."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from promptbudget.units import quantize


@dataclass(frozen=True)
class ReportSettings:
    color: bool = False
    width: int = 100
    # Annotation paths are relative to this directory (GitHub: the workspace); None: as is.
    workspace: str | None = None
    root: str | None = None  # absolute project root, to re-base paths for annotations
    verbosity: int = 0  # text: -1 errors only, 0 info findings grouped by cause, 1 all
    # text: wrap finding lines at ``width`` (the width is a terminal's); else one line each
    wrap: bool = False


def usd_number(amount: Decimal | None) -> float | None:
    """Dollars for JSON: exact to 1e-12, as a JSON number."""
    if amount is None:
        return None
    return float(quantize(amount, Decimal("1e-12")))
