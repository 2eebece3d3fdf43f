"""What one replay found, for the reporters."""

from __future__ import annotations

from dataclasses import dataclass

from promptbudget.replay.calibration import Calibration
from promptbudget.replay.drift import Drift
from promptbudget.replay.latency import SpeedDrift
from promptbudget.replay.readers import Malformed
from promptbudget.replay.stats import WorkflowStats
from promptbudget.replay.windows import Comparison, Window


@dataclass(frozen=True)
class ReplayResult:
    observed: tuple[WorkflowStats, ...]  # workflows of budgets.yaml first, then the rest
    known_workflows: tuple[str, ...]  # the workflows budgets.yaml declares
    files: tuple[str, ...] = ()
    records: int = 0
    malformed: int = 0
    malformed_examples: tuple[Malformed, ...] = ()
    drift: tuple[Drift, ...] = ()
    speeds: tuple[SpeedDrift, ...] = ()  # model speeds declared against observed
    comparison: Comparison | None = None  # --compare-to: the baseline window against this one
    window: Window | None = None  # --since/--until: the requests replayed
    calibration: Calibration | None = None
    aggregates: str | None = None  # --aggregates FILE: the result judged came from there
    manifest: str = "budgets.yaml"  # the manifest judged against, as shown
    approximate: bool = False  # quantiles are DuckDB's approximate ones (very large logs)

    @property
    def matched(self) -> tuple[WorkflowStats, ...]:
        return tuple(w for w in self.observed if w.name in self.known_workflows)

    @property
    def unmatched(self) -> tuple[WorkflowStats, ...]:
        return tuple(w for w in self.observed if w.name not in self.known_workflows)
