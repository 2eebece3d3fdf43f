"""The latency lines of ``estimate``'s text: milliseconds per request next to the dollars, and
``--why``'s table of where the seconds go next to where the dollars go."""

from __future__ import annotations

from decimal import Decimal

from rich.table import Table
from rich.text import Text

from promptbudget.estimates import WorkflowEstimate
from promptbudget.headroom import format_spread
from promptbudget.latency import PART_LABELS, PARTS, LatencyStats
from promptbudget.manifest.model import Statistic
from promptbudget.units import format_ms, format_usd


def shows_latency(workflow: WorkflowEstimate) -> bool:
    """Latency is shown when something of it is known or a limit asks for it."""
    latency = workflow.latency
    if latency is None:
        return False
    if any(step.stats is not None for step in latency.steps):
        return True
    limited = workflow.workflow.limits.max_latency_ms is not None or any(
        step.step.limits.max_latency_ms is not None for step in workflow.steps
    )
    return limited and bool(latency.missing)


def latency_rows(workflow: WorkflowEstimate) -> list[tuple[str, float | None]]:
    stats = workflow.latency.stats if workflow.latency is not None else None
    return [
        (f"latency per request ({name})", stats.get(name) if stats is not None else None)
        for name in ("mean", "p50", "p95")
    ]


def ms_cell(value: float | None) -> str:
    return "unknown" if value is None else format_ms(value)


def ms_delta(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return "-"
    change = after - before
    if round(change) == 0:
        return ""
    sign = "+" if change > 0 else "-"
    percent = f" ({sign}{abs(change) / before * 100:.1f}%)" if before else ""
    return f"{sign}{format_ms(abs(change))}{percent}"


def latency_notes(workflow: WorkflowEstimate) -> list[Text]:
    latency = workflow.latency
    if latency is None:
        return []
    notes = []
    if latency.missing:
        names = ", ".join(latency.missing)
        notes.append(
            Text(
                f"latency unknown: no speed for {names} (declare ttft_ms and "
                "output_tokens_per_second under models:)",
                style="dim",
            )
        )
    if latency.batch_steps:
        notes.append(
            Text(
                "latency leaves out batch steps (asynchronous): " + ", ".join(latency.batch_steps),
                style="dim",
            )
        )
    return notes


def _share(part: float, total: float) -> str:
    return f"{part / total * 100:.1f}%" if total else "-"


def _stat(stats: LatencyStats | None, name: str) -> str:
    """``428 ms``; a sampled percentile with its 95% band, ``428 ms ±5%``."""
    if stats is None:
        return "-"
    statistic: Statistic = "p50" if name == "p50" else "p95"
    value, band = stats.get(statistic), stats.band(statistic)
    if band is None:
        return format_ms(value)
    spread = format_spread(Decimal(repr(value)), (Decimal(repr(band[0])), Decimal(repr(band[1]))))
    return f"{format_ms(value)} {spread}"


def seconds_table(workflow: WorkflowEstimate) -> Table:
    """Per step: dollars and their share, milliseconds (mean, p50, p95) and their share, and
    the mean milliseconds by part (time to first token, output, tools, retrieval, backoff)."""
    latency = workflow.latency
    assert latency is not None
    cost_total = workflow.cost.mean
    known = [step for step in latency.steps if step.stats is not None]
    ms_total = sum(step.stats.mean for step in known if step.stats is not None)
    parts = [p for p in PARTS if any(step.parts.get(p) for step in known)]
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name in ("step", "$/request", "of cost", "ms mean", "of time", "p50", "p95"):
        table.add_column(name, justify="left" if name == "step" else "right")
    for part in parts:
        table.add_column(PART_LABELS[part], justify="right")
    for step in workflow.steps:
        timing = latency.step(step.name)
        stats = timing.stats if timing is not None else None
        cost = sum((c.cost_usd for c in workflow.components if c.step == step.name), Decimal(0))
        if timing is not None and timing.is_batch:
            shown = ["batch (asynchronous)", "", "", ""]
        elif stats is None:
            shown = ["unknown", "", "", ""]
        else:
            shown = [format_ms(stats.mean), _share(stats.mean, ms_total)]
            shown += [_stat(stats, "p50"), _stat(stats, "p95")]
        cells = [format_ms(timing.parts.get(p, 0.0)) if stats and timing else "" for p in parts]
        table.add_row(
            step.name,
            format_usd(cost),
            f"{cost / cost_total * 100:.1f}%" if cost_total else "-",
            *shown,
            *cells,
        )
    return table
