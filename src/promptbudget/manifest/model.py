"""The manifest as frozen dataclasses: field names are the ``budgets.yaml`` keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from promptbudget.pricing.catalog import PriceCatalog

DAYS_PER_MONTH = 30


@dataclass(frozen=True)
class VariableSpec:
    """A variable's cap (worst case, in tokens) or sample value, as the manifest declares it."""

    name: str
    max_tokens: int | None = None
    sample: Any = None
    has_sample: bool = False
    line: int | None = None


@dataclass(frozen=True)
class Limits:
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_turns: int | None = None
    max_tool_calls: int | None = None
    max_cost_per_request: Decimal | None = None
    max_cost_per_outcome: Decimal | None = None
    max_monthly_spend: Decimal | None = None


@dataclass(frozen=True)
class Step:
    name: str
    prompt: str  # as written in the manifest
    prompt_path: Path  # resolved, inside the project root
    model: str | None = None
    output_tokens: int | None = None
    max_output_tokens: int | None = None
    turns: int = 1
    tool_calls: int = 0
    tool_result_tokens: int = 0
    user_turn_tokens: int | None = None
    variables: Mapping[str, VariableSpec] = field(default_factory=dict)
    line: int | None = None


@dataclass(frozen=True)
class Workflow:
    name: str
    steps: tuple[Step, ...]
    limits: Limits = field(default_factory=Limits)
    description: str | None = None
    requests_per_month: Decimal | None = None  # per_day x 30 when given per day
    success_rate: Decimal = Decimal(1)
    line: int | None = None
    limit_lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def requests_per_day(self) -> Decimal | None:
        if self.requests_per_month is None:
            return None
        return self.requests_per_month / DAYS_PER_MONTH


@dataclass(frozen=True)
class Manifest:
    path: Path
    root: Path
    display_path: str  # the manifest's path as shown in findings
    prompts_dir: Path
    catalog: PriceCatalog
    default_model: str | None = None
    variables: Mapping[str, VariableSpec] = field(default_factory=dict)
    rules: Mapping[str, str] = field(default_factory=dict)
    workflows: tuple[Workflow, ...] = ()
    rule_lines: Mapping[str, int] = field(default_factory=dict)
